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
}

type foldEntry struct {
	key    string
	delete bool
	keyRow model.Row // key values in key order (for deletes)
	row    model.Row // the new image (for upserts)
}

func newFolder() *folder { return &folder{tables: map[model.Namespace]*foldTable{}} }

func (f *folder) table(tr *tableRun) *foldTable {
	ft := f.tables[tr.src.Namespace]
	if ft == nil {
		ft = &foldTable{tr: tr, entries: map[string]*foldEntry{}}
		f.tables[tr.src.Namespace] = ft
		f.order = append(f.order, ft)
	}
	return ft
}

func (f *folder) keyString(tr *tableRun, keyVals model.Row) (string, error) {
	var err error
	f.buf = f.buf[:0]
	for i, idx := range tr.keyIdx {
		if f.buf, err = model.AppendCanonical(f.buf, tr.src.Columns[idx].Type, keyVals[i]); err != nil {
			return "", fmt.Errorf("key column %s: %w", tr.src.Columns[idx].Name, err)
		}
	}
	return string(f.buf), nil
}

func keyValues(tr *tableRun, row model.Row) model.Row {
	k := make(model.Row, len(tr.keyIdx))
	for i, idx := range tr.keyIdx {
		k[i] = row[idx]
	}
	return k
}

// add folds one change in.
func (f *folder) add(tr *tableRun, c *model.Change) error {
	if tr.fullRow() {
		return f.addRow(tr, c)
	}
	f.changes++
	ft := f.table(tr)
	if c.Op == model.OpDelete || (c.Op == model.OpUpdate && c.Key != nil) {
		oldKey := c.Key
		if oldKey == nil {
			return fmt.Errorf("delete on %s without a key", tr.src.Namespace)
		}
		ks, err := f.keyString(tr, oldKey)
		if err != nil {
			return err
		}
		if c.Op == model.OpDelete {
			ft.put(ks, &foldEntry{delete: true, keyRow: oldKey})
			return nil
		}
		// An update that moved the key deletes the old key, unless the new
		// image has the same key (some sources always send the old key).
		newKey := keyValues(tr, c.Row)
		nks, err := f.keyString(tr, newKey)
		if err != nil {
			return err
		}
		if nks != ks {
			ft.put(ks, &foldEntry{delete: true, keyRow: oldKey})
		}
	}
	if c.Row == nil {
		return fmt.Errorf("%s on %s without a row image", c.Op, tr.src.Namespace)
	}
	if len(c.Row) != len(tr.src.Columns) {
		return fmt.Errorf("%s on %s: row has %d values, the table has %d columns", c.Op, tr.src.Namespace, len(c.Row), len(tr.src.Columns))
	}
	ks, err := f.keyString(tr, keyValues(tr, c.Row))
	if err != nil {
		return err
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
	ft.put(ks, &foldEntry{row: row})
	return nil
}

// addRow appends a change of a table without a primary key: it is not
// folded, since only the number of identical rows tells them apart.
func (f *folder) addRow(tr *tableRun, c *model.Change) error {
	f.changes++
	ft := f.table(tr)
	n := len(tr.src.Columns)
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
				return fmt.Errorf("%s on %s (no primary key): column %s came without its value; the table needs a full replica identity", c.Op, tr.src.Namespace, tr.src.Columns[i].Name)
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
// without a primary key.
const fullRowWriter = 0

// split shards the folded batch across n writers by key hash: a key always
// goes to the same writer, so changes to one key stay in order across batches.
// Tables without a primary key go whole to writer 0, in order; their
// at-most-once bookkeeping (fullRowWriter) relies on it.
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
			if n > 1 {
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

func (f *folder) empty() bool { return f.changes == 0 }
