package mysql

import (
	"fmt"
	"strings"
)

// alterKind is what one ALTER TABLE specification does to the columns.
type alterKind int

const (
	alterHarmless alterKind = iota // indexes, options, defaults: no column nor row changes
	alterAdd                       // ADD [COLUMN]
	alterDrop                      // DROP [COLUMN]
	alterChange                    // CHANGE, MODIFY, RENAME COLUMN
)

// alterOp is one ALTER TABLE specification the stream follows.
type alterOp struct {
	kind alterKind
	// name is the column: the added one, the dropped one, or the changed
	// one's name before the statement.
	name string
	// newName is a changed column's name after it (name when unchanged).
	newName string
	// def is the column definition of ADD, CHANGE and MODIFY; nil for
	// DROP and RENAME COLUMN.
	def *colDef
	// first and after place the column (FIRST, AFTER after).
	first bool
	after string
	// ifExists is IF EXISTS (DROP, CHANGE, MODIFY, RENAME COLUMN) or IF
	// NOT EXISTS (ADD): the server skipped the specification when it did
	// not apply.
	ifExists bool
}

// colDef is a column definition as an ALTER TABLE writes it.
type colDef struct {
	// typ is the type as written ("varchar(10) unsigned"), for checking it
	// against the server's definition.
	typ string
	// charset is the CHARACTER SET it names, "" when none.
	charset string
	notNull bool
	// literal is a constant DEFAULT rendered as SQL ("'x'", "-1",
	// "_utf8mb4'a'"), "" when none or DEFAULT NULL.
	literal string
	// expr is a DEFAULT that is an expression (CURRENT_TIMESTAMP, (RAND())),
	// as written; the server computed what existing rows got.
	expr          string
	autoIncrement bool
	generated     bool
}

// alterSpecs reads the specifications of an ALTER TABLE. A specification
// it cannot read exactly, or one that changes rows in a way no binlog event
// carries (partition maintenance, CONVERT TO, a new primary key), is an
// error saying so; the stream then stops.
func alterSpecs(specs [][]token) ([]alterOp, error) {
	var ops []alterOp
	for _, spec := range specs {
		got, err := alterSpec(spec)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", renderTokens(spec), err)
		}
		ops = append(ops, got...)
	}
	return ops, nil
}

func alterSpec(spec []token) ([]alterOp, error) {
	if len(spec) == 0 {
		return nil, nil
	}
	p := &ddlParser{toks: spec}
	for _, t := range spec {
		if t.kind == tokWord && strings.EqualFold(t.text, "PRIMARY") {
			return nil, fmt.Errorf("it changes the primary key, which ferry cannot follow")
		}
	}
	harmless := []alterOp{{kind: alterHarmless}}
	switch {
	case p.word("ADD"):
		switch p.peekWord() {
		case "INDEX", "KEY", "UNIQUE", "FULLTEXT", "SPATIAL", "FOREIGN", "CONSTRAINT", "CHECK", "VECTOR":
			return harmless, nil
		case "PARTITION", "PERIOD", "SYSTEM":
			return nil, fmt.Errorf("ferry does not follow partitioning or system versioning changes")
		}
		p.word("COLUMN")
		ifNot := p.words("IF", "NOT", "EXISTS")
		if p.punct("(") {
			// ADD [COLUMN] (a int, b int): no positions.
			var ops []alterOp
			for _, part := range splitTop(p.rest(")")) {
				q := &ddlParser{toks: part}
				op, err := q.columnOp(alterAdd, ifNot)
				if err != nil {
					return nil, err
				}
				if op.first || op.after != "" {
					return nil, fmt.Errorf("a position inside ADD (...)")
				}
				ops = append(ops, op)
			}
			return ops, nil
		}
		op, err := p.columnOp(alterAdd, ifNot)
		if err != nil {
			return nil, err
		}
		return []alterOp{op}, nil
	case p.word("DROP"):
		switch p.peekWord() {
		case "INDEX", "KEY", "FOREIGN", "CONSTRAINT", "CHECK":
			return harmless, nil
		case "PARTITION", "PERIOD", "SYSTEM":
			return nil, fmt.Errorf("ferry does not follow partitioning or system versioning changes (DROP PARTITION deletes rows without binlog events)")
		}
		p.word("COLUMN")
		op := alterOp{kind: alterDrop, ifExists: p.words("IF", "EXISTS")}
		name, ok := p.ident()
		if !ok {
			return nil, fmt.Errorf("no column name")
		}
		op.name, op.newName = name, name
		p.word("RESTRICT")
		p.word("CASCADE")
		if p.i < len(p.toks) {
			return nil, fmt.Errorf("unexpected %q", p.toks[p.i].text)
		}
		return []alterOp{op}, nil
	case p.word("CHANGE"):
		p.word("COLUMN")
		ifExists := p.words("IF", "EXISTS")
		old, ok := p.ident()
		if !ok {
			return nil, fmt.Errorf("no column name")
		}
		op, err := p.columnOp(alterChange, ifExists)
		if err != nil {
			return nil, err
		}
		op.name = old
		return []alterOp{op}, nil
	case p.word("MODIFY"):
		p.word("COLUMN")
		op, err := p.columnOp(alterChange, p.words("IF", "EXISTS"))
		if err != nil {
			return nil, err
		}
		return []alterOp{op}, nil
	case p.word("RENAME"):
		switch p.peekWord() {
		case "INDEX", "KEY":
			return harmless, nil
		case "COLUMN":
			p.word("COLUMN")
			op := alterOp{kind: alterChange, ifExists: p.words("IF", "EXISTS")}
			var ok1, ok2 bool
			op.name, ok1 = p.ident()
			to := p.word("TO")
			op.newName, ok2 = p.ident()
			if !ok1 || !to || !ok2 || p.i < len(p.toks) {
				return nil, fmt.Errorf("cannot read the column rename")
			}
			return []alterOp{op}, nil
		}
		return nil, fmt.Errorf("it renames the table, which ferry does not follow")
	case p.word("ALTER"):
		switch p.peekWord() {
		case "INDEX", "KEY", "CONSTRAINT", "CHECK":
			return harmless, nil
		}
		p.word("COLUMN")
		p.words("IF", "EXISTS")
		if _, ok := p.ident(); ok {
			// SET DEFAULT, DROP DEFAULT, SET [IN]VISIBLE: only what later
			// statements write changes, and the binlog carries that.
			if p.word("SET") || p.word("DROP") {
				switch p.peekWord() {
				case "DEFAULT", "VISIBLE", "INVISIBLE":
					return harmless, nil
				}
			}
		}
		return nil, fmt.Errorf("ferry cannot read it")
	case p.word("CONVERT"):
		if p.peekWord() != "TO" {
			// MariaDB 10.7: CONVERT PARTITION p TO TABLE t, CONVERT TABLE t TO PARTITION p.
			return nil, fmt.Errorf("ferry does not follow partitioning changes (a partition converted to a table takes its rows away without binlog events)")
		}
		return nil, fmt.Errorf("it converts the table's text columns to another character set, which ferry does not follow")
	}
	switch p.peekWord() {
	case "ALGORITHM", "LOCK", "COMMENT", "FORCE", "ENGINE", "AUTO_INCREMENT", "ROW_FORMAT", "KEY_BLOCK_SIZE",
		"STATS_PERSISTENT", "STATS_AUTO_RECALC", "STATS_SAMPLE_PAGES", "ENABLE", "DISABLE", "PACK_KEYS",
		"CHECKSUM", "DELAY_KEY_WRITE", "MAX_ROWS", "MIN_ROWS", "AVG_ROW_LENGTH", "WAIT", "NOWAIT",
		"DEFAULT", "CHARACTER", "CHARSET", "COLLATE", "ORDER", "PAGE_CHECKSUM", "TRANSACTIONAL",
		"PAGE_COMPRESSED", "PAGE_COMPRESSION_LEVEL", "ENCRYPTED", "ENCRYPTION_KEY_ID", "STATS_AUTO_UPDATE":
		// Table options: the default character set of future columns, the
		// storage engine, the physical row order; no column nor value changes.
		return harmless, nil
	case "PARTITION", "REMOVE", "TRUNCATE", "COALESCE", "REORGANIZE", "EXCHANGE", "ANALYZE", "CHECK", "OPTIMIZE",
		"REBUILD", "REPAIR", "DISCARD", "IMPORT":
		return nil, fmt.Errorf("ferry does not follow partitioning changes (TRUNCATE, DROP and EXCHANGE PARTITION change rows without binlog events)")
	}
	return nil, fmt.Errorf("ferry cannot read it")
}

// columnOp reads "name definition [FIRST | AFTER col]".
func (p *ddlParser) columnOp(kind alterKind, ifExists bool) (alterOp, error) {
	name, ok := p.ident()
	if !ok {
		return alterOp{}, fmt.Errorf("no column name")
	}
	op := alterOp{kind: kind, name: name, newName: name, ifExists: ifExists}
	def, err := p.colDef(&op)
	if err != nil {
		return alterOp{}, fmt.Errorf("column %s: %w", name, err)
	}
	op.def = def
	return op, nil
}

// colDef reads a column definition up to the end of the specification.
func (p *ddlParser) colDef(op *alterOp) (*colDef, error) {
	d := &colDef{}
	if p.i >= len(p.toks) || p.toks[p.i].kind != tokWord {
		return nil, fmt.Errorf("no type")
	}
	typ := []string{strings.ToLower(p.toks[p.i].text)}
	p.i++
	if (typ[0] == "national" || typ[0] == "long") && p.peekWord() != "" && !attrWord(p.peekWord()) {
		typ = append(typ, strings.ToLower(p.toks[p.i].text))
		p.i++
	}
	if p.i < len(p.toks) && p.toks[p.i].kind == tokPunct && p.toks[p.i].text == "(" {
		start := p.i
		p.skipParens()
		typ[len(typ)-1] += renderTokens(p.toks[start:p.i])
	}
	for {
		switch w := p.peekWord(); w {
		case "UNSIGNED", "SIGNED", "ZEROFILL", "PRECISION", "VARYING":
			typ = append(typ, strings.ToLower(w))
			p.i++
			continue
		}
		break
	}
	d.typ = strings.Join(typ, " ")
	for p.i < len(p.toks) {
		switch {
		case p.words("NOT", "NULL"):
			d.notNull = true
		case p.word("NULL"):
		case p.word("DEFAULT"):
			if err := p.defaultValue(d); err != nil {
				return nil, err
			}
		case p.word("AUTO_INCREMENT"):
			d.autoIncrement = true
		case p.word("UNIQUE"):
			p.word("KEY")
		case p.word("KEY"), p.word("BINARY"), p.word("ASCII"), p.word("UNICODE"), p.word("BYTE"),
			p.word("VISIBLE"), p.word("INVISIBLE"), p.word("VIRTUAL"), p.word("STORED"), p.word("PERSISTENT"):
		case p.words("CHARACTER", "SET"), p.word("CHARSET"):
			if n, ok := p.ident(); ok {
				d.charset = strings.ToLower(n)
			} else if p.i < len(p.toks) {
				d.charset = strings.ToLower(p.toks[p.i].text) // a quoted 'name'
				p.i++
			}
		case p.word("COMMENT"), p.word("COLLATE"),
			p.word("COLUMN_FORMAT"), p.word("STORAGE"), p.word("SRID"), p.word("ENGINE_ATTRIBUTE"),
			p.word("SECONDARY_ENGINE_ATTRIBUTE"), p.word("REF_SYSTEM_ID"):
			p.punct("=")
			if p.i >= len(p.toks) {
				return nil, fmt.Errorf("an attribute without its value")
			}
			p.i++
		case p.word("COMPRESSED"):
			if p.punct("=") {
				p.i++
			}
		case p.words("GENERATED", "ALWAYS"), p.word("AS"):
			p.word("AS")
			if p.word("ROW") {
				// MariaDB system versioning: AS ROW START | END.
				p.i++
			} else if p.i < len(p.toks) && p.toks[p.i].text == "(" {
				p.skipParens()
			}
			d.generated = true
		case p.words("ON", "UPDATE"):
			// Changes later updates' values, which the binlog carries.
			if p.i < len(p.toks) {
				p.i++
				if p.i < len(p.toks) && p.toks[p.i].text == "(" {
					p.skipParens()
				}
			}
		case p.word("CHECK"):
			p.skipParens()
		case p.word("CONSTRAINT"):
			if p.peekWord() != "CHECK" {
				p.i++ // the constraint's name
			}
		case p.word("REFERENCES"):
			p.name()
			p.skipParens()
			for p.word("MATCH") || p.words("ON", "DELETE") || p.words("ON", "UPDATE") {
				if !p.words("SET", "NULL") && !p.words("SET", "DEFAULT") && !p.words("NO", "ACTION") && !p.word("RESTRICT") && !p.word("CASCADE") {
					p.skipWords("FULL", "PARTIAL", "SIMPLE")
				}
			}
		case p.words("WITH", "SYSTEM", "VERSIONING"), p.words("WITHOUT", "SYSTEM", "VERSIONING"):
			return nil, fmt.Errorf("ferry does not follow system versioning changes")
		case p.word("FIRST"):
			op.first = true
		case p.word("AFTER"):
			n, ok := p.ident()
			if !ok {
				return nil, fmt.Errorf("AFTER without a column")
			}
			op.after = n
		default:
			return nil, fmt.Errorf("cannot read %q", p.toks[p.i].text)
		}
	}
	return d, nil
}

// attrWord reports whether w starts a column attribute rather than
// continuing a type ("LONG VARCHAR" against "LONG NOT NULL").
func attrWord(w string) bool {
	switch w {
	case "NOT", "NULL", "DEFAULT", "AUTO_INCREMENT", "UNIQUE", "KEY", "COMMENT", "COLLATE", "CHARACTER", "CHARSET",
		"GENERATED", "AS", "CHECK", "REFERENCES", "FIRST", "AFTER", "INVISIBLE", "VISIBLE", "ON", "CONSTRAINT":
		return true
	}
	return false
}

// defaultValue reads what follows DEFAULT: a constant, NULL, or an
// expression (kept as written, for the message that stops the flow).
func (p *ddlParser) defaultValue(d *colDef) error {
	if p.i >= len(p.toks) {
		return fmt.Errorf("DEFAULT without a value")
	}
	start := p.i
	// (constant) is a constant too.
	if p.i+2 < len(p.toks) && p.toks[p.i].text == "(" && p.toks[p.i].kind == tokPunct {
		save := p.i
		p.i++
		if lit, ok := p.literal(); ok && p.punct(")") {
			d.literal = lit
			return nil
		}
		p.i = save
	}
	if p.word("NULL") {
		return nil
	}
	if lit, ok := p.literal(); ok {
		d.literal = lit
		return nil
	}
	// An expression: a function call, CURRENT_TIMESTAMP[(n)], (expr).
	if p.toks[p.i].kind == tokPunct && p.toks[p.i].text == "(" {
		p.skipParens()
	} else {
		p.i++
		if p.i < len(p.toks) && p.toks[p.i].kind == tokPunct && p.toks[p.i].text == "(" {
			p.skipParens()
		}
	}
	d.expr = renderTokens(p.toks[start:p.i])
	return nil
}

// literal reads a constant and renders it as SQL: a number (signed), a
// string (with a character set introducer, or in the b, x and N forms), TRUE,
// FALSE, or DATE/TIME/TIMESTAMP 'literal'.
func (p *ddlParser) literal() (string, bool) {
	if p.i >= len(p.toks) {
		return "", false
	}
	t := p.toks[p.i]
	next := func() (token, bool) {
		if p.i+1 < len(p.toks) {
			return p.toks[p.i+1], true
		}
		return token{}, false
	}
	switch t.kind {
	case tokNumber:
		p.i++
		return t.text, true
	case tokString:
		p.i++
		return quoteString(t.text), true
	case tokPunct:
		if t.text == "-" || t.text == "+" {
			if n, ok := next(); ok && n.kind == tokNumber {
				p.i += 2
				return t.text + n.text, true
			}
		}
	case tokWord:
		w := strings.ToUpper(t.text)
		switch w {
		case "TRUE", "FALSE":
			p.i++
			return w, true
		}
		n, ok := next()
		if !ok || n.kind != tokString {
			return "", false
		}
		switch {
		case w == "B" || w == "X" || w == "N" || strings.HasPrefix(t.text, "_"):
			p.i += 2
			return t.text + quoteString(n.text), true
		case w == "DATE" || w == "TIME" || w == "TIMESTAMP":
			p.i += 2
			return w + " " + quoteString(n.text), true
		}
	}
	return "", false
}

func (p *ddlParser) peekWord() string {
	if p.i < len(p.toks) && p.toks[p.i].kind == tokWord {
		return strings.ToUpper(p.toks[p.i].text)
	}
	return ""
}

// ident reads one identifier.
func (p *ddlParser) ident() (string, bool) {
	if p.i < len(p.toks) && p.toks[p.i].isName() {
		p.i++
		return p.toks[p.i-1].text, true
	}
	return "", false
}

// rest returns the tokens up to the closing punctuation close at this
// level (consumed), or to the end.
func (p *ddlParser) rest(close string) []token {
	start, depth := p.i, 0
	for ; p.i < len(p.toks); p.i++ {
		t := p.toks[p.i]
		if t.kind != tokPunct {
			continue
		}
		switch t.text {
		case "(":
			depth++
		case ")":
			if depth == 0 && close == ")" {
				out := p.toks[start:p.i]
				p.i++
				return out
			}
			depth--
		}
	}
	return p.toks[start:]
}

// splitTop splits tokens at top-level commas.
func splitTop(toks []token) [][]token {
	p := &ddlParser{toks: toks}
	return p.specs()
}

// renderTokens writes tokens back as SQL, for messages and for constants
// handed to the server.
func renderTokens(toks []token) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 && !(t.kind == tokPunct && (t.text == "(" || t.text == ")" || t.text == "," || t.text == ".")) &&
			!(toks[i-1].kind == tokPunct && (toks[i-1].text == "(" || toks[i-1].text == ".")) {
			b.WriteByte(' ')
		}
		switch t.kind {
		case tokString:
			b.WriteString(quoteString(t.text))
		case tokQuoted:
			b.WriteString(quoteIdent(t.text))
		default:
			b.WriteString(t.text)
		}
	}
	return b.String()
}
