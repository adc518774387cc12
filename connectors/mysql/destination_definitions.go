package mysql

import (
	"strconv"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// A table from another engine's source (PostgreSQL) is created with what
// MySQL can be given of its definitions (model/portable.go): its identity
// or serial key as AUTO_INCREMENT (its next value is set at cutover,
// SetSequences), the portable defaults, its plain secondary indexes
// (FinishTable) and its unique keys, foreign keys and portable checks (at
// cutover, BuildConstraints). The rest is listed by CheckTables with the
// statement to run.

// autoIncrementColumn is the column of t made AUTO_INCREMENT here: MySQL
// allows one per table, on an integer column that leads an index, so the
// first column of the primary key when it is an identity or a serial.
func autoIncrementColumn(t *model.Table) string {
	if len(t.PrimaryKey) == 0 {
		return ""
	}
	i := t.ColumnIndex(t.PrimaryKey[0])
	if i < 0 || !t.Columns[i].Type.Kind.IsInteger() || !numbered(t, t.Columns[i]) {
		return ""
	}
	return t.Columns[i].Name
}

// numbered tells whether the source numbers col itself: an identity, a
// MySQL AUTO_INCREMENT, or a serial (a default of the sequence it owns).
func numbered(t *model.Table, col model.Column) bool {
	if col.Identity != nil {
		return true
	}
	for _, s := range t.Sequences {
		if s.OwnedBy == col.Name && strings.HasPrefix(col.Default, "nextval(") {
			return true
		}
	}
	return false
}

// definitionSQL is what follows a column's type and nullability in CREATE
// TABLE: AUTO_INCREMENT, or a portable default.
func definitionSQL(t *model.Table, col model.Column, ct colType) string {
	if col.Name == autoIncrementColumn(t) {
		return " AUTO_INCREMENT"
	}
	if col.Constant == nil {
		return ""
	}
	return " DEFAULT " + constantSQL(*col.Constant, col.Type.Kind, ct)
}

// constantSQL is a portable default in MySQL's SQL. TEXT, BLOB and JSON
// columns take only an expression as default, hence the parentheses.
func constantSQL(k model.Constant, kind model.Kind, ct colType) string {
	if k.Now {
		if kind == model.KindDate {
			return "(CURRENT_DATE)"
		}
		if n := ct.fsp(); n > 0 {
			return "CURRENT_TIMESTAMP(" + strconv.Itoa(n) + ")"
		}
		return "CURRENT_TIMESTAMP"
	}
	if ct.isLOB() {
		return "(" + quoteString(k.Value) + ")"
	}
	return quoteString(k.Value)
}

// indexParts are the columns of ix as this destination indexes them, or
// why it cannot: an expression index, a column of a type MySQL indexes
// only by a prefix (TEXT, BLOB, JSON), or a key longer than InnoDB's 3072
// bytes.
func indexParts(p plannedTable, ix model.Index) ([]string, string) {
	if len(ix.Columns) == 0 {
		return nil, "it indexes expressions"
	}
	var parts []string
	used := 0
	for _, name := range ix.Columns {
		i := p.t.ColumnIndex(name)
		if i < 0 {
			return nil, "column " + name + " is not in the table"
		}
		ct := p.types[i]
		if ct.isLOB() {
			return nil, "column " + name + " is " + ct.String() + ", which MySQL indexes only by a prefix"
		}
		used += keyBytes(ct)
		parts = append(parts, quoteIdent(name))
	}
	if used > maxKeyBytes {
		return nil, "its key is longer than InnoDB's 3072 bytes"
	}
	return parts, ""
}

// indexSource is how the source defines ix, for messages.
func indexSource(ix model.Index) string {
	if ix.Native != "" {
		return "index " + ix.Name + " (" + ix.Native + ")"
	}
	return "index " + ix.Name + " (" + strings.Join(ix.Columns, ", ") + ")"
}

// unmadeDefinitions lists what of p's source definitions this destination
// does not create, each with the statement that would.
func unmadeDefinitions(p plannedTable) []connector.Conversion {
	t := p.t
	table := quoteName(p.name)
	auto := autoIncrementColumn(t)
	var out []connector.Conversion
	for i, col := range t.Columns {
		typ := p.types[i].String()
		conv := connector.Conversion{Table: t.Namespace, Column: col.Name}
		switch {
		case numbered(t, col) && col.Name != auto:
			conv.From, conv.To = typ+" numbered by the source (identity, serial)", typ+" without AUTO_INCREMENT (MySQL allows it on the primary key's first column only)"
			conv.Fix = "ALTER TABLE " + table + " MODIFY " + quoteIdent(col.Name) + " " + typ + " NOT NULL AUTO_INCREMENT, ADD KEY (" + quoteIdent(col.Name) + ")"
		case col.Generated && col.Expression != "":
			conv.From, conv.To = typ+" GENERATED ALWAYS AS ("+col.Expression+")", typ+" holding the source's values"
			conv.Fix = "ALTER TABLE " + table + " MODIFY " + quoteIdent(col.Name) + " " + typ + " AS (<the expression in MySQL's SQL>) STORED"
		case col.Default != "" && !numbered(t, col) && col.Constant == nil:
			conv.From, conv.To = typ+" DEFAULT "+col.Default, typ+" without a default"
			conv.Fix = "ALTER TABLE " + table + " ALTER COLUMN " + quoteIdent(col.Name) + " SET DEFAULT <the default in MySQL's SQL>"
		default:
			continue
		}
		out = append(out, conv)
	}
	for _, ix := range t.Indexes {
		_, why := indexParts(p, ix)
		switch {
		case why == "":
		case len(ix.Columns) == 0:
			out = append(out, connector.Conversion{Table: t.Namespace, From: indexSource(ix), To: "nothing (" + why + ")",
				Fix: "ALTER TABLE " + table + " ADD COLUMN <name> <type> AS (<the expression in MySQL's SQL>) STORED, ADD INDEX " + quoteIdent(ix.Name) + " (<name>)"})
		default:
			out = append(out, connector.Conversion{Table: t.Namespace, From: indexSource(ix), To: "nothing (" + why + ")",
				Fix: "CREATE INDEX " + quoteIdent(ix.Name) + " ON " + table + " (<its columns, TEXT and BLOB ones with a prefix length: col(255)>)"})
		}
	}
	for _, u := range t.Uncarried {
		out = append(out, connector.Conversion{Table: t.Namespace, Column: u.Column, From: u.Source, To: "nothing: " + u.What + " is not created at the destination",
			Fix: "write it in MySQL's SQL and run it at the destination"})
	}
	return out
}
