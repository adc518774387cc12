package engine_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connectors/fake"
	"github.com/ferrydb/ferry/connectors/null"
	_ "github.com/ferrydb/ferry/connectors/sqlite"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/state"
)

// runFlow runs a flow between two URLs in this process and returns the
// engine's final progress and the opened destination.
func runFlow(t testing.TB, cfg flow.Config) (engine.Snapshot, connector.Connector) {
	t.Helper()
	ctx := context.Background()
	src, err := connector.Open(ctx, cfg.Source)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	dst, err := connector.Open(ctx, cfg.Destination)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	if cfg.StateDir == "" {
		cfg.StateDir = t.TempDir()
	}
	store, err := state.Open(ctx, cfg.StateDir, cfg.FlowName())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	e, err := engine.New(cfg, src, dst, store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Run(ctx, ctx); err != nil {
		t.Fatal(err)
	}
	return e.Progress().Snapshot(), dst
}

func TestFakeToNullCountsEveryRowAndChange(t *testing.T) {
	snap, dst := runFlow(t, flow.Config{Source: "fake://?tables=3&rows=5000&changes=7000", Destination: "null://",
		Until: "caught-up", Parallel: 3, PartitionRows: 1000})
	rows, changes := dst.(*null.Destination).Counts()
	if rows != 15000 || snap.RowsCopied != 15000 {
		t.Fatalf("rows: destination got %d, progress says %d; want 15000", rows, snap.RowsCopied)
	}
	if snap.CDC.Received != 7000 || snap.CDC.Position != "7000" {
		t.Fatalf("cdc: received %d up to %s; want 7000 up to 7000", snap.CDC.Received, snap.CDC.Position)
	}
	if changes == 0 || changes > 7000 {
		t.Fatalf("applied %d changes after folding, want 1..7000", changes)
	}
	if snap.Phase != engine.PhaseDone {
		t.Fatalf("phase %s", snap.Phase)
	}
}

func TestNegotiationRefusesImpossiblePairs(t *testing.T) {
	ctx := context.Background()
	open := func(u string) connector.Connector {
		c, err := connector.Open(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	fake, nocdc, nul := open("fake://"), open("fake://?cdc=false"), open("null://")
	cases := []struct {
		mode     flow.Mode
		src, dst connector.Connector
		want     flow.Mode
		fails    bool
	}{
		{flow.ModeAuto, fake, nul, flow.ModeFull, false},
		{flow.ModeAuto, nocdc, nul, flow.ModeSnapshot, false},
		{flow.ModeFull, nocdc, nul, "", true},
		{flow.ModeCDC, nocdc, nul, "", true},
		{flow.ModeSnapshot, nocdc, nul, flow.ModeSnapshot, false},
		{flow.ModeAuto, nul, nul, "", true},   // null is no source
		{flow.ModeAuto, fake, fake, "", true}, // fake is no destination
	}
	for _, c := range cases {
		got, err := engine.Negotiate(c.mode, c.src, c.dst, "src", "dst")
		if c.fails {
			if err == nil || !errs.IsConfigError(err) {
				t.Errorf("mode %q: got %v, %v; want a configuration error", c.mode, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("mode %q: got %v, %v; want %v", c.mode, got, err, c.want)
		}
	}
}

func BenchmarkFakeToNull(b *testing.B) {
	const rows = 200_000
	for i := 0; i < b.N; i++ {
		runFlow(b, flow.Config{Source: "fake://?tables=4&rows=50000", Destination: "null://", Mode: flow.ModeSnapshot, Parallel: 4, PartitionRows: 25000})
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkFakeCDCToNull(b *testing.B) {
	const changes = 200_000
	for i := 0; i < b.N; i++ {
		runFlow(b, flow.Config{Source: "fake://?tables=4&rows=10&changes=200000", Destination: "null://", Mode: flow.ModeCDC, Until: "caught-up"})
	}
	b.ReportMetric(float64(changes*b.N)/b.Elapsed().Seconds(), "changes/s")
}

func BenchmarkFakeToSQLite(b *testing.B) {
	const rows = 200_000
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		runFlow(b, flow.Config{Source: "fake://?tables=4&rows=50000", Destination: "sqlite://" + dir + "/bench.db", Mode: flow.ModeSnapshot, Parallel: 4, PartitionRows: 25000})
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// flowSource records the flow name the engine streams changes with.
type flowSource struct {
	*fake.Source
	flow string
}

func (s *flowSource) StreamChanges(ctx context.Context, tables []*model.Table, from model.Position, opts connector.StreamOptions, emit func(context.Context, *model.ChangeBatch) error) error {
	s.flow = opts.Flow
	return s.Source.StreamChanges(ctx, tables, from, opts, emit)
}

// A resumed flow streams without planning again: the source finds what its
// plan made (a replication slot) by the flow name the stream is given.
func TestEngineStreamsWithTheFlowName(t *testing.T) {
	ctx := context.Background()
	cfg := flow.Config{Name: "bound", Source: "fake://?tables=1&rows=10&changes=5", Destination: "null://", Until: "caught-up", StateDir: t.TempDir()}
	c, err := connector.Open(ctx, cfg.Source)
	if err != nil {
		t.Fatal(err)
	}
	src := &flowSource{Source: c.(*fake.Source)}
	e, closeAll := newTestEngineWith(t, cfg, src, &null.Destination{}, slog.New(slog.DiscardHandler))
	defer closeAll()
	if err := e.Run(ctx, ctx); err != nil {
		t.Fatal(err)
	}
	if src.flow != "bound" {
		t.Fatalf("StreamChanges got flow %q, want %q", src.flow, "bound")
	}
}
