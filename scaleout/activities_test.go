package scaleout

import (
	"errors"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	_ "github.com/ferrydb/ferry/connectors/fake"
	"github.com/ferrydb/ferry/flow"
)

// A plan too large for Temporal's payloads is refused by the plan activity,
// not retried, with the partition size that would fit; a plan of the same
// tables with larger partitions goes through.
func TestPlanActivityRefusesAPlanTooLargeForTemporal(t *testing.T) {
	conns, err := LoadConnections("", nil, []string{"src=fake://?tables=2&rows=20000", "dst=null://"})
	if err != nil {
		t.Fatal(err)
	}
	run := func(partitionRows int64) (PlanResult, error) {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestActivityEnvironment()
		a := &Activities{Connections: conns, ScratchDir: t.TempDir()}
		env.RegisterActivity(a)
		in := PlanInput{Options: flow.Config{Name: "big", Source: "src", Destination: "dst", Mode: flow.ModeSnapshot, PartitionRows: partitionRows}}
		in.Options.Defaults()
		v, err := env.ExecuteActivity(a.Plan, in)
		if err != nil {
			return PlanResult{}, err
		}
		var pr PlanResult
		return pr, v.Get(&pr)
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
