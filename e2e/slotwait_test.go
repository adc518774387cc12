package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// slotWaitWarning waits for the warning that names the blocking session
// pid and returns it.
func slotWaitWarning(t *testing.T, bg *background, pid uint32, timeout time.Duration) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, line := range strings.Split(bg.stderr.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["level"] == "WARN" &&
				strings.Contains(fmt.Sprint(m["msg"]), fmt.Sprintf("pid %d ", pid)) {
				return m
			}
		}
		if bg.hasExited() {
			break
		}
	}
	t.Fatalf("no warning naming the blocking session (pid %d) within %s:\n%s", pid, timeout, bg.stderr.String())
	return nil
}

// A write transaction left open in another database of the source server
// makes the plan wait (PostgreSQL creates the slot only once it ends):
// ferry says within seconds which session it waits for and how to end it;
// the first SIGTERM ends the run at once with exit 0, nothing copied and
// nothing left (no slot, no publication, no state); run again, ending the
// blocking session as the warning says lets the flow go on to the end.
func TestSlotWaitIsReportedAndInterruptible(t *testing.T) {
	srv := pgtest.Start(t)
	src, dst, other := srv.CreateDatabase(t, "src"), srv.CreateDatabase(t, "dst"), srv.CreateDatabase(t, "other")
	srv.Exec(t, src, `CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, 'x' FROM generate_series(1, 1000) g`)
	srv.Exec(t, other, `CREATE TABLE audit (id int)`)
	// Opened before ferry starts: the wait is certain.
	blocker := srv.Connect(t, other)
	ctx := context.Background()
	for _, q := range []string{`BEGIN`, `INSERT INTO audit VALUES (42)`} {
		if _, err := blocker.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	pid := blocker.PgConn().PID()
	dir := t.TempDir()
	args := []string{"sync", srv.URL(src), srv.URL(dst), "--name", "waiting", "--state-dir", dir, "--until", "caught-up",
		"--log-format", "json", "--progress", "none"}

	bg := startFerry(t, args...)
	w := slotWaitWarning(t, bg, pid, 15*time.Second)
	msg := fmt.Sprint(w["msg"])
	for _, want := range []string{"creating replication slot ferry_waiting", "database " + other, "INSERT INTO audit VALUES (42)",
		fmt.Sprintf("SELECT pg_terminate_backend(%d)", pid)} {
		if !strings.Contains(msg, want) {
			t.Errorf("the warning does not say %q: %s", want, msg)
		}
	}
	start := time.Now()
	code := bg.signal(t, syscall.SIGTERM)
	took := time.Since(start)
	out := bg.stderr.String()
	if code != 0 {
		t.Fatalf("exit code %d after SIGTERM during the plan, want 0:\n%s", code, out)
	}
	if took > 5*time.Second {
		t.Fatalf("ferry took %s to exit after SIGTERM during the plan:\n%s", took, out)
	}
	t.Logf("ferry exited %s after SIGTERM", took.Round(time.Millisecond))
	for _, never := range []string{`"msg":"copy starting"`, `"msg":"planned flow"`} {
		if strings.Contains(out, never) {
			t.Fatalf("%s logged after the plan was cancelled:\n%s", never, out)
		}
	}
	if !strings.Contains(out, "the plan was cancelled") {
		t.Fatalf("no line saying the plan was cancelled:\n%s", out)
	}
	admin := srv.Connect(t, src)
	var slots, pubs int
	if err := admin.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_replication_slots), (SELECT count(*) FROM pg_publication)`).Scan(&slots, &pubs); err != nil {
		t.Fatal(err)
	}
	if slots != 0 || pubs != 0 {
		t.Fatalf("after the cancelled plan the source keeps %d replication slots and %d publications, want none", slots, pubs)
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Fatalf("after the cancelled plan the state directory holds %s, want nothing", entries[0].Name())
	}

	// The blocking session is still open: the next run waits again until
	// it is ended as the warning says, then copies and catches up.
	bg = startFerry(t, args...)
	slotWaitWarning(t, bg, pid, 15*time.Second)
	srv.Exec(t, src, fmt.Sprintf(`SELECT pg_terminate_backend(%d)`, pid))
	select {
	case <-bg.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("the flow did not finish within 60 s of the blocking session's end:\n%s", bg.stderr.String())
	}
	if code := bg.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after the blocking session ended:\n%s", code, bg.stderr.String())
	}
	var n int
	if err := srv.Connect(t, dst).QueryRow(ctx, `SELECT count(*) FROM public.items`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1000 {
		t.Fatalf("the destination has %d rows, want 1000", n)
	}
}
