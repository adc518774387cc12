package scaleout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/verify"
)

// A flow is verified by a workflow of its own on the flow's task queue, so
// that a worker (which alone holds the connections' credentials) compares
// the two sides: ferry flow verify, and ferry flow cutover --verify after
// the cutover. The flow's own workflow is not involved, so verifying
// changes nothing in its history.
const (
	// VerifyWorkflowName is the verification workflow's type.
	VerifyWorkflowName = "ferry-verify"
	// ActivityVerify compares every table of a flow.
	ActivityVerify = "verify"
)

// VerifyInput is what to verify: the flow's options (connection names,
// tables, renames) and how many differing keys to list per table.
type VerifyInput struct {
	Options  flow.Config `json:"options"`
	Settings Settings    `json:"settings"`
	MaxDiffs int         `json:"max_diffs"`
}

// VerifyWorkflow runs the verify activity once more on failure of a worker
// (a configuration error is not retried) and returns its results.
func VerifyWorkflow(ctx workflow.Context, in VerifyInput) ([]*verify.Result, error) {
	set := in.Settings.withDefaults(in.Options)
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 24 * time.Hour,
		HeartbeatTimeout:    set.HeartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			MaximumAttempts:        3,
			NonRetryableErrorTypes: []string{errTypeConfig},
		},
	})
	var res []*verify.Result
	err := workflow.ExecuteActivity(ctx, ActivityVerify, in).Get(ctx, &res)
	return res, err
}

// Verify compares every table of the flow at the source with the
// destination, as ferry verify does, on this worker's connections.
func (a *Activities) Verify(ctx context.Context, in VerifyInput) ([]*verify.Result, error) {
	o, err := a.open(ctx, in.Options)
	if err != nil {
		return nil, err
	}
	defer o.close()
	stop := keepAlive(ctx, func() any { return nil })
	defer stop()
	res, err := o.eng.Verify(ctx, in.MaxDiffs)
	if err != nil {
		return nil, a.failure(fmt.Errorf("flow %s: %w", in.Options.Name, err), o.secrets)
	}
	return res, nil
}

// VerifyFlow verifies the flow called name, running or ended, on a worker
// polling its task queue, and waits for the results.
func VerifyFlow(ctx context.Context, c client.Client, name string, maxDiffs int) ([]*verify.Result, error) {
	desc, err := c.DescribeWorkflowExecution(ctx, name, "")
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("flow %q: %w", name, ErrNoFlow)
		}
		return nil, fmt.Errorf("describe flow %q: %w", name, err)
	}
	queue := desc.GetWorkflowExecutionInfo().GetTaskQueue()
	st, err := Progress(ctx, c, name, queue)
	if err != nil {
		return nil, err
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        name + "/verify/" + time.Now().UTC().Format("20060102T150405.000"),
		TaskQueue: queue,
	}, VerifyWorkflowName, VerifyInput{Options: st.Options, Settings: st.Settings, MaxDiffs: maxDiffs})
	if err != nil {
		return nil, fmt.Errorf("verify flow %q: %w", name, err)
	}
	var res []*verify.Result
	if err := run.Get(ctx, &res); err != nil {
		var ae *temporal.ApplicationError
		if errors.As(err, &ae) {
			return nil, fmt.Errorf("verify flow %q: %s", name, ae.Message())
		}
		return nil, fmt.Errorf("verify flow %q: %w", name, err)
	}
	return res, nil
}
