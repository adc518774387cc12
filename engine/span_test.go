package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connectors/postgres"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/state"
)

// spanBreaker decorates a PostgreSQL destination: the applier's
// connection is terminated by the server (pg_terminate_backend) once, just
// before the part number breakAt of a source transaction applied in parts,
// as a destination restart would end it.
type spanBreaker struct {
	*postgres.Conn
	srv     *pgtest.Server
	db      string
	breakAt int
	mu      sync.Mutex
	parts   int
	broken  bool
}

func (d *spanBreaker) OpenApplier(ctx context.Context) (connector.ChangeWriter, error) {
	w, err := d.Conn.OpenApplier(ctx)
	if err != nil {
		return nil, err
	}
	return &spanBreakerWriter{ChangeWriter: w, d: d}, nil
}

type spanBreakerWriter struct {
	connector.ChangeWriter
	d *spanBreaker
}

func (w *spanBreakerWriter) ApplyChanges(ctx context.Context, b *model.ApplyBatch) error {
	d := w.d
	d.mu.Lock()
	if b.Continues {
		d.parts++
	}
	kill := !d.broken && d.parts == d.breakAt
	if kill {
		d.broken = true
	}
	d.mu.Unlock()
	if kill {
		conn, err := pgx.Connect(ctx, d.srv.URL(d.db))
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = $1 AND state LIKE 'idle in transaction%'`, d.db).Scan(&n); err != nil || n != 1 {
			return fmt.Errorf("terminate the applier's connection: %d terminated, %v", n, err)
		}
	}
	return w.ChangeWriter.ApplyChanges(ctx, b)
}

// A destination connection lost in the middle of a source transaction
// applied in parts takes the parts before with it: the engine runs the
// stream again from the checkpoint before the transaction, which applies
// it whole, once, and never commits the parts after the loss alone.
func TestTransactionalApplyReplaysATransactionWhoseDestinationTransactionWasLost(t *testing.T) {
	const rows = 50_000 // five parts of the PostgreSQL source
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "spansrc"), srv.CreateDatabase(t, "spandst")
	srv.Exec(t, src, `CREATE TABLE ledger (id int PRIMARY KEY, amount int NOT NULL)`)
	cfg := flow.Config{Source: srv.URL(src), Destination: srv.URL(dst), Mode: flow.ModeFull, StateDir: t.TempDir(),
		ApplyMode: flow.ApplyTransactional, Until: "caught-up"}
	ctx := context.Background()
	e, _, _, closeState := openEngine(t, cfg)
	if err := e.Run(ctx, ctx); err != nil {
		t.Fatal(err)
	}
	closeState()
	srv.Exec(t, src, fmt.Sprintf(`INSERT INTO ledger SELECT g, 1 FROM generate_series(1, %d) g`, rows))

	// Resumed with the breaking destination.
	sc, err := connector.Open(ctx, cfg.Source)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	dc, err := connector.Open(ctx, cfg.Destination)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dc.Close() })
	breaker := &spanBreaker{Conn: dc.(*postgres.Conn), srv: srv, db: dst, breakAt: 3}
	store, err := state.Open(ctx, cfg.StateDir, cfg.FlowName())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var logs bytes.Buffer
	var logMu sync.Mutex
	e2, err := engine.New(cfg, sc, breaker, store, slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := e2.Run(ctx, ctx); err != nil {
		t.Fatalf("run: %v\n%s", err, logs.String())
	}
	if !breaker.broken {
		t.Fatalf("the destination was never broken: %d parts", breaker.parts)
	}
	logMu.Lock()
	out := logs.String()
	logMu.Unlock()
	if !strings.Contains(out, "running the stream again from the last checkpoint") {
		t.Errorf("the engine did not say it ran the stream again:\n%s", out)
	}
	var n, sum int64
	if err := srv.Connect(t, dst).QueryRow(ctx, `SELECT count(*), coalesce(sum(amount), 0) FROM ledger`).Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	if n != rows || sum != rows {
		t.Fatalf("the destination's ledger has %d rows summing %d, want %d", n, sum, rows)
	}
	if p := e2.Progress().CDC.HeldPeak.Load(); p > 10_000 {
		t.Errorf("an apply batch held %d changes of a %d-change transaction, want one part (10000)", p, rows)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
