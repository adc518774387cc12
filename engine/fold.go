package engine

import (
	"fmt"
	"hash/maphash"

	"github.com/ferrydb/ferry/model"
)

// folder accumulates changes into one apply batch, keeping only the last
// state of each key: a key's changes inside a batch collapse to one upsert or
// one delete, so writers never see two changes to one key in one batch and
// the order between keys stops mattering.
type folder struct {
	tables  map[model.Namespace]*foldTable
	order   []*foldTable
	changes int // changes taken in, before folding
	buf     []byte
}

type foldTable struct {
	tr      *tableRun
	entries map[string]*foldEntry
	order   []*foldEntry
	rows    []model.RowChange // a full-row table's changes, unfolded, in order
	// partial: this run of an in-order table holds an update with
	// unchanged values, and ends there.
	partial bool
}

type foldEntry struct {
	key    string
	delete bool
	keyRow model.Row // key values in key order (for deletes)
	row    model.Row // the new image (for upserts)
}

func newFolder() *folder { return &folder{tables: map[model.Namespace]*foldTable{}} }

// table returns the table's folded changes; for an in-order table, its
// current run.
func (f *folder) table(tr *tableRun) *foldTable {
	if ft := f.tables[tr.src.Namespace]; ft != nil {
		return ft
	}
	return f.newRun(tr)
}

func (f *folder) keyString(tr *tableRun, keyVals model.Row) (string, error) {
	var s string
	var err error
	f.buf, s, err = canonicalKey(f.buf[:0], tr, keyVals)
	return s, err
}

// canonicalKey is a key's values in their canonical form, appended to buf
// (returned for reuse) and as a string.
func canonicalKey(buf []byte, tr *tableRun, keyVals model.Row) ([]byte, string, error) {
	var err error
	for i, idx := range tr.keyIdx {
		if buf, err = model.AppendCanonical(buf, tr.dst.Columns[idx].Type, keyVals[i]); err != nil {
			return buf, "", fmt.Errorf("key column %s: %w", tr.dst.Columns[idx].Name, err)
		}
	}
	return buf, string(buf), nil
}

func keyValues(tr *tableRun, row model.Row) model.Row {
	k := make(model.Row, len(tr.keyIdx))
	for i, idx := range tr.keyIdx {
		k[i] = row[idx]
	}
	return k
}

// add folds one change in. A table applied in order (tableRun.unique) is
// folded in runs: a change whose key the current run holds already, or
// that follows an update leaving values unchanged, starts a new run, so
// each run's rows can be applied together and the runs one after the other
// in the source's order.
func (f *folder) add(tr *tableRun, c *model.Change) error {
	if tr.fullRow() {
		return f.addRow(tr, c)
	}
	f.changes++
	var oldKs string
	moved := false // the change deletes the old key
	if c.Op == model.OpDelete || (c.Op == model.OpUpdate && c.Key != nil) {
		if c.Key == nil {
			return fmt.Errorf("delete on %s without a key", tr.src.Namespace)
		}
		var err error
		if oldKs, err = f.keyString(tr, c.Key); err != nil {
			return err
		}
		moved = true
	}
	var ks string
	if c.Op != model.OpDelete {
		if c.Row == nil {
			return fmt.Errorf("%s on %s without a row image", c.Op, tr.src.Namespace)
		}
		if len(c.Row) != len(tr.dst.Columns) {
			return fmt.Errorf("%s on %s: row has %d values, the table has %d columns", c.Op, tr.src.Namespace, len(c.Row), len(tr.dst.Columns))
		}
		var err error
		if ks, err = f.keyString(tr, keyValues(tr, c.Row)); err != nil {
			return err
		}
		// An update that keeps its key is no delete (some sources always
		// send the old key).
		moved = moved && ks != oldKs
	}
	ft := f.table(tr)
	if tr.unique && ft.endsRun(c.Op != model.OpDelete, ks, moved, oldKs) {
		ft = f.newRun(tr)
	}
	if moved {
		ft.put(oldKs, &foldEntry{delete: true, keyRow: c.Key})
	}
	if c.Op == model.OpDelete {
		return nil
	}
	row := c.Row
	if prev, ok := ft.entries[ks]; ok && !prev.delete {
		// Unchanged columns keep the value an earlier change in this batch set.
		var merged model.Row
		for i, v := range c.Row {
			if model.IsUnchanged(v) {
				if merged == nil {
					merged = append(model.Row(nil), c.Row...)
				}
				merged[i] = prev.row[i]
			}
		}
		if merged != nil {
			row = merged
		}
	}
	if tr.unique && hasUnchanged(row) {
		ft.partial = true
	}
	ft.put(ks, &foldEntry{row: row})
	return nil
}

func hasUnchanged(row model.Row) bool {
	for _, v := range row {
		if model.IsUnchanged(v) {
			return true
		}
	}
	return false
}

// endsRun tells whether a change must start a new run of an in-order
// table: the run holds one of its keys already, or an update with
// unchanged values, which the destination applies after the run's whole
// rows, out of order with anything after it.
func (ft *foldTable) endsRun(upsert bool, ks string, moved bool, oldKs string) bool {
	if ft.partial {
		return true
	}
	if _, ok := ft.entries[ks]; ok && upsert {
		return true
	}
	_, ok := ft.entries[oldKs]
	return moved && ok
}

// newRun starts a new run of an in-order table, after the one in progress.
func (f *folder) newRun(tr *tableRun) *foldTable {
	ft := &foldTable{tr: tr, entries: map[string]*foldEntry{}}
	f.tables[tr.src.Namespace] = ft
	f.order = append(f.order, ft)
	return ft
}

// addRow appends a change of a table without a primary key: it is not
// folded, since only the number of identical rows tells them apart.
func (f *folder) addRow(tr *tableRun, c *model.Change) error {
	f.changes++
	ft := f.table(tr)
	n := len(tr.dst.Columns)
	rc := model.RowChange{}
	if c.Op != model.OpInsert {
		if len(c.Key) != n {
			return fmt.Errorf("%s on %s (no primary key): the old row has %d values, the table has %d columns", c.Op, tr.src.Namespace, len(c.Key), n)
		}
		rc.Old = c.Key
	}
	if c.Op != model.OpDelete {
		if len(c.Row) != n {
			return fmt.Errorf("%s on %s: row has %d values, the table has %d columns", c.Op, tr.src.Namespace, len(c.Row), n)
		}
		rc.New = c.Row
	}
	for _, r := range []model.Row{rc.Old, rc.New} {
		for i, v := range r {
			if model.IsUnchanged(v) {
				return fmt.Errorf("%s on %s (no primary key): column %s came without its value; the table needs a full replica identity", c.Op, tr.src.Namespace, tr.dst.Columns[i].Name)
			}
		}
	}
	ft.rows = append(ft.rows, rc)
	return nil
}

func (ft *foldTable) put(key string, e *foldEntry) {
	e.key = key
	if prev, ok := ft.entries[key]; ok {
		*prev = *e
		return
	}
	ft.entries[key] = e
	ft.order = append(ft.order, e)
}

var shardSeed = maphash.MakeSeed()

// fullRowWriter is the writer that applies every change of the tables
// applied in order (tableRun.ordered).
const fullRowWriter = 0

// split shards the folded batch across n writers by key hash: a key always
// goes to the same writer, so changes to one key stay in order across batches.
// Tables applied in order (without a primary key, or with unique
// constraints besides it) go whole to writer 0, in order, an in-order
// table's runs one after the other; their at-most-once bookkeeping
// (fullRowWriter) relies on it.
func (f *folder) split(n int) []*model.ApplyBatch {
	out := make([]*model.ApplyBatch, n)
	for i := range out {
		out[i] = &model.ApplyBatch{}
	}
	for _, ft := range f.order {
		if ft.tr.fullRow() {
			if len(ft.rows) > 0 {
				out[fullRowWriter].Tables = append(out[fullRowWriter].Tables, &model.TableChanges{Table: ft.tr.dst, RowChanges: ft.rows})
			}
			continue
		}
		per := make([]*model.TableChanges, n)
		for _, e := range ft.order {
			w := 0
			if n > 1 && !ft.tr.unique {
				w = int(maphash.String(shardSeed, e.key) % uint64(n))
			}
			tc := per[w]
			if tc == nil {
				tc = &model.TableChanges{Table: ft.tr.dst}
				per[w] = tc
				out[w].Tables = append(out[w].Tables, tc)
			}
			if e.delete {
				tc.Deletes = append(tc.Deletes, e.keyRow)
			} else {
				tc.Upserts = append(tc.Upserts, e.row)
			}
		}
	}
	return out
}

// hasOrdered tells whether the batch holds changes of tables applied in
// order.
func (f *folder) hasOrdered() bool {
	for _, ft := range f.order {
		if ft.tr.ordered() && (len(ft.rows) > 0 || len(ft.order) > 0) {
			return true
		}
	}
	return false
}

func (f *folder) empty() bool { return f.changes == 0 }
