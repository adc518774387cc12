package mysql

import (
	"strings"

	"github.com/ferrydb/ferry/model"
)

// stmtKind is what a binlog QUERY event means for a flow.
type stmtKind int

const (
	// stmtOther needs nothing: SET, GRANT, CREATE INDEX, DDL on other objects.
	stmtOther stmtKind = iota
	stmtBegin
	stmtCommit // COMMIT, or a ROLLBACK of what non-transactional tables kept
	// stmtAlter is an ALTER TABLE whose column changes the stream follows
	// (statement.ops), possibly with changes that leave rows alone.
	stmtAlter
	// stmtHarmless is DDL on a table that changes no row nor column.
	stmtHarmless
	// stmtTruncate empties the named table.
	stmtTruncate
	// stmtRenameTables renames tables (statement.renames, in order).
	stmtRenameTables
	// stmtCreateTable creates the named table (statement.create says how).
	stmtCreateTable
	// stmtDropTables drops the named tables, and every table of the named
	// databases.
	stmtDropTables
	// stmtSchemaChange is any other DDL on the named tables or databases;
	// statement.reason says why the stream cannot follow it, when known.
	stmtSchemaChange
	// stmtDML is a statement-based row change.
	stmtDML
)

// statement is a classified QUERY event.
type statement struct {
	kind   stmtKind
	tables []model.Namespace
	// databases are whole databases the statement changes (DROP DATABASE).
	databases []string
	// ops are an ALTER TABLE's column changes, in statement order.
	ops []alterOp
	// renames are RENAME TABLE's pairs, in order.
	renames [][2]model.Namespace
	// create is a CREATE TABLE's form.
	create *createTable
	reason string
}

// createTable is what a CREATE TABLE statement says of the new table.
type createTable struct {
	orReplace bool
	// like is the table of CREATE TABLE ... LIKE, nil for another form.
	like *model.Namespace
	// body is the statement after the table's name: its column and index
	// definitions and options, as written.
	body string
}

// classify reads a QUERY event's statement, with db the session's current
// database. It understands enough of MySQL's grammar to name the tables a
// statement changes and to tell an ADD COLUMN from anything else; what it
// cannot read it reports as stmtOther, and the binlog's row events still
// carry every row change.
func classify(query, db string) statement {
	p := &ddlParser{toks: tokenize(query), db: db}
	switch {
	case p.word("BEGIN"), p.words("START", "TRANSACTION"), p.words("XA", "START"), p.words("XA", "BEGIN"):
		return statement{kind: stmtBegin}
	case p.word("COMMIT"), p.words("XA", "COMMIT"):
		return statement{kind: stmtCommit}
	case p.word("ROLLBACK"):
		if p.word("TO") || p.words("WORK", "TO") {
			return statement{kind: stmtOther} // to a savepoint
		}
		return statement{kind: stmtCommit}
	case p.word("ALTER"):
		return p.alter()
	case p.word("DROP"):
		return p.drop()
	case p.word("RENAME"):
		if !p.word("TABLE") && !p.word("TABLES") {
			return statement{kind: stmtOther}
		}
		st := statement{kind: stmtRenameTables}
		for {
			from, ok1 := p.name()
			to := p.word("TO")
			into, ok2 := p.name()
			if !ok1 || !to || !ok2 {
				// Unreadable: every name seen is changed, and stops the flow.
				st.kind = stmtSchemaChange
				if ok1 {
					st.tables = append(st.tables, from)
				}
				if ok2 {
					st.tables = append(st.tables, into)
				}
				break
			}
			st.tables = append(st.tables, from, into)
			st.renames = append(st.renames, [2]model.Namespace{from, into})
			if !p.punct(",") {
				break
			}
		}
		return st
	case p.word("TRUNCATE"):
		p.word("TABLE")
		if n, ok := p.name(); ok {
			return statement{kind: stmtTruncate, tables: []model.Namespace{n}}
		}
	case p.word("CREATE"):
		ct := &createTable{orReplace: p.words("OR", "REPLACE")}
		if p.word("TEMPORARY") {
			// A session's own table, which a ROW binlog does not log.
			return statement{kind: stmtOther}
		}
		if p.word("TABLE") {
			p.words("IF", "NOT", "EXISTS")
			if n, ok := p.name(); ok {
				ct.body = query[p.toks[p.i-1].end:]
				paren := p.punct("(")
				if p.word("LIKE") {
					like, ok := p.name()
					if !ok || paren && !p.punct(")") || p.i < len(p.toks) {
						return statement{kind: stmtSchemaChange, tables: []model.Namespace{n}, reason: "a CREATE TABLE ... LIKE ferry cannot read"}
					}
					ct.like = &like
				}
				return statement{kind: stmtCreateTable, tables: []model.Namespace{n}, create: ct}
			}
		}
	case p.word("INSERT"), p.word("REPLACE"):
		p.skipWords("LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "IGNORE")
		p.word("INTO")
		if n, ok := p.name(); ok {
			return statement{kind: stmtDML, tables: []model.Namespace{n}}
		}
		return statement{kind: stmtDML}
	case p.word("UPDATE"), p.word("DELETE"):
		return statement{kind: stmtDML, tables: p.tableRefs()}
	case p.word("LOAD"):
		for p.i < len(p.toks) {
			if p.words("INTO", "TABLE") {
				if n, ok := p.name(); ok {
					return statement{kind: stmtDML, tables: []model.Namespace{n}}
				}
				break
			}
			p.i++
		}
		return statement{kind: stmtDML}
	}
	return statement{kind: stmtOther}
}

func (p *ddlParser) alter() statement {
	p.skipWords("ONLINE", "OFFLINE", "IGNORE")
	if !p.word("TABLE") {
		return statement{kind: stmtOther} // a database, view, user, event...
	}
	p.words("IF", "EXISTS")
	n, ok := p.name()
	if !ok {
		return statement{kind: stmtOther}
	}
	st := statement{tables: []model.Namespace{n}, kind: stmtHarmless}
	ops, err := alterSpecs(p.specs())
	if err != nil {
		st.kind, st.reason = stmtSchemaChange, err.Error()
		return st
	}
	for _, op := range ops {
		if op.kind != alterHarmless {
			st.kind = stmtAlter
			st.ops = append(st.ops, op)
		}
	}
	return st
}

func (p *ddlParser) drop() statement {
	if p.word("TEMPORARY") {
		// A session's own tables: a ROW binlog logs them only as
		// DROP TEMPORARY TABLE IF EXISTS, for replicas of older formats.
		return statement{kind: stmtOther}
	}
	switch {
	case p.word("TABLE"), p.word("TABLES"):
		p.words("IF", "EXISTS")
		st := statement{kind: stmtDropTables}
		for {
			n, ok := p.name()
			if !ok {
				break
			}
			st.tables = append(st.tables, n)
			if !p.punct(",") {
				break
			}
		}
		return st
	case p.word("DATABASE"), p.word("SCHEMA"):
		p.words("IF", "EXISTS")
		if p.i < len(p.toks) && p.toks[p.i].isName() {
			return statement{kind: stmtDropTables, databases: []string{p.toks[p.i].text}}
		}
	case p.word("INDEX"):
		p.words("IF", "EXISTS")
		if p.i < len(p.toks) && p.toks[p.i].isName() {
			idx := p.toks[p.i].text
			p.i++
			if p.word("ON") {
				if n, ok := p.name(); ok {
					kind := stmtHarmless
					if strings.EqualFold(idx, "PRIMARY") {
						kind = stmtSchemaChange
					}
					return statement{kind: kind, tables: []model.Namespace{n}}
				}
			}
		}
	}
	return statement{kind: stmtOther}
}

// tableRefs collects the table names of an UPDATE or DELETE: the names
// after UPDATE, FROM, JOIN and commas at the top level, up to SET or WHERE.
func (p *ddlParser) tableRefs() []model.Namespace {
	var out []model.Namespace
	expect := true
	for p.i < len(p.toks) {
		t := p.toks[p.i]
		if t.kind == tokWord {
			switch strings.ToUpper(t.text) {
			case "SET", "WHERE", "ORDER", "LIMIT", "USING":
				if strings.ToUpper(t.text) != "USING" {
					return out
				}
				expect = true
				p.i++
				continue
			case "FROM", "JOIN":
				expect = true
				p.i++
				continue
			case "LOW_PRIORITY", "QUICK", "IGNORE", "STRAIGHT_JOIN", "INNER", "LEFT", "RIGHT", "CROSS", "OUTER", "NATURAL":
				p.i++
				continue
			}
		}
		if t.kind == tokPunct && t.text == "," {
			expect = true
			p.i++
			continue
		}
		if expect && t.isName() {
			if n, ok := p.name(); ok {
				out = append(out, n)
				expect = false
				continue
			}
		}
		if t.kind == tokPunct && t.text == "(" {
			p.skipParens()
			continue
		}
		p.i++
	}
	return out
}

// ddlParser walks the tokens of one statement.
type ddlParser struct {
	toks []token
	i    int
	db   string
}

func (p *ddlParser) word(w string) bool {
	if p.i < len(p.toks) && p.toks[p.i].kind == tokWord && strings.EqualFold(p.toks[p.i].text, w) {
		p.i++
		return true
	}
	return false
}

// words consumes the sequence ws only if all of it is next.
func (p *ddlParser) words(ws ...string) bool {
	start := p.i
	for _, w := range ws {
		if !p.word(w) {
			p.i = start
			return false
		}
	}
	return true
}

func (p *ddlParser) skipWords(ws ...string) {
	for {
		found := false
		for _, w := range ws {
			if p.word(w) {
				found = true
			}
		}
		if !found {
			return
		}
	}
}

func (p *ddlParser) punct(s string) bool {
	if p.i < len(p.toks) && p.toks[p.i].kind == tokPunct && p.toks[p.i].text == s {
		p.i++
		return true
	}
	return false
}

// name reads "table" or "db.table".
func (p *ddlParser) name() (model.Namespace, bool) {
	if p.i >= len(p.toks) || !p.toks[p.i].isName() {
		return model.Namespace{}, false
	}
	first := p.toks[p.i].text
	p.i++
	if p.i+1 < len(p.toks) && p.toks[p.i].kind == tokPunct && p.toks[p.i].text == "." && p.toks[p.i+1].isName() {
		second := p.toks[p.i+1].text
		p.i += 2
		return model.Namespace{Schema: first, Table: second}, true
	}
	return model.Namespace{Schema: p.db, Table: first}, true
}

func (p *ddlParser) skipParens() {
	depth := 0
	for p.i < len(p.toks) {
		t := p.toks[p.i]
		p.i++
		if t.kind != tokPunct {
			continue
		}
		switch t.text {
		case "(":
			depth++
		case ")":
			depth--
			if depth <= 0 {
				return
			}
		}
	}
}

// specs splits the rest of an ALTER TABLE at top-level commas. A trailing
// partitioning clause is one more (changing) specification.
func (p *ddlParser) specs() [][]token {
	var out [][]token
	var cur []token
	depth := 0
	for ; p.i < len(p.toks); p.i++ {
		t := p.toks[p.i]
		if t.kind == tokPunct {
			switch t.text {
			case "(":
				depth++
			case ")":
				depth--
			case ",":
				if depth == 0 {
					out = append(out, cur)
					cur = nil
					continue
				}
			case ";":
				if depth == 0 {
					continue
				}
			}
		}
		cur = append(cur, t)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}
