package conformance

import (
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// checkSpanApply: a destination declaring SpanApply keeps the parts of a
// source transaction (model.ApplyBatch.Continues) in one transaction that
// a reader does not see until the part that ends it commits it with its
// checkpoint; a writer closed before that end leaves nothing of them.
func checkSpanApply(t *testing.T, h DestinationHarness) {
	d := openDest(t, h)
	caps := connector.Discover(d)
	if !caps.Abilities.SpanApply {
		t.Skip("does not declare SpanApply")
	}
	tbl, rows := seed(t, h, d, "conf_span", 4)
	const flow = "conf_span_flow"
	ups := func(rows ...model.Row) []*model.TableChanges {
		return []*model.TableChanges{{Table: tbl, Upserts: rows}}
	}
	checkpoint := func() string {
		t.Helper()
		k := caps.CheckpointKeeper
		if k == nil {
			return ""
		}
		m, err := k.LoadCheckpoints(ctxFor(t), flow)
		if err != nil {
			t.Fatalf("LoadCheckpoints: %v", err)
		}
		return m["cdc/0"]
	}
	apply := func(cw connector.ChangeWriter, b *model.ApplyBatch) {
		t.Helper()
		if err := cw.ApplyChanges(ctxFor(t), b); err != nil {
			t.Fatalf("ApplyChanges: %v", err)
		}
	}
	before := expect(rows)

	// Parts, then a writer closed before the end: nothing of them stays.
	cw := openApplier(t, caps.ChangeApplier)
	apply(cw, &model.ApplyBatch{Tables: ups(model.Row{int64(1), "p1"}, model.Row{int64(10), "p1"}), Continues: true})
	apply(cw, &model.ApplyBatch{Tables: []*model.TableChanges{{Table: tbl, Deletes: []model.Row{{int64(2)}}}}, Continues: true})
	checkRows(t, h, d, tbl.Namespace, before)
	if err := cw.Close(); err != nil {
		t.Fatalf("Close with parts applied: %v", err)
	}
	checkRows(t, h, d, tbl.Namespace, before)
	if cp := checkpoint(); cp != "" {
		t.Fatalf("parts rolled back left checkpoint %q", cp)
	}

	// Parts, then the end: all of them at once, with the checkpoint.
	cw = openApplier(t, caps.ChangeApplier)
	apply(cw, &model.ApplyBatch{Tables: ups(model.Row{int64(1), "q1"}, model.Row{int64(10), "q1"}), Continues: true})
	apply(cw, &model.ApplyBatch{Tables: []*model.TableChanges{{Table: tbl, Deletes: []model.Row{{int64(2)}}}}, Continues: true})
	checkRows(t, h, d, tbl.Namespace, before)
	if cp := checkpoint(); cp != "" {
		t.Fatalf("parts not committed left checkpoint %q", cp)
	}
	apply(cw, &model.ApplyBatch{Tables: ups(model.Row{int64(11), "q2"}), Checkpoint: &model.Checkpoint{Flow: flow, Key: "cdc/0", Value: "end"}})
	want := expect(rows)
	want["1"], want["10"], want["11"] = "q1", "q1", "q2"
	delete(want, "2")
	checkRows(t, h, d, tbl.Namespace, want)
	if caps.CheckpointKeeper != nil {
		if cp := checkpoint(); cp != "end" {
			t.Fatalf("the part that ends the transaction left checkpoint %q, want %q", cp, "end")
		}
	}
	// The writer goes on with ordinary batches.
	apply(cw, &model.ApplyBatch{Tables: ups(model.Row{int64(12), "r"})})
	want["12"] = "r"
	checkRows(t, h, d, tbl.Namespace, want)
}
