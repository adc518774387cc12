package engine

import (
	"strconv"
	"testing"

	"github.com/ferrydb/ferry/model"
)

type intPositions struct{}

func (intPositions) ComparePositions(a, b model.Position) (int, error) {
	x, err := strconv.Atoi(string(a))
	if err != nil {
		return 0, err
	}
	y, err := strconv.Atoi(string(b))
	if err != nil {
		return 0, err
	}
	switch {
	case x < y:
		return -1, nil
	case x > y:
		return 1, nil
	}
	return 0, nil
}

// The gate lets each whole-row change through once: a transaction ending
// at or before what was applied is dropped, also when its first parts come
// as partial batches at an older position, and the parts of a transaction
// not yet applied are held until its end and then let through together.
func TestFullRowGateLetsEachTransactionThroughOnce(t *testing.T) {
	tr := &tableRun{src: &model.Table{Namespace: model.Namespace{Table: "bag"}}}
	g := &fullRowGate{cs: intPositions{}, done: "10"}
	feed := func(pos string, partial bool, n int) int {
		b := &model.ChangeBatch{Position: model.Position(pos), Partial: partial, Changes: make([]model.Change, n)}
		for i := range b.Changes {
			g.hold(tr, &b.Changes[i])
		}
		rel, err := g.release(b)
		if err != nil {
			t.Fatal(err)
		}
		return len(rel)
	}
	steps := []struct {
		pos     string
		partial bool
		n, want int
	}{
		{"5", false, 2, 0},  // replayed, applied before the resume point
		{"10", true, 3, 0},  // first part of a transaction ending at 10: held
		{"10", false, 1, 0}, // its end: applied already, all four dropped
		{"10", true, 3, 0},  // first part of the next transaction: held
		{"10", true, 2, 0},
		{"12", false, 1, 6}, // its end: all six through
		{"12", false, 4, 0}, // sent again after a reconnect (clamped): dropped
		{"13", false, 0, 0}, // a heartbeat
		{"15", false, 2, 2},
	}
	for i, s := range steps {
		if got := feed(s.pos, s.partial, s.n); got != s.want {
			t.Fatalf("step %d (%s partial=%v): %d changes through, want %d", i, s.pos, s.partial, got, s.want)
		}
	}
}

// Whole-row changes are not folded: two inserts of the same row stay two,
// and every change of the table goes to one writer, in order.
func TestFoldKeepsWholeRowChangesInOrderOnOneWriter(t *testing.T) {
	tb := &model.Table{Namespace: model.Namespace{Schema: "s", Table: "bag"},
		Columns: []model.Column{{Name: "a", Type: model.Type{Kind: model.KindInt64}}, {Name: "b", Type: model.Type{Kind: model.KindText}}}}
	tr := &tableRun{src: tb, dst: tb}
	f := newFolder()
	changes := []model.Change{
		{Op: model.OpInsert, Table: tb.Namespace, Row: model.Row{int64(1), "x"}},
		{Op: model.OpInsert, Table: tb.Namespace, Row: model.Row{int64(1), "x"}},
		{Op: model.OpUpdate, Table: tb.Namespace, Key: model.Row{int64(1), "x"}, Row: model.Row{int64(1), "y"}},
		{Op: model.OpDelete, Table: tb.Namespace, Key: model.Row{int64(1), "x"}},
	}
	for i := range changes {
		if err := f.add(tr, &changes[i]); err != nil {
			t.Fatal(err)
		}
	}
	shares := f.split(4)
	if len(shares[fullRowWriter].Tables) != 1 {
		t.Fatalf("writer %d got %d tables", fullRowWriter, len(shares[fullRowWriter].Tables))
	}
	for i, s := range shares {
		if i != fullRowWriter && s.Len() != 0 {
			t.Fatalf("writer %d got %d changes of a whole-row table", i, s.Len())
		}
	}
	rc := shares[fullRowWriter].Tables[0].RowChanges
	if len(rc) != 4 || rc[0].Old != nil || rc[2].Old[1] != "x" || rc[2].New[1] != "y" || rc[3].New != nil {
		t.Fatalf("row changes: %v", rc)
	}
	bad := model.Change{Op: model.OpDelete, Table: tb.Namespace, Key: model.Row{int64(1)}}
	if err := f.add(tr, &bad); err == nil {
		t.Fatal("a delete without the whole old row was accepted")
	}
}
