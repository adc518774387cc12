package mysql

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ferrydb/ferry/model"
)

// The stream follows an ALTER TABLE from its statement in the binlog: the
// statement says exactly which columns were added, dropped, renamed,
// retyped or moved, at this point of the stream. The server's current
// definition, which may already be further ahead when the stream lags,
// only gives the types of the columns the statement defines, and must
// agree with what the statement wrote.

// newColumn is a column of a table after an ALTER TABLE.
type newColumn struct {
	name string
	// from is the column's name before the statement, "" for an added one.
	from string
	// op is the ADD, CHANGE or MODIFY that defines it; nil when the column
	// keeps its definition (possibly under a new name: RENAME COLUMN).
	op *alterOp
}

// errReplayed reports an ALTER TABLE that only adds columns the stream's
// definition already has: a flow resumed before a statement it followed.
var errReplayed = fmt.Errorf("already followed")

// planColumns applies an ALTER TABLE's column changes to the columns of
// old, as the server does: drops and in-place changes walk the old
// columns in order; added columns, and changed ones given FIRST or AFTER,
// are then placed in statement order, AFTER naming a column of the new
// list. Column names compare case-insensitively, as MySQL compares them.
func planColumns(old *model.Table, ops []alterOp) ([]newColumn, error) {
	oldIdx := func(name string) int {
		for i, c := range old.Columns {
			if strings.EqualFold(c.Name, name) {
				return i
			}
		}
		return -1
	}
	dropped := map[int]bool{}
	changed := map[int]*alterOp{}
	skipped := map[int]bool{} // ops the server skipped (IF [NOT] EXISTS)
	replayed, applied := 0, 0
	for i := range ops {
		op := &ops[i]
		j := oldIdx(op.name)
		switch op.kind {
		case alterAdd:
			if j >= 0 {
				skipped[i] = true
				if !op.ifExists {
					replayed++
				}
				continue
			}
		case alterDrop, alterChange:
			if j < 0 {
				if op.ifExists {
					skipped[i] = true
					continue
				}
				return nil, fmt.Errorf("it changes column %s, which the table did not have at this point as the flow knows it", op.name)
			}
			if dropped[j] || changed[j] != nil {
				return nil, fmt.Errorf("it changes column %s twice", op.name)
			}
			if op.kind == alterDrop {
				dropped[j] = true
			} else {
				changed[j] = op
			}
		}
		applied++
	}
	if replayed > 0 {
		if applied == 0 {
			return nil, errReplayed
		}
		return nil, fmt.Errorf("it adds a column the table already had at this point as the flow knows it")
	}
	var cols []newColumn
	defined := map[*alterOp]newColumn{}
	for j, oc := range old.Columns {
		switch op := changed[j]; {
		case dropped[j]:
		case op != nil:
			nc := newColumn{name: op.newName, from: oc.Name, op: op}
			if op.def == nil {
				nc.op = nil // RENAME COLUMN keeps the definition
			}
			if op.first || op.after != "" {
				defined[op] = nc
				continue
			}
			cols = append(cols, nc)
		default:
			cols = append(cols, newColumn{name: oc.Name, from: oc.Name})
		}
	}
	for i := range ops {
		op := &ops[i]
		if skipped[i] {
			continue
		}
		var nc newColumn
		switch {
		case op.kind == alterAdd:
			nc = newColumn{name: op.name, op: op}
		case op.kind == alterChange && (op.first || op.after != ""):
			nc = defined[op]
		default:
			continue
		}
		switch {
		case op.first:
			cols = append([]newColumn{nc}, cols...)
		case op.after != "":
			k := -1
			for x, c := range cols {
				if strings.EqualFold(c.name, op.after) {
					k = x
				}
			}
			if k < 0 {
				return nil, fmt.Errorf("it places column %s after %s, which the table does not have at this point as the flow knows it", nc.name, op.after)
			}
			cols = append(cols[:k+1], append([]newColumn{nc}, cols[k+1:]...)...)
		default:
			cols = append(cols, nc)
		}
	}
	seen := map[string]bool{}
	for _, c := range cols {
		if seen[strings.ToLower(c.name)] {
			return nil, fmt.Errorf("it leaves two columns named %s as the flow knows the table", c.name)
		}
		seen[strings.ToLower(c.name)] = true
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("it leaves the table without columns as the flow knows it")
	}
	return cols, nil
}

// alter follows an ALTER TABLE of a flow table: it emits the table's new
// definition, relative to the one the stream knew, with the renamed
// columns and the values existing rows got, and decodes later rows by it.
// Anything it cannot know exactly stops the flow with a message naming
// the statement, the table and the column.
func (s *stream) alter(ctx context.Context, st *streamTable, ops []alterOp, where string) error {
	old := st.table
	// stop ends the flow: what happened, then how to go on (fix, "" when
	// the problem says it).
	stop := func(fix, format string, a ...any) error {
		msg := fmt.Sprintf("table %s changed at %s: %s; the flow stops here and writes nothing wrong", old.Namespace, where, fmt.Sprintf(format, a...))
		if fix != "" {
			msg += ": " + fix
		}
		return fatal(errors.New(msg))
	}
	const recreate = "recreate the destination table to match and restart the flow (ferry sync --restart)"
	plan, err := planColumns(old, ops)
	if err == errReplayed {
		// The columns it adds are known: a replayed statement. If they
		// needed the table copied again, ask again: the flow may have
		// stopped after it altered the destination table and before it
		// recorded the copy (a copy asked for twice starts over).
		for _, op := range ops {
			if op.def != nil && (op.def.expr != "" || op.def.autoIncrement) && len(old.PrimaryKey) > 0 {
				s.schemas = append(s.schemas, model.SchemaChange{Table: old.Clone(), Recopy: true})
				break
			}
		}
		return nil
	}
	if err != nil {
		return stop(recreate, "%s", err)
	}
	var cur *tableInfo
	for _, nc := range plan {
		if nc.op != nil {
			infos, err := s.c.describeTables(ctx, []*model.Table{old})
			if err != nil {
				return err // the server may be going away: retried
			}
			if cur = infos[old.Namespace]; cur == nil {
				return stop(recopy, "the table no longer exists on the server (the stream is behind it), so ferry cannot read the types of the columns the statement defines")
			}
			break
		}
	}
	nt := old.Clone()
	nt.Columns = nt.Columns[:0]
	codecs := make([]*codec, 0, len(plan))
	renamed := map[string]string{}
	filled := map[string]any{}
	var recopied []string // added columns whose values only a copy brings
	for _, nc := range plan {
		if nc.op == nil {
			j := old.ColumnIndex(nc.from)
			col := old.Columns[j]
			col.Name = nc.name
			cd := *st.codecs[j]
			cd.name = nc.name
			nt.Columns = append(nt.Columns, col)
			codecs = append(codecs, &cd)
			if nc.name != nc.from {
				renamed[nc.name] = nc.from
			}
			continue
		}
		def := nc.op.def
		col, charset, serverDefault, err := s.definedColumn(cur, nc.name, def)
		if err != nil {
			return stop(recopy, "%v", err)
		}
		if def.generated || col.Generated {
			return stop(recopy, "column %s is generated: the server computed its values for the existing rows without binlog events", nc.name)
		}
		if nc.from != "" && nc.from != col.Name {
			renamed[col.Name] = nc.from
		}
		cd, err := newCodec(col, charset, s.c.opts.zeroNull)
		if err != nil {
			return stop(recreate, "%v", err)
		}
		if nc.op.kind == alterAdd {
			v, rewritten, fix, err := s.filled(ctx, old.Namespace, col, charset, serverDefault, def, cd)
			if err != nil {
				return stop(fix, "%v", err)
			}
			if v != nil {
				filled[col.Name] = v
			}
			if rewritten != "" && len(old.PrimaryKey) == 0 {
				return stop(keyless, "added column %s has the %s: the server gave each existing row its own value, which no binlog event carries, and a table without a primary key cannot be copied again while changes stream", col.Name, rewritten)
			}
			if rewritten != "" {
				// The server gave each existing row its own value: the
				// column goes nullable (the destination's rows lack the
				// values until the copy brings them), and the table is
				// copied again.
				col.Nullable = true
				recopied = append(recopied, col.Name+" ("+rewritten+")")
			}
		}
		nt.Columns = append(nt.Columns, col)
		codecs = append(codecs, cd)
	}
	// The primary key and the indexes follow renames; a dropped key column
	// ends the key, which ferry cannot follow.
	newName := map[string]string{}
	for i, nc := range plan {
		if nc.from != "" {
			newName[nc.from] = nt.Columns[i].Name
		}
	}
	for i, k := range old.PrimaryKey {
		n, ok := newName[k]
		if !ok {
			return stop(recreate, "it drops column %s of the primary key, which ferry cannot follow", k)
		}
		nt.PrimaryKey[i] = n
	}
	var indexes []model.Index
	for _, ix := range nt.Indexes {
		var cols []string
		for _, c := range ix.Columns {
			if n, ok := newName[c]; ok {
				cols = append(cols, n)
			}
		}
		if len(ix.Columns) > 0 && len(cols) == 0 {
			continue // MySQL drops an index whose columns are all dropped
		}
		ix.Columns = cols
		indexes = append(indexes, ix)
	}
	nt.Indexes = indexes
	var uncarried []model.Uncarried
	for _, u := range nt.Uncarried {
		if u.Column != "" {
			n, ok := newName[u.Column]
			if !ok {
				continue // of a dropped column
			}
			u.Column = n
		}
		uncarried = append(uncarried, u)
	}
	nt.Uncarried = uncarried
	if len(renamed) == 0 && len(filled) == 0 && sameColumns(old, nt) {
		return nil
	}
	st.table, st.codecs, st.keyIdx, st.minCols = nt, codecs, nt.KeyIndexes(), len(nt.Columns)
	sc := model.SchemaChange{Table: nt.Clone()}
	if len(renamed) > 0 {
		sc.Renamed = renamed
	}
	if len(filled) > 0 {
		sc.Filled = filled
	}
	if len(recopied) > 0 {
		sc.Recopy = true
		s.c.log.Info("mysql: columns added with values no binlog event carries; the table is copied again", "table", old.Namespace.String(), "columns", strings.Join(recopied, ", "), "at", where)
	}
	s.schemas = append(s.schemas, sc)
	return nil
}

// definedColumn is the column a statement's definition def gives the
// name: the server's column of that name when its type is the one the
// statement wrote (the server's has what the statement leaves implicit:
// the character set, the size); else, when the stream is behind the
// server and the column changed again since, the statement's own, as long
// as ferry reads its type and nothing implicit (a text type's character
// set) is missing. It returns the column's character set and the server's
// default (nil when none, or the column is the statement's).
func (s *stream) definedColumn(cur *tableInfo, name string, def *colDef) (model.Column, string, *string, error) {
	for k, col := range cur.table.Columns {
		if !strings.EqualFold(col.Name, name) || !typesAgree(def.typ, col.Type) {
			continue
		}
		if err := cur.problems[col.Name]; err != nil {
			return model.Column{}, "", nil, fmt.Errorf("column %s (%s): %w", col.Name, col.Type.Native, err)
		}
		return col, cur.charsets[k], cur.defaults[k], nil
	}
	behind := fmt.Errorf("column %s (%s in the statement) is not so on the server: the table changed again since this statement (the stream is behind the server), and ferry cannot tell the column's definition at this point from the statement alone", name, def.typ)
	ct, err := parseColType(def.typ)
	if err != nil {
		return model.Column{}, "", nil, behind
	}
	typ, err := ct.canonical()
	if err != nil {
		return model.Column{}, "", nil, behind
	}
	switch ct.name {
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set":
		if def.charset == "" {
			return model.Column{}, "", nil, behind
		}
	}
	return model.Column{Name: name, Type: typ, Nullable: !def.notNull, Generated: def.generated}, def.charset, nil, nil
}

// typesAgree reports whether the type a statement wrote is the server's
// column type. A type ferry does not parse (a synonym) is taken as
// agreeing: the row events' column count checks the rest.
func typesAgree(written string, t model.Type) bool {
	ct, err := parseColType(written)
	if err != nil {
		return true
	}
	w, err := ct.canonical()
	if err != nil {
		return true
	}
	if w.Kind != t.Kind {
		return false
	}
	if len(ct.args) == 0 {
		return true // the server filled in the default size
	}
	return w.String() == t.String()
}

func sameColumns(a, b *model.Table) bool {
	if len(a.Columns) != len(b.Columns) {
		return false
	}
	for i := range a.Columns {
		x, y := a.Columns[i], b.Columns[i]
		if x.Name != y.Name || x.Type.String() != y.Type.String() || x.Type.Native != y.Type.Native || x.Nullable != y.Nullable {
			return false
		}
	}
	return true
}

// recopy is how to go on after a change whose values no binlog event
// carries and that the stream cannot follow even with a copy of the table
// (the flow would stop at the statement again, so only a new start helps).
const recopy = "the table must be copied again: restart the flow (ferry sync --restart)"

// keyless is how to go on when a table without a primary key would have
// to be copied again: an incremental snapshot reads a table in key order.
const keyless = "add a primary key to the table (at the source) and restart the flow (ferry sync --restart)"

// filled is the value every existing row got in a column an ALTER TABLE
// added (nil: NULL). A constant default, or a NOT NULL column's implicit
// default (0, the empty string, the first label), is evaluated by the server itself, in a
// temporary table with the column's definition, and decoded as rows are.
// A default that is an expression (CURRENT_TIMESTAMP, (RAND()), (UUID()),
// AUTO_INCREMENT numbering) was evaluated at the ALTER, row by row, and
// its values are in no binlog event: filled then says why the table must
// be copied again (rewritten), and the caller asks for that.
// It returns with an error how to go on.
func (s *stream) filled(ctx context.Context, ns model.Namespace, col model.Column, charset string, serverDefault *string, def *colDef, cd *codec) (v any, rewritten string, fix string, err error) {
	switch {
	case def.expr != "":
		return nil, "default " + def.expr, "", nil
	case def.autoIncrement:
		return nil, "AUTO_INCREMENT", "", nil
	case def.literal == "" && serverDefault != nil && !isConstantDefault(*serverDefault):
		return nil, "default " + *serverDefault + " (the server's)", "", nil
	case def.literal == "" && !def.notNull && col.Nullable:
		return nil, "", "", nil // existing rows got NULL
	}
	v, err = s.c.evalDefault(ctx, ns, col, charset, def.literal, cd)
	if err != nil {
		return nil, "", "fix that, then run the flow again (ferry sync): it resumes at this statement", fmt.Errorf("added column %s: reading the value existing rows got (DEFAULT %s): %w", col.Name, orNone(def.literal), err)
	}
	return v, "", "", nil
}

func orNone(s string) string {
	if s == "" {
		return "none, NOT NULL"
	}
	return s
}

// isConstantDefault reports whether a COLUMN_DEFAULT of
// information_schema is a constant: MariaDB quotes string constants and
// prints numbers bare; an expression (current_timestamp(), rand()) is
// neither.
func isConstantDefault(d string) bool {
	if strings.HasPrefix(d, "'") {
		return true
	}
	t := tokenize(d)
	p := &ddlParser{toks: t}
	_, ok := p.literal()
	return ok && p.i == len(t)
}

// evalDefault asks the server which value a row gets in a column of col's
// definition with DEFAULT literal ("" for none, the type's implicit
// default when NOT NULL), as ALTER TABLE ... ADD COLUMN gives every
// existing row.
func (c *Conn) evalDefault(ctx context.Context, ns model.Namespace, col model.Column, charset, literal string, cd *codec) (any, error) {
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return nil, c.scrubber.Err(err)
	}
	defer conn.Close()
	// Not strict: a NOT NULL column without a default gets its implicit
	// default, as ALTER TABLE gives existing rows; NO_BACKSLASH_ESCAPES:
	// the literal's quotes are doubled, never escaped.
	if _, err := conn.ExecContext(ctx, "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES,NO_ENGINE_SUBSTITUTION'"); err != nil {
		return nil, c.scrubber.Err(err)
	}
	tmp := quoteIdent(ns.Schema) + "." + quoteIdent(fmt.Sprintf("_ferry_default_%d", time.Now().UnixNano()))
	colDef := quoteIdent(col.Name) + " " + col.Type.Native
	if ct, err := parseColType(col.Type.Native); err == nil && charset != "" && !ct.json {
		switch ct.name {
		case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set":
			colDef += " CHARACTER SET " + charset
		}
	}
	if !col.Nullable {
		colDef += " NOT NULL"
	}
	if literal != "" {
		colDef += " DEFAULT " + literal
	}
	if _, err := conn.ExecContext(ctx, "CREATE TEMPORARY TABLE "+tmp+" ("+colDef+")"); err != nil {
		return nil, fmt.Errorf("%w (ferry needs CREATE TEMPORARY TABLES on %s for this)", c.scrubber.Err(err), quoteIdent(ns.Schema))
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "DROP TEMPORARY TABLE IF EXISTS "+tmp) //nolint:errcheck // the session's end drops it too
	if _, err := conn.ExecContext(ctx, "INSERT IGNORE INTO "+tmp+" () VALUES ()"); err != nil {
		return nil, c.scrubber.Err(err)
	}
	stmt, err := conn.PrepareContext(ctx, "SELECT "+quoteIdent(col.Name)+" FROM "+tmp)
	if err != nil {
		return nil, c.scrubber.Err(err)
	}
	defer stmt.Close()
	rows, err := stmt.QueryContext(ctx)
	if err != nil {
		return nil, c.scrubber.Err(err)
	}
	defer rows.Close()
	codecs := []*codec{cd}
	sc := newRowScanner(codecs)
	t := &model.Table{Namespace: ns, Columns: []model.Column{col}}
	if !rows.Next() {
		return nil, fmt.Errorf("no row: %v", c.scrubber.Err(rows.Err()))
	}
	raw, err := sc.scan(rows)
	if err != nil {
		return nil, c.scrubber.Err(err)
	}
	row, err := decodeRow(t, codecs, raw, false)
	if err != nil {
		return nil, err
	}
	return row[0], nil
}
