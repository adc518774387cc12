package engine

import (
	"fmt"
	"testing"

	"github.com/ferrydb/ferry/model"
)

// uniqueDest plays a destination table with a unique column v besides the
// key id, applying a share the way the postgres applier does (per
// TableChanges: deletes, then whole-row upserts in order, then updates
// with unchanged values), and fails on a moment where two rows hold one v.
type uniqueDest struct {
	rows map[int64][2]any // id -> v, big
}

func (d *uniqueDest) apply(t *testing.T, tc *model.TableChanges) {
	t.Helper()
	for _, k := range tc.Deletes {
		delete(d.rows, k[0].(int64))
	}
	var partial []model.Row
	for _, r := range tc.Upserts {
		if model.IsUnchanged(r[2]) {
			partial = append(partial, r)
			continue
		}
		d.put(t, r[0].(int64), r[1], r[2])
	}
	for _, r := range partial {
		d.put(t, r[0].(int64), r[1], d.rows[r[0].(int64)][1])
	}
}

func (d *uniqueDest) put(t *testing.T, id int64, v, big any) {
	t.Helper()
	for other, r := range d.rows {
		if other != id && r[0] == v {
			t.Fatalf("unique violation: id %d takes v=%v, which id %d holds", id, v, other)
		}
	}
	d.rows[id] = [2]any{v, big}
}

// A table with a unique column besides its key is folded in runs, all on
// one writer: applied run after run, no moment breaks the constraint, and
// the rows end as the source's.
func TestFoldAppliesUniqueTablesInRunsOnOneWriter(t *testing.T) {
	tr := foldTestTable()
	tr.unique = true
	fc := foldChanges{tr}
	ins, upd, del, move := fc.ins, fc.upd, fc.del, fc.move
	start := map[int64][2]any{1: {"a", "b"}, 2: {"b", "b"}, 3: {"c", "b"}}
	cases := []struct {
		name    string
		changes []model.Change
		runs    int
		want    map[int64]string
	}{
		{"swap through a temporary value", []model.Change{upd(1, "tmp", "b"), upd(2, "a", "b"), upd(1, "b", "b")}, 2, map[int64]string{1: "b", 2: "a", 3: "c"}},
		{"rotate three", []model.Change{upd(1, "t", "b"), upd(3, "a", "b"), upd(2, "c", "b"), upd(1, "b", "b")}, 2, map[int64]string{1: "b", 2: "c", 3: "a"}},
		{"delete then a new row takes its value", []model.Change{del(1), ins(4, "a")}, 1, map[int64]string{2: "b", 3: "c", 4: "a"}},
		{"insert, delete, insert again", []model.Change{ins(4, "d"), del(4), ins(4, "e")}, 3, map[int64]string{1: "a", 2: "b", 3: "c", 4: "e"}},
		{"key moved, then its value taken", []model.Change{move(1, 5, "z"), ins(6, "a")}, 1, map[int64]string{2: "b", 3: "c", 5: "z", 6: "a"}},
		{"unchanged values end a run", []model.Change{upd(1, "x", model.Unchanged), upd(2, "a", "b")}, 2, map[int64]string{1: "x", 2: "a", 3: "c"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := folded(t, tr, c.changes)
			shares := f.split(4)
			for i, s := range shares {
				if i != fullRowWriter && s.Len() != 0 {
					t.Fatalf("writer %d got %d changes of a table applied in order", i, s.Len())
				}
			}
			if got := len(shares[fullRowWriter].Tables); got != c.runs {
				t.Errorf("%d runs, want %d", got, c.runs)
			}
			if !f.hasOrdered() {
				t.Error("the batch does not say it holds changes applied in order")
			}
			d := &uniqueDest{rows: map[int64][2]any{}}
			for id, r := range start {
				d.rows[id] = r
			}
			for _, tc := range shares[fullRowWriter].Tables {
				d.apply(t, tc)
			}
			got := map[int64]string{}
			for id, r := range d.rows {
				got[id] = r[0].(string)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("rows %v, want %v", got, c.want)
			}
		})
	}
}

// A table applied in order for its unique constraints has its own mark in
// the gate: it joined writer 0 at its own position, so a transaction is
// dropped for it only when its own changes up to there were applied.
func TestGateKeepsAMarkPerUniqueTable(t *testing.T) {
	bag := &tableRun{src: &model.Table{Namespace: model.Namespace{Table: "bag"}}}
	uniq := foldTestTable()
	uniq.unique = true
	g := &fullRowGate{cs: intPositions{}, done: "12", tables: map[*tableRun]model.Position{uniq: "10"}}
	feed := func(pos string) (bags, uniqs int) {
		b := &model.ChangeBatch{Position: model.Position(pos), Changes: make([]model.Change, 2)}
		g.hold(bag, &b.Changes[0])
		g.hold(uniq, &b.Changes[1])
		rel, err := g.release(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range rel {
			if h.tr == bag {
				bags++
			} else {
				uniqs++
			}
		}
		return bags, uniqs
	}
	steps := []struct {
		pos         string
		bags, uniqs int
	}{
		{"10", 0, 0}, // applied for both
		{"11", 0, 1}, // applied for bag only
		{"11", 0, 0}, // sent again after a reconnect
		{"13", 1, 1},
		{"12", 0, 0},
	}
	for i, s := range steps {
		if b, u := feed(s.pos); b != s.bags || u != s.uniqs {
			t.Fatalf("step %d (%s): %d bag and %d unique changes through, want %d and %d", i, s.pos, b, u, s.bags, s.uniqs)
		}
	}
}
