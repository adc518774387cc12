package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
