package postgres

import (
	"strings"
	"unicode/utf8"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// Definitions from another engine's source (MySQL) come in the model's
// portable form (model/portable.go), without PostgreSQL SQL; they are made
// PostgreSQL's here, so the rest of the destination builds them as it
// builds a PostgreSQL source's. The identity of an AUTO_INCREMENT column
// needs nothing: it is a model.Identity.

// maxIdent is PostgreSQL's longest name, in bytes.
const maxIdent = 63

// portableIndexName is a portable index's name here. MySQL names indexes
// per table (a unique key on email is named email in every table that has
// one), PostgreSQL per schema: the table's name goes first, as PostgreSQL
// names its own (users_email).
func portableIndexName(table model.Namespace, name string) string {
	n := table.Table + "_" + name
	for len(n) > maxIdent {
		_, size := utf8.DecodeLastRuneInString(n)
		n = n[:len(n)-size]
	}
	return n
}

// portableIndexes is t with its portable indexes (no Native) named as
// portableIndexName names them, or t itself when it has none.
func portableIndexes(t *model.Table) *model.Table {
	var out *model.Table
	for i, ix := range t.Indexes {
		if ix.Native != "" || len(ix.Columns) == 0 {
			continue
		}
		if out == nil {
			cp := *t
			cp.Indexes = append([]model.Index(nil), t.Indexes...)
			out = &cp
		}
		out.Indexes[i].Name = portableIndexName(t.Namespace, ix.Name)
	}
	if out == nil {
		return t
	}
	return out
}

// portableConstraint gives a constraint in the portable form (no
// Definition, no Index) its PostgreSQL definitions; others are returned
// as they are.
func portableConstraint(k model.Constraint) model.Constraint {
	if k.Definition != "" || k.Index != "" || k.Unportable != "" {
		return k
	}
	cols := quoteIdents(k.Columns)
	switch k.Kind {
	case model.ConstraintUnique, model.ConstraintUniqueIndex:
		if len(cols) == 0 {
			return k
		}
		k.Name = portableIndexName(k.Table, k.Name)
		k.Keys = cols
		k.Index = "btree (" + strings.Join(cols, ", ") + ")"
		k.Definition = "UNIQUE (" + strings.Join(cols, ", ") + ")"
	case model.ConstraintForeignKey:
		k.Definition = "FOREIGN KEY (" + strings.Join(cols, ", ") + ") REFERENCES " + qualified(k.RefTable) + "(" + strings.Join(quoteIdents(k.RefColumns), ", ") + ")"
		if k.OnUpdate != "" && k.OnUpdate != "NO ACTION" {
			k.Definition += " ON UPDATE " + k.OnUpdate
		}
		if k.OnDelete != "" && k.OnDelete != "NO ACTION" {
			k.Definition += " ON DELETE " + k.OnDelete
		}
		k.RefNative = ""
	case model.ConstraintCheck:
		if k.PortableCheck != "" {
			k.Check = k.PortableCheck
			k.Definition = "CHECK (" + k.Check + ")"
		}
	}
	return k
}

func quoteIdents(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = quoteIdent(n)
	}
	return out
}

// constantSQL is a portable default in PostgreSQL's SQL: a literal the
// column's type reads (boolean reads '0' and '1'), or the current time.
func constantSQL(k model.Constant, kind model.Kind) string {
	if !k.Now {
		return quoteLiteral(k.Value)
	}
	switch kind {
	case model.KindDate:
		return "CURRENT_DATE"
	case model.KindTimestamp:
		return "LOCALTIMESTAMP"
	}
	return "CURRENT_TIMESTAMP"
}

// uncarriedConversions lists what t's source has that no portable form
// carries (a FULLTEXT index, a default calling a function): not created
// here, each with the source's definition to translate.
func uncarriedConversions(t *model.Table) []connector.Conversion {
	out := make([]connector.Conversion, 0, len(t.Uncarried))
	for _, u := range t.Uncarried {
		out = append(out, connector.Conversion{Table: t.Namespace, Column: u.Column, From: u.Source, To: "nothing: " + u.What + " is not created at the destination",
			Fix: "write it in PostgreSQL's SQL and run it at the destination (a trigger for an ON UPDATE, a gin index on to_tsvector for a FULLTEXT index)"})
	}
	return out
}
