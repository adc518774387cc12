package conformance

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// fullRowApplier is d's change applier when d declares that it applies
// whole rows (connector.Declaration.FullRows).
func fullRowApplier(d connector.Destination) (connector.ChangeApplier, bool) {
	caps := connector.Discover(d)
	if !caps.Abilities.FullRows {
		return nil, false
	}
	return caps.ChangeApplier, true
}

// checkFullRows: a table without a primary key takes RowChanges in order,
// each matching one row by all its values, so identical rows stay told
// apart by their number; with a CheckpointKeeper, each batch is applied
// with its checkpoint or, refused, not at all.
func checkFullRows(t *testing.T, h DestinationHarness) {
	d := openDest(t, h)
	a, ok := fullRowApplier(d)
	if !ok {
		t.Skip("does not declare FullRows")
	}
	tbl := &model.Table{
		Namespace:       model.Namespace{Schema: h.Schema, Table: "conf_fullrow"},
		FullRowIdentity: true,
		Columns: []model.Column{
			{Name: "a", Type: model.Type{Kind: model.KindInt64}, Nullable: true},
			{Name: "b", Type: model.Type{Kind: model.KindText}, Nullable: true},
		},
	}
	create(t, d, tbl)
	finish(t, d, tbl)
	cw := openApplier(t, a)
	const flow, key = "conf_fullrow_flow", "cdc/0"
	r := func(a, b any) model.Row { return model.Row{a, b} }
	ins := func(row model.Row) model.RowChange { return model.RowChange{New: row} }
	del := func(row model.Row) model.RowChange { return model.RowChange{Old: row} }
	upd := func(old, new model.Row) model.RowChange { return model.RowChange{Old: old, New: new} }
	_, keeps := d.(connector.CheckpointKeeper)
	checkpoint := func() string {
		t.Helper()
		m, err := openDest(t, h).(connector.CheckpointKeeper).LoadCheckpoints(ctxFor(t), flow)
		if err != nil {
			t.Fatalf("LoadCheckpoints: %v", err)
		}
		return m[key]
	}
	have := func(want ...string) {
		t.Helper()
		got, readable := readRows(t, h, tbl.Namespace)
		if !readable {
			t.Fatalf("%s cannot be read back: its rows go unchecked", tbl.Namespace)
		}
		slices.Sort(want)
		if g := joined(got); !slices.Equal(g, want) {
			t.Fatalf("%s holds %q, want %q", tbl.Namespace, g, want)
		}
	}
	steps := []struct {
		what    string
		changes []model.RowChange
		want    []string
	}{
		{"insert identical rows",
			[]model.RowChange{ins(r(int64(1), "x")), ins(r(int64(1), "x")), ins(r(int64(2), "y")), ins(r(int64(2), "y")), ins(r(int64(3), nil)), ins(r(int64(4), ""))},
			[]string{"1|x", "1|x", "2|y", "2|y", "3|<nil>", "4|"}},
		{"delete one of two identical rows",
			[]model.RowChange{del(r(int64(1), "x"))},
			[]string{"1|x", "2|y", "2|y", "3|<nil>", "4|"}},
		{"update one of two identical rows",
			[]model.RowChange{upd(r(int64(2), "y"), r(int64(2), "z"))},
			[]string{"1|x", "2|y", "2|z", "3|<nil>", "4|"}},
		{"update rows matched by a NULL and by an empty string, then insert a row and delete it",
			[]model.RowChange{upd(r(int64(3), nil), r(int64(3), "n")), upd(r(int64(4), ""), r(nil, "e")), ins(r(int64(5), "t")), del(r(int64(5), "t"))},
			[]string{"1|x", "2|y", "2|z", "3|n", "<nil>|e"}},
	}
	for i, s := range steps {
		b := &model.ApplyBatch{Tables: []*model.TableChanges{{Table: tbl, RowChanges: s.changes}},
			Checkpoint: &model.Checkpoint{Flow: flow, Key: key, Value: fmt.Sprint(i)}}
		if err := cw.ApplyChanges(ctxFor(t), b); err != nil {
			t.Fatalf("ApplyChanges, %s: %v", s.what, err)
		}
		have(s.want...)
		if keeps {
			if got := checkpoint(); got != fmt.Sprint(i) {
				t.Fatalf("after ApplyChanges (%s) with checkpoint %s=%d, the checkpoint is %q", s.what, key, i, got)
			}
		}
	}
	if !keeps {
		return
	}
	// A batch refused half-way (a text where a is an integer) leaves
	// neither its first change nor its checkpoint: replayed from the
	// checkpoint before it, it is applied once.
	last := steps[len(steps)-1].want
	bad := &model.ApplyBatch{Tables: []*model.TableChanges{{Table: tbl, RowChanges: []model.RowChange{
		del(r(int64(1), "x")), ins(r(int64(6), "once")), ins(r("not a number", "no"))}}},
		Checkpoint: &model.Checkpoint{Flow: flow, Key: key, Value: "refused"}}
	err := cw.ApplyChanges(ctxFor(t), bad)
	if err == nil {
		t.Fatalf("ApplyChanges took a text value for an int64 column")
	}
	t.Logf("ApplyChanges refused the batch: %v", err)
	have(last...)
	if got := checkpoint(); got != fmt.Sprint(len(steps)-1) {
		t.Fatalf("after a refused batch the checkpoint is %q, want %d still", got, len(steps)-1)
	}
}
