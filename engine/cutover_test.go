package engine_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/state"
	"github.com/ferrydb/ferry/verify"
)

// openEngine opens a flow's connectors, state and engine, closed with the
// test (the state and its lock also by closeState).
func openEngine(t *testing.T, cfg flow.Config) (e *engine.Engine, src, dst connector.Connector, closeState func()) {
	t.Helper()
	ctx := context.Background()
	for _, c := range []struct {
		url string
		to  *connector.Connector
	}{{cfg.Source, &src}, {cfg.Destination, &dst}} {
		conn, err := connector.Open(ctx, c.url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		*c.to = conn
	}
	store, err := state.Open(ctx, cfg.StateDir, cfg.FlowName())
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	closeState = func() { once.Do(func() { store.Close() }) }
	t.Cleanup(closeState)
	e, err = engine.New(cfg, src, dst, store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return e, src, dst, closeState
}

// sameRows verifies every table of a flow, as ferry cutover --verify does,
// against the fake source's rows at its head (every change applied).
func sameRows(t *testing.T, e *engine.Engine, srcURL string, dst connector.Connector) {
	t.Helper()
	src, err := connector.Open(context.Background(), srcURL+"&snapshot=head")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var pairs []verify.Pair
	for _, tb := range e.SourceTables() {
		pairs = append(pairs, verify.Pair{Source: tb, Destination: tb.Namespace})
	}
	res, err := verify.Tables(context.Background(), connector.Discover(src).Source, connector.Discover(dst).Source, pairs, verify.Options{Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !r.Equal() {
			t.Errorf("%s differs: source %d rows, destination %d rows", r.Table, r.SourceRows, r.DestinationRows)
		}
	}
}

func TestCutoverDrainsToTheSourcesPositionAtTheRequest(t *testing.T) {
	// 3000 changes at 1500/s: the request comes while most are still to
	// be streamed, and the cutover must apply them all (the head is 3000).
	cfg := flow.Config{Name: "cut", Source: "fake://?tables=2&rows=2000&changes=3000&changes_per_sec=1500",
		Destination: "sqlite://" + filepath.Join(t.TempDir(), "dst.db"), StateDir: t.TempDir(), Parallel: 2}
	e, _, dst, _ := openEngine(t, cfg)
	ctx := context.Background()
	if err := e.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, ctx) }()
	deadline := time.Now().Add(time.Minute)
	for e.Progress().Snapshot().Phase != engine.PhaseCDC {
		if time.Now().After(deadline) {
			t.Fatal("the flow never reached CDC")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, ok := e.CutoverReport(); ok {
		t.Fatal("a report before any request")
	}
	at := time.Now()
	if err := e.RequestCutover(ctx, at); err != nil {
		t.Fatal(err)
	}
	// A second request is harmless: the same cutover.
	if err := e.RequestCutover(ctx, at.Add(time.Second)); err != nil {
		t.Fatalf("second request: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the cutover did not end the flow")
	}
	r, ok := e.CutoverReport()
	if !ok {
		t.Fatal("no cutover report after Run")
	}
	snap := e.Progress().Snapshot()
	if r.Position != "3000" || snap.CDC.Position != "3000" || !r.Requested.Equal(at) {
		t.Fatalf("report position %s requested %s, applied %s; want 3000 at %s", r.Position, r.Requested, snap.CDC.Position, at)
	}
	if _, ran := r.Seconds(engine.StepDrain); !ran || r.Changes <= 0 || r.Step != "" || !r.Done {
		t.Fatalf("report %+v: want a drain of some changes, done", r)
	}
	if snap.Phase != engine.PhaseDone || snap.Cutover == nil || !snap.Cutover.Done {
		t.Fatalf("after the cutover: phase %s, cutover %+v", snap.Phase, snap.Cutover)
	}
	sameRows(t, e, cfg.Source, dst)
}

func TestCutoverRefusedBeforeTheCopyIsDone(t *testing.T) {
	cfg := flow.Config{Name: "early", Source: "fake://?tables=2&rows=2000&changes=100",
		Destination: "sqlite://" + filepath.Join(t.TempDir(), "dst.db"), StateDir: t.TempDir(), PartitionRows: 500}
	e, _, _, _ := openEngine(t, cfg)
	ctx := context.Background()
	if err := e.RequestCutover(ctx, time.Now()); !errs.IsConfigError(err) || !strings.Contains(err.Error(), "no plan") {
		t.Fatalf("before the plan: %v, want a configuration error saying there is no plan", err)
	}
	if err := e.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	err := e.RequestCutover(ctx, time.Now())
	var ce *errs.ConfigError
	if !errors.As(err, &ce) || !strings.Contains(ce.Msg, "0 of 8 partitions copied") || ce.Fix == "" {
		t.Fatalf("before the copy: %v, want a configuration error with 0 of 8 partitions copied and a fix", err)
	}
}

func TestCutoverWithoutCDCRunsOnlyTheFinishingSteps(t *testing.T) {
	cfg := flow.Config{Name: "snap", Source: "fake://?tables=1&rows=1000&cdc=false",
		Destination: "sqlite://" + filepath.Join(t.TempDir(), "dst.db"), StateDir: t.TempDir()}
	ctx := context.Background()
	first, _, _, closeFirst := openEngine(t, cfg)
	if err := first.Run(ctx, ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := first.CutoverReport(); ok {
		t.Fatal("a report without a request")
	}
	// A request taken after Run ended: Run again cuts over (ferry sync does
	// that when the request came as its flow ended by itself).
	if r := cutOver(t, first); len(r.Steps) != 0 {
		t.Fatalf("after a late request and Run again: %+v", r)
	}
	closeFirst()
	// ferry cutover later: the same flow, resumed in another engine.
	e, _, dst, _ := openEngine(t, cfg)
	if err := e.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	r := cutOver(t, e)
	if r.Position != "" {
		t.Fatalf("report %+v: want one without a position", r)
	}
	if _, ran := r.Seconds(engine.StepDrain); ran {
		t.Fatalf("a flow without CDC drained: %+v", r)
	}
	sameRows(t, e, cfg.Source, dst)
}

func TestCutoverAfterCaughtUpDrainsAgainToTheHead(t *testing.T) {
	cfg := flow.Config{Name: "caught", Source: "fake://?tables=1&rows=500&changes=2000",
		Destination: "sqlite://" + filepath.Join(t.TempDir(), "dst.db"), StateDir: t.TempDir(), Until: "caught-up"}
	e, _, dst, _ := openEngine(t, cfg)
	ctx := context.Background()
	if err := e.Run(ctx, ctx); err != nil {
		t.Fatal(err)
	}
	// --until caught-up ended the stream; a cutover streams again, to the
	// source's position at the request, instead of stopping at once.
	r := cutOver(t, e)
	if _, drained := r.Seconds(engine.StepDrain); r.Position != "2000" || !drained {
		t.Fatalf("report %+v: want a drain to 2000", r)
	}
	sameRows(t, e, cfg.Source, dst)
}

// cutOver requests a cutover of a prepared flow, runs it and returns the
// report.
func cutOver(t *testing.T, e *engine.Engine) engine.CutoverReport {
	t.Helper()
	ctx := context.Background()
	if err := e.RequestCutover(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := e.Run(ctx, ctx); err != nil {
		t.Fatal(err)
	}
	r, ok := e.CutoverReport()
	if !ok {
		t.Fatal("no cutover report after Run")
	}
	return r
}
