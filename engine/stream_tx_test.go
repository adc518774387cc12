package engine

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
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

// logLines is a slog handler that hands each message to a channel.
type logLines chan string

func (l logLines) Enabled(context.Context, slog.Level) bool      { return true }
func (l logLines) Handle(_ context.Context, r slog.Record) error { l <- r.Message; return nil }
func (l logLines) WithAttrs([]slog.Attr) slog.Handler            { return l }
func (l logLines) WithGroup(string) slog.Handler                 { return l }

// A graceful stop while a source transaction is read in parts ends the
// source's stream only after its last part: a stop inside it would drop the
// parts (a scale-out CDC task shorter than the transaction would read it
// again forever).
func TestGracefulStopWaitsForTheOpenTransaction(t *testing.T) {
	ctx := context.Background()
	bt, job := testBatcher(t, "1")
	bt.e.cfg.ApplyMode = flow.ApplyTransactional
	bt.tx = true
	bt.release = func(int64) {}
	lines := make(logLines, 16)
	bt.e.log = slog.New(lines)
	fc := foldChanges{bt.e.tables[0]}
	if err := bt.take(ctx, sourceBatch{b: &model.ChangeBatch{Position: "2", Partial: true, Changes: []model.Change{fc.ins(1, "a")}}}); err != nil {
		t.Fatal(err)
	}
	stop, stopNow := context.WithCancel(ctx)
	stopNow()
	streamCtx, endStream := context.WithCancel(ctx)
	var ended atomic.Bool
	var openAtEnd atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		bt.e.endOnStop(stop, streamCtx, func() { openAtEnd.Store(bt.e.openTx.pending() != nil); ended.Store(true); endStream() })
	}()
	for msg := range lines {
		if strings.HasPrefix(msg, "stopping once the source transaction") {
			break
		}
		if strings.HasPrefix(msg, "stopping: applying") {
			t.Fatal("the stop ended the stream inside the source transaction")
		}
	}
	if ended.Load() {
		t.Fatal("the stream ended before the transaction's last part was read")
	}
	if err := bt.take(ctx, sourceBatch{b: &model.ChangeBatch{Position: "3", Changes: []model.Change{fc.ins(2, "b")}}}); err != nil {
		t.Fatal(err)
	}
	<-done
	if !ended.Load() || openAtEnd.Load() {
		t.Fatalf("stream ended: %v, with the transaction open: %v; want ended after its last part", ended.Load(), openAtEnd.Load())
	}
	if err := bt.flush(ctx); err != nil {
		t.Fatal(err)
	}
	if j := <-job; j.batch.Len() != 2 || j.position != "3" {
		t.Errorf("apply batch: %d changes at %q, want the whole transaction's 2 at 3", j.batch.Len(), j.position)
	}
}
