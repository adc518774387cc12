//go:build cgo && duckdb

package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	duck "github.com/duckdb/duckdb-go/v2"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// CheckTables says, without opening the file, whether the tables fit in a
// DuckDB file: DuckDB compares table and column names ignoring case, no
// name may be ferry's own, and every column needs a type.
func (c *Conn) CheckTables(_ context.Context, tables []*model.Table) ([]connector.Conversion, error) {
	byName := map[string]*model.Table{}
	for _, t := range tables {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("duckdb file %s: %w", c.path, err)
		}
		if strings.HasPrefix(strings.ToLower(t.Namespace.Table), "_ferry_") {
			return nil, errs.BadConfig(fmt.Sprintf("table %s: DuckDB table names starting with _ferry_ are reserved", t.Namespace), "rename the table (a flow file's rename option)")
		}
		lower := strings.ToLower(schemaOf(t.Namespace) + "." + t.Namespace.Table)
		if prev, dup := byName[lower]; dup {
			return nil, errs.BadConfig(fmt.Sprintf("tables %s and %s are one DuckDB table: DuckDB names ignore case", prev.Namespace, t.Namespace), "rename one of them (a flow file's rename option)")
		}
		byName[lower] = t
		if err := connector.CheckFoldedColumns(t, strings.ToLower, "DuckDB"); err != nil {
			return nil, err
		}
		for _, col := range t.Columns {
			if _, _, err := colType(col.Type); err != nil {
				return nil, &errs.ConfigError{Msg: fmt.Sprintf("table %s, column %s: %v", t.Namespace, col.Name, err),
					Fix: fmt.Sprintf("exclude the table with --tables '!%s'", t.Namespace)}
			}
		}
	}
	return connector.TextFormConversions(tables, func(t model.Type) string {
		d, _, _ := colType(t)
		return d
	}), nil
}

// schemaOf is the DuckDB schema a namespace's table lives in: its own, or
// main when it has none.
func schemaOf(ns model.Namespace) string {
	if ns.Schema == "" {
		return "main"
	}
	return ns.Schema
}

// qualified is the quoted schema.table name.
func qualified(ns model.Namespace) string {
	return catalog + "." + quoteIdent(schemaOf(ns)) + "." + quoteIdent(ns.Table)
}

// CreateTables creates the tables (and their schemas) in one transaction,
// once CheckTables accepts them. An existing table is kept if its columns
// hold ferry's values exactly, and is an error naming the difference
// otherwise.
func (c *Conn) CreateTables(ctx context.Context, tables []*model.Table) error {
	if _, err := c.CheckTables(ctx, tables); err != nil {
		return err
	}
	h, err := c.writer(ctx)
	if err != nil {
		return err
	}
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("duckdb file %s: begin: %w", c.path, err)
	}
	for _, t := range tables {
		existing, err := describeTable(ctx, tx, t.Namespace)
		if err != nil {
			return rollback(tx, err)
		}
		if existing != nil {
			if err := checkCompatible(t, existing); err != nil {
				return rollback(tx, err)
			}
			continue
		}
		stmts, err := createTableSQL(t)
		if err != nil {
			return rollback(tx, err)
		}
		for _, q := range stmts {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return rollback(tx, fmt.Errorf("table %s: create: %w", t.Namespace, err))
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("duckdb file %s: commit created tables: %w", c.path, err)
	}
	return nil
}

func createTableSQL(t *model.Table) ([]string, error) {
	inKey := map[string]bool{}
	for _, k := range t.PrimaryKey {
		inKey[k] = true
	}
	defs := make([]string, 0, len(t.Columns)+1)
	var comments []string
	for _, col := range t.Columns {
		decl, marker, err := colType(col.Type)
		if err != nil {
			return nil, fmt.Errorf("table %s, column %s: %w", t.Namespace, col.Name, err)
		}
		d := quoteIdent(col.Name) + " " + decl
		if !col.Nullable || inKey[col.Name] {
			d += " NOT NULL"
		}
		defs = append(defs, d)
		if marker != "" {
			comments = append(comments, "COMMENT ON COLUMN "+qualified(t.Namespace)+"."+quoteIdent(col.Name)+" IS "+quoteLit(commentPrefix+marker))
		}
	}
	if len(t.PrimaryKey) > 0 {
		keys := make([]string, len(t.PrimaryKey))
		for i, k := range t.PrimaryKey {
			keys[i] = quoteIdent(k)
		}
		defs = append(defs, "PRIMARY KEY ("+strings.Join(keys, ", ")+")")
	}
	out := []string{
		"CREATE SCHEMA IF NOT EXISTS " + catalog + "." + quoteIdent(schemaOf(t.Namespace)),
		"CREATE TABLE " + qualified(t.Namespace) + " (\n\t" + strings.Join(defs, ",\n\t") + "\n)",
	}
	return append(out, comments...), nil
}

// checkCompatible says whether ferry can write t's rows into an existing
// table exactly: every column there, of the type ferry would make, and the
// same primary key.
func checkCompatible(t, existing *model.Table) error {
	have := map[string]model.Column{}
	for _, ec := range existing.Columns {
		have[strings.ToLower(ec.Name)] = ec
	}
	var missing, mismatched []string
	for _, col := range t.Columns {
		ec, ok := have[strings.ToLower(col.Name)]
		if !ok {
			missing = append(missing, col.Name)
			continue
		}
		want, _, err := colType(col.Type)
		if err != nil {
			return fmt.Errorf("table %s, column %s: %w", t.Namespace, col.Name, err)
		}
		if !strings.EqualFold(want, ec.Type.Native) {
			mismatched = append(mismatched, fmt.Sprintf("%s is %s, ferry writes %s", col.Name, ec.Type.Native, want))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("table %s already exists without column(s) %s; drop the table or add the column(s)", t.Namespace, strings.Join(missing, ", "))
	}
	if len(mismatched) > 0 {
		return fmt.Errorf("table %s already exists and is incompatible: %s; drop the table or fix the column types", t.Namespace, strings.Join(mismatched, "; "))
	}
	lower := func(ks []string) string {
		out := make([]string, len(ks))
		for i, k := range ks {
			out[i] = strings.ToLower(k)
		}
		return strings.Join(out, ", ")
	}
	if lower(existing.PrimaryKey) != lower(t.PrimaryKey) {
		return fmt.Errorf("table %s already exists with primary key (%s), but ferry writes by key (%s); drop the table or change its key", t.Namespace, strings.Join(existing.PrimaryKey, ", "), strings.Join(t.PrimaryKey, ", "))
	}
	return nil
}

// session is one connection of the file's pool, held by a writer or an
// applier for its life: DuckDB's appender and temporary tables belong to a
// connection.
type session struct {
	path string
	h    *handle
	conn *sql.Conn
}

func (c *Conn) openSession(ctx context.Context) (*session, error) {
	h, err := c.writer(ctx)
	if err != nil {
		return nil, err
	}
	conn, err := h.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("duckdb file %s: connect: %w", c.path, err)
	}
	return &session{path: c.path, h: h, conn: conn}, nil
}

func (s *session) Close() error {
	if err := s.conn.Close(); err != nil {
		return fmt.Errorf("duckdb file %s: %w", s.path, err)
	}
	return nil
}

func (s *session) exec(ctx context.Context, q string, args ...any) error {
	_, err := s.conn.ExecContext(ctx, q, args...)
	return err
}

// inTx runs fn in one transaction of the session, rolled back when it
// fails.
func (s *session) inTx(ctx context.Context, fn func() error) error {
	if err := s.exec(ctx, "BEGIN TRANSACTION"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(); err != nil {
		if rerr := s.exec(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
			return errors.Join(err, fmt.Errorf("rollback: %w", rerr))
		}
		return err
	}
	if err := s.exec(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// appendRows appends rows (without Unchanged markers) to table
// catalog.schema.name on the session's connection with DuckDB's appender.
func (s *session) appendRows(ctx context.Context, t *model.Table, cat, schema, name string, rows []model.Row) error {
	return s.conn.Raw(func(dc any) error {
		a, err := duck.NewAppender(dc.(driver.Conn), cat, schema, name)
		if err != nil {
			return fmt.Errorf("appender: %w", err)
		}
		vals := make([]driver.Value, len(t.Columns))
		for _, row := range rows {
			if len(row) != len(t.Columns) {
				return errors.Join(fmt.Errorf("row has %d values for %d columns", len(row), len(t.Columns)), a.Close())
			}
			for i, col := range t.Columns {
				v, err := toDuck(col.Type, row[i])
				if err != nil {
					return errors.Join(valueErr(t, col.Name, row, err), a.Clear(), a.Close())
				}
				vals[i] = v
			}
			if err := a.AppendRow(vals...); err != nil {
				return errors.Join(fmt.Errorf("append row (key %s): %w", model.KeyText(t, row), err), a.Clear(), a.Close())
			}
		}
		if err := a.CloseWithCancel(ctx); err != nil {
			return err
		}
		return nil
	})
}

// isConstraintErr tells a primary key violation.
func isConstraintErr(err error) bool {
	m := err.Error()
	return strings.Contains(m, "Duplicate key") || strings.Contains(m, "violates primary key") || strings.Contains(m, "PRIMARY KEY or UNIQUE constraint")
}

// stageTable makes (or empties) the session's temporary table shaped as t,
// for a batch to be merged into t with set-based statements.
func (s *session) stageTable(ctx context.Context, t *model.Table) (string, error) {
	name := "_ferry_stage_" + strings.ToLower(strings.NewReplacer(".", "_", `"`, "_").Replace(schemaOf(t.Namespace)+"_"+t.Namespace.Table))
	if err := s.exec(ctx, "CREATE OR REPLACE TEMP TABLE "+quoteIdent(name)+" AS SELECT * FROM "+qualified(t.Namespace)+" LIMIT 0"); err != nil {
		return "", fmt.Errorf("stage table: %w", err)
	}
	return name, nil
}

// upsert writes full rows into t by key through a staging table: the rows
// whose key is there already are deleted, then all are inserted. For a
// table without a key it appends.
func (s *session) upsert(ctx context.Context, t *model.Table, rows []model.Row) error {
	if len(rows) == 0 {
		return nil
	}
	if len(t.PrimaryKey) == 0 {
		return s.appendRows(ctx, t, catalog, schemaOf(t.Namespace), t.Namespace.Table, rows)
	}
	stage, err := s.stageTable(ctx, t)
	if err != nil {
		return err
	}
	if err := s.appendRows(ctx, t, "temp", "main", stage, rows); err != nil {
		return err
	}
	if err := s.exec(ctx, "DELETE FROM "+qualified(t.Namespace)+" AS d USING temp.main."+quoteIdent(stage)+" AS s WHERE "+keyMatch(t, "d", "s")); err != nil {
		return fmt.Errorf("delete rows replaced: %w", err)
	}
	// The batch may hold a key twice (a source read it twice); the last wins.
	if err := s.exec(ctx, "INSERT INTO "+qualified(t.Namespace)+" SELECT * EXCLUDE (_ferry_n) FROM (SELECT *, row_number() OVER (PARTITION BY "+keyList(t, "")+" ORDER BY rowid DESC) AS _ferry_n FROM temp.main."+quoteIdent(stage)+") WHERE _ferry_n = 1"); err != nil {
		return fmt.Errorf("insert rows: %w", err)
	}
	return nil
}

func keyMatch(t *model.Table, a, b string) string {
	parts := make([]string, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		parts[i] = a + "." + quoteIdent(k) + " = " + b + "." + quoteIdent(k)
	}
	return strings.Join(parts, " AND ")
}

func keyList(t *model.Table, prefix string) string {
	parts := make([]string, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		parts[i] = prefix + quoteIdent(k)
	}
	return strings.Join(parts, ", ")
}

// saveCheckpoint stores cp in the session's open transaction.
func (s *session) saveCheckpoint(ctx context.Context, cp *model.Checkpoint) error {
	if cp == nil {
		return nil
	}
	if err := s.exec(ctx, `INSERT OR REPLACE INTO `+checkpointTable+` (flow, key, value) VALUES (?, ?, ?)`, cp.Flow, cp.Key, cp.Value); err != nil {
		return fmt.Errorf("save checkpoint %s of flow %s: %w", cp.Key, cp.Flow, err)
	}
	return nil
}

// OpenWriter returns a writer of copied rows on a connection of its own:
// writers append side by side.
func (c *Conn) OpenWriter(ctx context.Context) (connector.RowWriter, error) {
	s, err := c.openSession(ctx)
	if err != nil {
		return nil, err
	}
	return &rowWriter{s: s}, nil
}

type rowWriter struct{ s *session }

// WriteRows appends the batch and stores its checkpoint in one
// transaction. A batch whose keys are there already (a partition resumed
// or read again) is written again by key instead.
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
	write := func(byKey bool) error {
		return w.s.inTx(ctx, func() error {
			if len(b.Rows) > 0 {
				var err error
				if byKey {
					err = w.s.upsert(ctx, b.Table, b.Rows)
				} else {
					err = w.s.appendRows(ctx, b.Table, catalog, schemaOf(b.Table.Namespace), b.Table.Namespace.Table, b.Rows)
				}
				if err != nil {
					return err
				}
			}
			return w.s.saveCheckpoint(ctx, b.Checkpoint)
		})
	}
	err := write(false)
	if err != nil && b.Table != nil && len(b.Table.PrimaryKey) > 0 && isConstraintErr(err) {
		w.s.h.byKey.Lock()
		err = write(true)
		w.s.h.byKey.Unlock()
	}
	if err != nil {
		return fmt.Errorf("duckdb file %s, %s: write %d rows: %w", w.s.path, where, len(b.Rows), err)
	}
	return nil
}

func (w *rowWriter) Close() error { return w.s.Close() }

// rollback ends a failed transaction, keeping the original error first.
func rollback(tx *sql.Tx, err error) error {
	if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
		return errors.Join(err, fmt.Errorf("rollback: %w", rerr))
	}
	return err
}
