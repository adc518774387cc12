package mysql

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/model"
)

// renameTables follows a RENAME TABLE of flow tables. A flow table that
// holds another table afterwards, such as the shadow table an online schema
// change tool (gh-ost, pt-online-schema-change) filled outside the flow and
// swaps in, is emitted with its new definition and Recopy: its rows never
// streamed, so the engine copies the table again while the stream goes on.
// A flow table renamed away with nothing in its place stops the flow,
// unless the flow follows tables created and dropped (NewTables): it is
// then dropped from its name. A table renamed to a name NewTables
// selects, with no flow table there before, is new to the flow
// (createTable), as if created there.
func (s *stream) renameTables(ctx context.Context, renames [][2]model.Namespace, where string) error {
	norm := func(ns model.Namespace) model.Namespace {
		if s.c.server.lowerCase != 0 {
			return lowerNS(ns)
		}
		return ns
	}
	// holds maps a name to the table it names after the renames so far.
	holds := map[model.Namespace]model.Namespace{}
	for _, r := range renames {
		for _, ns := range r {
			if _, ok := holds[norm(ns)]; !ok {
				holds[norm(ns)] = ns
			}
		}
	}
	movedTo := map[model.Namespace]model.Namespace{}
	for _, r := range renames {
		from, to := norm(r[0]), norm(r[1])
		holds[to] = holds[from]
		delete(holds, from)
		movedTo[norm(holds[to])] = r[1]
	}
	done := map[*streamTable]bool{}
	for _, r := range renames {
		for _, ns := range r {
			t := s.flow(ns)
			if t == nil || done[t] {
				continue
			}
			done[t] = true
			was, ok := holds[norm(t.table.Namespace)]
			switch {
			case !ok && s.newTables != nil:
				// The flow follows tables that come and go: the table
				// is gone from its name (Dropped), and is new under
				// the other one if that is selected (below).
				s.dropTables([]model.Namespace{t.table.Namespace}, nil, where)
			case !ok:
				return fatal(fmt.Errorf("table %s was renamed to %s at %s; ferry does not follow a table rename, so the flow stops here and writes nothing wrong: restart the flow with the new name in its selection (ferry sync --restart)", t.table.Namespace, movedTo[norm(t.table.Namespace)], where))
			case norm(was) != norm(t.table.Namespace):
				if err := s.swap(ctx, t, was, where); err != nil {
					return err
				}
			}
		}
	}
	for _, r := range renames {
		to := r[1]
		was, ok := holds[norm(to)]
		if !ok || s.flow(was) != nil {
			continue // renamed on again, or a flow table
		}
		if err := s.createTable(ctx, to, &createTable{like: &to}, "", nil, where); err != nil {
			return err
		}
	}
	return nil
}

// swap follows a flow table replaced by table was: the new definition is
// the server's (the statements that shaped was, CREATE TABLE ... LIKE and
// ALTERs or a whole CREATE TABLE, are not replayed), where a column the
// flow did not know, or knew nullable, stays nullable; the stream decodes
// the table's later rows by it. A row event of the table that does not fit
// it (the table changed again before the stream got here) stops the flow
// at its TABLE_MAP.
func (s *stream) swap(ctx context.Context, st *streamTable, was model.Namespace, where string) error {
	old := st.table
	stop := func(format string, a ...any) error {
		return fatal(fmt.Errorf("table %s was replaced by table %s at %s (an online schema change's table swap: gh-ost, pt-online-schema-change): %s; the flow stops here and writes nothing wrong: recreate the destination table to match and restart the flow (ferry sync --restart)", old.Namespace, was, where, fmt.Sprintf(format, a...)))
	}
	infos, err := s.c.describeTables(ctx, []*model.Table{old})
	if err != nil {
		return err // the server may be going away: retried
	}
	cur := infos[old.Namespace]
	if cur == nil {
		return stop("the table no longer exists on the server (the stream is behind it), so ferry cannot read the definition it got")
	}
	if err := cur.problem(); err != nil {
		return stop("%v", err)
	}
	nt := cur.table.Clone()
	nt.Namespace = old.Namespace
	for i, c := range nt.Columns {
		if j := columnIndexFold(old, c.Name); j < 0 || old.Columns[j].Nullable {
			// Its values come with the copy; until then the rows the
			// destination has lack them or may hold NULL (and a swap
			// replayed after a resume finds the column it made nullable).
			nt.Columns[i].Nullable = true
		}
	}
	if len(old.PrimaryKey) == 0 {
		return fatal(fmt.Errorf("table %s was replaced by table %s at %s (an online schema change's table swap: gh-ost, pt-online-schema-change): its rows were written outside the flow, so the table must be copied again, and a table without a primary key cannot be copied again while changes stream; the flow stops here and writes nothing wrong: %s", old.Namespace, was, where, keyless))
	}
	if strings.Join(nt.PrimaryKey, "\x00") != strings.Join(old.PrimaryKey, "\x00") {
		return stop("its primary key is (%s), the flow's was (%s), and ferry cannot follow a key change", strings.Join(nt.PrimaryKey, ", "), strings.Join(old.PrimaryKey, ", "))
	}
	fresh, err := s.c.newStreamTable(nt, cur)
	if err != nil {
		return stop("%v", err)
	}
	*st = *fresh
	s.schemas = append(s.schemas, model.SchemaChange{Table: nt.Clone(), Recopy: true})
	s.c.log.Info("mysql: a flow table was swapped for another; it is copied again", "table", old.Namespace.String(), "replaced_by", was.String(), "at", where)
	return nil
}

func columnIndexFold(t *model.Table, name string) int {
	for i, c := range t.Columns {
		if strings.EqualFold(c.Name, name) {
			return i
		}
	}
	return -1
}
