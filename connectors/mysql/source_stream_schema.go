package mysql

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/ferrydb/ferry/model"
)

// streamTable is a table of the flow as the stream decodes it.
type streamTable struct {
	table  *model.Table // the definition the engine knows
	codecs []*codec
	keyIdx []int
	// minCols is the column count of the oldest definition whose rows the
	// current one decodes: columns past it were appended since (found by
	// reload, when the stream was handed a definition older than its
	// position), so an older row holds a prefix of the columns and the rest
	// were NULL. An ALTER the stream follows (alter) sets it to the new
	// column count: every later row has them all.
	minCols int
	// created: the stream saw the table created (createTable), and a
	// row event's columns must be of the types it was created with.
	created bool
}

// tableMap is what a TABLE_MAP event announced for a table id.
type tableMap struct {
	ns model.Namespace
	st *streamTable // nil: not in the flow
}

func lowerNS(ns model.Namespace) model.Namespace {
	return model.Namespace{Schema: strings.ToLower(ns.Schema), Table: strings.ToLower(ns.Table)}
}

// newStreamTable prepares the decoding of table t, whose current definition
// (for the columns' character sets) is cur, nil when the table is gone.
func (c *Conn) newStreamTable(t *model.Table, cur *tableInfo) (*streamTable, error) {
	st := &streamTable{table: t, keyIdx: t.KeyIndexes(), minCols: len(t.Columns)}
	for _, col := range t.Columns {
		charset := ""
		if cur != nil {
			if i := cur.table.ColumnIndex(col.Name); i >= 0 {
				charset = cur.charsets[i]
			}
		}
		if col.Type.Kind == model.KindUnknown {
			return nil, fmt.Errorf("table %s, column %s: type %s is not supported", t.Namespace, col.Name, col.Type.Native)
		}
		cd, err := newCodec(col, charset, c.opts.zeroNull)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", t.Namespace, err)
		}
		st.codecs = append(st.codecs, cd)
	}
	return st, nil
}

// flow finds a table of the flow by name.
func (s *stream) flow(ns model.Namespace) *streamTable {
	if st := s.tables[ns]; st != nil {
		return st
	}
	if s.c.server.lowerCase != 0 {
		return s.lower[lowerNS(ns)]
	}
	return nil
}

func (s *stream) tableMap(ctx context.Context, e *replication.TableMapEvent, h *replication.EventHeader) error {
	ns := model.Namespace{Schema: string(e.Schema), Table: string(e.Table)}
	tm := &tableMap{ns: ns, st: s.flow(ns)}
	s.ids[e.TableID] = tm
	if tm.st == nil {
		return nil
	}
	if tm.st.created {
		return s.createdFits(e, tm.st, h)
	}
	if n := int(e.ColumnCount); n >= tm.st.minCols && n <= len(tm.st.table.Columns) && namesMatch(e, tm.st.table) {
		return nil
	}
	// The table has other columns than the flow knows: a column was added
	// before this point (and the flow resumed after the ALTER), or the
	// table changed in a way ferry cannot follow.
	return s.reload(ctx, tm.st, int(e.ColumnCount), fmt.Sprintf("the binlog at %s has rows of %d columns, the flow knows %d", s.at(h), e.ColumnCount, len(tm.st.table.Columns)))
}

// namesMatch compares the column names a TABLE_MAP carries
// (binlog_row_metadata=FULL) with the table's.
func namesMatch(e *replication.TableMapEvent, t *model.Table) bool {
	names := e.ColumnNameString()
	if len(names) == 0 {
		return true
	}
	for i, n := range names {
		if i >= len(t.Columns) || n != t.Columns[i].Name {
			return false
		}
	}
	return true
}

// reload re-reads a flow table's definition when row events have other
// columns than the stream's definition, which is then older than the
// stream's position (the ALTERs came before it, so the stream never read
// them): it must only add columns (nullable, without a default, not
// generated) to what the flow knows, and have wantCols columns (0: any).
func (s *stream) reload(ctx context.Context, st *streamTable, wantCols int, why string) error {
	old := st.table
	infos, err := s.c.describeTables(ctx, []*model.Table{old})
	if err != nil {
		return err // the server may be going away: retried
	}
	cur := infos[old.Namespace]
	if cur == nil {
		return fatal(fmt.Errorf("table %s: %s, and the table no longer exists; restart the flow (ferry sync --restart)", old.Namespace, why))
	}
	if err := cur.problem(); err != nil {
		return fatal(err)
	}
	nt := cur.table
	if wantCols > 0 && len(nt.Columns) != wantCols {
		return fatal(fmt.Errorf("table %s: %s, and the table now has %d: its definition changed again since, so ferry cannot tell which columns those rows hold; restart the flow (ferry sync --restart)", old.Namespace, why, len(nt.Columns)))
	}
	var problems []string
	for _, oc := range old.Columns {
		i := nt.ColumnIndex(oc.Name)
		if i < 0 {
			problems = append(problems, fmt.Sprintf("column %s was dropped or renamed", oc.Name))
			continue
		}
		nc := nt.Columns[i]
		if nc.Type.Native != oc.Type.Native {
			problems = append(problems, fmt.Sprintf("column %s changed type from %s to %s", oc.Name, oc.Type.Native, nc.Type.Native))
		}
		if nc.Nullable != oc.Nullable {
			problems = append(problems, fmt.Sprintf("column %s changed nullability", oc.Name))
		}
	}
	if strings.Join(nt.PrimaryKey, "\x00") != strings.Join(old.PrimaryKey, "\x00") {
		problems = append(problems, fmt.Sprintf("primary key changed from (%s) to (%s)", strings.Join(old.PrimaryKey, ", "), strings.Join(nt.PrimaryKey, ", ")))
	}
	for i, nc := range nt.Columns {
		if old.ColumnIndex(nc.Name) >= 0 {
			continue
		}
		switch {
		case cur.generated[i]:
			problems = append(problems, fmt.Sprintf("added column %s is generated: the rows that existed got values no binlog event carries", nc.Name))
		case cur.defaults[i] != nil:
			problems = append(problems, fmt.Sprintf("added column %s has the default %s: the rows that existed got it without a binlog event", nc.Name, *cur.defaults[i]))
		case !nc.Nullable:
			problems = append(problems, fmt.Sprintf("added column %s is NOT NULL: the rows that existed got a value without a binlog event", nc.Name))
		}
	}
	if len(problems) > 0 {
		return fatal(fmt.Errorf("table %s: %s; the flow's definition of the table is older than this point of the binlog (the statements that changed it came before the flow's position), so ferry can only follow nullable columns appended since without a default, and the table changed otherwise: %s; the flow stops so nothing wrong is written: recreate the destination table and restart the flow (ferry sync --restart)", old.Namespace, why, strings.Join(problems, "; ")))
	}
	if len(nt.Columns) == len(old.Columns) {
		return nil // nothing new (a replayed ALTER the flow already followed)
	}
	fresh, err := s.c.newStreamTable(nt, cur)
	if err != nil {
		return fatal(err)
	}
	fresh.minCols = len(nt.Columns)
	appended := true
	for i, oc := range old.Columns {
		if nt.Columns[i].Name != oc.Name {
			appended = false
		}
	}
	if appended {
		fresh.minCols = st.minCols
	}
	*st = *fresh
	s.schemas = append(s.schemas, model.SchemaChange{Table: nt.Clone()})
	return nil
}
