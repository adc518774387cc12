package cli

import (
	"bytes"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/ferrydb/ferry/connectors/fake"
	_ "github.com/ferrydb/ferry/connectors/sqlite"
	"github.com/ferrydb/ferry/state"
)

// ferryRun runs ferry in this process and returns its exit code and output.
func ferryRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCutoverOfAFlowThatDoesNotExistSaysHowToStartIt(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := ferryRun(t, "cutover", "fake://?tables=1&rows=10", "sqlite://"+filepath.Join(dir, "dst.db"), "--state-dir", dir)
	if code != ExitUsage || !strings.Contains(stderr, "does not exist") || !strings.Contains(stderr, "start it with ferry sync") {
		t.Fatalf("exit %d, stderr:\n%s\nwant exit 2 saying the flow does not exist and how to start it", code, stderr)
	}
	if ok, _ := state.Exists(dir, "fake-to-sqlite"); ok {
		t.Fatal("a refused cutover left state behind")
	}
}

func TestCutoverWithoutCDCResumesTheFlowAndRunsOnlyTheFinishingSteps(t *testing.T) {
	dir := t.TempDir()
	src, dst := "fake://?tables=2&rows=300&cdc=false", "sqlite://"+filepath.Join(dir, "dst.db")
	flow := []string{src, dst, "--state-dir", dir, "--name", "snap"}
	if code, _, stderr := ferryRun(t, append([]string{"sync", "--progress", "none"}, flow...)...); code != ExitOK {
		t.Fatalf("sync: exit %d\n%s", code, stderr)
	}
	// Twice: a second cutover of a finished flow is harmless.
	for i := 0; i < 2; i++ {
		code, stdout, stderr := ferryRun(t, append([]string{"cutover", "--verify"}, flow...)...)
		if code != ExitOK {
			t.Fatalf("cutover %d: exit %d\n%s", i+1, code, stderr)
		}
		for _, want := range []string{`cutover of flow "snap" done`, "position   none", "steps run  verify", "all 2 table(s) equal"} {
			if !strings.Contains(stdout, want) {
				t.Fatalf("cutover %d: the report lacks %q:\n%s", i+1, want, stdout)
			}
		}
	}
	if _, ok, _ := state.PendingCutover(dir, "snap"); ok {
		t.Fatal("the cutover request was left behind")
	}
}

func TestCutoverWithVerifyExitsOneOnADifference(t *testing.T) {
	dir := t.TempDir()
	dstDB := filepath.Join(dir, "dst.db")
	flow := []string{"fake://?tables=1&rows=300&cdc=false", "sqlite://" + dstDB, "--state-dir", dir, "--name", "differs"}
	if code, _, stderr := ferryRun(t, append([]string{"sync", "--progress", "none"}, flow...)...); code != ExitOK {
		t.Fatalf("sync: exit %d\n%s", code, stderr)
	}
	// A row lost at the destination after the copy.
	db, err := sql.Open("sqlite", dstDB)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM t1 WHERE id = 7`); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := ferryRun(t, append([]string{"cutover", "--verify"}, flow...)...)
	if code != ExitFailed || !strings.Contains(stdout, "missing   id=7") || !strings.Contains(stderr, "differ") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit 1 naming the differing table", code, stdout, stderr)
	}
}

// A ferry sync runs the flow in CDC: ferry cutover hands it the request, the
// sync drains to the fake source's head (6000) and exits 0, and cutover
// prints its report. Before the sync streams, cutover is refused (exit 2)
// and asked again.
func TestCutoverHandsTheRequestToTheRunningSync(t *testing.T) {
	dir := t.TempDir()
	src := "fake://?tables=1&rows=500&changes=6000&changes_per_sec=2000"
	flow := []string{src, "sqlite://" + filepath.Join(dir, "dst.db"), "--state-dir", dir, "--name", "handed"}
	type exit struct {
		code   int
		stderr string
	}
	synced := make(chan exit, 1)
	go func() {
		code, _, stderr := ferryRun(t, append([]string{"sync", "--progress", "none"}, flow...)...)
		synced <- exit{code, stderr}
	}()
	deadline := time.Now().Add(time.Minute)
	var stdout, stderr string
	for {
		var code int
		code, stdout, stderr = ferryRun(t, append([]string{"cutover"}, flow...)...)
		if code == ExitOK {
			break
		}
		// Refused until the sync has planned and copied: ask again.
		refused := strings.Contains(stderr, "does not exist") || strings.Contains(stderr, "has no plan yet") ||
			strings.Contains(stderr, "has not finished its copy")
		if code != ExitUsage || !refused || time.Now().After(deadline) {
			t.Fatalf("cutover: exit %d\n%s", code, stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(stderr, "handed it the cutover request") {
		t.Fatalf("cutover ran the flow itself while a sync ran it:\n%s", stderr)
	}
	if !strings.Contains(stdout, "position   6000 ") || !strings.Contains(stdout, "steps run  drain") {
		t.Fatalf("report:\n%s", stdout)
	}
	select {
	case e := <-synced:
		if e.code != ExitOK || !strings.Contains(e.stderr, "cutover done") {
			t.Fatalf("sync: exit %d\n%s", e.code, e.stderr)
		}
	case <-time.After(time.Minute):
		t.Fatal("the sync did not end after the cutover")
	}
}
