package e2e

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// TestMaxRateHoldsTheCopyUnderTheLimit copies 24,000 rows over three
// lanes with --max-rate 4000 (rows per second): the copy may not go
// faster than that, measured over the whole run (which only adds ferry's
// start to the time), beyond the limiter's burst (a tenth of a second's
// worth). While it copies, the connections ferry holds to the source are
// counted and logged: --parallel bounds them.
func TestMaxRateHoldsTheCopyUnderTheLimit(t *testing.T) {
	pg := pgtest.Shared(t)
	src, dst := pg.CreateDatabase(t, "ratesrc"), pg.CreateDatabase(t, "ratedst")
	const rows, limit = 24_000, 4000
	pg.Exec(t, src, `CREATE TABLE items (id int PRIMARY KEY, note text NOT NULL);
		INSERT INTO items SELECT g, repeat('x', 100) FROM generate_series(1, 24000) g`)

	var most atomic.Int64
	stop := make(chan struct{})
	counted := make(chan struct{})
	go func() {
		defer close(counted)
		conn := pg.Connect(t, "postgres")
		for {
			var n int64
			if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, src).Scan(&n); err == nil && n > most.Load() {
				most.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	start := time.Now()
	mustFerry(t, "sync", pg.URL(src), pg.URL(dst), "--name", "maxrate", "--state-dir", t.TempDir(), "--mode", "snapshot",
		"--parallel", "3", "--partition-rows", "4000", "--batch-rows", "500", "--max-rate", "4000", "--log-format", "json", "--progress", "none")
	elapsed := time.Since(start).Seconds()
	close(stop)
	<-counted

	var got int
	if err := pg.Connect(t, dst).QueryRow(context.Background(), `SELECT count(*) FROM items`).Scan(&got); err != nil || got != rows {
		t.Fatalf("the destination has %d rows (%v), want %d", got, err, rows)
	}
	burst := float64(limit) / 10
	observed := float64(rows) / elapsed
	t.Logf("copied %d rows in %.2fs: %.0f rows/s with --max-rate %d; at most %d connections to the source (--parallel 3)", rows, elapsed, observed, limit, most.Load())
	if max := float64(limit) + burst/elapsed; observed > max {
		t.Errorf("the copy read %.0f rows/s, above --max-rate %d (and its burst of %.0f rows)", observed, limit, burst)
	}
}
