package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/scaleout"
)

// TestScaleOutFleetFile starts two flows from one fleet file on one pool
// of workers: a large copy (200 partitions) and a small one started with
// it. Each flow keeps at most --parallel of its partitions queued on
// Temporal (its window), so the small flow's tasks are not queued behind
// the large one's: it finishes while the large one still copies.
func TestScaleOutFleetFile(t *testing.T) {
	ts := startTemporal(t)
	ts.worker(t, "big=fake://?tables=1&rows=400000&seed=3", "small=fake://?tables=1&rows=1000&seed=4", "void=null://", "--concurrency=2")
	fleet := filepath.Join(t.TempDir(), "fleet.yaml")
	if err := os.WriteFile(fleet, []byte(`flows:
  - name: large
    source: big
    destination: void
    mode: snapshot
    partition_rows: 2000
    parallel: 2
  - name: quick
    source: small
    destination: void
    mode: snapshot
`), 0o644); err != nil {
		t.Fatal(err)
	}

	// A mistake in any flow starts none.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("flows:\n  - name: a\n    source: big\n    destination: void\n  - source: small\n    destination: void\n"), 0o644) //nolint:errcheck // read next
	if r := ferry(t, "run", "-f", bad, "--temporal", ts.addr); r.code != 2 || !strings.Contains(r.stderr, "flow 2 has no name") {
		t.Fatalf("a fleet file with an unnamed flow: want exit 2: %s", r)
	}
	if st := ts.flowStatus(t, "a"); st != nil {
		t.Fatalf("a flow of a refused fleet file started: %+v", st)
	}

	r := mustFerry(t, "run", "-f", fleet, "--temporal", ts.addr)
	for _, want := range []string{"flow large started", "flow quick started"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("ferry run -f FLEET said:\n%s\nwant %q", r.stdout, want)
		}
	}
	ts.awaitFlow(t, "quick", "the small flow's end", func(st *scaleout.Status) bool { return st.Status == "Completed" })
	large := ts.flowStatus(t, "large")
	snap := large.Snapshot()
	if large.Status == "Completed" || len(snap.Tables) != 1 || snap.Tables[0].PartitionsDone >= snap.Tables[0].Partitions {
		t.Fatalf("the small flow ended after the large one's copy (large: %s, %+v): its tasks waited behind the large flow's", large.Status, snap.Tables)
	}
	t.Logf("when the small flow ended, the large one had copied %d of %d partitions", snap.Tables[0].PartitionsDone, snap.Tables[0].Partitions)
	ts.awaitFlow(t, "large", "the large flow's end", func(st *scaleout.Status) bool { return st.Status == "Completed" })
	if got := ts.flowStatus(t, "large").Snapshot().RowsCopied; got != 400000 {
		t.Fatalf("the large flow copied %d rows, want 400000", got)
	}
}

// TestScaleOutFleetSurvivesAKilledWorker: four flows from one fleet file
// share two workers (fake sources into SQLite and PostgreSQL). The sources
// are paced, so partitions of several flows are in flight when one worker
// is killed with SIGKILL; their partitions are retried on the other, and
// every flow ends with a copy ferry flow verify finds equal.
func TestScaleOutFleetSurvivesAKilledWorker(t *testing.T) {
	srv := pgtest.Shared(t)
	ts := startTemporal(t)
	dir := t.TempDir()
	var conns []string
	var flows strings.Builder
	flows.WriteString("flows:\n")
	for i := 1; i <= 4; i++ {
		dst := "sqlite://" + filepath.Join(dir, fmt.Sprintf("f%d.db", i))
		if i%2 == 0 {
			dst = srv.URL(srv.CreateDatabase(t, fmt.Sprintf("fleetkill%d", i)))
		}
		conns = append(conns, fmt.Sprintf("src%d=fake://?tables=2&rows=3000&seed=%d&rows_per_sec=200", i, i), fmt.Sprintf("dst%d=%s", i, dst))
		fmt.Fprintf(&flows, "  - name: fk%d\n    source: src%d\n    destination: dst%d\n    mode: snapshot\n    partition_rows: 1000\n    parallel: 3\n", i, i, i)
	}
	fleet := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(fleet, []byte(flows.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	w1 := ts.worker(t, append(conns, "--concurrency=6")...)
	w2 := ts.worker(t, append(conns, "--concurrency=6")...)
	pids := map[int]*background{w1.cmd.Process.Pid: w1, w2.cmd.Process.Pid: w2}
	mustFerry(t, "run", "-f", fleet, "--temporal", ts.addr, "--heartbeat-timeout", "3s")

	// The kill lands while the victim copies partitions of at least two
	// flows (at 200 rows a second, a partition takes five seconds to read).
	var victim *background
	inFlight := map[string]bool{}
	deadline := time.Now().Add(90 * time.Second)
	for victim == nil && time.Now().Before(deadline) {
		byWorker := map[int]map[string]bool{}
		for i := 1; i <= 4; i++ {
			st := ts.flowStatus(t, fmt.Sprintf("fk%d", i))
			if st == nil {
				continue
			}
			for _, p := range st.State.Parts {
				if p.State != scaleout.PartRunning || p.Rows >= p.EstimatedRows {
					continue
				}
				_, pidText, _ := strings.Cut(p.Worker, ":")
				pid, _ := strconv.Atoi(pidText)
				if pids[pid] == nil {
					continue
				}
				if byWorker[pid] == nil {
					byWorker[pid] = map[string]bool{}
				}
				byWorker[pid][st.Flow] = true
			}
		}
		for pid, fl := range byWorker {
			if len(fl) >= 2 {
				victim, inFlight = pids[pid], fl
				break
			}
		}
		if victim == nil {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if victim == nil {
		t.Fatalf("no worker was seen copying partitions of two flows at once:\nworker 1:\n%s", tail(w1.stderr.String(), 20))
	}
	if !victim.kill(t) {
		t.Fatal("the worker had exited before the kill")
	}
	t.Logf("killed worker %d while it copied partitions of %v", victim.cmd.Process.Pid, inFlight)

	for i := 1; i <= 4; i++ {
		name := fmt.Sprintf("fk%d", i)
		ts.awaitFlow(t, name, name+"'s end", func(st *scaleout.Status) bool { return st.Status == "Completed" })
		if r := mustFerry(t, "flow", "verify", name, "--temporal", ts.addr); !strings.Contains(r.stdout, "all 2 table(s) equal") {
			t.Fatalf("flow verify %s: %s", name, r)
		}
	}
	retried := 0
	for fl := range inFlight {
		for _, p := range ts.flowStatus(t, fl).State.Parts {
			if p.Attempts > 1 {
				retried++
			}
		}
	}
	if retried == 0 {
		t.Fatalf("no partition of %v was retried after the kill", inFlight)
	}
}
