package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// CreateTables creates the schemas and tables that do not exist, with their
// primary keys and, for each column, the source's own PostgreSQL type when
// it is one this server has and it holds the same canonical kind, otherwise
// the canonical kind's type; from a PostgreSQL source, with the source's
// definitions (destination_definitions.go). Existing tables are checked: every column must be there
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
			return errs.BadConfig(fmt.Sprintf("table %s: schema _ferry is ferry's own", t.Namespace), "rename the table (--rename)")
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
					return errs.BadConfig(fmt.Sprintf("table %s at %s was created by a ferry copy that has not finished: its primary key is built when the copy ends, and changes cannot be applied to it before", t.Namespace, c.where()), "run the flow that copies it to the end of its copy (ferry sync, or ferry run in scale-out), or drop the table")
				}
				existing.pk = deferred
			}
			if err := checkCompatible(t, existing); err != nil {
				return err
			}
			continue
		}
		if err := c.createExtensions(ctx, t); err != nil {
			return err
		}
		if err := c.createFunctions(ctx, t); err != nil {
			return err
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
// that in the same transaction; a partitioned table created with its key
// has its partitions' key indexes named as the source's there.
func (c *Conn) createTable(ctx context.Context, t *model.Table, ddl string, deferred bool) error {
	if !deferred && len(t.PrimaryKeyPartitions) == 0 {
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
	if deferred {
		err = deferKey(ctx, tx, t)
	} else {
		err = namePartitionKeys(ctx, tx, t)
	}
	if err != nil {
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
	sb.WriteString(sequencesSQL(t))
	missing, err := c.missingFunctions(ctx, t)
	if err != nil {
		return "", err
	}
	collations, err := c.missingCollations(ctx, t)
	if err != nil {
		return "", err
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
		d := quoteIdent(col.Name) + " " + typ + collate(col, collations) + columnDefinition(t, col, inKey[col.Name], missing[col.Name])
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
	sb.WriteString("CREATE TABLE IF NOT EXISTS " + qualified(t.Namespace) + " (\n\t" + strings.Join(defs, ",\n\t") + "\n)" +
		partitionBy(t.Partitioning) + ownedBySQL(t) + commentsSQL(t) + partitionsSQL(t.Namespace, t.Namespace, t.Partitioning))
	return sb.String(), nil
}

// CheckTables refuses existing tables whose triggers or foreign keys would
// fire for ferry's rows when the role may not keep them from firing
// (checkFiring), lists the columns of tables to create that are not made as
// the source has them (unmadeDefinitions), and the columns holding a source type's text form whose
// type this server does not have (another engine's type): they are created
// with the canonical kind's type. A table to create using an extension this
// server does not have available is refused (refuseUnavailableExtensions).
func (c *Conn) CheckTables(ctx context.Context, tables []*model.Table) ([]connector.Conversion, error) {
	if err := c.checkFiring(ctx, tables); err != nil {
		return nil, err
	}
	var out []connector.Conversion
	for _, t := range tables {
		existing, err := loadDst(ctx, c.pool, t.Namespace)
		if err != nil {
			return nil, c.classify(err, "read table "+t.Namespace.String())
		}
		// Columns of an extension's type keep it: the extension is created
		// with the table, or the table is refused.
		fromExtension := map[string]bool{}
		if existing == nil {
			if err := c.refuseUnavailableExtensions(ctx, t); err != nil {
				return nil, err
			}
			for _, x := range t.Extensions {
				for _, col := range x.Columns {
					fromExtension[col] = true
				}
			}
			unmade, err := c.unmadeDefinitions(ctx, t)
			if err != nil {
				return nil, err
			}
			out = append(out, unmade...)
		}
		for _, col := range t.Columns {
			if !col.Type.TextForm || col.Type.User != nil || fromExtension[col.Name] || col.Type.Native != "" && c.nativeFits(ctx, col.Type) {
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
			// First: a domain over the enum (t.User) needs it.
			if err := c.ensureEnum(ctx, et); err != nil {
				return "", err
			}
			if name, err := c.userType(ctx, t); name != "" || err != nil {
				return name, err
			}
			if t.Kind == model.KindArray {
				return et.Native + "[]", nil
			}
			return et.Native, nil
		}
	}
	if name, err := c.userType(ctx, t); name != "" || err != nil {
		return name, err
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
		return errs.BadConfig(fmt.Sprintf("table %s already exists without column(s) %s", t.Namespace, strings.Join(missing, ", ")), "drop the table at the destination, or add the columns")
	}
	var extra []string
	for name, col := range dt.cols {
		if !want[name] && col.notNull && !col.hasDefault && !col.generated {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		return errs.BadConfig(fmt.Sprintf("table %s already exists with NOT NULL column(s) %s that ferry does not write", t.Namespace, strings.Join(extra, ", ")), "drop the table, or give the column(s) a default")
	}
	if len(t.PrimaryKey) > 0 && strings.Join(dt.pk, "\x00") != strings.Join(t.PrimaryKey, "\x00") {
		return errs.BadConfig(fmt.Sprintf("table %s already exists with primary key (%s), but ferry writes by key (%s)", t.Namespace, strings.Join(dt.pk, ", "), strings.Join(t.PrimaryKey, ", ")), "drop the table, or give it the source's primary key")
	}
	return nil
}
