package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

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
// generation expression, default or identity.
func columnDefinition(t *model.Table, col model.Column) string {
	switch {
	case col.Generated && col.Expression != "":
		return " GENERATED ALWAYS AS (" + col.Expression + ") STORED"
	case col.Identity != nil:
		kind := "BY DEFAULT"
		if col.Identity.Always {
			kind = "ALWAYS"
		}
		seq := col.Identity.Sequence
		return " GENERATED " + kind + " AS IDENTITY (SEQUENCE NAME " + qualified(ownedSequence(t, seq)) + " " + sequenceOptions(seq) + ")"
	case col.Default != "":
		return " DEFAULT " + columnDefault(t, col)
	}
	return ""
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
	schema, _, ok := strings.Cut(u.Name, ".")
	ddl := u.Create
	if ok {
		ddl = "CREATE SCHEMA IF NOT EXISTS " + schema + ";\n" + ddl
	}
	if _, err := c.pool.Exec(ctx, ddl); err != nil && sqlState(err) != "42710" {
		return "", c.classify(fmt.Errorf("create type %s (%s): %w", u.Name, u.Create, err), "create type "+u.Name)
	}
	return u.Name, nil
}
