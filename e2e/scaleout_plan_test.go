package e2e

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/faultpoint"
	"github.com/ferrydb/ferry/scaleout"
)

// TestScaleOutPlanWithoutCeiling runs a plan of 20,000 partitions (2.8 MB
// of JSON, 23 chunks), which a plan carried whole through Temporal could
// not be (it was refused over 800 kB, about 5,500 partitions), through a
// real dev server and two workers: the plan reaches the workflow in
// chunks, every row is copied once, the history of every run stays under
// the limit, the state the workflow carries stays small, ferry flow status
// counts per table, and the chunk workflows are released at the end. It is
// CI's shortened version of bench/scaleout-plan.sh (about 4 minutes on 2
// cores, the dev server busy all along).
func TestScaleOutPlanWithoutCeiling(t *testing.T) {
	const perTable = 10000 // partitions of 2 rows
	ts := startTemporal(t)
	conns := []string{"src=fake://?tables=2&rows=" + strconv.Itoa(2*perTable) + "&seed=5", "dst=null://", "--concurrency=16"}
	ts.worker(t, conns...)
	ts.worker(t, conns...)
	start := time.Now()
	run := startFerry(t, "run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--name", "noceiling",
		"--mode", "snapshot", "--partition-rows", "2", "--parallel", "32", "--progress", "none", "--log-format", "json")
	if code := run.waitExit(t, 15*time.Minute); code != 0 {
		t.Fatalf("ferry run exited %d:\n%s", code, run.stderr.String())
	}
	took := time.Since(start)
	st := ts.flowStatus(t, "noceiling")
	if st == nil || st.Status != "Completed" || st.State.Phase != scaleout.PhaseDone {
		t.Fatalf("status: %+v", st)
	}
	snap := st.Snapshot()
	if snap.RowsCopied != 4*perTable || len(snap.Tables) != 2 {
		t.Fatalf("%d rows copied in %d tables, want %d in 2", snap.RowsCopied, len(snap.Tables), 4*perTable)
	}
	for _, tb := range snap.Tables {
		if tb.Partitions != perTable || tb.PartitionsDone != perTable || tb.RowsCopied != 2*perTable {
			t.Fatalf("table %s: %d of %d partitions done, %d rows; want %d of %d and %d rows", tb.Table, tb.PartitionsDone, tb.Partitions, tb.RowsCopied, perTable, perTable, 2*perTable)
		}
	}
	if st.State.Chunks == nil || st.State.Chunks.Count < 2 || st.State.Chunks.Next != st.State.Chunks.Count || !st.State.Chunks.Released {
		t.Fatalf("plan chunks: %+v", st.State.Chunks)
	}
	state, _ := json.Marshal(st.State)
	if len(state) > 400<<10 || len(st.State.Parts) > 1000 { // at most 1,000 partitions kept one by one
		t.Fatalf("the final state holds %d partitions one by one, %d bytes", len(st.State.Parts), len(state))
	}
	if st.State.Runs < 2 {
		t.Fatalf("the workflow continued as new %d times for %d partitions", st.State.Runs, 2*perTable)
	}
	// Every run's history stays under the limit (8,000 events by default),
	// whatever the number of partitions.
	runs := workflowRuns(t, ts, "WorkflowId = 'noceiling'")
	largest, largestBytes := 0, 0
	for _, run := range runs {
		out, err := exec.Command(ts.bin, "workflow", "show", "-w", "noceiling", "-r", run, "--address", ts.addr, "--output", "json").CombinedOutput()
		if err != nil {
			t.Fatalf("temporal workflow show: %v\n%s", err, out)
		}
		var h struct {
			Events []json.RawMessage `json:"events"`
		}
		if err := json.Unmarshal(out, &h); err != nil {
			t.Fatalf("history of run %s: %v", run, err)
		}
		largest, largestBytes = max(largest, len(h.Events)), max(largestBytes, len(out))
	}
	if len(runs) != st.State.Runs+1 || largest > 8000+200 {
		t.Fatalf("%d runs (state says %d continue-as-new), the longest history %d events", len(runs), st.State.Runs, largest)
	}
	if n := len(workflowRuns(t, ts, "WorkflowType = '"+scaleout.PlanChunkWorkflowName+"' AND ExecutionStatus = 'Running'")); n != 0 {
		t.Fatalf("%d plan chunk workflows still run after the copy", n)
	}
	t.Logf("%d partitions in %d chunks: %s (%.0f partitions/s), %d runs, longest history %d events (%d kB of JSON), final state %d kB",
		2*perTable, st.State.Chunks.Count+1, took.Round(time.Second), float64(2*perTable)/took.Seconds(), len(runs), largest, largestBytes>>10, len(state)>>10)
}

// execution is a workflow run as temporal workflow list shows it.
type execution struct {
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
}

// listWorkflows lists the workflow runs a visibility query finds, newest
// first.
func listWorkflows(t *testing.T, ts *temporalServer, query string) []execution {
	t.Helper()
	out, err := exec.Command(ts.bin, "workflow", "list", "--query", query, "--address", ts.addr, "--output", "json", "--limit", "1000").CombinedOutput()
	if err != nil {
		t.Fatalf("temporal workflow list: %v\n%s", err, out)
	}
	var list []struct {
		Execution execution `json:"execution"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("temporal workflow list: %v\n%s", err, out)
	}
	runs := make([]execution, len(list))
	for i, w := range list {
		runs[i] = w.Execution
	}
	return runs
}

// workflowRuns lists the run IDs of the workflows a visibility query finds.
func workflowRuns(t *testing.T, ts *temporalServer, query string) []string {
	t.Helper()
	var runs []string
	for _, e := range listWorkflows(t, ts, query) {
		runs = append(runs, e.RunID)
	}
	return runs
}

// A flow whose plan is in chunks and that is terminated mid-copy resumes
// where it stopped when run again: the chunks it had not read are read from
// the chunk workflows the first run started, finished partitions are not
// copied again, and every row arrives. A flow cancelled mid-copy releases
// its chunk workflows, and so does one started over with --restart.
func TestScaleOutPlanInChunksResumesAndCancels(t *testing.T) {
	ts := startTemporal(t)
	w := startFerry(t, "worker", "--temporal", ts.addr, "--log-format", "json", "--concurrency", "8",
		"--connection", "src=fake://?tables=1&rows=1500&seed=9", "--connection", "dst=null://")
	if !w.waitFor(t, "worker polling", 30*time.Second) {
		t.Fatalf("worker:\n%s", w.stderr.String())
	}
	args := func(name string, partitionRows ...string) []string {
		rows := "1"
		if len(partitionRows) > 0 {
			rows = partitionRows[0]
		}
		return []string{"run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--name", name,
			"--mode", "snapshot", "--partition-rows", rows, "--parallel", "8", "--plan-chunk-kb", "8", "--progress", "none"}
	}
	copiedAtLeast := func(n int) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for countLines(w.stderr.String(), "partition copied") < n {
			if time.Now().After(deadline) {
				t.Fatalf("the copy does not progress:\n%s", tail(w.stderr.String(), 20))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	running := func(prefix string) int {
		return len(workflowRuns(t, ts, "WorkflowType = '"+scaleout.PlanChunkWorkflowName+"' AND ExecutionStatus = 'Running' AND WorkflowId STARTS_WITH '"+prefix+"'"))
	}

	mustFerry(t, append(args("resumed"), "--detach")...)
	copiedAtLeast(300)
	if out, err := exec.Command(ts.bin, "workflow", "terminate", "-w", "resumed", "--address", ts.addr, "--reason", "test").CombinedOutput(); err != nil {
		t.Fatalf("terminate: %v\n%s", err, out)
	}
	before := countLines(w.stderr.String(), "partition copied")
	if running("resumed/") == 0 {
		t.Fatal("no chunk workflow runs after the terminate: the resumed flow would have no plan to read")
	}
	mustFerry(t, args("resumed")...)
	total := countLines(w.stderr.String(), "partition copied")
	if total > 1500+8 {
		t.Fatalf("%d partition copies for 1,500 partitions (%d before the terminate): finished partitions were copied again", total, before)
	}
	st := ts.flowStatus(t, "resumed")
	if st == nil || st.Status != "Completed" || st.State.Chunks == nil || st.State.Chunks.Count < 5 {
		t.Fatalf("status after the resume: %+v", st)
	}
	if s := st.Snapshot(); s.RowsCopied != 1500 || s.Tables[0].PartitionsDone != 1500 || s.Tables[0].Partitions != 1500 {
		t.Fatalf("after the resume: %d rows, %d of %d partitions", s.RowsCopied, s.Tables[0].PartitionsDone, s.Tables[0].Partitions)
	}
	if n := running("resumed/"); n != 0 {
		t.Fatalf("%d chunk workflows still run after the copy", n)
	}

	mustFerry(t, append(args("cancelled"), "--detach")...)
	copiedAtLeast(total + 150)
	mustFerry(t, "flow", "cancel", "cancelled", "--temporal", ts.addr)
	deadline := time.Now().Add(time.Minute)
	for running("cancelled/") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d chunk workflows still run a minute after the cancel", running("cancelled/"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("resumed after %d of 1,500 partitions, %d copies in all", before, total)

	// A flow terminated mid-copy and run again with --restart starts from a
	// new plan: the chunk workflows of the old one are released.
	restart := args("restarted", "10") // 150 partitions, 3 chunks
	mustFerry(t, append(restart, "--detach")...)
	deadline = time.Now().Add(time.Minute)
	for running("restarted/") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the flow started no chunk workflow")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out, err := exec.Command(ts.bin, "workflow", "terminate", "-w", "restarted", "--address", ts.addr, "--reason", "test").CombinedOutput(); err != nil {
		t.Fatalf("terminate: %v\n%s", err, out)
	}
	old := running("restarted/")
	if old == 0 {
		t.Fatal("the terminated flow's chunk workflows had ended already: nothing for --restart to release")
	}
	mustFerry(t, append(restart, "--restart")...)
	if n := running("restarted/"); n != 0 {
		t.Fatalf("%d chunk workflows run after the restarted flow ended (%d of the terminated one ran)", n, old)
	}
	// The restarted run planned in chunks under the flow type that only
	// workers knowing chunks run.
	record(t, ts, "restarted", "history-plan-in-chunks-2.json")
}

// A worker that dies while its plan activity is still cutting the plan,
// after it stored the first chunks, leaves nothing behind: the plan is made
// again on another worker, which ends the dead attempt's chunk workflows
// before storing its own, and every row is copied once. (The partitions go
// to chunk workflows as the source cuts them, so a plan cut off half-way
// has chunks stored and others not.)
func TestScaleOutPlanCutOffByAKilledWorker(t *testing.T) {
	const perTable = 600 // 1,200 partitions, about 13 chunks of 16 kB
	ts := startTemporal(t)
	src, dst := "src=fake://?tables=2&rows="+strconv.Itoa(2*perTable)+"&seed=5", "dst=null://"
	held := startFerryEnv(t, []string{faultpoint.Env + "=" + faultpoint.PlanChunkStored},
		"worker", "--temporal", ts.addr, "--log-format", "json", "--concurrency", "4", "--connection", src, "--connection", dst)
	if !held.waitFor(t, "worker polling", 30*time.Second) {
		t.Fatalf("the worker did not start:\n%s", held.stderr.String())
	}
	t.Setenv(faultpoint.Env, "") // only the first worker holds
	run := startFerry(t, "run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--name", "cutoff",
		"--mode", "snapshot", "--partition-rows", "2", "--parallel", "16", "--plan-chunk-kb", "16", "--progress", "none", "--log-format", "json")
	if !held.waitFor(t, faultpoint.Message, 2*time.Minute) {
		t.Fatalf("the plan never stored a chunk:\n%s", held.stderr.String())
	}
	var stored []string
	for deadline := time.Now().Add(15 * time.Second); len(stored) == 0 && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		stored = workflowIDs(t, ts, "WorkflowType = '"+scaleout.PlanChunkWorkflowName+"'")
	}
	if len(stored) == 0 {
		t.Fatal("the held plan activity shows no chunk workflow: the kill would not land half-way")
	}
	if !held.kill(t) {
		t.Fatal("the held worker had exited before the kill")
	}
	ts.worker(t, src, dst)
	if code := run.waitExit(t, 5*time.Minute); code != 0 {
		t.Fatalf("ferry run exited %d:\n%s", code, run.stderr.String())
	}
	st := ts.flowStatus(t, "cutoff")
	if st == nil || st.Status != "Completed" {
		t.Fatalf("status: %+v", st)
	}
	snap := st.Snapshot()
	if snap.RowsCopied != 4*perTable {
		t.Fatalf("%d rows copied, want %d", snap.RowsCopied, 4*perTable)
	}
	for _, tb := range snap.Tables {
		if tb.Partitions != perTable || tb.PartitionsDone != perTable {
			t.Fatalf("table %s: %d of %d partitions done, want %d of %d", tb.Table, tb.PartitionsDone, tb.Partitions, perTable, perTable)
		}
	}
	if n := len(workflowRuns(t, ts, "WorkflowType = '"+scaleout.PlanChunkWorkflowName+"' AND ExecutionStatus = 'Running'")); n != 0 {
		t.Fatalf("%d plan chunk workflows still run after the copy", n)
	}
	// The dead attempt's chunks were ended, not read: the copy used the
	// second attempt's.
	for _, id := range stored {
		if !strings.Contains(id, ".1/") {
			t.Fatalf("chunk %s seen while the first attempt held is not the first attempt's", id)
		}
	}
	if st.State.Chunks == nil || strings.HasSuffix(st.State.Chunks.Prefix, ".1") {
		t.Fatalf("the flow reads the chunks of the attempt that died: %+v", st.State.Chunks)
	}
}

// workflowIDs lists the workflow IDs a visibility query finds.
func workflowIDs(t *testing.T, ts *temporalServer, query string) []string {
	t.Helper()
	var ids []string
	for _, e := range listWorkflows(t, ts, query) {
		ids = append(ids, e.WorkflowID)
	}
	return ids
}
