package scaleout

import (
	"errors"
	"os"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/ferrydb/ferry/connector"
	_ "github.com/ferrydb/ferry/connectors/fake"
	_ "github.com/ferrydb/ferry/connectors/null"
	_ "github.com/ferrydb/ferry/connectors/sqlite"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
)

// A flow whose workflow predates the plan in chunks carries its whole plan
// in one payload: there a plan too large for Temporal's payloads is still
// refused by the plan activity, not retried, with the partition size that
// would fit; a plan of the same tables with larger partitions goes through.
// (The same 20,000 partitions in chunks run to the end in
// e2e.TestScaleOutPlanWithoutCeiling.)
func TestPlanActivityOfAnOlderFlowRefusesAPlanTooLargeForTemporal(t *testing.T) {
	conns, err := connector.LoadConnections("", nil, []string{"src=fake://?tables=2&rows=20000", "dst=null://"})
	if err != nil {
		t.Fatal(err)
	}
	run := func(partitionRows int64) (PlanResult, error) {
		return planActivity(t, conns, partitionRows, false)
	}
	_, err = run(2)
	if err == nil || !strings.Contains(err.Error(), "raise --partition-rows to") || !strings.Contains(err.Error(), "limits payloads to 2 MB") {
		t.Fatalf("a plan of 20,000 partitions: want a refusal saying which partition size fits, got %v", err)
	}
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() {
		t.Errorf("the refusal is retryable: %v", err)
	}
	pr, err := run(1000)
	if err != nil || len(pr.Plan.Partitions) == 0 {
		t.Fatalf("a plan of 40 partitions: %v", err)
	}
}

func planActivity(t *testing.T, conns *connector.Connections, partitionRows int64, chunked bool) (PlanResult, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	a := &Activities{Connections: conns}
	env.RegisterActivity(a)
	in := PlanInput{Options: flow.Config{Name: "big", Source: "src", Destination: "dst", Mode: flow.ModeSnapshot, PartitionRows: partitionRows}, Chunked: chunked}
	in.Options.Defaults()
	v, err := env.ExecuteActivity(a.Plan, in)
	if err != nil {
		return PlanResult{}, err
	}
	var pr PlanResult
	return pr, v.Get(&pr)
}

// A plan in chunks that fits in one chunk comes back whole, with no chunk
// workflow to start, and counts each table's partitions.
func TestPlanActivityReturnsASmallPlanInOneChunk(t *testing.T) {
	conns, err := connector.LoadConnections("", nil, []string{"src=fake://?tables=2&rows=20000", "dst=null://"})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := planActivity(t, conns, 1000, true)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Chunks == nil || pr.Chunks.Count != 0 || len(pr.Plan.Partitions) != 40 {
		t.Fatalf("chunks %+v, %d partitions inline", pr.Chunks, len(pr.Plan.Partitions))
	}
	if len(pr.Tables) != 2 || pr.Tables[0].Partitions != 20 || pr.Tables[1].Partitions != 20 {
		t.Fatalf("tables: %+v", pr.Tables)
	}
}

// The plan and release activities keep nothing on the worker's disk: a
// worker whose temporary directory cannot be written (a container with a
// read-only root filesystem) plans a flow and releases it.
func TestPlanAndReleaseNeedNoLocalDisk(t *testing.T) {
	db := t.TempDir() + "/dst.db"
	t.Setenv("TMPDIR", "/nonexistent/ferry-no-disk")
	conns, err := connector.LoadConnections("", nil, []string{"src=fake://?tables=2&rows=1000", "dst=sqlite://" + db})
	if err != nil {
		t.Fatal(err)
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	a := &Activities{Connections: conns}
	env.RegisterActivity(a)
	opts := flow.Config{Name: "nodisk", Source: "src", Destination: "dst", Mode: flow.ModeSnapshot}
	opts.Defaults()
	v, err := env.ExecuteActivity(a.Plan, PlanInput{Options: opts})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	var pr PlanResult
	if err := v.Get(&pr); err != nil || len(pr.Plan.Tables) != 2 || len(pr.Plan.Partitions) == 0 {
		t.Fatalf("plan: %+v, %v", pr.Plan, err)
	}
	if _, err := env.ExecuteActivity(a.Release, ReleaseInput{Options: opts}); err != nil {
		t.Fatalf("release: %v", err)
	}
}

// TestActivityFailuresHideThePassword: what an activity returns to
// Temporal never holds a connection's password.
func TestActivityFailuresHideThePassword(t *testing.T) {
	a := &Activities{}
	secrets := errs.NewScrubber("postgres://u:hunter2-secret@h/db")
	if msg := a.failure(os.ErrNotExist, secrets).Error(); strings.Contains(msg, "hunter2") {
		t.Fatal(msg)
	}
	if msg := a.failure(errString("connect to postgres://u:hunter2-secret@h/db failed"), secrets).Error(); strings.Contains(msg, "hunter2-secret") {
		t.Fatalf("activity failure keeps the password: %s", msg)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
