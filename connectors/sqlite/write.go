package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

const (
	// maxVars is SQLite's limit on bound parameters in one statement.
	maxVars = 32766
	// maxRowsPerInsert bounds a multi-row INSERT: past a few hundred rows a
	// longer statement only costs more to build and prepare.
	maxRowsPerInsert = 256
)

// CheckTables says, without opening the file for writing, whether the
// tables fit in one SQLite file: table names (which ignore case and the
// schema) and column names (which ignore ASCII case) must not collide, and
// none may be reserved. Columns holding a source type's text form become
// TEXT; they are returned as conversions.
func (c *Conn) CheckTables(_ context.Context, tables []*model.Table) ([]connector.Conversion, error) {
	byName := map[string]*model.Table{}
	for _, t := range tables {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("sqlite file %s: %w", c.path, err)
		}
		lower := strings.ToLower(t.Namespace.Table)
		if strings.HasPrefix(lower, "sqlite_") || strings.HasPrefix(lower, "_ferry_") {
			return nil, errs.BadConfig(fmt.Sprintf("table %s: SQLite table names starting with sqlite_ or _ferry_ are reserved", t.Namespace), "rename the table (a flow file's rename option)")
		}
		if prev, dup := byName[lower]; dup {
			return nil, errs.BadConfig(fmt.Sprintf("tables %s and %s both map to SQLite table %q: a SQLite file has one schema and table names ignore case", prev.Namespace, t.Namespace, t.Namespace.Table), "rename one of them (a flow file's rename option) or copy them to separate files")
		}
		byName[lower] = t
		if err := connector.CheckFoldedColumns(t, asciiLower, "SQLite"); err != nil {
			return nil, err
		}
		for _, col := range t.Columns {
			if _, err := declType(col.Type); err != nil {
				return nil, &errs.ConfigError{Msg: fmt.Sprintf("table %s, column %s: %v", t.Namespace, col.Name, err),
					Fix: fmt.Sprintf("exclude the table with --tables '!%s'", t.Namespace)}
			}
		}
	}
	return connector.TextFormConversions(tables, func(t model.Type) string {
		d, _ := declType(t) // text always has a declared type
		return d
	}), nil
}

// asciiLower folds a name as SQLite compares identifiers: ASCII letters
// only ("É" and "é" are two columns).
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// CreateTables creates the tables, named by Namespace.Table alone, in one
// transaction, once CheckTables accepts them. An existing table is kept if
// ferry can write its columns exactly, and is an error naming the
// difference otherwise.
func (c *Conn) CreateTables(ctx context.Context, tables []*model.Table) error {
	if _, err := c.CheckTables(ctx, tables); err != nil {
		return err
	}
	db, err := c.writer(ctx)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite file %s: begin: %w", c.path, err)
	}
	for _, t := range tables {
		existing, err := tableColumns(ctx, tx, t.Namespace.Table)
		if err != nil {
			return rollback(tx, fmt.Errorf("table %s: read existing columns: %w", t.Namespace, err))
		}
		if len(existing) > 0 {
			if err := checkCompatible(t, existing); err != nil {
				return rollback(tx, err)
			}
			continue
		}
		ddl, err := createTableSQL(t)
		if err != nil {
			return rollback(tx, err)
		}
		if _, err := tx.ExecContext(ctx, ddl); err != nil {
			return rollback(tx, fmt.Errorf("table %s: create: %w", t.Namespace, err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite file %s: commit created tables: %w", c.path, err)
	}
	return nil
}

func createTableSQL(t *model.Table) (string, error) {
	inKey := map[string]bool{}
	for _, k := range t.PrimaryKey {
		inKey[k] = true
	}
	defs := make([]string, 0, len(t.Columns)+1)
	for _, col := range t.Columns {
		decl, err := declType(col.Type)
		if err != nil {
			return "", fmt.Errorf("table %s, column %s: %w", t.Namespace, col.Name, err)
		}
		d := quoteIdent(col.Name) + " " + decl
		if !col.Nullable || inKey[col.Name] {
			d += " NOT NULL"
		}
		defs = append(defs, d)
	}
	if len(t.PrimaryKey) > 0 {
		keys := make([]string, len(t.PrimaryKey))
		for i, k := range t.PrimaryKey {
			keys[i] = quoteIdent(k)
		}
		defs = append(defs, "PRIMARY KEY ("+strings.Join(keys, ", ")+")")
	}
	return "CREATE TABLE IF NOT EXISTS " + quoteIdent(t.Namespace.Table) + " (\n\t" + strings.Join(defs, ",\n\t") + "\n)", nil
}

// checkCompatible says whether ferry can write t's rows into an existing
// table exactly.
func checkCompatible(t *model.Table, existing []tableColumn) error {
	have := map[string]tableColumn{}
	for _, ec := range existing {
		have[strings.ToLower(ec.name)] = ec
	}
	want := map[string]bool{}
	var missing, mismatched []string
	for _, col := range t.Columns {
		want[strings.ToLower(col.Name)] = true
		ec, ok := have[strings.ToLower(col.Name)]
		if !ok {
			missing = append(missing, col.Name)
			continue
		}
		if ec.hidden >= 2 {
			mismatched = append(mismatched, fmt.Sprintf("%s is a generated column", col.Name))
			continue
		}
		decl, err := declType(col.Type)
		if err != nil {
			return fmt.Errorf("table %s, column %s: %w", t.Namespace, col.Name, err)
		}
		if a := affinity(ec.decl); !storesExactly(col.Type.Kind, a) {
			mismatched = append(mismatched, fmt.Sprintf("%s is declared %q (%s affinity), which would alter %s values; ferry declares %s", col.Name, ec.decl, a, col.Type, decl))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("table %s already exists without column(s) %s; drop the table or add the column(s)", t.Namespace, strings.Join(missing, ", "))
	}
	if len(mismatched) > 0 {
		return fmt.Errorf("table %s already exists and is incompatible: %s; drop the table or fix the column types", t.Namespace, strings.Join(mismatched, "; "))
	}
	var extra []string
	for _, ec := range existing {
		if !want[strings.ToLower(ec.name)] && ec.notNull && !ec.hasDefault && ec.hidden < 2 {
			extra = append(extra, ec.name)
		}
	}
	if len(extra) > 0 {
		return fmt.Errorf("table %s already exists with NOT NULL column(s) %s that ferry does not write and that have no default; drop the table or give the column(s) a default", t.Namespace, strings.Join(extra, ", "))
	}
	if len(t.PrimaryKey) > 0 {
		var haveKey []string
		for _, ec := range existing {
			if ec.pk > 0 {
				haveKey = append(haveKey, strings.ToLower(ec.name))
			}
		}
		wantKey := make([]string, len(t.PrimaryKey))
		for i, k := range t.PrimaryKey {
			wantKey[i] = strings.ToLower(k)
		}
		sort.Strings(haveKey)
		sort.Strings(wantKey)
		if strings.Join(haveKey, "\x00") != strings.Join(wantKey, "\x00") {
			return fmt.Errorf("table %s already exists with primary key (%s), but ferry writes by key (%s); drop the table or change its key", t.Namespace, strings.Join(haveKey, ", "), strings.Join(t.PrimaryKey, ", "))
		}
	}
	return nil
}

// storesExactly says whether a column of affinity a keeps the values ferry
// binds for kind k unchanged.
func storesExactly(k model.Kind, a aff) bool {
	if a == affBlob {
		return true // no affinity: every value is stored as bound
	}
	switch k {
	case model.KindBool, model.KindInt16, model.KindInt32, model.KindInt64:
		return a == affInteger || a == affNumeric
	case model.KindFloat32, model.KindFloat64:
		return false // REAL and NUMERIC turn -0.0 into 0, TEXT turns numbers into text
	case model.KindBytes:
		return true // affinity never converts a BLOB
	case model.KindDecimal, model.KindText, model.KindJSON, model.KindEnum:
		return a == affText
	}
	// Dates, times, intervals, arrays, UUIDs and network addresses never look
	// like numbers, so no affinity converts their text.
	return true
}

// upsertSQL is the statement writing n rows of t: an upsert by primary key,
// or a plain insert for a table without one.
func upsertSQL(t *model.Table, n int) string {
	var sb strings.Builder
	sb.WriteString("INSERT INTO ")
	sb.WriteString(quoteIdent(t.Namespace.Table))
	sb.WriteString(" (")
	for i, col := range t.Columns {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(quoteIdent(col.Name))
	}
	sb.WriteString(") VALUES ")
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(t.Columns)), ", ") + ")"
	for i := 0; i < n; i++ {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(tuple)
	}
	if len(t.PrimaryKey) == 0 {
		return sb.String()
	}
	inKey := map[string]bool{}
	keys := make([]string, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		inKey[k] = true
		keys[i] = quoteIdent(k)
	}
	sb.WriteString(" ON CONFLICT (")
	sb.WriteString(strings.Join(keys, ", "))
	sb.WriteString(") DO ")
	var sets []string
	for _, col := range t.Columns {
		if !inKey[col.Name] {
			q := quoteIdent(col.Name)
			sets = append(sets, q+" = excluded."+q)
		}
	}
	if len(sets) == 0 {
		sb.WriteString("NOTHING")
	} else {
		sb.WriteString("UPDATE SET ")
		sb.WriteString(strings.Join(sets, ", "))
	}
	return sb.String()
}

// upsertRows writes rows (without Unchanged markers) into t inside tx, in
// multi-row statements.
func upsertRows(ctx context.Context, tx *sql.Tx, t *model.Table, rows []model.Row) error {
	if len(rows) == 0 {
		return nil
	}
	ncols := len(t.Columns)
	per := min(maxRowsPerInsert, maxVars/ncols, len(rows))
	full, err := tx.PrepareContext(ctx, upsertSQL(t, per))
	if err != nil {
		return fmt.Errorf("prepare insert: %w", err)
	}
	args := make([]any, 0, per*ncols)
	for start := 0; start < len(rows); start += per {
		chunk := rows[start:min(start+per, len(rows))]
		args = args[:0]
		for _, row := range chunk {
			if len(row) != ncols {
				return fmt.Errorf("row has %d values for %d columns", len(row), ncols)
			}
			for i, col := range t.Columns {
				v, err := toSQLite(col.Type, row[i])
				if err != nil {
					return valueErr(t, col.Name, row, err)
				}
				args = append(args, v)
			}
		}
		stmt := full
		if len(chunk) < per {
			if stmt, err = tx.PrepareContext(ctx, upsertSQL(t, len(chunk))); err != nil {
				return fmt.Errorf("prepare insert: %w", err)
			}
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// saveCheckpoint stores cp inside tx.
func saveCheckpoint(ctx context.Context, tx *sql.Tx, cp *model.Checkpoint) error {
	if cp == nil {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO `+checkpointTable+` (flow, key, value) VALUES (?, ?, ?)
		ON CONFLICT (flow, key) DO UPDATE SET value = excluded.value`, cp.Flow, cp.Key, cp.Value)
	if err != nil {
		return fmt.Errorf("save checkpoint %s of flow %s: %w", cp.Key, cp.Flow, err)
	}
	return nil
}

// OpenWriter returns a writer of copied rows. Writers share the file's one
// write connection, so they take turns, one transaction each.
func (c *Conn) OpenWriter(ctx context.Context) (connector.RowWriter, error) {
	if _, err := c.writer(ctx); err != nil {
		return nil, err
	}
	return &rowWriter{c: c}, nil
}

type rowWriter struct{ c *Conn }

// WriteRows upserts the batch and stores its checkpoint in one transaction.
func (w *rowWriter) WriteRows(ctx context.Context, b *model.RowBatch) error {
	if b == nil || (len(b.Rows) == 0 && b.Checkpoint == nil) {
		return nil
	}
	where := "partition " + b.Partition
	if b.Table != nil {
		where = fmt.Sprintf("table %s, partition %s", b.Table.Namespace, b.Partition)
	} else if len(b.Rows) > 0 {
		return fmt.Errorf("%s: batch of %d rows without a table", where, len(b.Rows))
	}
	db, err := w.c.writer(ctx)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", where, err)
	}
	if len(b.Rows) > 0 {
		if err := upsertRows(ctx, tx, b.Table, b.Rows); err != nil {
			return rollback(tx, fmt.Errorf("%s: write %d rows: %w", where, len(b.Rows), err))
		}
	}
	if err := saveCheckpoint(ctx, tx, b.Checkpoint); err != nil {
		return rollback(tx, fmt.Errorf("%s: %w", where, err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", where, err)
	}
	return nil
}

func (w *rowWriter) Close() error { return nil }
