package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pglogrepl"

	"github.com/ferrydb/ferry/model"
)

// relation is a relation message and how its columns map to the table's.
type relation struct {
	st       *streamTable // nil for a table outside the flow
	ns       model.Namespace
	colIdx   []int // for each table column, the relation column, or -1
	tableIdx []int // for each relation column, the table column, or -1
	// same says the relation's columns are the table's, in its order: a
	// decoded tuple is the row as it is.
	same   bool
	keyIdx []int // relation columns of the table's primary key
	names  []string
	// logCols, for ferry's DDL log, maps its columns to their places.
	logCols map[string]int
	// msg is the relation message, read again when the stream starts
	// following its table after it came (a table created at the source).
	msg *pglogrepl.RelationMessage
}

// relation records a relation message. When its columns differ from the
// table the flow knows, the table's new schema goes out with the next batch,
// ahead of the changes that use it.
func (s *streamer) relation(ctx context.Context, m *pglogrepl.RelationMessage, send func(pending) error) error {
	ns := model.Namespace{Schema: m.Namespace, Table: m.RelationName}
	r := &relation{ns: ns, msg: m}
	for _, col := range m.Columns {
		r.names = append(r.names, col.Name)
	}
	s.rels[m.RelationID] = r
	if ns == ddlLogNS {
		r.logCols = map[string]int{}
		for i, name := range r.names {
			r.logCols[name] = i
		}
		return nil
	}
	st := s.tables[ns]
	if st == nil {
		return nil
	}
	if err := s.checkBinary(ctx, m, st); err != nil {
		return err
	}
	d, err := s.c.relationSchema(ctx, st.table, m)
	if err != nil {
		return err
	}
	if d.changed && s.ddlLog {
		if err := s.relationByLog(ctx, st, m, send); err != nil {
			return err
		}
	} else if d.changed {
		recopy, err := s.c.byNameOnly(ctx, st.table, d, s.pub)
		if err != nil {
			return err
		}
		newTable := d.next
		if err := s.flushPartial(ctx, send); err != nil {
			return err
		}
		nst, err := s.c.newStreamTable(ctx, newTable)
		if err != nil {
			return err
		}
		old := *st
		s.changeTables(func() { *st = old })
		*st = *nst
		s.schemas = append(s.schemas, model.SchemaChange{Table: newTable, Recopy: recopy})
	}
	r.st = st
	r.colIdx = make([]int, len(st.table.Columns))
	for i, col := range st.table.Columns {
		r.colIdx[i] = -1
		for ri, name := range r.names {
			if name == col.Name {
				r.colIdx[i] = ri
				break
			}
		}
		if r.colIdx[i] < 0 && !col.Generated {
			return &decodeError{fmt.Errorf("table %s: column %s is missing from the change stream", ns, col.Name)}
		}
	}
	r.tableIdx = make([]int, len(r.names))
	for ri := range r.tableIdx {
		r.tableIdx[ri] = -1
	}
	r.same = len(r.names) == len(r.colIdx)
	for i, ri := range r.colIdx {
		if ri >= 0 {
			r.tableIdx[ri] = i
		}
		r.same = r.same && ri == i
	}
	r.keyIdx = make([]int, len(st.table.PrimaryKey))
	for j, k := range st.table.PrimaryKey {
		r.keyIdx[j] = -1
		for ri, name := range r.names {
			if name == k {
				r.keyIdx[j] = ri
			}
		}
	}
	return nil
}

// relationDiff is how a relation message's columns differ from the known
// table's, by name.
type relationDiff struct {
	changed        bool
	next           *model.Table // known columns keep their place, added ones come last
	added, dropped []string
	retyped        []string
}

// relationSchema compares a relation message with the known table by
// column name: known columns keep their place, dropped ones are gone,
// added ones come last.
func (c *Conn) relationSchema(ctx context.Context, known *model.Table, m *pglogrepl.RelationMessage) (relationDiff, error) {
	var oids []uint32
	for _, col := range m.Columns {
		oids = append(oids, col.DataType)
	}
	if err := c.types.load(ctx, c.pool, oids); err != nil {
		return relationDiff{}, c.classify(err, "read column types")
	}
	relCols := map[string]model.Type{}
	var order []string
	for _, col := range m.Columns {
		native, err := c.formatType(ctx, col.DataType, col.TypeModifier)
		if err != nil {
			return relationDiff{}, err
		}
		ct, err := c.types.mapType(col.DataType, col.TypeModifier, native)
		if err != nil {
			return relationDiff{}, &decodeError{fmt.Errorf("table %s, column %s: %w", known.Namespace, col.Name, err)}
		}
		relCols[col.Name] = ct.typ
		order = append(order, col.Name)
	}
	d := relationDiff{next: known.Clone()}
	d.next.Columns = d.next.Columns[:0]
	have := map[string]bool{}
	for _, col := range known.Columns {
		have[col.Name] = true
		if col.Generated {
			d.next.Columns = append(d.next.Columns, col)
			continue
		}
		t, ok := relCols[col.Name]
		if !ok {
			d.changed = true
			d.dropped = append(d.dropped, col.Name)
			continue
		}
		if !sameType(t, col.Type) {
			d.changed = true
			d.retyped = append(d.retyped, col.Name)
			col.Type = t
		}
		d.next.Columns = append(d.next.Columns, col)
	}
	for _, name := range order {
		if !have[name] {
			d.changed = true
			d.added = append(d.added, name)
			d.next.Columns = append(d.next.Columns, model.Column{Name: name, Type: relCols[name], Nullable: true})
		}
	}
	return d, nil
}

// byNameOnly checks a change told by column names alone (no DDL log) for
// what names cannot tell: a column gone while another appeared may be a
// rename, whose values a drop and an add would lose, and stops; a column
// added with a default (or as an identity) gave the rows the source had
// values no change carries, constant or computed per row (the catalog,
// read now, cannot say which value), and a type change may have converted
// the values with USING: recopy says the table must be copied again,
// which gives every row the source's value whatever it was.
func (c *Conn) byNameOnly(ctx context.Context, known *model.Table, d relationDiff, pub string) (recopy bool, err error) {
	if len(d.added) > 0 && len(d.dropped) > 0 {
		return false, &decodeError{fmt.Errorf("table %s: column(s) %s vanished and %s appeared in one schema change; without its DDL log ferry cannot tell a rename (whose values must be kept) from a drop and an add, so it stops. To have the log, run the flow with a role that may create event triggers (superuser, or rds_superuser / cloudsqlsuperuser on a managed service), or, with publication=, ALTER PUBLICATION %s ADD TABLE _ferry.ddl_log; then start the flow over with ferry sync --restart",
			known.Namespace, strings.Join(d.dropped, ", "), strings.Join(d.added, ", "), showIdent(pub))}
	}
	if len(d.retyped) > 0 {
		return true, nil
	}
	if len(d.added) == 0 {
		return false, nil
	}
	var withDefault []string
	rows, err := c.pool.Query(ctx, `SELECT a.attname FROM pg_attribute a
		WHERE a.attrelid = to_regclass($1) AND a.attname = ANY($2) AND (a.atthasdef OR a.atthasmissing OR a.attidentity <> '')`,
		qualified(known.Namespace), d.added)
	if err != nil {
		return false, c.classify(err, "read added columns of "+known.Namespace.String())
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err == nil {
			withDefault = append(withDefault, n)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, c.classify(err, "read added columns of "+known.Namespace.String())
	}
	return len(withDefault) > 0, nil
}

// formatType spells a type with its modifier as the server does.
func (c *Conn) formatType(ctx context.Context, oid uint32, typmod int32) (string, error) {
	var s string
	if err := c.pool.QueryRow(ctx, `SELECT format_type($1, NULLIF($2, -1))`, oid, typmod).Scan(&s); err != nil {
		return "", c.classify(err, "read type name")
	}
	return s, nil
}

func (c *Conn) newStreamTable(ctx context.Context, t *model.Table) (*streamTable, error) {
	decs, err := tableDecoders(t)
	if err != nil {
		return nil, err
	}
	st := &streamTable{table: t, decs: decs, bins: make([]binDecoder, len(t.Columns))}
	for i, col := range t.Columns {
		st.bins[i] = streamBinDecoder(col.Type)
	}
	for _, col := range t.Columns {
		if col.Generated {
			if st.gen, err = c.loadGenerated(ctx, t); err != nil {
				return nil, err
			}
			break
		}
	}
	return st, nil
}
