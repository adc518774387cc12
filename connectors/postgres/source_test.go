package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/state"
)

// A PostgreSQL flow reports its lag in bytes of WAL: known (not null)
// during CDC, positive while a backlog drains, never more than the WAL
// written since the flow stopped, and near zero once caught up.
func TestCDCReportsLagInBytes(t *testing.T) {
	// The source has a server of its own: applying at a destination on the
	// same server would write WAL too, which the lag rightly counts.
	srcSrv := pgtest.Start(t)
	srcDB := srcSrv.CreateDatabase(t, "lagsrc")
	p := newPair(t)
	src := srcSrv.Connect(t, srcDB)
	dst := p.srv.Connect(t, p.dst)
	mustExec(t, src, `CREATE TABLE ev (id int PRIMARY KEY, v text)`)
	cfg := flow.Config{Name: "lag", Source: srcSrv.URL(srcDB), Destination: p.dstURL(), StateDir: t.TempDir(), Until: "caught-up", Writers: 1, ApplyBatch: 500}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	var startLSN string
	if err := src.QueryRow(context.Background(), `SELECT pg_current_wal_insert_lsn()::text`).Scan(&startLSN); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		mustExec(t, src, `INSERT INTO ev SELECT g, repeat('x', 200) FROM generate_series($1::int * 5000 + 1, ($1::int + 1) * 5000) g`, i)
	}
	var written int64
	if err := src.QueryRow(context.Background(), `SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)::int8`, startLSN).Scan(&written); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stop, stopNow := context.WithCancel(ctx)
	defer stopNow()
	cfg.Until = ""
	s, err := connector.Open(ctx, cfg.Source)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err := connector.Open(ctx, cfg.Destination)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	store, err := state.Open(ctx, cfg.StateDir, cfg.FlowName())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	e, err := engine.New(cfg, s, d, store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var g errgroup.Group
	g.Go(func() error { return e.Run(ctx, stop) })
	var seen []int64
	caughtUp := time.Time{}
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if lag := e.Progress().Snapshot().CDC.LagBytes; lag != nil {
			if len(seen) == 0 || seen[len(seen)-1] != *lag {
				seen = append(seen, *lag)
			}
		}
		if caughtUp.IsZero() && count(t, dst, `SELECT count(*) FROM ev`) == 100000 {
			caughtUp = time.Now()
		}
		if !caughtUp.IsZero() && time.Since(caughtUp) > 3*time.Second {
			break
		}
	}
	stopNow()
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if caughtUp.IsZero() {
		t.Fatal("CDC never applied the backlog")
	}
	if len(seen) == 0 {
		t.Fatal("the lag in bytes stayed null during CDC")
	}
	var most int64
	for _, v := range seen {
		most = max(most, v)
	}
	if most <= 0 || most > written+1<<20 {
		t.Fatalf("lag in bytes went up to %d with %d bytes of WAL written (seen %v)", most, written, seen)
	}
	if last := seen[len(seen)-1]; last > 256<<10 {
		t.Fatalf("lag in bytes once caught up: %d (seen %v)", last, seen)
	}
	t.Logf("WAL written %d; lag in bytes seen %v", written, seen)
}
