package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// dstTable is a destination table as the catalog has it.
type dstTable struct {
	name string // quoted, qualified
	cols map[string]*dstCol
	pk   []string
}

type dstCol struct {
	name       string
	oid        uint32 // the column's type
	cast       string // the type without modifier, to cast text to
	generated  bool
	notNull    bool
	hasDefault bool
}

const metaDDL = `CREATE SCHEMA IF NOT EXISTS _ferry;
CREATE TABLE IF NOT EXISTS _ferry.checkpoints (
	flow text NOT NULL,
	key text NOT NULL,
	value text NOT NULL,
	PRIMARY KEY (flow, key)
);
CREATE TABLE IF NOT EXISTS _ferry.deferred_keys (
	relid oid PRIMARY KEY,
	table_name text NOT NULL,
	key_columns text[] NOT NULL
)`

// ensureMeta creates ferry's checkpoint table, and the table of tables
// waiting for their primary key (keys.go), once per connector.
func (c *Conn) ensureMeta(ctx context.Context) error {
	c.dstMu.Lock()
	defer c.dstMu.Unlock()
	if c.dstReady {
		return nil
	}
	if _, err := c.pool.Exec(ctx, metaDDL); err != nil {
		if sqlState(err) == "42501" {
			return &connector.ConfigError{Msg: fmt.Sprintf("cannot create schema _ferry at %s for ferry's checkpoints", c.where()),
				Fix: "GRANT CREATE ON DATABASE " + showIdent(c.cfg.ConnConfig.Database) + " TO " + showIdent(c.cfg.ConnConfig.User), Err: c.scrub.Err(err)}
		}
		return c.classify(err, "create _ferry.checkpoints")
	}
	c.dstReady = true
	c.dstTables = map[string]*dstTable{}
	return nil
}

// loadDst reads a destination table's columns and key; nil if it does not
// exist.
func loadDst(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, ns model.Namespace) (*dstTable, error) {
	name := qualified(ns)
	// Values are cast to the column's type by its plain name, without a
	// modifier: character and bit alone would mean length 1, and an explicit
	// cast to varchar(n) truncates where the assignment raises an error.
	rows, err := q.Query(ctx, `SELECT a.attname, a.atttypid, quote_ident(tn.nspname) || '.' || quote_ident(ty.typname), a.attgenerated <> '', a.attnotnull,
			a.atthasdef OR a.attidentity <> '',
			COALESCE(a.attnum = ANY(i.indkey), false), COALESCE(array_position(i.indkey::int2[], a.attnum), 0)
		FROM pg_attribute a
		JOIN pg_type ty ON ty.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = ty.typnamespace
		LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
		WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	dt := &dstTable{name: name, cols: map[string]*dstCol{}}
	pkPos := map[int]string{}
	for rows.Next() {
		var col dstCol
		var inPK bool
		var pos int
		if err := rows.Scan(&col.name, &col.oid, &col.cast, &col.generated, &col.notNull, &col.hasDefault, &inPK, &pos); err != nil {
			return nil, err
		}
		dt.cols[col.name] = &col
		if inPK {
			pkPos[pos] = col.name
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(dt.cols) == 0 {
		return nil, nil
	}
	positions := make([]int, 0, len(pkPos))
	for pos := range pkPos {
		positions = append(positions, pos)
	}
	sort.Ints(positions)
	for _, pos := range positions {
		dt.pk = append(dt.pk, pkPos[pos])
	}
	return dt, nil
}

// dst returns the cached catalog view of a destination table.
func (c *Conn) dst(ctx context.Context, ns model.Namespace) (*dstTable, error) {
	name := qualified(ns)
	c.dstMu.Lock()
	dt := c.dstTables[name]
	c.dstMu.Unlock()
	if dt != nil {
		return dt, nil
	}
	dt, err := loadDst(ctx, c.pool, ns)
	if err != nil {
		return nil, c.classify(err, "read table "+ns.String())
	}
	if dt == nil {
		return nil, fmt.Errorf("table %s does not exist at %s", ns, c.where())
	}
	c.dstMu.Lock()
	if c.dstTables == nil {
		c.dstTables = map[string]*dstTable{}
	}
	c.dstTables[name] = dt
	c.dstMu.Unlock()
	return dt, nil
}

func (c *Conn) forgetDst(ns model.Namespace) {
	c.dstMu.Lock()
	delete(c.dstTables, qualified(ns))
	delete(c.rawTargets, qualified(ns))
	c.dstMu.Unlock()
}

// CreateTables creates the schemas and tables that do not exist, with their
// primary keys and, for each column, the source's own PostgreSQL type when
// it is one this server has and it holds the same canonical kind, otherwise
// the canonical kind's type. Generated columns are plain columns holding the
// source's values. Existing tables are checked: every column must be there
// and the primary key must be the same. A table created for a copy whose
// key is not built yet (CreateTablesForCopy) is refused: changes cannot be
// applied to it.
func (c *Conn) CreateTables(ctx context.Context, tables []*model.Table) error {
	return c.createTables(ctx, tables, false)
}

func (c *Conn) createTables(ctx context.Context, tables []*model.Table, forCopy bool) error {
	if err := c.ensureMeta(ctx); err != nil {
		return err
	}
	for _, t := range tables {
		if err := t.Validate(); err != nil {
			return fmt.Errorf("%s: %w", c.where(), err)
		}
		if t.Namespace.Schema == "_ferry" {
			return connector.BadConfig(fmt.Sprintf("table %s: schema _ferry is ferry's own", t.Namespace), "rename the table (--rename)")
		}
		c.forgetDst(t.Namespace)
		existing, err := loadDst(ctx, c.pool, t.Namespace)
		if err != nil {
			return c.classify(err, "read table "+t.Namespace.String())
		}
		if existing != nil {
			deferred, err := deferredKey(ctx, c.pool, t.Namespace)
			if err != nil {
				return c.classify(err, "read table "+t.Namespace.String())
			}
			if deferred != nil {
				if !forCopy {
					return connector.BadConfig(fmt.Sprintf("table %s at %s was created by a ferry copy that has not finished: its primary key is built when the copy ends, and changes cannot be applied to it before", t.Namespace, c.where()), "run the flow that copies it to the end of its copy (ferry sync, or ferry run in scale-out), or drop the table")
				}
				existing.pk = deferred
			}
			if err := checkCompatible(t, existing); err != nil {
				return err
			}
			continue
		}
		deferKey := forCopy && len(t.PrimaryKey) > 0
		ddl, err := c.createTableSQL(ctx, t, deferKey)
		if err != nil {
			return err
		}
		if err := c.createTable(ctx, t, ddl, deferKey); err != nil {
			return c.classify(err, "create table "+t.Namespace.String())
		}
	}
	return nil
}

// createTable runs ddl and, for a table created without its key, records
// that in the same transaction.
func (c *Conn) createTable(ctx context.Context, t *model.Table, ddl string, deferred bool) error {
	if !deferred {
		_, err := c.pool.Exec(ctx, ddl)
		return err
	}
	tx, err := c.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, ddl); err != nil {
		return err
	}
	if err := deferKey(ctx, tx, t); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// createTableSQL is the DDL that creates t, with its primary key unless
// deferKey (the key's columns are NOT NULL either way, so adding the key
// later needs no scan for NULLs).
func (c *Conn) createTableSQL(ctx context.Context, t *model.Table, deferKey bool) (string, error) {
	var sb strings.Builder
	if t.Namespace.Schema != "" {
		sb.WriteString("CREATE SCHEMA IF NOT EXISTS " + quoteIdent(t.Namespace.Schema) + ";\n")
	}
	inKey := map[string]bool{}
	for _, k := range t.PrimaryKey {
		inKey[k] = true
	}
	defs := make([]string, 0, len(t.Columns)+1)
	for _, col := range t.Columns {
		typ, err := c.ddlType(ctx, col.Type, t.Namespace.Schema)
		if err != nil {
			return "", fmt.Errorf("table %s, column %s: %w", t.Namespace, col.Name, err)
		}
		d := quoteIdent(col.Name) + " " + typ
		if !col.Nullable || inKey[col.Name] {
			d += " NOT NULL"
		}
		defs = append(defs, d)
	}
	if len(t.PrimaryKey) > 0 && !deferKey {
		constraint, err := keyConstraint(ctx, c.pool, t)
		if err != nil {
			return "", c.classify(err, "create table "+t.Namespace.String())
		}
		defs = append(defs, constraint+"PRIMARY KEY ("+keyList(t)+")")
	}
	sb.WriteString("CREATE TABLE IF NOT EXISTS " + qualified(t.Namespace) + " (\n\t" + strings.Join(defs, ",\n\t") + "\n)")
	return sb.String(), nil
}

// CheckTables lists the columns holding a source type's text form whose
// type this server does not have (hstore or citext without the extension,
// another engine's type): they are created with the canonical kind's type.
func (c *Conn) CheckTables(ctx context.Context, tables []*model.Table) ([]connector.Conversion, error) {
	var out []connector.Conversion
	for _, t := range tables {
		for _, col := range t.Columns {
			if !col.Type.TextForm || col.Type.Native != "" && c.nativeFits(ctx, col.Type) {
				continue
			}
			to, err := canonicalDDL(col.Type)
			if err != nil {
				return nil, fmt.Errorf("table %s, column %s: %w", t.Namespace, col.Name, err)
			}
			out = append(out, connector.Conversion{Table: t.Namespace, Column: col.Name, From: col.Type.Native, To: to})
		}
	}
	return out, nil
}

// ddlType picks a column's type at this destination.
func (c *Conn) ddlType(ctx context.Context, t model.Type, schema string) (string, error) {
	if t.Kind == model.KindEnum || t.Kind == model.KindArray && t.Elem != nil && t.Elem.Kind == model.KindEnum {
		et := t
		if t.Kind == model.KindArray {
			et = *t.Elem
		}
		if et.Native != "" && len(et.EnumValues) > 0 && strings.Contains(et.Native, ".") {
			if err := c.ensureEnum(ctx, et); err != nil {
				return "", err
			}
			if t.Kind == model.KindArray {
				return et.Native + "[]", nil
			}
			return et.Native, nil
		}
	}
	if t.Native != "" && c.nativeFits(ctx, t) {
		return t.Native, nil
	}
	return canonicalDDL(t)
}

// nativeFits reports whether t.Native is PostgreSQL's own spelling of a
// type of this server that holds t's canonical kind, so the source's exact
// type can be used. Another engine's spelling that PostgreSQL happens to
// parse is not trusted: MySQL's char(10) strips trailing spaces where
// PostgreSQL's pads them, so it goes by kind (varchar(10)) instead.
func (c *Conn) nativeFits(ctx context.Context, t model.Type) bool {
	var oid *uint32
	var name *string
	if err := c.pool.QueryRow(ctx, `SELECT to_regtype($1)::oid, format_type(to_regtype($1), NULL)`, t.Native).Scan(&oid, &name); err != nil || oid == nil || name == nil {
		return false
	}
	if !pgSpelling(t.Native, *name) {
		return false
	}
	if err := c.types.load(ctx, c.pool, []uint32{*oid}); err != nil {
		return false
	}
	ct, err := c.types.mapType(*oid, -1, t.Native)
	if err != nil {
		return false
	}
	return sameKind(ct.typ, t)
}

// pgSpelling reports whether native is format_type's spelling of the type
// format_type names base (its spelling without a modifier): equal once the
// modifiers are removed ("time(3) without time zone", "numeric(12,2)[]"),
// or base followed by interval fields ("interval day to second(3)").
func pgSpelling(native, base string) bool {
	var b strings.Builder
	depth := 0
	for _, r := range native {
		switch {
		case r == '(':
			depth++
		case r == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	s := strings.Join(strings.Fields(b.String()), " ")
	return s == base || strings.HasPrefix(s, base+" ")
}

func sameKind(a, b model.Type) bool {
	if a.Kind != b.Kind {
		return false
	}
	if a.Kind == model.KindArray {
		return a.Elem != nil && b.Elem != nil && sameKind(*a.Elem, *b.Elem)
	}
	return true
}

// canonicalDDL maps a canonical type to PostgreSQL's.
func canonicalDDL(t model.Type) (string, error) {
	switch t.Kind {
	case model.KindBool:
		return "boolean", nil
	case model.KindInt16:
		return "smallint", nil
	case model.KindInt32:
		return "integer", nil
	case model.KindInt64:
		return "bigint", nil
	case model.KindDecimal:
		if t.Precision > 0 && t.Precision <= 1000 {
			return fmt.Sprintf("numeric(%d,%d)", t.Precision, t.Scale), nil
		}
		return "numeric", nil
	case model.KindFloat32:
		return "real", nil
	case model.KindFloat64:
		return "double precision", nil
	case model.KindText:
		if t.Length > 0 && t.Length <= 10485760 {
			return fmt.Sprintf("varchar(%d)", t.Length), nil
		}
		return "text", nil
	case model.KindEnum:
		return "text", nil
	case model.KindBytes:
		return "bytea", nil
	case model.KindJSON:
		return "jsonb", nil
	case model.KindUUID:
		return "uuid", nil
	case model.KindDate:
		return "date", nil
	case model.KindTime:
		return "time", nil
	case model.KindTimeTZ:
		return "timetz", nil
	case model.KindTimestamp:
		return "timestamp", nil
	case model.KindTimestampTZ:
		return "timestamptz", nil
	case model.KindInterval:
		return "interval", nil
	case model.KindInet:
		return "inet", nil
	case model.KindCIDR:
		return "cidr", nil
	case model.KindMACAddr:
		return "macaddr", nil
	case model.KindArray:
		if t.Elem == nil || t.Elem.Kind == model.KindArray {
			return "", fmt.Errorf("type %s has no PostgreSQL column type", t)
		}
		e, err := canonicalDDL(*t.Elem)
		if err != nil {
			return "", err
		}
		return e + "[]", nil
	}
	return "", fmt.Errorf("type %s has no PostgreSQL column type", t)
}

// ensureEnum creates an enum type named by t.Native with t's labels, or adds
// the labels an existing one lacks.
func (c *Conn) ensureEnum(ctx context.Context, t model.Type) error {
	var oid *uint32
	if err := c.pool.QueryRow(ctx, `SELECT to_regtype($1)::oid`, t.Native).Scan(&oid); err != nil {
		return c.classify(err, "look up type "+t.Native)
	}
	if oid == nil {
		schema, _, _ := strings.Cut(t.Native, ".")
		labels := make([]string, len(t.EnumValues))
		for i, l := range t.EnumValues {
			labels[i] = quoteLiteral(l)
		}
		ddl := "CREATE SCHEMA IF NOT EXISTS " + schema + "; CREATE TYPE " + t.Native + " AS ENUM (" + strings.Join(labels, ", ") + ")"
		if _, err := c.pool.Exec(ctx, ddl); err != nil && sqlState(err) != "42710" {
			return c.classify(err, "create enum type "+t.Native)
		}
		return nil
	}
	rows, err := c.pool.Query(ctx, `SELECT enumlabel FROM pg_enum WHERE enumtypid = $1`, *oid)
	if err != nil {
		return c.classify(err, "read enum type "+t.Native)
	}
	have := map[string]bool{}
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			rows.Close()
			return c.classify(err, "read enum type "+t.Native)
		}
		have[l] = true
	}
	rows.Close()
	for _, l := range t.EnumValues {
		if !have[l] {
			if _, err := c.pool.Exec(ctx, "ALTER TYPE "+t.Native+" ADD VALUE IF NOT EXISTS "+quoteLiteral(l)); err != nil {
				return c.classify(err, "add label to enum type "+t.Native)
			}
		}
	}
	return nil
}

// checkCompatible says whether ferry can write t into an existing table.
func checkCompatible(t *model.Table, dt *dstTable) error {
	var missing []string
	want := map[string]bool{}
	for _, col := range t.Columns {
		want[col.Name] = true
		if dt.cols[col.Name] == nil {
			missing = append(missing, col.Name)
		}
	}
	if len(missing) > 0 {
		return connector.BadConfig(fmt.Sprintf("table %s already exists without column(s) %s", t.Namespace, strings.Join(missing, ", ")), "drop the table at the destination, or add the columns")
	}
	var extra []string
	for name, col := range dt.cols {
		if !want[name] && col.notNull && !col.hasDefault && !col.generated {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		return connector.BadConfig(fmt.Sprintf("table %s already exists with NOT NULL column(s) %s that ferry does not write", t.Namespace, strings.Join(extra, ", ")), "drop the table, or give the column(s) a default")
	}
	if len(t.PrimaryKey) > 0 && strings.Join(dt.pk, "\x00") != strings.Join(t.PrimaryKey, "\x00") {
		return connector.BadConfig(fmt.Sprintf("table %s already exists with primary key (%s), but ferry writes by key (%s)", t.Namespace, strings.Join(dt.pk, ", "), strings.Join(t.PrimaryKey, ", ")), "drop the table, or give it the source's primary key")
	}
	return nil
}

// OpenWriter returns a writer on its own connection.
func (c *Conn) OpenWriter(ctx context.Context) (connector.RowWriter, error) {
	if err := c.ensureMeta(ctx); err != nil {
		return nil, err
	}
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return nil, c.classify(err, "open a writer")
	}
	return &rowWriter{c: c, conn: conn}, nil
}

type rowWriter struct {
	c    *Conn
	conn *pgxpool.Conn
	// upsertPart is a partition whose rows met existing ones: its next
	// batches go straight to the upsert path.
	upsertPart string
	buf        []byte
	field      []byte
}

func (w *rowWriter) Close() error {
	if w.conn != nil {
		w.conn.Release()
		w.conn = nil
	}
	return nil
}

// WriteRows writes the batch with COPY and stores its checkpoint in the same
// transaction. A batch whose rows are already there (a retried or resumed
// partition) fails COPY with a unique violation; it is then written again
// as an upsert by primary key, so writing a batch twice leaves one copy. A
// table without a primary key relies on the checkpoint alone: a partition
// resumes after its last committed batch, so no row is written twice.
func (w *rowWriter) WriteRows(ctx context.Context, b *model.RowBatch) error {
	if b == nil || (b.Len() == 0 && b.Checkpoint == nil) {
		return nil
	}
	where := "partition " + b.Partition
	if b.Table != nil {
		where = fmt.Sprintf("table %s, partition %s", b.Table.Namespace, b.Partition)
	}
	if b.Len() == 0 {
		return w.c.inTx(ctx, w.conn.Conn(), func(tx pgx.Tx) error { return saveCheckpoint(ctx, tx, b.Checkpoint) }, where)
	}
	if b.Table == nil {
		return fmt.Errorf("%s: batch of %d rows without a table", where, b.Len())
	}
	dt, err := w.c.dst(ctx, b.Table.Namespace)
	if err != nil {
		return err
	}
	if b.Raw != nil {
		return w.writeRaw(ctx, b, dt, where)
	}
	cols, err := writableColumns(b.Table, dt)
	if err != nil {
		return err
	}
	if w.upsertPart != b.Partition {
		w.upsertPart = ""
		err := w.copyRows(ctx, b, dt, cols)
		if err == nil {
			return nil
		}
		if sqlState(err) != "23505" {
			return w.c.classify(err, where)
		}
		w.upsertPart = b.Partition
	}
	return w.c.inTx(ctx, w.conn.Conn(), func(tx pgx.Tx) error {
		if err := upsertRows(ctx, tx, b.Table, dt, cols, b.Rows); err != nil {
			return err
		}
		return saveCheckpoint(ctx, tx, b.Checkpoint)
	}, where)
}

// writeRaw writes a pass-through batch like WriteRows writes decoded ones:
// COPY, and on a unique violation (rows already there) an upsert by key
// through a staging table, for this batch and the partition's next ones.
func (w *rowWriter) writeRaw(ctx context.Context, b *model.RowBatch, dt *dstTable, where string) error {
	rt, err := w.c.rawTarget(ctx, b.Table, b.Raw.Format)
	if err != nil {
		return err
	}
	if rt == nil {
		return fmt.Errorf("%s: raw batch in a format the table does not accept (%s)", where, b.Raw.Format.Name)
	}
	if w.upsertPart != b.Partition {
		w.upsertPart = ""
		err := w.copyRaw(ctx, b, dt, rt, false)
		if err == nil {
			return nil
		}
		if sqlState(err) != "23505" || len(b.Table.PrimaryKey) == 0 {
			return w.c.classify(err, where)
		}
		w.upsertPart = b.Partition
	}
	if err := w.copyRaw(ctx, b, dt, rt, true); err != nil {
		return w.c.classify(err, where)
	}
	return nil
}

// copyRows runs COPY FROM STDIN and the checkpoint in one transaction: in
// binary format when ferry has a binary encoder for every column (the
// server then parses nothing), in text format otherwise.
func (w *rowWriter) copyRows(ctx context.Context, b *model.RowBatch, dt *dstTable, cols []int) error {
	encs := make([]binEncoder, len(cols))
	binaryOK := true
	for j, i := range cols {
		if encs[j] = binEncoderFor(dt.cols[b.Table.Columns[i].Name].oid, b.Table.Columns[i].Type); encs[j] == nil {
			binaryOK = false
		}
	}
	var err error
	buf := w.buf[:0]
	if binaryOK {
		buf = append(buf, "PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00"...)
	}
	for _, row := range b.Rows {
		if len(row) != len(b.Table.Columns) {
			return fmt.Errorf("table %s: row has %d values for %d columns", b.Table.Namespace, len(row), len(b.Table.Columns))
		}
		if binaryOK {
			buf = append(buf, byte(len(cols)>>8), byte(len(cols)))
		}
		for j, i := range cols {
			v := row[i]
			if model.IsUnchanged(v) {
				return fmt.Errorf("table %s, column %s: a copied row cannot leave a value unchanged", b.Table.Namespace, b.Table.Columns[i].Name)
			}
			if binaryOK {
				if v == nil {
					buf = append(buf, 0xff, 0xff, 0xff, 0xff)
				} else if buf, err = encs[j](buf, v); err != nil {
					return fmt.Errorf("table %s, column %s, key %s: %w", b.Table.Namespace, b.Table.Columns[i].Name, keyText(b.Table, row), err)
				}
				continue
			}
			if j > 0 {
				buf = append(buf, '\t')
			}
			if v == nil {
				buf = append(buf, `\N`...)
				continue
			}
			w.field, err = appendText(w.field[:0], b.Table.Columns[i].Type, v)
			if err != nil {
				return fmt.Errorf("table %s, column %s, key %s: %w", b.Table.Namespace, b.Table.Columns[i].Name, keyText(b.Table, row), err)
			}
			buf = appendCopyEscaped(buf, w.field)
		}
		if !binaryOK {
			buf = append(buf, '\n')
		}
	}
	format := ""
	if binaryOK {
		buf = append(buf, 0xff, 0xff)
		format = " (FORMAT binary)"
	}
	if cap(buf) <= 2*maxBatchBytes {
		w.buf = buf // reused by the next batch, unless an outsized one
	}
	names := make([]string, len(cols))
	for j, i := range cols {
		names[j] = quoteIdent(b.Table.Columns[i].Name)
	}
	stmt := "COPY " + dt.name + " (" + strings.Join(names, ", ") + ") FROM STDIN" + format
	conn := w.conn.Conn()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	if _, err := conn.PgConn().CopyFrom(ctx, bytes.NewReader(buf), stmt); err != nil {
		tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // the COPY error is the one to report
		return err
	}
	if err := saveCheckpoint(ctx, tx, b.Checkpoint); err != nil {
		tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // reporting err
		return err
	}
	return tx.Commit(ctx)
}

// appendCopyEscaped appends a field in COPY's text format.
func appendCopyEscaped(buf, s []byte) []byte {
	for _, c := range s {
		switch c {
		case '\\':
			buf = append(buf, '\\', '\\')
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		default:
			buf = append(buf, c)
		}
	}
	return buf
}

// writableColumns are the positions of t's columns ferry writes: all but
// those the destination generates itself.
func writableColumns(t *model.Table, dt *dstTable) ([]int, error) {
	cols := make([]int, 0, len(t.Columns))
	for i, col := range t.Columns {
		dc := dt.cols[col.Name]
		if dc == nil {
			return nil, fmt.Errorf("table %s has no column %s at the destination", t.Namespace, col.Name)
		}
		if !dc.generated {
			cols = append(cols, i)
		}
	}
	return cols, nil
}

// inTx runs fn in a transaction on conn.
func (c *Conn) inTx(ctx context.Context, conn *pgx.Conn, fn func(pgx.Tx) error, where string) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return c.classify(err, where)
	}
	if err := fn(tx); err != nil {
		tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // reporting err
		var ce *connector.ConfigError
		if errors.As(err, &ce) || sqlState(err) == "" {
			err = fmt.Errorf("%s: %w", where, c.scrub.Err(err))
			if lostConnection(err) {
				return connector.Unavailable(err)
			}
			return err
		}
		return c.classify(err, where)
	}
	if err := tx.Commit(ctx); err != nil {
		return c.classify(err, where)
	}
	return nil
}

func saveCheckpoint(ctx context.Context, tx pgx.Tx, cp *model.Checkpoint) error {
	if cp == nil {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO _ferry.checkpoints (flow, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (flow, key) DO UPDATE SET value = EXCLUDED.value`, cp.Flow, cp.Key, cp.Value)
	if err != nil {
		return fmt.Errorf("save checkpoint %s of flow %s: %w", cp.Key, cp.Flow, err)
	}
	return nil
}

// FinishTable adds a copied table's primary key if it was deferred
// (keys.go), builds its secondary indexes and analyzes it, so the planner
// knows its size before changes are applied to it. Each step is skipped
// when already done, so finishing a table again is harmless.
func (c *Conn) FinishTable(ctx context.Context, t *model.Table) error {
	if err := c.ensureMeta(ctx); err != nil {
		return err
	}
	err := c.finishKey(ctx, t)
	// The copy's writers cached the table without its key; the appliers
	// that come next must see it.
	c.forgetDst(t.Namespace)
	if err != nil {
		return err
	}
	if err := c.buildIndexes(ctx, t); err != nil {
		return err
	}
	if _, err := c.pool.Exec(ctx, "ANALYZE "+qualified(t.Namespace)); err != nil {
		return c.classify(err, "analyze "+t.Namespace.String())
	}
	return nil
}
