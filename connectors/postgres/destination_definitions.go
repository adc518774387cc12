package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// The definitions a PostgreSQL source gives a table (model/schema.go) are
// created here with the table: its sequences before it, each column's
// default, identity or generation expression in it, a serial's OWNED BY
// after it. Definitions from another engine's source are empty.

// ownedSequence names a sequence a column of t owns (a serial's, an
// identity's) at the destination: in t's schema, so a table moved to
// another schema by --rename keeps its sequences beside it (the name
// SyncSequences sets, engine/sequences.go).
func ownedSequence(t *model.Table, seq model.SequenceDef) model.Namespace {
	return model.Namespace{Schema: t.Namespace.Schema, Table: seq.Name.Table}
}

// sequenceSQL is the CREATE SEQUENCE of seq named name, with the source's
// options; its value is set at cutover.
func sequenceSQL(name model.Namespace, seq model.SequenceDef) string {
	s := "CREATE SEQUENCE IF NOT EXISTS " + qualified(name)
	if seq.Type != "" {
		s += " AS " + seq.Type
	}
	return s + " " + sequenceOptions(seq)
}

func sequenceOptions(seq model.SequenceDef) string {
	cycle := " NO CYCLE"
	if seq.Cycle {
		cycle = " CYCLE"
	}
	return "INCREMENT BY " + strconv.FormatInt(seq.Increment, 10) +
		" MINVALUE " + strconv.FormatInt(seq.Min, 10) + " MAXVALUE " + strconv.FormatInt(seq.Max, 10) +
		" START WITH " + strconv.FormatInt(seq.Start, 10) + " CACHE " + strconv.FormatInt(seq.Cache, 10) + cycle
}

// sequencesSQL creates the sequences t's defaults use, before t.
func sequencesSQL(t *model.Table) string {
	var sb strings.Builder
	for _, seq := range t.Sequences {
		name := seq.Name
		if seq.OwnedBy != "" {
			name = ownedSequence(t, seq)
		}
		if name.Schema != "" && name.Schema != t.Namespace.Schema {
			sb.WriteString("CREATE SCHEMA IF NOT EXISTS " + quoteIdent(name.Schema) + ";\n")
		}
		sb.WriteString(sequenceSQL(name, seq) + ";\n")
		if seq.Comment != "" {
			sb.WriteString("COMMENT ON SEQUENCE " + qualified(name) + " IS " + quoteLiteral(seq.Comment) + ";\n")
		}
	}
	return sb.String()
}

// ownedBySQL ties each serial's sequence to its column, after t exists, so
// dropping the column drops it as at the source.
func ownedBySQL(t *model.Table) string {
	var sb strings.Builder
	for _, seq := range t.Sequences {
		if seq.OwnedBy != "" && t.ColumnIndex(seq.OwnedBy) >= 0 {
			sb.WriteString(";\nALTER SEQUENCE " + qualified(ownedSequence(t, seq)) + " OWNED BY " + qualified(t.Namespace) + "." + quoteIdent(seq.OwnedBy))
		}
	}
	return sb.String()
}

// columnDefault is col's default at the destination: the source's
// expression, with a serial's sequence renamed as ownedSequence moves it.
func columnDefault(t *model.Table, col model.Column) string {
	d := col.Default
	for _, seq := range t.Sequences {
		if seq.OwnedBy == "" {
			continue
		}
		if to := ownedSequence(t, seq); to != seq.Name {
			d = strings.ReplaceAll(d, quoteLiteral(showQualified(seq.Name.Schema, seq.Name.Table))+"::regclass",
				quoteLiteral(showQualified(to.Schema, to.Table))+"::regclass")
		}
	}
	return d
}

// columnDefinition is what follows a column's type in CREATE TABLE: its
// generation expression, default or identity. A default or expression
// calling a function this destination lacks (missing) is left out, and
// listed by unmadeDefinitions. An identity ALWAYS column outside the key
// is made BY DEFAULT: an UPDATE may set it only to DEFAULT, so ferry's
// changes could not carry its values.
func columnDefinition(t *model.Table, col model.Column, inKey bool, missing []string) string {
	switch {
	case col.Generated && col.Expression != "":
		if len(missing) > 0 {
			return ""
		}
		return " GENERATED ALWAYS AS (" + col.Expression + ") STORED"
	case col.Identity != nil:
		kind := "BY DEFAULT"
		if col.Identity.Always && inKey {
			kind = "ALWAYS"
		}
		seq := col.Identity.Sequence
		return " GENERATED " + kind + " AS IDENTITY (SEQUENCE NAME " + qualified(ownedSequence(t, seq)) + " " + sequenceOptions(seq) + ")"
	case col.Default != "" && len(missing) == 0:
		return " DEFAULT " + columnDefault(t, col)
	case col.Default == "" && col.Constant != nil:
		return " DEFAULT " + constantSQL(*col.Constant, col.Type.Kind)
	}
	return ""
}

// missingCollations lists the collations of t's columns this destination
// does not have (an ICU or a locale collation the other server lacks).
func (c *Conn) missingCollations(ctx context.Context, t *model.Table) (map[string]bool, error) {
	var names []string
	for _, col := range t.Columns {
		if col.Collation != "" {
			names = append(names, col.Collation)
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	rows, err := c.pool.Query(ctx, `SELECT u.name FROM unnest($1::text[]) AS u(name) WHERE NOT EXISTS (
			SELECT 1 FROM pg_collation co JOIN pg_namespace n ON n.oid = co.collnamespace
			WHERE quote_ident(n.nspname) || '.' || quote_ident(co.collname) = u.name
				AND co.collencoding IN (-1, pg_char_to_encoding(current_setting('server_encoding'))))`, names)
	if err != nil {
		return nil, c.classify(err, "look up collations of "+t.Namespace.String())
	}
	missing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, c.classify(err, "look up collations of "+t.Namespace.String())
	}
	out := map[string]bool{}
	for _, m := range missing {
		out[m] = true
	}
	return out, nil
}

// collate is the COLLATE clause of col, "" when it has none or this
// destination lacks its collation (listed by unmadeDefinitions).
func collate(col model.Column, missing map[string]bool) string {
	if col.Collation == "" || missing[col.Collation] {
		return ""
	}
	return " COLLATE " + col.Collation
}

// missingFunctions lists, per column of t, the functions its default or
// generation expression calls that this destination does not have. An
// extension's functions are not: the extension is created with t, or t is
// refused (createExtensions); nor are the source's functions created
// before t (createFunctions).
func (c *Conn) missingFunctions(ctx context.Context, t *model.Table) (map[string][]string, error) {
	created, err := c.aheadFunctions(ctx, t)
	if err != nil {
		return nil, err
	}
	if created == nil {
		created = map[string]bool{}
	}
	for _, x := range t.Extensions {
		for _, f := range x.Functions {
			created[f] = true
		}
	}
	var cols, funcs []string
	for _, col := range t.Columns {
		for _, f := range col.Uses {
			if !created[f] {
				cols, funcs = append(cols, col.Name), append(funcs, f)
			}
		}
	}
	if len(funcs) == 0 {
		return nil, nil
	}
	rows, err := c.pool.Query(ctx, `SELECT u.col, u.f FROM unnest($1::text[], $2::text[]) AS u(col, f) WHERE to_regprocedure(u.f) IS NULL`, cols, funcs)
	if err != nil {
		return nil, c.classify(err, "look up functions of "+t.Namespace.String())
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var col, f string
		if err := rows.Scan(&col, &f); err != nil {
			return nil, c.classify(err, "look up functions of "+t.Namespace.String())
		}
		out[col] = append(out[col], f)
	}
	return out, c.classify(rows.Err(), "look up functions of "+t.Namespace.String())
}

// unmadeDefinitions lists the columns of t, a table this destination does
// not have yet, that createTableSQL makes otherwise than the source has
// them, each with the statement that makes it the source's.
func (c *Conn) unmadeDefinitions(ctx context.Context, t *model.Table) ([]connector.Conversion, error) {
	missing, err := c.missingFunctions(ctx, t)
	if err != nil {
		return nil, err
	}
	collations, err := c.missingCollations(ctx, t)
	if err != nil {
		return nil, err
	}
	inKey := map[string]bool{}
	for _, k := range t.PrimaryKey {
		inKey[k] = true
	}
	table := showQualified(t.Namespace.Schema, t.Namespace.Table)
	var out []connector.Conversion
	for _, col := range t.Columns {
		typ := col.Type.Native
		if col.Type.User != nil {
			typ = col.Type.User.Name
		}
		name := showIdent(col.Name)
		conv := connector.Conversion{Table: t.Namespace, Column: col.Name}
		if collations[col.Collation] {
			out = append(out, connector.Conversion{Table: t.Namespace, Column: col.Name, From: typ + " COLLATE " + col.Collation, To: typ + " with the database's default collation",
				Fix: "create collation " + col.Collation + " at the destination, then ALTER TABLE " + table + " ALTER COLUMN " + name + " TYPE " + typ + " COLLATE " + col.Collation})
		}
		needs := "create " + strings.Join(missing[col.Name], ", ") + " at the destination, then "
		switch {
		case col.Identity != nil && col.Identity.Always && !inKey[col.Name]:
			conv.From, conv.To = typ+" GENERATED ALWAYS AS IDENTITY", typ+" GENERATED BY DEFAULT AS IDENTITY (ferry's changes must set its values until the cutover)"
			conv.Fix = "after the cutover: ALTER TABLE " + table + " ALTER COLUMN " + name + " SET GENERATED ALWAYS"
		case len(missing[col.Name]) == 0:
			continue
		case col.Generated:
			conv.From, conv.To = typ+" GENERATED ALWAYS AS ("+col.Expression+") STORED", typ+" holding the source's values"
			conv.Fix = needs + "ALTER TABLE " + table + " DROP COLUMN " + name + ", ADD COLUMN " + name + " " + typ + " GENERATED ALWAYS AS (" + col.Expression + ") STORED"
		default:
			conv.From, conv.To = typ+" DEFAULT "+col.Default, typ+" without a default"
			conv.Fix = needs + "ALTER TABLE " + table + " ALTER COLUMN " + name + " SET DEFAULT " + col.Default
		}
		out = append(out, conv)
	}
	return append(out, uncarriedConversions(t)...), nil
}

// userType is the name of the column's user-defined type (domain,
// composite) at this destination once it exists, created from the
// source's definition if it does not; "" when t has none.
func (c *Conn) userType(ctx context.Context, t model.Type) (string, error) {
	u := t.User
	if u == nil {
		return "", nil
	}
	var oid *uint32
	if err := c.pool.QueryRow(ctx, `SELECT to_regtype($1)::oid`, u.Name).Scan(&oid); err != nil {
		return "", c.classify(err, "look up type "+u.Name)
	}
	if oid != nil {
		return u.Name, nil
	}
	self := model.UserType{Name: strings.TrimSuffix(u.Name, "[]"), Create: u.Create, Comment: u.Comment}
	for _, r := range append(u.Requires, self) {
		if err := c.createUserType(ctx, r); err != nil {
			return "", err
		}
	}
	return u.Name, nil
}

// createUserType creates u, with the source's comment, unless a type of its
// name exists.
func (c *Conn) createUserType(ctx context.Context, u model.UserType) error {
	schema, _, ok := strings.Cut(u.Name, ".")
	create := "EXECUTE " + quoteLiteral(u.Create) + ";"
	if u.Comment != "" {
		create += " EXECUTE " + quoteLiteral("COMMENT ON TYPE "+u.Name+" IS "+quoteLiteral(u.Comment)) + ";"
	}
	ddl := "DO $ferry$ BEGIN IF to_regtype(" + quoteLiteral(u.Name) + ") IS NULL THEN " + create + " END IF; END $ferry$"
	if ok {
		ddl = "CREATE SCHEMA IF NOT EXISTS " + schema + ";\n" + ddl
	}
	if _, err := c.pool.Exec(ctx, ddl); err != nil && sqlState(err) != "42710" {
		return c.classify(fmt.Errorf("%s: %w", u.Create, err), "create type "+u.Name)
	}
	return nil
}

// unavailableExtensions lists the extensions t's columns use that this
// server neither has nor can create (pg_available_extensions).
func (c *Conn) unavailableExtensions(ctx context.Context, t *model.Table) ([]model.Extension, error) {
	if len(t.Extensions) == 0 {
		return nil, nil
	}
	names := make([]string, len(t.Extensions))
	for i, x := range t.Extensions {
		names[i] = x.Name
	}
	var absent []string
	if err := c.pool.QueryRow(ctx, `SELECT ARRAY(SELECT u.name FROM unnest($1::text[]) AS u(name)
			WHERE NOT EXISTS (SELECT 1 FROM pg_available_extensions a WHERE a.name = u.name))`, names).Scan(&absent); err != nil {
		return nil, c.classify(err, "look up extensions of "+t.Namespace.String())
	}
	var out []model.Extension
	for _, x := range t.Extensions {
		for _, a := range absent {
			if a == x.Name {
				out = append(out, x)
			}
		}
	}
	return out, nil
}

// refuseUnavailableExtensions is the configuration error naming the
// extensions t needs that this server cannot create, with what to run.
func (c *Conn) refuseUnavailableExtensions(ctx context.Context, t *model.Table) error {
	absent, err := c.unavailableExtensions(ctx, t)
	if err != nil || len(absent) == 0 {
		return err
	}
	var what, fix []string
	for _, x := range absent {
		what = append(what, x.Name+" (columns "+strings.Join(x.Columns, ", ")+")")
		fix = append(fix, extensionSQL(x))
	}
	return errs.BadConfig(fmt.Sprintf("table %s uses extension(s) %s that %s does not have available", t.Namespace, strings.Join(what, ", "), c.where()),
		"install the extension's package on the destination's server (PostgreSQL's contrib package for citext, hstore and the like), then run "+strings.Join(fix, "; ")+" there, or leave the table out")
}

func extensionSQL(x model.Extension) string {
	return "CREATE EXTENSION IF NOT EXISTS " + showIdent(x.Name) + " WITH SCHEMA " + showIdent(x.Schema)
}

// createExtensions creates the extensions t's columns use, in the
// source's schemas, before t's types are looked up.
func (c *Conn) createExtensions(ctx context.Context, t *model.Table) error {
	if err := c.refuseUnavailableExtensions(ctx, t); err != nil {
		return err
	}
	for _, x := range t.Extensions {
		ddl := "CREATE SCHEMA IF NOT EXISTS " + quoteIdent(x.Schema) + ";\n" + extensionSQL(x)
		if _, err := c.pool.Exec(ctx, ddl); err != nil {
			return c.classify(fmt.Errorf("%s: %w", extensionSQL(x), err), "create extension "+x.Name+" for table "+t.Namespace.String())
		}
	}
	return nil
}

// commentsSQL carries the source's comments on t and its columns.
func commentsSQL(t *model.Table) string {
	var sb strings.Builder
	if t.Comment != "" {
		sb.WriteString(";\nCOMMENT ON TABLE " + qualified(t.Namespace) + " IS " + quoteLiteral(t.Comment))
	}
	for _, col := range t.Columns {
		if col.Comment != "" {
			sb.WriteString(";\nCOMMENT ON COLUMN " + qualified(t.Namespace) + "." + quoteIdent(col.Name) + " IS " + quoteLiteral(col.Comment))
		}
	}
	return sb.String()
}
