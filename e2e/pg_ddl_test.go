package e2e

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// The application's migrations on a PostgreSQL source while changes stream
// under a write load, one after the other: a column added with a constant
// default (the rows that existed get it without a change), a rename (values
// kept), a drop, a widening (numeric precision up, int to bigint: a
// rewrite, copied again), a column added with a volatile default (a
// rewrite), and a TRUNCATE. The flow never stops, and every table ends equal,
// the renamed and added columns' values included.
func pgSchemaChangesScenario(t *testing.T, srv *pgtest.Server, src string, running func() bool, log func() string) {
	t.Helper()
	stmts := []string{
		`ALTER TABLE accts ADD COLUMN tier text NOT NULL DEFAULT 'basic'`,
		`ALTER TABLE accts RENAME COLUMN label TO title`,
		`ALTER TABLE accts DROP COLUMN obsolete`,
		`ALTER TABLE accts ALTER COLUMN bal TYPE numeric(14,2)`,
		`ALTER TABLE accts ALTER COLUMN hits TYPE bigint`,
		`ALTER TABLE accts ADD COLUMN seen timestamptz DEFAULT clock_timestamp()`,
		`TRUNCATE lines`,
		`INSERT INTO lines VALUES (1, 1, 'after the truncate', 1)`,
	}
	for _, q := range stmts {
		time.Sleep(300 * time.Millisecond)
		srv.Exec(t, src, q)
		if !running() {
			t.Fatalf("the flow stopped before %s:\n%s", q, log())
		}
	}
	time.Sleep(500 * time.Millisecond)
}

// acctWriter changes accts until halted, with statements every shape of
// the table above takes.
type acctWriter struct {
	stop chan struct{}
	done chan error
	ops  atomic.Int64
}

func startAcctWriter(t *testing.T, dsn string) *acctWriter {
	t.Helper()
	w := &acctWriter{stop: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			w.done <- err
			return
		}
		defer conn.Close(ctx)
		rng := rand.New(rand.NewSource(7))
		next := int64(5001)
		for {
			select {
			case <-w.stop:
				w.done <- nil
				return
			default:
			}
			id := rng.Int63n(next-1) + 1
			switch rng.Intn(4) {
			case 0:
				_, err = conn.Exec(ctx, `INSERT INTO accts (id, hits) VALUES ($1, 1)`, next)
				next++
			case 1, 2:
				_, err = conn.Exec(ctx, `UPDATE accts SET hits = hits + 1 WHERE id = $1`, id)
			case 3:
				_, err = conn.Exec(ctx, `DELETE FROM accts WHERE id = $1`, id)
			}
			if err != nil {
				w.done <- fmt.Errorf("accts writer: %w", err)
				return
			}
			w.ops.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	t.Cleanup(w.halt)
	return w
}

func (w *acctWriter) halt() {
	select {
	case <-w.stop:
		return
	default:
	}
	close(w.stop)
	<-w.done
}

const acctsSchema = `CREATE TABLE accts (id bigint PRIMARY KEY, label text, obsolete int, bal numeric(8,2), hits int NOT NULL DEFAULT 0);
	INSERT INTO accts SELECT g, 'acct ' || g, g, g % 1000 + 0.25, 0 FROM generate_series(1, 5000) g`

func TestPostgresSchemaChangesDuringCDC(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "pgddlsrc"), srv.CreateDatabase(t, "pgddldst")
	pgShop(t, srv, src, 3000)
	srv.Exec(t, src, acctsSchema)
	args := []string{"sync", srv.URL(src), srv.URL(dst), "--name", "pgddl", "--state-dir", t.TempDir(),
		"--batch-rows", "500", "--log-format", "json", "--progress", "none"}
	bg := startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("ferry did not reach CDC:\n%s", bg.stderr.String())
	}
	w, aw := startPGWriter(t, srv.URL(src), 3001), startAcctWriter(t, srv.URL(src))
	pgSchemaChangesScenario(t, srv, src, func() bool { return !bg.hasExited() }, func() string { return tail(bg.stderr.String(), 30) })
	w.halt(t)
	aw.halt()
	awaitEqual(t, srv, src, dst, "accts", "id")
	awaitEqual(t, srv, src, dst, "orders", "id")
	awaitEqual(t, srv, src, dst, "lines", "order_id, line")
	if code := bg.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("ferry exited %d after SIGTERM:\n%s", code, bg.stderr.String())
	}
	for _, want := range []string{"added tier", "renamed label to title", "dropped obsolete", "bal: numeric(8,2) to numeric(14,2)", "added seen", "applied truncate"} {
		if !strings.Contains(bg.stderr.String(), want) {
			t.Errorf("the log does not show %q", want)
		}
	}

	// A narrowing type change stops the flow with what to do, and nothing
	// after it is written.
	srv.Exec(t, src, `ALTER TABLE accts ALTER COLUMN title TYPE varchar(4) USING left(title, 4); INSERT INTO accts (id, title, hits) VALUES (90001, 'abcd', 1)`)
	r := ferry(t, append(args, "--until", "caught-up")...)
	if r.code == 0 || !strings.Contains(r.stderr, "title") || !strings.Contains(r.stderr, "accts") {
		t.Fatalf("a narrowing type change: want a failure naming the table and the column, got %s", r)
	}
	if got := queryRows(t, srv, dst, `SELECT id FROM accts WHERE id = 90001`); got != "" {
		t.Fatalf("a row after the narrowing reached the destination: %q", got)
	}
	t.Logf("the narrowing: exit %d, %s", r.code, tail(r.stderr, 2))
}

func TestScaleOutPostgresSchemaChangesDuringCDC(t *testing.T) {
	ts := startTemporal(t)
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "soddlsrc"), srv.CreateDatabase(t, "soddldst")
	pgShop(t, srv, src, 3000)
	srv.Exec(t, src, acctsSchema)
	wk := ts.worker(t, "src="+srv.URL(src)+"&heartbeat=1s", "dst="+srv.URL(dst))
	const name = "soddl"
	run := startFerry(t, "run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--name", name,
		"--batch-rows", "500", "--log-format", "json", "--progress", "none")
	w, aw := startPGWriter(t, srv.URL(src), 3001), startAcctWriter(t, srv.URL(src))
	ts.awaitStreaming(t, name, run)
	pgSchemaChangesScenario(t, srv, src, func() bool { return !run.hasExited() }, func() string { return tail(wk.stderr.String(), 30) })
	w.halt(t)
	aw.halt()
	awaitEqual(t, srv, src, dst, "accts", "id")
	awaitEqual(t, srv, src, dst, "orders", "id")
	awaitEqual(t, srv, src, dst, "lines", "order_id, line")
	mustFerry(t, "flow", "cutover", name, "--temporal", ts.addr)
	awaitEqual(t, srv, src, dst, "accts", "id")
}
