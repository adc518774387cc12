package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/ferrydb/ferry/model"
)

// logColumn is a column as the DDL log records it (_ferry.table_columns).
type logColumn struct {
	Attnum          int     `json:"attnum"`
	Name            string  `json:"name"`
	TypeOID         uint32  `json:"type_oid"`
	Typmod          int32   `json:"typmod"`
	FormatType      string  `json:"format_type"`
	NotNull         bool    `json:"notnull"`
	HasMissing      bool    `json:"hasmissing"`
	Missing         *string `json:"missing"`
	HasDef          bool    `json:"hasdef"`
	Generated       bool    `json:"generated"`
	Identity        bool    `json:"identity"`
	VolatileDefault bool    `json:"volatile_default"`
}

// logEntry is one row of the DDL log: a table's live columns after a
// command.
type logEntry struct {
	id      int64
	command string
	cols    []logColumn
	// rewritten: the command rewrote the table's rows (ferry_ddl_rewrite),
	// which the stream does not carry.
	rewritten bool
}

// awaitLogged waits until entry id of the DDL log is visible to the
// source's other sessions. The stream can deliver a transaction as soon as
// its commit record is in the WAL, a moment before the committing backend
// makes it visible to new snapshots (a loaded server widens that moment):
// read then, the entry, and the catalog rows of the command it logs,
// would look absent, and the stream would stop with a disagreement or
// pass over a table just created. After awaitBound, the log is read as it
// is (an entry gone for good is then reported as such).
func (c *Conn) awaitLogged(ctx context.Context, id int64) error {
	deadline := time.Now().Add(awaitBound)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		var seen bool
		if err := c.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM _ferry.ddl_log WHERE id = $1)`, id).Scan(&seen); err != nil {
			return c.classify(err, "read ferry's DDL log")
		}
		if seen || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// awaitBound is how long awaitLogged waits for an entry to be visible.
var awaitBound = 10 * time.Second

// readDDLLog reads the log of one table (by oid), oldest first, up to id
// upTo (0: all).
func (c *Conn) readDDLLog(ctx context.Context, relid uint32, upTo int64) ([]logEntry, error) {
	rows, err := c.pool.Query(ctx, `SELECT id, command, columns::text, rewritten FROM _ferry.ddl_log WHERE relid = $1 AND ($2 = 0 OR id <= $2) ORDER BY id`, relid, upTo)
	if err != nil {
		return nil, c.classify(err, "read ferry's DDL log")
	}
	defer rows.Close()
	var out []logEntry
	for rows.Next() {
		var e logEntry
		var cols string
		if err := rows.Scan(&e.id, &e.command, &cols, &e.rewritten); err != nil {
			return nil, c.classify(err, "read ferry's DDL log")
		}
		if err := json.Unmarshal([]byte(cols), &e.cols); err != nil {
			return nil, &decodeError{fmt.Errorf("ferry's DDL log, entry %d: %w", e.id, err)}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, c.classify(err, "read ferry's DDL log")
	}
	return out, nil
}

// logRow handles a row inserted into the DDL log, as the stream carries it:
// a table of the flow altered, a table created or dropped
// (source_ddl_tables.go). For an altered table, the stream reads the
// table's log up to that row and applies what changed since the definition
// it knows; a CREATE TABLE of a table it knows already (read again after a
// resume) is compared the same way.
func (s *streamer) logRow(ctx context.Context, r *relation, t *pglogrepl.TupleData, send func(pending) error) error {
	field := func(name string) string {
		i, ok := r.logCols[name]
		if !ok || i >= len(t.Columns) {
			return ""
		}
		switch t.Columns[i].DataType {
		case pglogrepl.TupleDataTypeText:
			return string(t.Columns[i].Data)
		case pglogrepl.TupleDataTypeBinary: // a binary stream (source_binary.go)
			return binaryText(r.msg.Columns[i].DataType, t.Columns[i].Data)
		}
		return ""
	}
	ns := model.Namespace{Schema: field("schema_name"), Table: field("table_name")}
	command := field("command")
	st := s.tables[ns]
	if st == nil && !createsTable(command) {
		return nil
	}
	id, err1 := strconv.ParseInt(field("id"), 10, 64)
	relid, err2 := strconv.ParseUint(field("relid"), 10, 32)
	if err1 != nil || err2 != nil {
		return &decodeError{fmt.Errorf("ferry's DDL log: a row for %s without its id or table oid", ns)}
	}
	if err := s.c.awaitLogged(ctx, id); err != nil {
		return err
	}
	switch {
	case st == nil:
		return s.tableCreated(ctx, uint32(relid), send)
	case command == dropTableCommand:
		return s.tableDropped(ctx, st, send)
	}
	if err := s.madeUnlogged(ctx, st, uint32(relid)); err != nil {
		return err
	}
	entries, err := s.c.readDDLLog(ctx, uint32(relid), id)
	if err != nil {
		return err
	}
	if len(entries) == 0 || entries[len(entries)-1].id != id {
		return s.disagree(ns, fmt.Sprintf("entry %d of the log, received in the stream, is no longer in _ferry.ddl_log", id))
	}
	from := -1
	for i := range entries {
		same, err := s.c.sameColumns(ctx, st.table, entries[i].cols)
		if err != nil {
			return err
		}
		if same {
			from = i
		}
	}
	if from < 0 {
		return s.disagree(ns, fmt.Sprintf("no entry of the log up to %d has the columns the flow knows (%s)", id, columnNames(st.table)))
	}
	if last := entries[len(entries)-1]; from == len(entries)-1 && last.rewritten {
		// The columns stay as they were (ALTER ... TYPE int USING n + 1),
		// their values do not.
		return s.emitSchema(ctx, st, &model.SchemaChange{Table: st.table.Clone(), Recopy: true}, send)
	}
	return s.applyLog(ctx, st, entries[from:], send)
}

// relationByLog follows a relation message whose columns differ from the
// table the flow knows, in a stream that has the DDL log: the log must
// hold the way from the one to the other, or the stream stops.
func (s *streamer) relationByLog(ctx context.Context, st *streamTable, m *pglogrepl.RelationMessage, send func(pending) error) error {
	ns := st.table.Namespace
	entries, err := s.c.readDDLLog(ctx, m.RelationID, 0)
	if err != nil {
		return err
	}
	if n := len(entries); n > 0 && sameRelation(entries[n-1].cols, m) {
		same, err := s.c.sameColumns(ctx, st.table, entries[n-1].cols)
		if err != nil || same {
			return err // the names differ only in spelling (format_type's modifier)
		}
	}
	// The latest entry showing the known columns that a later one showing
	// the relation's follows, and the first such later one.
	from, to, cand := -1, -1, -1
	for i := range entries {
		if sameRelation(entries[i].cols, m) {
			if cand >= 0 {
				from, to, cand = cand, i, -1
			}
			continue
		}
		same, err := s.c.sameColumns(ctx, st.table, entries[i].cols)
		if err != nil {
			return err
		}
		if same {
			cand = i
		}
	}
	if from < 0 || to < 0 {
		var rel []string
		for _, col := range m.Columns {
			rel = append(rel, col.Name)
		}
		return s.disagree(ns, fmt.Sprintf("the stream's columns (%s) do not follow from the columns the flow knows (%s) by any entry of the log", strings.Join(rel, ", "), columnNames(st.table)))
	}
	return s.applyLog(ctx, st, entries[from:to+1], send)
}

// disagree is the stop when the stream and the DDL log tell different
// stories: ferry trusts neither.
func (s *streamer) disagree(ns model.Namespace, what string) error {
	return &decodeError{fmt.Errorf("table %s: the change stream and ferry's DDL log disagree (%s): a schema change went unlogged (was event trigger %s disabled, or did it fail? see the server's log), so ferry cannot tell what changed; copy the table again: start the flow over with ferry sync --restart",
		ns, what, ddlLogTrigger)}
}

// applyLog applies the log's entries after the first (whose columns are
// the known table's) to the known table, and emits the change, if any,
// ahead of the changes that follow. Relations bound to the old columns are
// forgotten: the server sends the table's relation message again before its
// next change.
func (s *streamer) applyLog(ctx context.Context, st *streamTable, entries []logEntry, send func(pending) error) error {
	if len(entries) < 2 {
		return nil
	}
	ch, err := s.c.logChange(ctx, st.table, entries)
	if err != nil {
		return err
	}
	if ch == nil {
		return nil
	}
	return s.emitSchema(ctx, st, ch, send)
}

// emitSchema emits a schema change of st's table ahead of the changes that
// follow, and makes the stream read them by the new definition.
func (s *streamer) emitSchema(ctx context.Context, st *streamTable, ch *model.SchemaChange, send func(pending) error) error {
	if err := s.checkBinaryTable(ch.Table); err != nil {
		return err
	}
	if err := s.flushPartial(ctx, send); err != nil {
		return err
	}
	nst, err := s.c.newStreamTable(ctx, ch.Table)
	if err != nil {
		return err
	}
	old := *st
	s.changeTables(func() { *st = old })
	*st = *nst
	s.schemas = append(s.schemas, *ch)
	for id, r := range s.rels {
		if r.st == st {
			delete(s.rels, id)
		}
	}
	return nil
}

// logChange is the schema change from known, whose columns are the first
// entry's, to the last entry's, step by step by attnum: a column whose
// attnum stays under a new name is renamed, one whose attnum is gone is
// dropped, a new attnum is added (with the value the existing rows got,
// when the server stored one), a new type is a type change. nil when
// nothing the flow sees changed.
//
// A command that rewrote the rows (a default computed per row, a column's
// values converted: ALTER ... TYPE ... USING may change them, and the log
// cannot see the expression) makes it a change with Recopy: the engine
// copies the table again. Its added columns are then nullable, with no
// Filled: the rows the destination has get their values from the copy.
func (c *Conn) logChange(ctx context.Context, known *model.Table, entries []logEntry) (*model.SchemaChange, error) {
	ns := known.Namespace
	cur := known.Clone()
	renamed := map[string]string{} // new name -> name in known
	filled := map[string]any{}
	added := map[string]bool{}
	recopy := false
	for i := 1; i < len(entries); i++ {
		if entries[i].rewritten {
			recopy = true
		}
		before, after := entries[i-1].cols, entries[i].cols
		if err := c.loadLogTypes(ctx, after); err != nil {
			return nil, err
		}
		byNum := map[int]logColumn{}
		for _, b := range before {
			byNum[b.Attnum] = b
		}
		kept := map[int]bool{}
		var cols []model.Column
		for _, a := range after {
			typ, err := c.logType(ns, a)
			if err != nil {
				return nil, err
			}
			b, ok := byNum[a.Attnum]
			if !ok {
				col, val, rewrote, err := c.addedColumn(ns, a, typ)
				if err != nil {
					return nil, err
				}
				recopy = recopy || rewrote
				cols = append(cols, col)
				added[a.Name] = true
				if val != nil {
					filled[a.Name] = val
				}
				continue
			}
			kept[a.Attnum] = true
			j := slices.IndexFunc(cur.Columns, func(col model.Column) bool { return col.Name == b.Name })
			if j < 0 {
				return nil, &decodeError{fmt.Errorf("table %s: ferry's DDL log names column %s, which the flow does not know (entry %d)", ns, b.Name, entries[i-1].id)}
			}
			col := cur.Columns[j]
			if b.Name != a.Name {
				renameIn(cur, b.Name, a.Name)
				col.Name = a.Name
				switch {
				case added[b.Name]:
					delete(added, b.Name)
					added[a.Name] = true
					if v, ok := filled[b.Name]; ok {
						delete(filled, b.Name)
						filled[a.Name] = v
					}
				case renamed[b.Name] != "":
					renamed[a.Name] = renamed[b.Name]
					delete(renamed, b.Name)
				default:
					renamed[a.Name] = b.Name
				}
				if renamed[a.Name] == a.Name {
					delete(renamed, a.Name) // renamed back
				}
			}
			if !sameType(typ, col.Type) {
				col.Type = typ
			}
			cols = append(cols, col)
		}
		for _, b := range before {
			if kept[b.Attnum] {
				continue
			}
			if slices.Contains(cur.PrimaryKey, b.Name) {
				return nil, &decodeError{fmt.Errorf("table %s: primary key column %s was dropped at the source; ferry cannot follow a table that loses its key: start the flow over with ferry sync --restart", ns, b.Name)}
			}
			delete(renamed, b.Name)
			delete(filled, b.Name)
			delete(added, b.Name)
			cur.Indexes = slices.DeleteFunc(cur.Indexes, func(ix model.Index) bool { return slices.Contains(ix.Columns, b.Name) })
		}
		cur.Columns = cols
	}
	if sameTableColumns(known, cur) && !recopy {
		return nil, nil
	}
	ch := &model.SchemaChange{Table: cur, Recopy: recopy}
	if len(renamed) > 0 {
		ch.Renamed = renamed
	}
	if recopy {
		for i := range cur.Columns {
			if added[cur.Columns[i].Name] {
				cur.Columns[i].Nullable = true
			}
		}
	} else if len(filled) > 0 {
		ch.Filled = filled
	}
	return ch, nil
}

// addedColumn is a column the log shows added. The rows the table had get
// the value the server stored for them (attmissingval) and no change
// carries it; a column whose values the server computed per row (a
// volatile default, an identity, a generated column) rewrote the table,
// which no change carries either: rewrote says the table must be copied
// again (a log without ferry_ddl_rewrite's mark tells it this way).
func (c *Conn) addedColumn(ns model.Namespace, a logColumn, typ model.Type) (col model.Column, val any, rewrote bool, err error) {
	col = model.Column{Name: a.Name, Type: typ, Nullable: !a.NotNull, Generated: a.Generated}
	if a.Generated || a.Identity || a.VolatileDefault || a.HasDef && !a.HasMissing {
		return col, nil, true, nil
	}
	if !a.HasMissing || a.Missing == nil {
		return col, nil, false, nil
	}
	val, err = c.filledValue(ns, a, typ)
	return col, val, false, err
}

// filledValue decodes the value the rows a column was added to got
// (attmissingval); nil for NULL.
func (c *Conn) filledValue(ns model.Namespace, a logColumn, typ model.Type) (any, error) {
	text, err := missingValue(*a.Missing)
	if err != nil {
		return nil, &decodeError{fmt.Errorf("table %s, column %s: the value existing rows got: %w", ns, a.Name, err)}
	}
	if text == nil {
		return nil, nil
	}
	dec, err := decoderFor(typ)
	if err != nil {
		return nil, &decodeError{fmt.Errorf("table %s, column %s: %w", ns, a.Name, err)}
	}
	v, err := dec(*text)
	if err != nil {
		return nil, &decodeError{fmt.Errorf("table %s, column %s: the value existing rows got (%s): %w", ns, a.Name, *text, err)}
	}
	return v, nil
}

// missingValue reads the one element of attmissingval's text form, an
// array literal: {5}, {"a \"b\""}, {NULL}. nil for NULL.
func missingValue(s string) (*string, error) {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, fmt.Errorf("not an array literal: %q", s)
	}
	in := s[1 : len(s)-1]
	if strings.EqualFold(in, "NULL") {
		return nil, nil
	}
	if !strings.HasPrefix(in, `"`) {
		return &in, nil
	}
	var b strings.Builder
	for i := 1; i < len(in); i++ {
		switch in[i] {
		case '\\':
			i++
			if i < len(in) {
				b.WriteByte(in[i])
			}
		case '"':
			if i != len(in)-1 {
				return nil, fmt.Errorf("more than one element: %q", s)
			}
			out := b.String()
			return &out, nil
		default:
			b.WriteByte(in[i])
		}
	}
	return nil, fmt.Errorf("unterminated quote: %q", s)
}

// renameIn renames a column in the table's key and indexes.
func renameIn(t *model.Table, from, to string) {
	for i, k := range t.PrimaryKey {
		if k == from {
			t.PrimaryKey[i] = to
		}
	}
	for i := range t.Indexes {
		for j, n := range t.Indexes[i].Columns {
			if n == from {
				t.Indexes[i].Columns[j] = to
			}
		}
	}
}

// loadLogTypes loads the logged columns' types and spells each as
// discovery does, in ferry's session: the log's format_type ran with the
// trigger's search_path, which qualifies other names ("public.hstore").
func (c *Conn) loadLogTypes(ctx context.Context, cols []logColumn) error {
	oids := make([]uint32, len(cols))
	mods := make([]int32, len(cols))
	for i, col := range cols {
		oids[i], mods[i] = col.TypeOID, col.Typmod
	}
	if err := c.types.load(ctx, c.pool, oids); err != nil {
		return c.classify(err, "read column types")
	}
	rows, err := c.pool.Query(ctx, `SELECT format_type(o, m) FROM unnest($1::oid[], $2::int4[]) WITH ORDINALITY AS u(o, m, n) ORDER BY n`, oids, mods)
	if err != nil {
		return c.classify(err, "read type names")
	}
	defer rows.Close()
	for i := 0; rows.Next(); i++ {
		if i < len(cols) {
			if err := rows.Scan(&cols[i].FormatType); err != nil {
				return c.classify(err, "read type names")
			}
		}
	}
	if err := rows.Err(); err != nil {
		return c.classify(err, "read type names")
	}
	return nil
}

// logType is a logged column's canonical type, as discovery maps it.
func (c *Conn) logType(ns model.Namespace, a logColumn) (model.Type, error) {
	ct, err := c.types.mapType(a.TypeOID, a.Typmod, a.FormatType)
	if err != nil {
		return model.Type{}, &decodeError{fmt.Errorf("table %s, column %s: %w", ns, a.Name, err)}
	}
	return ct.typ, nil
}

// sameColumns reports whether a log entry shows the table's columns: the
// same names in the same order, of the same types.
func (c *Conn) sameColumns(ctx context.Context, t *model.Table, cols []logColumn) (bool, error) {
	if len(cols) != len(t.Columns) {
		return false, nil
	}
	for i, col := range cols {
		if col.Name != t.Columns[i].Name {
			return false, nil
		}
	}
	if err := c.loadLogTypes(ctx, cols); err != nil {
		return false, err
	}
	for i, col := range cols {
		typ, err := c.logType(t.Namespace, col)
		if err != nil {
			return false, err
		}
		if typ.String() != t.Columns[i].Type.String() || typ.Length != t.Columns[i].Type.Length {
			return false, nil
		}
	}
	return true, nil
}

// sameRelation reports whether a log entry shows a relation message's
// columns (pgoutput leaves generated columns out).
func sameRelation(cols []logColumn, m *pglogrepl.RelationMessage) bool {
	i := 0
	for _, col := range cols {
		if col.Generated {
			continue
		}
		if i >= len(m.Columns) || m.Columns[i].Name != col.Name || m.Columns[i].DataType != col.TypeOID || m.Columns[i].TypeModifier != col.Typmod {
			return false
		}
		i++
	}
	return i == len(m.Columns)
}

// sameTableColumns reports whether two definitions have the same columns
// (names and types) in the same order.
func sameTableColumns(a, b *model.Table) bool {
	if len(a.Columns) != len(b.Columns) {
		return false
	}
	for i := range a.Columns {
		x, y := a.Columns[i], b.Columns[i]
		if x.Name != y.Name || !sameType(x.Type, y.Type) {
			return false
		}
	}
	return true
}

// sameType reports whether two column types are the same for a
// destination: kind, precision, native name and length (varchar(10) to
// varchar(20) changes nothing else, and a destination still at 10 would
// refuse longer values).
func sameType(a, b model.Type) bool {
	return a.String() == b.String() && a.Native == b.Native && a.Length == b.Length
}

func columnNames(t *model.Table) string {
	names := make([]string, len(t.Columns))
	for i, col := range t.Columns {
		names[i] = col.Name
	}
	return strings.Join(names, ", ")
}
