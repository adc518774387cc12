package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestScaleoutVerifyComparesEachTableOnAWorker: ferry flow verify compares
// each table in an activity of its own, spread over two workers, and finds
// a row changed at the destination. (Its history, recorded before
// verify-by-range, is scaleout/testdata/history-verify-per-table.json;
// TestScaleoutVerifySplitsALargeTableIntoRanges records today's shape.)
func TestScaleoutVerifyComparesEachTableOnAWorker(t *testing.T) {
	ts := startTemporal(t)
	db := filepath.Join(t.TempDir(), "dst.db")
	srcURL := "fake://?tables=3&rows=2000&seed=7"
	conns := []string{"src=" + srcURL, "dst=sqlite://" + db}
	ts.worker(t, conns...)
	ts.worker(t, conns...)
	mustFerry(t, "run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--name", "sover",
		"--mode", "snapshot", "--parallel", "2", "--progress", "none")

	r := mustFerry(t, "flow", "verify", "sover", "--temporal", ts.addr)
	if !strings.Contains(r.stdout, "all 3 table(s) equal") {
		t.Fatalf("flow verify of an equal copy: %s", r)
	}
	h := verifyHistory(t, ts)
	if n := strings.Count(h, `"name": "verify-table"`) + strings.Count(h, `"name":"verify-table"`); n != 3 {
		t.Fatalf("%d verify-table activities for 3 tables:\n%s", n, h)
	}

	w := openSQLiteRW(t, db)
	if _, err := w.Exec(`UPDATE t2 SET name = 'tampered' WHERE id = 17`); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r = ferry(t, "flow", "verify", "sover", "--temporal", ts.addr)
	if r.code != 1 || !strings.Contains(r.stdout, "different id=17 (columns: name)") || strings.Count(r.stdout, ": equal") != 2 {
		t.Fatalf("flow verify of a changed row: %s", r)
	}
}

// verifyHistory is the history of the (one) verification workflow.
func verifyHistory(t *testing.T, ts *temporalServer) string {
	t.Helper()
	list := listWorkflows(t, ts, "WorkflowType='ferry-verify'")
	if len(list) == 0 {
		t.Fatal("no verification workflow")
	}
	return ts.history(t, list[0].WorkflowID)
}
