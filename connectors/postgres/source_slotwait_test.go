package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/model"
)

// lockedBuffer collects log output written from other goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitForLog waits up to timeout for a log line containing want and
// returns it.
func waitForLog(logs *lockedBuffer, want string, timeout time.Duration) string {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, want) {
				return line
			}
		}
	}
	return ""
}

// A write transaction left open in another database of the source server
// holds the creation of the flow's slot: the plan says, within seconds,
// which session it waits for and how to end it; cancelling the plan ends
// the wait at once and leaves no slot or publication behind; ending the
// blocking session lets the plan finish.
func TestPlanReportsAndCancelsTheSlotWait(t *testing.T) {
	srv := pgtest.Start(t)
	src, other := srv.CreateDatabase(t, "src"), srv.CreateDatabase(t, "other")
	srv.Exec(t, src, `CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, 'x' FROM generate_series(1, 100) g`)
	srv.Exec(t, other, `CREATE TABLE audit (id int)`)

	// The blocking transaction exists before the plan starts: the wait is
	// certain, not a matter of timing.
	blockerConn := srv.Connect(t, other)
	bg := context.Background()
	if _, err := blockerConn.Exec(bg, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	if _, err := blockerConn.Exec(bg, `INSERT INTO audit VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	pid := blockerConn.PgConn().PID()

	logs := &lockedBuffer{}
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(logs, nil)))

	c := open(t, srv.URL(src))
	tables, err := c.Tables(bg)
	if err != nil {
		t.Fatal(err)
	}
	admin := srv.Connect(t, src)
	slotsAndPubs := func() string {
		var s string
		if err := admin.QueryRow(bg, `SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'ferry_wait') || ' slots, ' ||
			(SELECT count(*) FROM pg_publication WHERE pubname = 'ferry_wait') || ' publications'`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	type planned struct {
		plan *model.Plan
		err  error
	}
	startPlan := func(ctx context.Context) chan planned {
		done := make(chan planned, 1)
		go func() {
			p, err := c.Plan(ctx, tables, connector.PlanOptions{CDC: true, Flow: "wait"})
			done <- planned{p, err}
		}()
		return done
	}

	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	done := startPlan(ctx)
	line := waitForLog(logs, fmt.Sprintf("pid %d ", pid), 10*time.Second)
	if line == "" {
		t.Fatalf("no warning naming the blocking session (pid %d) within 10 s; logs:\n%s", pid, logs)
	}
	for _, want := range []string{"creating replication slot ferry_wait has waited", "database " + other, "idle in transaction",
		"last query: INSERT INTO audit VALUES (1)", fmt.Sprintf("SELECT pg_terminate_backend(%d)", pid), fmt.Sprintf("blocking_pids=[%d]", pid)} {
		if !strings.Contains(line, want) {
			t.Errorf("the warning does not say %q: %s", want, line)
		}
	}
	select {
	case r := <-done:
		t.Fatalf("the plan ended while the transaction was still open: %v", r.err)
	default:
	}

	cancel()
	start := time.Now()
	var r planned
	select {
	case r = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the plan did not end within 5 s of its cancellation")
	}
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled plan: error %v, want context.Canceled", r.err)
	}
	t.Logf("warning: %s", line)
	t.Logf("the cancelled plan returned in %s", time.Since(start).Round(time.Millisecond))
	if got := slotsAndPubs(); got != "0 slots, 0 publications" {
		t.Fatalf("after the cancelled plan the source has %s of the flow; want none", got)
	}

	// Again, and this time the blocking session is ended as the warning says.
	logs.mu.Lock()
	logs.buf.Reset()
	logs.mu.Unlock()
	done = startPlan(bg)
	if waitForLog(logs, fmt.Sprintf("pid %d ", pid), 10*time.Second) == "" {
		t.Fatalf("no warning on the second plan; logs:\n%s", logs)
	}
	srv.Exec(t, src, fmt.Sprintf(`SELECT pg_terminate_backend(%d)`, pid))
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the plan did not finish within 30 s of the blocking session's end")
	}
	if r.err != nil {
		t.Fatalf("plan after the blocker ended: %v", r.err)
	}
	if r.plan.T0 == "" || len(r.plan.Partitions) == 0 {
		t.Fatalf("plan without T0 or partitions: %+v", r.plan)
	}
	if got := slotsAndPubs(); got != "1 slots, 1 publications" {
		t.Fatalf("after the plan the source has %s of the flow; want its slot and publication", got)
	}
}

// A prepared transaction holds the slot's creation with no session to
// end: the warning names it and says how to finish it; once it is rolled
// back the plan goes on.
func TestPlanNamesAPreparedTransactionItWaitsFor(t *testing.T) {
	srv := pgtest.Start(t, pgtest.Setting("max_prepared_transactions=2"))
	src, other := srv.CreateDatabase(t, "src"), srv.CreateDatabase(t, "other")
	srv.Exec(t, src, `CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1)`)
	srv.Exec(t, other, `CREATE TABLE audit (id int); BEGIN; INSERT INTO audit VALUES (1); PREPARE TRANSACTION 'orphan''s 2pc'`)

	logs := &lockedBuffer{}
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(logs, nil)))
	c := open(t, srv.URL(src))
	ctx := context.Background()
	tables, err := c.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Plan(ctx, tables, connector.PlanOptions{CDC: true, Flow: "prepared"})
		done <- err
	}()
	line := waitForLog(logs, "prepared transaction 'orphan''s 2pc'", 10*time.Second)
	if line == "" {
		t.Fatalf("no warning naming the prepared transaction within 10 s; logs:\n%s", logs)
	}
	for _, want := range []string{"database " + other, "ROLLBACK PREPARED 'orphan''s 2pc'", "blocking_pids=[]"} {
		if !strings.Contains(line, want) {
			t.Errorf("the warning does not say %q: %s", want, line)
		}
	}
	srv.Exec(t, other, `ROLLBACK PREPARED 'orphan''s 2pc'`)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("plan after the prepared transaction ended: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the plan did not finish within 30 s of the prepared transaction's end")
	}
}
