package scaleout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/ferrydb/ferry/errs"
)

// startQuery starts a query flow's workflow, or attaches to the one that
// runs. A flow that ended (run once, failed, cancelled, terminated) starts
// again: its marks are at the destination, and its counts carry over when
// it is run with the same options.
func startQuery(ctx context.Context, c client.Client, in FlowInput, opts StartOptions) (client.WorkflowRun, bool, error) {
	name := in.Options.Name
	qin := QueryFlowInput{Options: in.Options, Settings: in.Settings, Restart: opts.Restart}
	for try := 0; try < 3; try++ {
		desc, err := c.DescribeWorkflowExecution(ctx, name, "")
		var nf *serviceerror.NotFound
		switch {
		case errors.As(err, &nf):
		case err != nil:
			return nil, false, fmt.Errorf("describe flow %q: %w", name, err)
		default:
			info := desc.GetWorkflowExecutionInfo()
			running := info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
			st, err := Progress(ctx, c, name, opts.TaskQueue)
			if err != nil && running {
				return nil, false, err
			}
			if st != nil && running {
				if st.Query == nil {
					return nil, false, errs.BadConfig(fmt.Sprintf("flow %q is running, and it is a flow of tables, not of queries", name), "choose another --name, or cancel it first: ferry flow cancel "+name)
				}
				if diff := Differences(st.Options, in.Options); len(diff) > 0 {
					return nil, false, errs.BadConfig(fmt.Sprintf("flow %q is running with other options: %s", name, strings.Join(diff, "; ")), "attach with the same options, choose another --name, or cancel it first: ferry flow cancel "+name)
				}
				return c.GetWorkflow(ctx, name, ""), true, nil
			}
			if st != nil && st.Query != nil && !opts.Restart && len(Differences(st.Options, in.Options)) == 0 {
				qin.State = resumableQuery(*st.Query)
			}
		}
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID:                       name,
			TaskQueue:                opts.TaskQueue,
			WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		}, QueryWorkflowName, qin)
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if errors.As(err, &started) {
			continue // another runner started it first: attach to it
		}
		if err != nil {
			return nil, false, fmt.Errorf("start flow %q: %w", name, err)
		}
		return run, false, nil
	}
	return nil, false, fmt.Errorf("start flow %q: it keeps starting and ending", name)
}

// resumableQuery is the state of an ended query flow, ready to run again:
// its tables, counts and last run carry over; a run it was in the middle
// of is resumed from the destination's record by the next run.
func resumableQuery(s QueryFlowState) *QueryFlowState {
	s.Phase, s.Error, s.Ended, s.NextRun = PhasePlan, "", time.Time{}, time.Time{}
	s.Paused, s.Cancelled, s.Current = false, false, nil
	s.Continued++
	return &s
}
