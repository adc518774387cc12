package engine

import (
	"context"
	"testing"

	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// With --apply-mode transactional, a source transaction emitted in parts
// (Partial batches) goes to the destination as one apply batch, past
// --apply-batch and the byte bound: the whole transactions before it are
// sent first, the parts' flight budget is returned at once (else the
// stream would stop before the transaction's end), and the batch is sent
// at the position of its end.
func TestTransactionalApplySendsAHugeTransactionWhole(t *testing.T) {
	ctx := context.Background()
	bt, job := testBatcher(t, "1")
	bt.e.cfg.ApplyMode = flow.ApplyTransactional
	bt.e.cfg.ApplyBatch = 2
	bt.tx = true
	var released int64
	bt.release = func(n int64) { released += n }
	fc := foldChanges{bt.e.tables[0]}

	// A whole transaction, then a huge one in three parts of 2 changes.
	take := func(pos model.Position, partial bool, bytes int64, cs ...model.Change) {
		t.Helper()
		if err := bt.take(ctx, sourceBatch{b: &model.ChangeBatch{Position: pos, Partial: partial, Changes: cs}, bytes: bytes}); err != nil {
			t.Fatal(err)
		}
	}
	take("2", false, 10, fc.ins(1, "a"))
	take("2", true, applyBatchBytes, fc.ins(2, "b"), fc.ins(3, "c"))
	if j := <-job; j.position != "2" || j.batch.Len() != 1 || j.bytes != 10 {
		t.Fatalf("the whole transaction before the huge one: %d changes at %q holding %d bytes, want 1 at 2 holding 10", j.batch.Len(), j.position, j.bytes)
	}
	take("2", true, applyBatchBytes, fc.ins(4, "d"), fc.ins(5, "e"))
	if len(job) != 0 {
		t.Fatalf("part of a transaction was sent before its end")
	}
	// The linger timer firing mid-transaction sends nothing either.
	if !bt.open {
		t.Fatal("the batcher does not know it is inside a transaction")
	}
	take("9", false, 5, fc.ins(6, "f"), fc.upd(2, "B", "b"))
	j := <-job
	if j.position != "9" || j.batch.Len() != 5 {
		t.Errorf("the huge transaction: %d changes at %q, want all 5 (folded) at its end 9", j.batch.Len(), j.position)
	}
	if released != 2*applyBatchBytes {
		t.Errorf("flight budget returned for the parts: %d, want %d", released, 2*applyBatchBytes)
	}
}

// A stream ending inside a transaction (a stop) applies none of its parts:
// the checkpoint stays before it and the next run applies it whole.
func TestTransactionalApplyDropsAnUnfinishedTransactionAtTheEnd(t *testing.T) {
	ctx := context.Background()
	bt, job := testBatcher(t, "1")
	bt.e.cfg.ApplyMode = flow.ApplyTransactional
	bt.tx = true
	bt.release = func(int64) {}
	fc := foldChanges{bt.e.tables[0]}
	in := make(chan sourceBatch, 2)
	in <- sourceBatch{b: &model.ChangeBatch{Position: "2", Changes: []model.Change{fc.ins(1, "a")}}}
	in <- sourceBatch{b: &model.ChangeBatch{Position: "2", Partial: true, Changes: []model.Change{fc.ins(2, "b")}}}
	close(in)
	if err := bt.e.batch(ctx, "1", in, nil, bt.jobs, bt.applied, nil, bt.release); err != nil {
		t.Fatal(err)
	}
	var got []int
	for len(job) > 0 {
		got = append(got, (<-job).batch.Len())
	}
	if len(got) != 1 || got[0] != 1 {
		t.Errorf("apply batches sent: %v changes each, want only the whole transaction's [1]", got)
	}
}
