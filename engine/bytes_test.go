package engine_test

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connectors/fake"
	"github.com/ferrydb/ferry/connectors/null"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/state"
)

// oneByOne is the fake source with every change in a batch of its own, as
// a database whose transactions each change one row, and it counts the
// changes the engine took and the bytes their rows hold.
type oneByOne struct {
	*fake.Source
	taken, bytes atomic.Int64
}

func (s *oneByOne) StreamChanges(ctx context.Context, tables []*model.Table, from model.Position, opts connector.StreamOptions, emit func(context.Context, *model.ChangeBatch) error) error {
	return s.Source.StreamChanges(ctx, tables, from, opts, func(c context.Context, b *model.ChangeBatch) error {
		if len(b.Changes) == 0 {
			return emit(c, b)
		}
		end, err := strconv.ParseInt(string(b.Position), 10, 64)
		if err != nil {
			return err
		}
		first := end - int64(len(b.Changes))
		for i := range b.Changes {
			one := &model.ChangeBatch{Changes: b.Changes[i : i+1], Position: model.Position(strconv.FormatInt(first+int64(i)+1, 10)), CommitTime: b.CommitTime}
			if err := emit(c, one); err != nil {
				return err
			}
			s.taken.Add(1)
			s.bytes.Add(b.Changes[i].Row.Size())
		}
		return nil
	})
}

// holdDst holds its first apply until released and records the size of
// every writer's share it applies.
type holdDst struct {
	*null.Destination
	held, release chan struct{}
	once          sync.Once
	mu            sync.Mutex
	largest       int64 // the largest share applied, in bytes
}

func (d *holdDst) OpenApplier(ctx context.Context) (connector.ChangeWriter, error) {
	w, err := d.Destination.OpenApplier(ctx)
	if err != nil {
		return nil, err
	}
	return &holdWriter{ChangeWriter: w, d: d}, nil
}

type holdWriter struct {
	connector.ChangeWriter
	d *holdDst
}

func (w *holdWriter) ApplyChanges(ctx context.Context, b *model.ApplyBatch) error {
	if b.Len() == 0 {
		return w.ChangeWriter.ApplyChanges(ctx, b)
	}
	var n int64
	for _, tc := range b.Tables {
		for _, r := range tc.Upserts {
			n += r.Size()
		}
	}
	w.d.mu.Lock()
	w.d.largest = max(w.d.largest, n)
	w.d.mu.Unlock()
	first := false
	w.d.once.Do(func() { first = true })
	if first {
		close(w.d.held)
		select {
		case <-w.d.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return w.ChangeWriter.ApplyChanges(ctx, b)
}

// TestCDCBoundsWhatItHoldsByBytes: changes of large rows are held by their
// size, not their number. While the destination holds an apply, the engine
// takes changes from the source only up to its byte budget, and no apply
// batch grows past its byte bound however many changes --apply-batch
// allows. Before the bound the engine took every change the channels had
// room for (64 source batches and more), whatever their size: a stream of
// 100 MB values held gigabytes.
func TestCDCBoundsWhatItHoldsByBytes(t *testing.T) {
	const width = 16 << 10 // each row holds 16 KiB of text
	const batchBytes, flight = 256 << 10, 1 << 20
	defer engine.SetCDCBytes(batchBytes, flight)()
	ctx := context.Background()
	cfg := flow.Config{Source: "fake://?tables=1&rows=100&changes=400&width=" + strconv.Itoa(width) + "&seed=3", Destination: "null://",
		Mode: flow.ModeCDC, Until: "caught-up", Writers: 2, ApplyBatch: 10000, StateDir: t.TempDir()}
	c, err := connector.Open(ctx, cfg.Source)
	if err != nil {
		t.Fatal(err)
	}
	src := &oneByOne{Source: c.(*fake.Source)}
	store, err := state.Open(ctx, cfg.StateDir, cfg.FlowName())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	dst := &holdDst{Destination: &null.Destination{}, held: make(chan struct{}), release: make(chan struct{})}
	e, err := engine.New(cfg, src, dst, store, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, ctx) }()
	select {
	case <-dst.held:
	case err := <-done:
		t.Fatalf("the flow ended before its first apply: %v", err)
	}
	// Wait for the engine to stop taking changes.
	last, still := src.taken.Load(), time.Now()
	for time.Since(still) < 300*time.Millisecond {
		time.Sleep(20 * time.Millisecond)
		if n := src.taken.Load(); n != last {
			last, still = n, time.Now()
		}
	}
	taken := src.bytes.Load()
	close(dst.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if taken > flight+2*width {
		t.Errorf("while an apply was held the engine took %d changes holding %d KiB from the source, past its budget of %d KiB and one change",
			last, taken>>10, flight>>10)
	}
	if dst.largest > batchBytes+2*width {
		t.Errorf("an apply batch held %d KiB of rows, more than the bound of %d KiB and one row", dst.largest>>10, batchBytes>>10)
	}
	if got := e.Progress().Snapshot().CDC.Received; got != 400 {
		t.Errorf("%d changes received, want 400", got)
	}
	t.Logf("while an apply was held: %d changes taken, holding %d KiB; the largest apply share held %d KiB", last, taken>>10, dst.largest>>10)
}
