package scaleout

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestReplayRecordedHistories replays histories recorded from real flows
// (a dev server, two workers): a change to the workflow that would make
// running flows nondeterministic fails here. Record a new history when the
// workflow changes on purpose (and version the change with
// workflow.GetVersion so running flows keep replaying):
//
//	temporal workflow show -w FLOW --output json > scaleout/testdata/history-NAME.json
//
// (-r RUN picks a run other than the latest: history-plan-in-chunks.json
// is a flow's first run, with its plan-in-chunks marker.)
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/history-*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded histories: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(FlowWorkflow, workflow.RegisterOptions{Name: WorkflowName})
			r.RegisterWorkflowWithOptions(FlowWorkflow, workflow.RegisterOptions{Name: WorkflowNameV1})
			r.RegisterWorkflowWithOptions(QueryFlowWorkflow, workflow.RegisterOptions{Name: QueryWorkflowName})
			r.RegisterWorkflowWithOptions(VerifyWorkflow, workflow.RegisterOptions{Name: VerifyWorkflowName})
			r.RegisterWorkflowWithOptions(PlanChunkWorkflow, workflow.RegisterOptions{Name: PlanChunkWorkflowName})
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatalf("replaying %s: %v", f, err)
			}
		})
	}
}
