package mysql

import (
	"context"
	"database/sql"
	"math"
	"strconv"
	"strings"

	"github.com/ferrydb/ferry/model"
)

// A MySQL table's definitions travel in the model's portable form
// (model/portable.go), since MySQL's SQL is not another engine's: an
// AUTO_INCREMENT column as an identity, constant defaults and the current
// time as a Constant, plain indexes by their columns. What has no portable
// form (FULLTEXT, SPATIAL and prefix indexes, a default calling a
// function, ON UPDATE CURRENT_TIMESTAMP) is a Table.Uncarried the
// destination lists.

// sourceIndex is an index of a source table as information_schema.STATISTICS
// has it.
type sourceIndex struct {
	name   string
	unique bool
	kind   string // BTREE, HASH, FULLTEXT, SPATIAL
	cols   []string
	// parts are the columns as MySQL spells them in the index: `c` or `c`(10).
	parts []string
	// portable: every part is a whole column (no prefix, no expression) of a
	// BTREE or HASH index.
	portable bool
	nullable bool
}

// readIndexes reads the indexes of the tables of the databases in args, in
// table and index order; the primary key's is named PRIMARY.
func (c *Conn) readIndexes(ctx context.Context, ph string, args []any) (map[model.Namespace][]*sourceIndex, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, NON_UNIQUE, COALESCE(INDEX_TYPE, ''),
			COLUMN_NAME, SUB_PART, COALESCE(NULLABLE, '')
		FROM information_schema.STATISTICS WHERE TABLE_SCHEMA IN (`+ph+`)
		ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[model.Namespace][]*sourceIndex{}
	var last *sourceIndex
	var lastNS model.Namespace
	for rows.Next() {
		var ns model.Namespace
		var name, kind, nullable string
		var nonUnique int
		var col, sub sql.NullString
		if err := rows.Scan(&ns.Schema, &ns.Table, &name, &nonUnique, &kind, &col, &sub, &nullable); err != nil {
			return nil, err
		}
		if last == nil || ns != lastNS || name != last.name {
			k := strings.ToUpper(kind)
			last = &sourceIndex{name: name, unique: nonUnique == 0, kind: k, portable: k == "BTREE" || k == "HASH"}
			out[ns] = append(out[ns], last)
			lastNS = ns
		}
		last.addPart(col, sub, nullable)
	}
	return out, rows.Err()
}

// addPart adds the index's next part: column col (NULL: an expression),
// of its first sub characters (NULL: whole), nullable "YES" or not.
func (ix *sourceIndex) addPart(col, sub sql.NullString, nullable string) {
	part := "(an expression)"
	if col.Valid {
		part = quoteIdent(col.String)
		ix.cols = append(ix.cols, col.String)
	} else {
		ix.portable = false
	}
	if sub.Valid {
		part += "(" + sub.String + ")"
		ix.portable = false
	}
	ix.parts = append(ix.parts, part)
	if nullable == "YES" {
		ix.nullable = true
	}
}

// sourceDDL is the index's definition in MySQL's SQL, for a message.
func (ix *sourceIndex) sourceDDL(ns model.Namespace) string {
	kind := ""
	switch {
	case ix.kind == "FULLTEXT" || ix.kind == "SPATIAL":
		kind = ix.kind + " "
	case ix.unique:
		kind = "UNIQUE "
	}
	return "CREATE " + kind + "INDEX " + quoteIdent(ix.name) + " ON " + quoteName(ns) + " (" + strings.Join(ix.parts, ", ") + ")"
}

// isKey tells whether ix is what the table's primary key is made of: the
// PRIMARY index, or the unique index readKeys took in its place.
func (ix *sourceIndex) isKey(t *model.Table) bool {
	return ix.name == "PRIMARY" || ix.unique && len(t.PrimaryKey) > 0 && strings.Join(ix.cols, "\x00") == strings.Join(t.PrimaryKey, "\x00")
}

// readDefinitions adds to a table its AUTO_INCREMENT column as an
// identity, its portable defaults, its secondary indexes (of indexes, its
// own), and lists what has no portable form.
func (c *Conn) readDefinitions(ti *tableInfo, indexes []*sourceIndex) {
	t := ti.table
	for i := range t.Columns {
		c.columnDefinition(t, i, ti.defaults[i], ti.extras[i])
		if col := t.Columns[i]; col.Generated {
			// Another engine holds the values the source computed.
			t.Uncarried = append(t.Uncarried, model.Uncarried{What: "the generation of column " + col.Name + " (it holds the source's values)", Column: col.Name,
				Source: quoteIdent(col.Name) + " " + col.Type.Native + " AS (" + ti.generation[i] + ") " + generatedKind(ti.extras[i])})
		}
	}
	for _, ix := range indexes {
		if ix.isKey(t) {
			continue
		}
		if !ix.portable {
			t.Uncarried = append(t.Uncarried, model.Uncarried{What: "index " + ix.name, Source: ix.sourceDDL(t.Namespace)})
			continue
		}
		t.Indexes = append(t.Indexes, model.Index{Name: ix.name, Unique: ix.unique, Columns: ix.cols})
	}
}

// columnDefinition sets column i's identity and portable default from
// information_schema's COLUMN_DEFAULT (def, nil for none) and EXTRA.
func (c *Conn) columnDefinition(t *model.Table, i int, def *string, extra string) {
	col := &t.Columns[i]
	ex := strings.ToLower(extra)
	if strings.Contains(ex, "auto_increment") {
		if id := autoIncrementIdentity(t.Namespace, col); id != nil {
			col.Identity = id
		} else {
			t.Uncarried = append(t.Uncarried, model.Uncarried{What: "AUTO_INCREMENT of column " + col.Name, Column: col.Name,
				Source: quoteIdent(col.Name) + " " + col.Type.Native + " AUTO_INCREMENT"})
		}
	}
	if strings.Contains(ex, "on update") {
		t.Uncarried = append(t.Uncarried, model.Uncarried{What: "ON UPDATE of column " + col.Name, Column: col.Name,
			Source: quoteIdent(col.Name) + " " + col.Type.Native + " " + onUpdateClause(extra)})
	}
	if def == nil || col.Generated {
		return
	}
	k, ok := c.constant(col.Type.Kind, *def, ex)
	if !ok {
		t.Uncarried = append(t.Uncarried, model.Uncarried{What: "default of column " + col.Name, Column: col.Name,
			Source: quoteIdent(col.Name) + " " + col.Type.Native + " DEFAULT " + *def})
		return
	}
	col.Constant = k
}

// generatedKind is STORED or VIRTUAL, as EXTRA says.
func generatedKind(extra string) string {
	if strings.Contains(strings.ToUpper(extra), "VIRTUAL") {
		return "VIRTUAL"
	}
	return "STORED"
}

// onUpdateClause is EXTRA's ON UPDATE clause ("on update current_timestamp()").
func onUpdateClause(extra string) string {
	i := strings.Index(strings.ToLower(extra), "on update")
	return strings.ToUpper(extra[i:i+len("on update")]) + extra[i+len("on update"):]
}

// autoIncrementIdentity is an AUTO_INCREMENT column as an identity BY
// DEFAULT whose sequence covers the column's range, or nil for a column
// whose canonical kind is not an integer (BIGINT UNSIGNED is a decimal).
func autoIncrementIdentity(ns model.Namespace, col *model.Column) *model.Identity {
	var max int64
	switch col.Type.Kind {
	case model.KindInt16:
		max = math.MaxInt16
	case model.KindInt32:
		max = math.MaxInt32
	case model.KindInt64:
		max = math.MaxInt64
	default:
		return nil
	}
	return &model.Identity{Sequence: model.SequenceDef{Name: autoIncrementSequence(ns, col.Name),
		Start: 1, Increment: 1, Min: 1, Max: max, Cache: 1}}
}

// autoIncrementSequence names the sequence an AUTO_INCREMENT column is at
// another engine: <table>_<column>_seq, as PostgreSQL names a serial's.
func autoIncrementSequence(ns model.Namespace, col string) model.Namespace {
	return model.Namespace{Schema: ns.Schema, Table: ns.Table + "_" + col + "_seq"}
}

// constant is a default as information_schema spells it in the portable
// form, or false when it has none: MariaDB quotes literals ('abc', 12,
// current_timestamp()), MySQL 8 shows them bare and marks expressions
// DEFAULT_GENERATED.
func (c *Conn) constant(kind model.Kind, def, extra string) (*model.Constant, bool) {
	now := func() (*model.Constant, bool) {
		switch kind {
		case model.KindTimestamp, model.KindTimestampTZ, model.KindDate:
			return &model.Constant{Now: true}, true
		}
		return nil, false
	}
	if isNow(def, kind) {
		return now()
	}
	value := def
	if c.server.mariadb {
		toks := tokenize(def)
		switch {
		case len(toks) == 1 && (toks[0].kind == tokString && strings.HasPrefix(def, "'") || toks[0].kind == tokNumber):
			value = toks[0].text
		case len(toks) == 2 && toks[0].text == "-" && toks[1].kind == tokNumber:
			value = "-" + toks[1].text
		default:
			return nil, false
		}
	} else if strings.Contains(extra, "default_generated") {
		return nil, false
	}
	switch kind {
	case model.KindBytes, model.KindUnknown:
		return nil, false // binary literals differ between engines
	case model.KindDate, model.KindTimestamp, model.KindTimestampTZ:
		if strings.HasPrefix(value, "0000-00-00") {
			return nil, false // a zero date has no other engine's form
		}
	case model.KindBool:
		if value != "0" && value != "1" {
			return nil, false
		}
	case model.KindInt16, model.KindInt32, model.KindInt64:
		if _, err := strconv.ParseInt(value, 10, 64); err != nil {
			return nil, false
		}
	case model.KindDecimal, model.KindFloat32, model.KindFloat64:
		if _, err := strconv.ParseFloat(value, 64); err != nil {
			return nil, false
		}
	}
	return &model.Constant{Value: value}, true
}

// isNow tells whether a default is the current time: CURRENT_TIMESTAMP,
// now() and their precisions, or CURDATE() for a date.
func isNow(def string, kind model.Kind) bool {
	d := strings.ToLower(strings.TrimSpace(def))
	if i := strings.IndexByte(d, '('); i >= 0 && strings.HasSuffix(d, ")") {
		if _, err := strconv.Atoi(d[i+1 : len(d)-1]); err == nil || i+2 == len(d) {
			d = d[:i]
		}
	}
	switch d {
	case "current_timestamp", "now", "localtimestamp", "localtime":
		return true
	case "curdate", "current_date":
		return kind == model.KindDate
	}
	return false
}
