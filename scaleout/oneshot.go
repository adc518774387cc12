package scaleout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/verify"
)

// Some work on a flow runs as a short workflow of its own on the flow's
// task queue, so that a worker (which alone holds the connections'
// credentials) does it and the flow's own history is untouched: verifying
// a flow (ferry flow verify, ferry flow cutover --verify), and the
// finishing steps of a snapshot flow that has ended (ferry flow cutover of
// a --mode snapshot flow: the schema and the sequences, nothing to drain).
const (
	// VerifyWorkflowName is the verification workflow's type.
	VerifyWorkflowName = "ferry-verify"
	// FinishWorkflowName runs the finishing steps of an ended flow.
	FinishWorkflowName = "ferry-finish"
	// ActivityVerify compares every table of a flow (verify workflows
	// started before ActivityVerifyTable).
	ActivityVerify = "verify"
	// ActivityVerifyTables lists the tables to compare; ActivityVerifyTable
	// compares one, so that the tables spread over the workers.
	ActivityVerifyTables = "verify-tables"
	ActivityVerifyTable  = "verify-table"
	// verifyPerTable versions the verify workflow's split into one
	// activity per table.
	verifyPerTable = "verify-per-table"
	// ActivityVerifyRanges lists the tables with the ranges of their
	// buckets that activities compare apart (verify_ranges.go);
	// verifyByRange versions that split.
	ActivityVerifyRanges = "verify-ranges"
	verifyByRange        = "verify-by-range"
	// SnapshotWorkflowName records a request to copy tables of a running
	// flow again (ferry flow snapshot), which its CDC activity then runs.
	SnapshotWorkflowName = "ferry-snapshot"
	// ActivitySnapshot records the request at the flow's destination.
	ActivitySnapshot = "snapshot"
)

// SnapshotInput is which tables of the flow to copy again: the plan's
// definitions of them.
type SnapshotInput struct {
	Options  flow.Config    `json:"options"`
	Settings Settings       `json:"settings"`
	Tables   []*model.Table `json:"tables"`
}

// SnapshotWorkflow runs the snapshot activity.
func SnapshotWorkflow(ctx workflow.Context, in SnapshotInput) error {
	return workflow.ExecuteActivity(oneShotOptions(ctx, in.Settings, in.Options), ActivitySnapshot, in).Get(ctx, nil)
}

// Snapshot records, with the flow's checkpoints at its destination, that
// tables are to be copied again; the flow's CDC activity finds the request
// and copies them while it streams (engine.RecordSnapshot).
func (a *Activities) Snapshot(ctx context.Context, in SnapshotInput) error {
	o, err := a.open(ctx, in.Options)
	if err != nil {
		return err
	}
	defer o.close()
	if err := o.eng.RecordSnapshot(ctx, in.Tables); err != nil {
		return a.failure(fmt.Errorf("flow %s: %w", in.Options.Name, err), o.secrets)
	}
	return nil
}

// RequestSnapshot asks the running flow called name to copy tables again
// while it streams. A table the flow does not take, or a flow that does not
// stream, is refused with a errs.ConfigError.
func RequestSnapshot(ctx context.Context, c client.Client, name string, tables []model.Namespace) error {
	return oneShot(ctx, c, name, "snapshot", SnapshotWorkflowName, func(st *Status) (any, error) {
		if !st.Running() || st.State.Plan == nil || st.State.Mode == flow.ModeSnapshot {
			return nil, errs.BadConfig(fmt.Sprintf("flow %q is not streaming changes (%s, phase %s)", name, st.Status, st.State.Phase),
				"an incremental snapshot runs while a flow streams; ferry flow status "+name+" shows where it is")
		}
		in := SnapshotInput{Options: st.Options, Settings: st.Settings}
		var unknown []string
		for _, ns := range tables {
			var found *model.Table
			for _, t := range st.State.Plan.Tables {
				if t.Namespace == ns {
					found = t
				}
			}
			if found == nil {
				unknown = append(unknown, ns.String())
				continue
			}
			in.Tables = append(in.Tables, found)
		}
		if len(unknown) > 0 {
			return nil, errs.BadConfig(fmt.Sprintf("flow %q does not take %s", name, strings.Join(unknown, ", ")), "name source tables the flow copies (ferry flow status "+name+" lists them)")
		}
		return in, nil
	}, nil)
}

// VerifyInput is what to verify: the flow's options (connection names,
// tables, renames) and how many differing keys to list per table.
type VerifyInput struct {
	Options  flow.Config `json:"options"`
	Settings Settings    `json:"settings"`
	MaxDiffs int         `json:"max_diffs"`
	// Online verifies while the flow streams: a differing key is read
	// again, up to Rechecks times, once the flow applied the source's
	// position taken after it was seen; the activity waits for that,
	// heartbeating.
	Online   bool `json:"online,omitempty"`
	Rechecks int  `json:"rechecks,omitempty"`
}

// oneShotOptions runs an activity until it ends, again after a lost
// worker (a configuration error is not retried).
func oneShotOptions(ctx workflow.Context, set Settings, o flow.Config) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 24 * time.Hour,
		HeartbeatTimeout:    set.withDefaults(o).HeartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			MaximumAttempts:        3,
			NonRetryableErrorTypes: []string{errTypeConfig},
		},
	})
}

// VerifyTableInput is one table to compare.
type VerifyTableInput struct {
	VerifyInput
	Pair verify.Pair `json:"pair"`
	// Range is the part of the table's buckets to compare; nil for all.
	Range *verify.Range `json:"range,omitempty"`
}

// VerifyWorkflow lists the flow's tables, compares each in an activity of
// its own (at most the flow's --parallel at once, so they spread over the
// workers), and returns the results in the tables' order.
func VerifyWorkflow(ctx workflow.Context, in VerifyInput) ([]*verify.Result, error) {
	actx := oneShotOptions(ctx, in.Settings, in.Options)
	if workflow.GetVersion(ctx, verifyPerTable, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		var res []*verify.Result
		err := workflow.ExecuteActivity(actx, ActivityVerify, in).Get(ctx, &res)
		return res, err
	}
	if workflow.GetVersion(ctx, verifyByRange, workflow.DefaultVersion, 1) == 1 {
		return verifyByRanges(ctx, actx, in)
	}
	var pairs []verify.Pair
	if err := workflow.ExecuteActivity(actx, ActivityVerifyTables, in).Get(ctx, &pairs); err != nil {
		return nil, err
	}
	opts := in.Options
	opts.Defaults()
	window := max(opts.Parallel, 1)
	res := make([]*verify.Result, len(pairs))
	futures := make([]workflow.Future, len(pairs))
	for i, p := range pairs {
		if i >= window {
			if err := futures[i-window].Get(ctx, &res[i-window]); err != nil {
				return nil, err
			}
		}
		futures[i] = workflow.ExecuteActivity(actx, ActivityVerifyTable, VerifyTableInput{VerifyInput: in, Pair: p})
	}
	for i := max(len(pairs)-window, 0); i < len(pairs); i++ {
		if err := futures[i].Get(ctx, &res[i]); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// FinishWorkflow runs the finishing steps of an ended flow (the cutover
// activity without a drain) and returns what each did.
func FinishWorkflow(ctx workflow.Context, in FinishCutoverInput) ([]engine.CutoverStep, error) {
	var steps []engine.CutoverStep
	err := workflow.ExecuteActivity(oneShotOptions(ctx, Settings{}, in.Options), ActivityFinishCutover, in).Get(ctx, &steps)
	return steps, err
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

// VerifyTables lists the tables of the flow a verification compares.
func (a *Activities) VerifyTables(ctx context.Context, in VerifyInput) ([]verify.Pair, error) {
	o, err := a.open(ctx, in.Options)
	if err != nil {
		return nil, err
	}
	defer o.close()
	stop := keepAlive(ctx, func() any { return nil })
	defer stop()
	pairs, err := o.eng.VerifyPairs(ctx)
	if err != nil {
		return nil, a.failure(fmt.Errorf("flow %s: %w", in.Options.Name, err), o.secrets)
	}
	return pairs, nil
}

// VerifyTable compares one table of the flow, on this worker's connections.
func (a *Activities) VerifyTable(ctx context.Context, in VerifyTableInput) (*verify.Result, error) {
	o, err := a.open(ctx, in.Options)
	if err != nil {
		return nil, err
	}
	defer o.close()
	stop := keepAlive(ctx, func() any { return nil })
	defer stop()
	var online verify.Flow
	if in.Online {
		f, err := o.eng.AppliedFlow(ctx)
		if err != nil {
			return nil, a.failure(fmt.Errorf("flow %s: %w", in.Options.Name, err), o.secrets)
		}
		online = f
	}
	res, err := o.eng.VerifyRange(ctx, in.Pair, in.Range, in.MaxDiffs, online, in.Rechecks)
	if err != nil {
		return nil, a.failure(fmt.Errorf("flow %s, table %s: %w", in.Options.Name, in.Pair.Source.Namespace, err), o.secrets)
	}
	return res, nil
}

// VerifyFlow verifies the flow called name, running or ended, on a worker
// polling its task queue, and waits for the results.
func VerifyFlow(ctx context.Context, c client.Client, name string, maxDiffs int) ([]*verify.Result, error) {
	return VerifyFlowOnline(ctx, c, name, maxDiffs, 0)
}

// VerifyFlowOnline is VerifyFlow; with rechecks > 0, while the flow streams
// changes (--online): a differing key is read again up to rechecks times
// once the flow applied what the source had when it was seen. A flow that
// does not stream is refused with a errs.ConfigError.
func VerifyFlowOnline(ctx context.Context, c client.Client, name string, maxDiffs, rechecks int) ([]*verify.Result, error) {
	var res []*verify.Result
	err := oneShot(ctx, c, name, "verify", VerifyWorkflowName, func(st *Status) (any, error) {
		in := VerifyInput{Options: st.Options, Settings: st.Settings, MaxDiffs: maxDiffs}
		if rechecks > 0 {
			if !st.Running() || st.State.Phase != PhaseCDC {
				return nil, errs.BadConfig(fmt.Sprintf("flow %q is not streaming changes (%s, phase %s)", name, st.Status, st.State.Phase),
					"--online verifies a flow while it streams; verify without --online a flow that ended or is cut over")
			}
			in.Online, in.Rechecks = true, rechecks
		}
		return in, nil
	}, &res)
	return res, err
}

// FinishEnded cuts over a flow without change data capture that has ended
// (a --mode snapshot flow whose copy is done): a worker runs the finishing
// steps (sequences, schema) and the report says what they did. A flow that
// is still running, or ended otherwise, is refused with a
// errs.ConfigError.
func FinishEnded(ctx context.Context, c client.Client, name string) (*engine.CutoverReport, error) {
	r := &engine.CutoverReport{Requested: time.Now().UTC()}
	err := oneShot(ctx, c, name, "cutover", FinishWorkflowName, func(st *Status) (any, error) {
		if st.Running() || st.State.Mode != flow.ModeSnapshot || st.State.Phase != PhaseDone || st.State.Plan == nil {
			return nil, errs.BadConfig(fmt.Sprintf("flow %q has ended (%s, phase %s): there is nothing to cut over", name, st.Status, st.State.Phase),
				"ferry flow status "+name+" shows how it ended; a failed flow resumes with ferry run --name "+name)
		}
		return FinishCutoverInput{Options: st.Options, Tables: st.State.Plan.Tables, Requested: r.Requested}, nil
	}, &r.Steps)
	if err != nil {
		return nil, err
	}
	r.Done = true
	return r, nil
}

// oneShot runs a workflow of type wf for the flow called name on the
// flow's task queue, with the input made from the flow's status, and
// decodes its result into out.
func oneShot(ctx context.Context, c client.Client, name, what, wf string, input func(*Status) (any, error), out any) error {
	desc, err := c.DescribeWorkflowExecution(ctx, name, "")
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return fmt.Errorf("flow %q: %w", name, ErrNoFlow)
		}
		return fmt.Errorf("describe flow %q: %w", name, err)
	}
	queue := desc.GetWorkflowExecutionInfo().GetTaskQueue()
	st, err := Progress(ctx, c, name, queue)
	if err != nil {
		return err
	}
	in, err := input(st)
	if err != nil {
		return err
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        name + "/" + what + "/" + time.Now().UTC().Format("20060102T150405.000"),
		TaskQueue: queue,
	}, wf, in)
	if err != nil {
		return fmt.Errorf("%s of flow %q: %w", what, name, err)
	}
	if err := run.Get(ctx, out); err != nil {
		var ae *temporal.ApplicationError
		if errors.As(err, &ae) {
			return fmt.Errorf("%s of flow %q: %s", what, name, ae.Message())
		}
		return fmt.Errorf("%s of flow %q: %w", what, name, err)
	}
	return nil
}
