package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// TestScaleoutVerifyOnline: ferry flow verify --online compares a
// scale-out flow's tables on the workers while the flow streams a steady
// write load: nothing differs; a row changed at the destination behind the
// flow's back is a difference after every re-check; --online on a flow
// that does not stream is a usage error.
func TestScaleoutVerifyOnline(t *testing.T) {
	ts := startTemporal(t)
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "sovsrc"), srv.CreateDatabase(t, "sovdst")
	pgShop(t, srv, src, 6000)
	srv.Exec(t, src, `CREATE TABLE settings (id int PRIMARY KEY, v text); INSERT INTO settings SELECT g, 'v' || g FROM generate_series(1, 100) g`)
	conns := []string{"src=" + srv.URL(src), "dst=" + srv.URL(dst)}
	w1 := ts.worker(t, conns...)
	w2 := ts.worker(t, conns...)
	w := startPGWriter(t, srv.URL(src), 6001)
	run := startFerry(t, "run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--name", "sovo",
		"--parallel", "2", "--partition-rows", "1500", "--heartbeat-timeout", "2s", "--log-format", "json", "--progress", "none")
	ts.awaitStreaming(t, "sovo", run)
	for w.ops.Load() < 300 {
		time.Sleep(10 * time.Millisecond) // waits for writes, asserts nothing on time
	}
	args := []string{"flow", "verify", "sovo", "--online", "--temporal", ts.addr, "--json"}

	// Under a steady write load: equal.
	r := ferry(t, args...)
	v := parseVerified(t, r)
	if r.code != 0 || !v.Equal || len(v.Tables) != 3 || !v.Tables[0].Online {
		t.Fatalf("flow verify --online under load: %s", r)
	}
	t.Logf("under load (%d writes): %s", w.ops.Load(), r.stdout)
	w.halt(t)

	// Changed behind the flow's back: a persistent difference.
	srv.Exec(t, dst, `UPDATE settings SET v = 'tampered' WHERE id = 7`)
	r = ferry(t, args...)
	v = parseVerified(t, r)
	if r.code != 1 || v.Equal {
		t.Fatalf("a row changed at the destination: %s", r)
	}
	for _, tb := range v.Tables {
		want := 0
		if tb.Table == "public.settings" {
			want = 1
			if len(tb.Diffs) != 1 || tb.Diffs[0].Key != "id=7" || tb.Diffs[0].Kind != "different" || tb.Rechecks != 3 {
				t.Fatalf("settings: %+v\n%s", tb, r)
			}
		}
		if tb.DifferentKeys != want || tb.PendingKeys != 0 {
			t.Fatalf("%s: %d different, %d pending keys\n%s", tb.Table, tb.DifferentKeys, tb.PendingKeys, r)
		}
	}

	srv.Exec(t, dst, `UPDATE settings SET v = 'v7' WHERE id = 7`)

	// Held by a lock at the destination: the activity waits for the flow,
	// heartbeating (it outlives its heartbeat timeout on its first attempt),
	// and once the flow applies the row, nothing differs.
	ctx := context.Background()
	lock, err := srv.Connect(t, dst).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, `SELECT * FROM settings WHERE id = 9 FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	srv.Exec(t, src, `UPDATE settings SET v = 'changed' WHERE id = 9`)
	vb := startFerry(t, args...)
	held := waitUntil(ctx, 2*time.Minute, func() bool {
		waiting := strings.Contains(w1.stderr.String(), `"table":"public.settings","keys":1`) ||
			strings.Contains(w2.stderr.String(), `"table":"public.settings","keys":1`)
		return waiting && pendingVerifyOutlived(t, ts, 2*2*time.Second)
	})
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if !held {
		t.Fatalf("no verify activity waited for the flow on settings past its heartbeat timeout:\n%s\n%s", w1.stderr.String(), w2.stderr.String())
	}
	if err := <-vb.done; err != nil {
		t.Fatalf("verify after the flow applied the held row: %v\n%s", err, vb.stderr.String())
	}
	if !strings.Contains(vb.stderr.String(), `"equal": true`) {
		t.Fatalf("verify after the flow applied the held row:\n%s", vb.stderr.String())
	}
	if h := verifyHistoryOf(t, ts, 3); strings.Contains(h, `"attempt": 2`) || strings.Contains(h, `"attempt":2`) {
		t.Fatalf("a verify activity was retried while it waited:\n%s", h)
	}

	// A flow that does not stream: refused before any worker reads.
	mustFerry(t, "run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--name", "sovsnap",
		"--mode", "snapshot", "--tables", "public.settings", "--progress", "none")
	r = ferry(t, "flow", "verify", "sovsnap", "--online", "--temporal", ts.addr)
	if r.code != 2 {
		t.Fatalf("flow verify --online of an ended flow: want exit 2: %s", r)
	}
}

// pendingVerifyOutlived tells whether a running verification's activity
// has been running, on its first attempt, for longer than d, by its own
// heartbeats: it kept heartbeating while it waited.
func pendingVerifyOutlived(t *testing.T, ts *temporalServer, d time.Duration) bool {
	t.Helper()
	out, err := exec.Command(ts.bin, "workflow", "list", "--address", ts.addr, "--query",
		"WorkflowType='ferry-verify' AND ExecutionStatus='Running'", "--output", "json").Output()
	if err != nil {
		return false
	}
	var list []struct {
		Execution struct {
			WorkflowID string `json:"workflowId"`
		} `json:"execution"`
	}
	if json.Unmarshal(out, &list) != nil || len(list) == 0 {
		return false
	}
	out, err = exec.Command(ts.bin, "workflow", "describe", "-w", list[0].Execution.WorkflowID, "--address", ts.addr, "--output", "json").Output()
	if err != nil {
		return false
	}
	var desc struct {
		Pending []struct {
			Attempt         int       `json:"attempt"`
			LastStarted     time.Time `json:"lastStartedTime"`
			LastHeartbeated time.Time `json:"lastHeartbeatTime"`
		} `json:"pendingActivities"`
	}
	if json.Unmarshal(out, &desc) != nil {
		return false
	}
	for _, p := range desc.Pending {
		if p.Attempt == 1 && p.LastHeartbeated.Sub(p.LastStarted) > d {
			return true
		}
	}
	return false
}

// verifyHistoryOf is the history of the n-th verification workflow (in
// the order they started).
func verifyHistoryOf(t *testing.T, ts *temporalServer, n int) string {
	t.Helper()
	list := listWorkflows(t, ts, "WorkflowType='ferry-verify'")
	if len(list) < n {
		t.Fatalf("%d verification workflows, want at least %d", len(list), n)
	}
	return ts.history(t, list[len(list)-n].WorkflowID) // newest first
}
