package engine

import (
	"testing"

	"github.com/ferrydb/ferry/model"
)

func foldTestTable() *tableRun {
	t := &model.Table{Namespace: model.Namespace{Schema: "s", Table: "t"}, PrimaryKey: []string{"id"},
		Columns: []model.Column{{Name: "id", Type: model.Type{Kind: model.KindInt64}}, {Name: "v", Type: model.Type{Kind: model.KindText}}, {Name: "big", Type: model.Type{Kind: model.KindText}}}}
	return &tableRun{src: t, dst: t, keyIdx: t.KeyIndexes()}
}

// foldChanges makes changes of foldTestTable's table: an insert, an
// update, a delete, an update that moves a row to another key.
type foldChanges struct{ tr *tableRun }

func (f foldChanges) ins(id int64, v string) model.Change {
	return model.Change{Op: model.OpInsert, Table: f.tr.src.Namespace, Row: model.Row{id, v, "b"}}
}

func (f foldChanges) upd(id int64, v string, big any) model.Change {
	return model.Change{Op: model.OpUpdate, Table: f.tr.src.Namespace, Row: model.Row{id, v, big}}
}

func (f foldChanges) del(id int64) model.Change {
	return model.Change{Op: model.OpDelete, Table: f.tr.src.Namespace, Key: model.Row{id}}
}

func (f foldChanges) move(from, to int64, v string) model.Change {
	return model.Change{Op: model.OpUpdate, Table: f.tr.src.Namespace, Key: model.Row{from}, Row: model.Row{to, v, "b"}}
}

// folded folds changes of tr into a new folder.
func folded(t *testing.T, tr *tableRun, changes []model.Change) *folder {
	t.Helper()
	f := newFolder()
	for i := range changes {
		if err := f.add(tr, &changes[i]); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func TestFoldKeepsLastStatePerKey(t *testing.T) {
	tr := foldTestTable()
	fc := foldChanges{tr}
	ins, upd, del, move := fc.ins, fc.upd, fc.del, fc.move
	cases := []struct {
		name    string
		changes []model.Change
		upserts map[int64]string // id -> v
		deletes []int64
		big     map[int64]any
	}{
		{"insert then updates", []model.Change{ins(1, "a"), upd(1, "b", "x"), upd(1, "c", "y")}, map[int64]string{1: "c"}, nil, map[int64]any{1: "y"}},
		{"insert then delete", []model.Change{ins(1, "a"), del(1)}, nil, []int64{1}, nil},
		{"delete then insert", []model.Change{del(1), ins(1, "z")}, map[int64]string{1: "z"}, nil, nil},
		{"independent keys", []model.Change{ins(1, "a"), ins(2, "b"), del(3)}, map[int64]string{1: "a", 2: "b"}, []int64{3}, nil},
		{"key moved", []model.Change{ins(1, "a"), move(1, 2, "m")}, map[int64]string{2: "m"}, []int64{1}, nil},
		{"unchanged keeps the batch's earlier value", []model.Change{upd(1, "a", "early"), upd(1, "b", model.Unchanged)}, map[int64]string{1: "b"}, nil, map[int64]any{1: "early"}},
		{"unchanged without earlier value stays unchanged", []model.Change{upd(1, "b", model.Unchanged)}, map[int64]string{1: "b"}, nil, map[int64]any{1: model.Unchanged}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := folded(t, tr, c.changes)
			for _, n := range []int{1, 3} {
				got := map[int64]string{}
				var dels []int64
				seen := map[int64]int{}
				for _, b := range f.split(n) {
					for _, tc := range b.Tables {
						for _, r := range tc.Upserts {
							got[r[0].(int64)] = r[1].(string)
							seen[r[0].(int64)]++
							if want, ok := c.big[r[0].(int64)]; ok && r[2] != want {
								t.Errorf("big of %d = %v, want %v", r[0], r[2], want)
							}
						}
						for _, k := range tc.Deletes {
							dels = append(dels, k[0].(int64))
							seen[k[0].(int64)]++
						}
					}
				}
				for id, n := range seen {
					if n > 1 {
						t.Errorf("key %d appears %d times after folding", id, n)
					}
				}
				if len(got) != len(c.upserts) {
					t.Errorf("writers=%d: upserts %v, want %v", n, got, c.upserts)
				}
				for id, v := range c.upserts {
					if got[id] != v {
						t.Errorf("writers=%d: upsert %d = %q, want %q", n, id, got[id], v)
					}
				}
				if len(dels) != len(c.deletes) {
					t.Errorf("writers=%d: deletes %v, want %v", n, dels, c.deletes)
				}
			}
		})
	}
}

func TestSplitSendsAKeyToOneWriter(t *testing.T) {
	tr := foldTestTable()
	writerOf := map[int64]int{}
	for round := 0; round < 3; round++ {
		f := newFolder()
		for id := int64(0); id < 500; id++ {
			c := model.Change{Op: model.OpUpdate, Table: tr.src.Namespace, Row: model.Row{id, "v", "b"}}
			if err := f.add(tr, &c); err != nil {
				t.Fatal(err)
			}
		}
		for w, b := range f.split(4) {
			for _, tc := range b.Tables {
				for _, r := range tc.Upserts {
					id := r[0].(int64)
					if prev, ok := writerOf[id]; ok && prev != w {
						t.Fatalf("key %d went to writer %d, earlier to %d: per-key order would break", id, w, prev)
					}
					writerOf[id] = w
				}
			}
		}
	}
	counts := map[int]int{}
	for _, w := range writerOf {
		counts[w]++
	}
	if len(counts) != 4 {
		t.Fatalf("keys spread over %d writers, want 4: %v", len(counts), counts)
	}
}
