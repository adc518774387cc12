package engine_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connectors/null"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/state"
)

// outage is what the flaky destinations share: a number of calls that
// carry data fail, each breaking its connection for good, and after each
// failure the next open of a connection fails too, as a restarting server
// refuses connections.
type outage struct {
	failCalls atomic.Int64 // calls with data left to fail
	failOpen  atomic.Bool  // the next open fails
	failures  atomic.Int64
}

// open fails the first open after a failure with an outage saying refused.
func (o *outage) open(refused string) error {
	if o.failOpen.CompareAndSwap(true, false) {
		return errs.Unavailable(errors.New(refused))
	}
	return nil
}

// call is one call on a connection that broken says the state of: it fails
// on a broken connection, fails with fail while calls with data are left to
// fail, and returns nil when the call goes through.
func (o *outage) call(broken *bool, data bool, fail error) error {
	if *broken {
		return errors.New("used after its connection failed")
	}
	if data && o.failCalls.Add(-1) >= 0 {
		*broken = true
		o.failures.Add(1)
		o.failOpen.Store(true)
		return fail
	}
	return nil
}

// flakyDst decorates the null destination with an outage of its appliers:
// a failing apply returns err.
type flakyDst struct {
	*null.Destination
	outage
	err error
}

func (d *flakyDst) OpenApplier(ctx context.Context) (connector.ChangeWriter, error) {
	if err := d.open("dial tcp 127.0.0.1:5432: connect: connection refused"); err != nil {
		return nil, err
	}
	w, err := d.Destination.OpenApplier(ctx)
	if err != nil {
		return nil, err
	}
	return &flakyWriter{ChangeWriter: w, d: d}, nil
}

type flakyWriter struct {
	connector.ChangeWriter
	d      *flakyDst
	broken bool
}

func (w *flakyWriter) ApplyChanges(ctx context.Context, b *model.ApplyBatch) error {
	if err := w.d.call(&w.broken, b.Len() > 0, w.d.err); err != nil {
		return err
	}
	return w.ChangeWriter.ApplyChanges(ctx, b)
}

// syncLog is a log destination safe for concurrent writers.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newTestEngine opens cfg's source and state and returns the engine that
// runs them into dst, and what closes them (a rerun needs the state closed).
func newTestEngine(t *testing.T, cfg flow.Config, dst connector.Connector, log *slog.Logger) (*engine.Engine, func()) {
	t.Helper()
	src, err := connector.Open(context.Background(), cfg.Source)
	if err != nil {
		t.Fatal(err)
	}
	e, closeAll := newTestEngineWith(t, cfg, src, dst, log)
	return e, func() { closeAll(); src.Close() }
}

// newTestEngineWith opens cfg's state and returns the engine that runs src
// into dst, and what closes the state.
func newTestEngineWith(t *testing.T, cfg flow.Config, src, dst connector.Connector, log *slog.Logger) (*engine.Engine, func()) {
	t.Helper()
	store, err := state.Open(context.Background(), cfg.StateDir, cfg.FlowName())
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(cfg, src, dst, store, log)
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	return e, func() { store.Close() }
}

func runFlaky(t *testing.T, dst *flakyDst, retryTimeout time.Duration) (engine.Snapshot, string, error) {
	t.Helper()
	defer engine.SetRetryWaits(5*time.Millisecond, 20*time.Millisecond)()
	ctx := context.Background()
	cfg := flow.Config{Source: "fake://?tables=2&rows=50&changes=3000&seed=5", Destination: "null://", Mode: flow.ModeCDC,
		Until: "caught-up", Writers: 2, ApplyBatch: 100, RetryTimeout: retryTimeout, StateDir: t.TempDir()}
	var log syncLog
	e, closeAll := newTestEngine(t, cfg, dst, slog.New(slog.NewTextHandler(&log, nil)))
	defer closeAll()
	err := e.Run(ctx, ctx)
	return e.Progress().Snapshot(), log.String(), err
}

// TestUnavailableDestinationIsRetried: while the destination is unavailable
// during CDC, the engine keeps its position, reopens its appliers with
// backoff, says so in the log, and catches up once the destination is back.
// Before the retry existed the flow failed at the first lost connection.
func TestUnavailableDestinationIsRetried(t *testing.T) {
	dst := &flakyDst{Destination: &null.Destination{}, err: errs.Unavailable(errors.New("server closed the connection unexpectedly"))}
	dst.failCalls.Store(5)
	snap, log, err := runFlaky(t, dst, time.Minute)
	if err != nil {
		t.Fatalf("the flow failed on an outage it should have retried: %v\n%s", err, log)
	}
	if dst.failures.Load() != 5 {
		t.Fatalf("%d applies failed, want 5", dst.failures.Load())
	}
	if snap.CDC.Position != "3000" || snap.CDC.Received != 3000 {
		t.Fatalf("caught up to %s with %d changes; want 3000 and 3000", snap.CDC.Position, snap.CDC.Received)
	}
	for _, want := range []string{"destination unavailable; keeping the position and retrying", "server closed the connection unexpectedly", "destination available again"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
}

// TestOtherApplyErrorsFailAtOnce: an error that is not an outage (a value
// the destination refuses) is not retried.
func TestOtherApplyErrorsFailAtOnce(t *testing.T) {
	dst := &flakyDst{Destination: &null.Destination{}, err: errors.New(`value too long for type character varying(5)`)}
	dst.failCalls.Store(1)
	_, log, err := runFlaky(t, dst, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "value too long") {
		t.Fatalf("want the refused value's error, got %v", err)
	}
	if dst.failures.Load() != 1 || strings.Contains(log, "retrying") {
		t.Fatalf("a permanent error was retried (%d failures):\n%s", dst.failures.Load(), log)
	}
}

// TestUnavailableDestinationGivesUp: an outage longer than retry_timeout
// ends the flow with an error that says so.
func TestUnavailableDestinationGivesUp(t *testing.T) {
	dst := &flakyDst{Destination: &null.Destination{}, err: errs.Unavailable(errors.New("connection refused"))}
	dst.failCalls.Store(1 << 40)
	_, _, err := runFlaky(t, dst, 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "retry_timeout") || !errs.IsUnavailable(err) {
		t.Fatalf("want an error naming retry_timeout that wraps the outage, got %v", err)
	}
}

// flakySrc decorates a source: the first read of every partition emits a
// few batches, then fails as if the connection was cut.
type flakySrc struct {
	connector.Source
	err      error
	mu       sync.Mutex
	failed   map[string]bool
	failures atomic.Int64
}

func (s *flakySrc) ReadPartition(ctx context.Context, t *model.Table, p model.Partition, from model.Cursor, emit func(*model.RowBatch) error) error {
	s.mu.Lock()
	fail := !s.failed[p.ID]
	s.failed[p.ID] = true
	s.mu.Unlock()
	if !fail {
		return s.Source.ReadPartition(ctx, t, p, from, emit)
	}
	n := 0
	err := s.Source.ReadPartition(ctx, t, p, from, func(b *model.RowBatch) error {
		if n == 3 {
			return errCut
		}
		n++
		return emit(b)
	})
	if errors.Is(err, errCut) {
		s.failures.Add(1)
		return s.err
	}
	return err
}

var errCut = errors.New("cut")

// copyFlaky copies the fake source's 2 tables of 20000 rows, as wrap
// decorates the source, into dst over 3 lanes, riding out outages for up
// to a minute with short waits. It returns the log and the run's error.
func copyFlaky(t *testing.T, dst connector.Connector, wrap func(connector.Source) connector.Source) (string, error) {
	t.Helper()
	defer engine.SetRetryWaits(5*time.Millisecond, 20*time.Millisecond)()
	ctx := context.Background()
	// The fake source emits batches of 1000 rows: a partition of 5000 rows
	// takes five, so flakySrc's reads fail after three, mid-way.
	cfg := flow.Config{Source: "fake://?tables=2&rows=20000&seed=9", Destination: "null://", Mode: flow.ModeSnapshot,
		Parallel: 3, PartitionRows: 5000, RetryTimeout: time.Minute, StateDir: t.TempDir()}
	c, err := connector.Open(ctx, cfg.Source)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var log syncLog
	e, closeStore := newTestEngineWith(t, cfg, wrap(c.(connector.Source)), dst, slog.New(slog.NewTextHandler(&log, nil)))
	defer closeStore()
	err = e.Run(ctx, ctx)
	return log.String(), err
}

// runFlakySource copies from a source whose partitions fail after three
// batches with srcErr.
func runFlakySource(t *testing.T, srcErr error) (*null.Destination, string, error) {
	t.Helper()
	var src *flakySrc
	dst := &null.Destination{}
	log, err := copyFlaky(t, dst, func(s connector.Source) connector.Source {
		src = &flakySrc{Source: s, err: srcErr, failed: map[string]bool{}}
		return src
	})
	if err == nil && src.failures.Load() == 0 {
		t.Fatal("no read failed: the test proves nothing")
	}
	return dst, log, err
}

// TestUnavailableSourceIsReadAgainFromTheCursor: a partition read that
// loses its source mid-way is read again from the last batch handed to the
// writer, so every row arrives exactly once. Before, the copy failed.
func TestUnavailableSourceIsReadAgainFromTheCursor(t *testing.T) {
	dst, log, err := runFlakySource(t, errs.Unavailable(errors.New("read partition: conn closed")))
	if err != nil {
		t.Fatalf("the copy failed on an outage it should have retried: %v\n%s", err, log)
	}
	if rows, _ := dst.Counts(); rows != 40000 {
		t.Fatalf("the destination got %d rows, want exactly 40000 (none lost, none twice)", rows)
	}
	for _, want := range []string{"source unavailable; reading the partition again from its cursor", "source available again"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
}

// TestOtherSourceErrorsFailTheCopy: a read error that is not an outage is
// not retried.
func TestOtherSourceErrorsFailTheCopy(t *testing.T) {
	_, log, err := runFlakySource(t, errors.New("column tm: TIME value 24:00:11 is outside 00:00:00-24:00:00"))
	if err == nil || !strings.Contains(err.Error(), "24:00:11") || strings.Contains(log, "reading the partition again") {
		t.Fatalf("want the read error at once, got %v\n%s", err, log)
	}
}

// flakyCopyDst decorates the null destination with an outage of its row
// writers: a failing write loses the connection.
type flakyCopyDst struct {
	*null.Destination
	outage
}

func (d *flakyCopyDst) OpenWriter(ctx context.Context) (connector.RowWriter, error) {
	if err := d.open("dial tcp: connect: connection refused"); err != nil {
		return nil, err
	}
	w, err := d.Destination.OpenWriter(ctx)
	if err != nil {
		return nil, err
	}
	return &flakyRowWriter{RowWriter: w, d: d}, nil
}

type flakyRowWriter struct {
	connector.RowWriter
	d      *flakyCopyDst
	broken bool
}

func (w *flakyRowWriter) WriteRows(ctx context.Context, b *model.RowBatch) error {
	if err := w.d.call(&w.broken, len(b.Rows) > 0, errs.Unavailable(errors.New("write: connection reset by peer"))); err != nil {
		return err
	}
	return w.RowWriter.WriteRows(ctx, b)
}

// TestUnavailableDestinationDuringTheCopyIsRetried: copy writers that lose
// the destination write the same batch again on a new writer; every row
// arrives once. Before, the copy failed.
func TestUnavailableDestinationDuringTheCopyIsRetried(t *testing.T) {
	dst := &flakyCopyDst{Destination: &null.Destination{}}
	dst.failCalls.Store(6)
	log, err := copyFlaky(t, dst, func(s connector.Source) connector.Source { return s })
	if err != nil {
		t.Fatalf("the copy failed on an outage it should have retried: %v\n%s", err, log)
	}
	if dst.failures.Load() != 6 {
		t.Fatalf("%d writes failed, want 6", dst.failures.Load())
	}
	if rows, _ := dst.Counts(); rows != 40000 {
		t.Fatalf("the destination got %d rows, want exactly 40000", rows)
	}
	if !strings.Contains(log, "destination unavailable; keeping the batch and retrying") || !strings.Contains(log, "destination available again; copying") {
		t.Errorf("the outage was not logged:\n%s", log)
	}
}

// stallDst's appliers hold one apply until released, as a destination that
// stopped answering.
type stallDst struct {
	*null.Destination
	after   int64 // applies that go through before the stall
	applies atomic.Int64
	stalled chan struct{} // closed when the stall begins
	release chan struct{}
}

func (d *stallDst) OpenApplier(ctx context.Context) (connector.ChangeWriter, error) {
	w, err := d.Destination.OpenApplier(ctx)
	if err != nil {
		return nil, err
	}
	return &stallWriter{ChangeWriter: w, d: d}, nil
}

type stallWriter struct {
	connector.ChangeWriter
	d *stallDst
}

func (w *stallWriter) ApplyChanges(ctx context.Context, b *model.ApplyBatch) error {
	if b.Len() > 0 && w.d.applies.Add(1) == w.d.after {
		close(w.d.stalled)
		select {
		case <-w.d.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return w.ChangeWriter.ApplyChanges(ctx, b)
}

// TestLagGrowsWhileTheDestinationStalls: while a batch waits for a
// destination that does not answer, the reported lag grows with the
// batch's age. Before, it stayed at the last applied batch's lag (a few
// milliseconds) for as long as the stall lasted.
func TestLagGrowsWhileTheDestinationStalls(t *testing.T) {
	cfg := flow.Config{Source: "fake://?tables=2&rows=50&changes=2000&changes_per_sec=1000&seed=5", Destination: "null://", Mode: flow.ModeCDC,
		Until: "caught-up", Writers: 2, ApplyBatch: 100, StateDir: t.TempDir()}
	dst := &stallDst{Destination: &null.Destination{}, after: 5, stalled: make(chan struct{}), release: make(chan struct{})}
	e, closeAll := newTestEngine(t, cfg, dst, slog.New(slog.DiscardHandler))
	defer closeAll()
	done := make(chan error, 1)
	go func() { done <- e.Run(context.Background(), context.Background()) }()
	select {
	case <-dst.stalled:
	case err := <-done:
		t.Fatalf("the flow ended before the stall: %v", err)
	}
	before := e.Progress().Snapshot().CDC.LagSeconds
	time.Sleep(1500 * time.Millisecond)
	during := e.Progress().Snapshot().CDC.LagSeconds
	close(dst.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	after := e.Progress().Snapshot().CDC.LagSeconds
	t.Logf("lag: %.3fs at the stall, %.3fs 1.5 s into it, %.3fs once caught up", before, during, after)
	if during < 1.4 {
		t.Errorf("lag 1.5 s into the stall is %.3fs; the waiting batch is at least 1.5 s old", during)
	}
	if after >= during {
		t.Errorf("lag once caught up (%.3fs) is not below the lag during the stall (%.3fs)", after, during)
	}
}
