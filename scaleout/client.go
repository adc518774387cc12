package scaleout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// Register registers the flow workflow and the activities on a worker.
func Register(w worker.Registry, a *Activities) {
	w.RegisterWorkflowWithOptions(FlowWorkflow, workflow.RegisterOptions{Name: WorkflowName})
	w.RegisterWorkflowWithOptions(FlowWorkflow, workflow.RegisterOptions{Name: WorkflowNameV1})
	w.RegisterWorkflowWithOptions(QueryFlowWorkflow, workflow.RegisterOptions{Name: QueryWorkflowName})
	w.RegisterActivityWithOptions(a.QueryPrepare, activity.RegisterOptions{Name: ActivityQueryPrepare})
	w.RegisterActivityWithOptions(a.QueryPlanRun, activity.RegisterOptions{Name: ActivityQueryPlanRun})
	w.RegisterActivityWithOptions(a.QueryCopyRange, activity.RegisterOptions{Name: ActivityQueryRange})
	w.RegisterActivityWithOptions(a.QueryFinishRun, activity.RegisterOptions{Name: ActivityQueryFinishRun})
	w.RegisterWorkflowWithOptions(VerifyWorkflow, workflow.RegisterOptions{Name: VerifyWorkflowName})
	w.RegisterWorkflowWithOptions(FinishWorkflow, workflow.RegisterOptions{Name: FinishWorkflowName})
	w.RegisterWorkflowWithOptions(SnapshotWorkflow, workflow.RegisterOptions{Name: SnapshotWorkflowName})
	w.RegisterActivityWithOptions(a.Verify, activity.RegisterOptions{Name: ActivityVerify})
	w.RegisterActivityWithOptions(a.VerifyTables, activity.RegisterOptions{Name: ActivityVerifyTables})
	w.RegisterActivityWithOptions(a.VerifyTable, activity.RegisterOptions{Name: ActivityVerifyTable})
	w.RegisterActivityWithOptions(a.VerifyRanges, activity.RegisterOptions{Name: ActivityVerifyRanges})
	w.RegisterActivityWithOptions(a.Snapshot, activity.RegisterOptions{Name: ActivitySnapshot})
	w.RegisterWorkflowWithOptions(PlanChunkWorkflow, workflow.RegisterOptions{Name: PlanChunkWorkflowName})
	w.RegisterActivityWithOptions(a.Plan, activity.RegisterOptions{Name: ActivityPlan})
	w.RegisterActivityWithOptions(a.ReadPlanChunk, activity.RegisterOptions{Name: ActivityReadPlanChunk})
	w.RegisterActivityWithOptions(a.ReleasePlan, activity.RegisterOptions{Name: ActivityReleasePlan})
	w.RegisterActivityWithOptions(a.CopyPartition, activity.RegisterOptions{Name: ActivityCopy})
	w.RegisterActivityWithOptions(a.FinishTables, activity.RegisterOptions{Name: ActivityFinish})
	w.RegisterActivityWithOptions(a.StreamChanges, activity.RegisterOptions{Name: ActivityStream})
	w.RegisterActivityWithOptions(a.Release, activity.RegisterOptions{Name: ActivityRelease})
	w.RegisterActivityWithOptions(a.CutoverPosition, activity.RegisterOptions{Name: ActivityCutoverPosition})
	w.RegisterActivityWithOptions(a.FinishCutover, activity.RegisterOptions{Name: ActivityFinishCutover})
	w.RegisterActivityWithOptions(a.ChangeTables, activity.RegisterOptions{Name: ActivityChangeTables})
	w.RegisterActivityWithOptions(a.CheckReverse, activity.RegisterOptions{Name: ActivityCheckReverse})
	w.RegisterActivityWithOptions(a.StartReverse, activity.RegisterOptions{Name: ActivityStartReverse})
	w.RegisterActivityWithOptions(a.CheckOldSide, activity.RegisterOptions{Name: ActivityCheckOldSide})
}

// ErrNoFlow means no workflow has the flow's name.
var ErrNoFlow = errors.New("no such flow")

// Status is a flow seen from outside: the workflow's durable state with the
// live progress of its running activities (their heartbeats) merged in, and
// the workers polling its task queue.
type Status struct {
	Flow     string      `json:"flow"`
	RunID    string      `json:"run_id"`
	Status   string      `json:"status"` // Running, Completed, Failed, ...
	Options  flow.Config `json:"options"`
	Settings Settings    `json:"settings"`
	State    FlowState   `json:"state"`
	Workers  []Worker    `json:"workers"`
	// Waiting lists partitions waiting for a worker after a failed attempt.
	Waiting []string `json:"waiting,omitempty"`
	Failure string   `json:"failure,omitempty"`
	// Query is a query flow's runs and marks (QueryFlowWorkflow); nil for
	// a flow of tables.
	Query *QueryFlowState `json:"query,omitempty"`
}

// Worker is one worker polling the flow's task queue and what it runs.
type Worker struct {
	Identity   string    `json:"identity"`
	LastPoll   time.Time `json:"last_poll,omitzero"`
	Activities []string  `json:"activities"` // partition IDs, "cdc", "plan", ...
}

// currentQueryRun is a query flow's run under way, nil if none.
func (s *Status) currentQueryRun() *QueryRunState {
	if s.Query == nil {
		return nil
	}
	return s.Query.Current
}

// Running reports a workflow still running.
func (s *Status) Running() bool { return s.Status == "Running" }

// Progress reads a flow's status: the workflow's progress query, its
// pending activities' heartbeats and the task queue's pollers.
func Progress(ctx context.Context, c client.Client, name, taskQueue string) (*Status, error) {
	return progress(ctx, c, name, taskQueue, true)
}

// Summary reads a flow's status as Progress does, but not the task queue's
// pollers (the same for every flow of a list): its Workers are only those
// running the flow's tasks.
func Summary(ctx context.Context, c client.Client, name, taskQueue string) (*Status, error) {
	return progress(ctx, c, name, taskQueue, false)
}

func progress(ctx context.Context, c client.Client, name, taskQueue string, pollers bool) (*Status, error) {
	desc, err := c.DescribeWorkflowExecution(ctx, name, "")
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("flow %q: %w", name, ErrNoFlow)
		}
		return nil, fmt.Errorf("describe flow %q: %w", name, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	st := &Status{Flow: name, RunID: info.GetExecution().GetRunId(), Status: statusName(info.GetStatus())}
	qctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	v, err := c.QueryWorkflow(qctx, name, st.RunID, QueryProgress)
	if err != nil {
		if qctx.Err() != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("flow %q: no worker answered within 15s; are workers running on task queue %q?", name, taskQueue)
		}
		return nil, fmt.Errorf("query flow %q: %w", name, err)
	}
	var qr QueryResult
	if err := v.Get(&qr); err != nil {
		return nil, fmt.Errorf("query flow %q: %w", name, err)
	}
	st.Options, st.Settings, st.State, st.Query = qr.Options, qr.Settings, qr.State, qr.Query
	workers := map[string]*Worker{}
	worker := func(id string) *Worker {
		if workers[id] == nil {
			workers[id] = &Worker{Identity: id}
		}
		return workers[id]
	}
	byID := map[string]*PartitionState{}
	for i := range st.State.Parts {
		byID[st.State.Parts[i].ID] = &st.State.Parts[i]
	}
	dc := converter.GetDefaultDataConverter()
	for _, pa := range desc.GetPendingActivities() {
		id := pa.GetActivityId()
		started := pa.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED || pa.GetState() == enumspb.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED
		switch pa.GetActivityType().GetName() {
		case ActivityCopy:
			pid, _, _ := strings.Cut(id, "#")
			p := byID[pid]
			if p == nil {
				continue
			}
			p.Attempts = pa.GetAttempt()
			var hb CopyHeartbeat
			if pa.GetHeartbeatDetails() != nil && dc.FromPayloads(pa.GetHeartbeatDetails(), &hb) == nil {
				p.Rows = max(p.Rows, hb.Rows)
				p.ResumedRows, p.ResumedFrom, p.HeartbeatRows = hb.ResumedRows, hb.ResumedFrom, hb.HeartbeatRows
			}
			if started {
				p.Worker = pa.GetLastWorkerIdentity()
				worker(p.Worker).Activities = append(worker(p.Worker).Activities, pid)
			} else {
				st.Waiting = append(st.Waiting, pid)
			}
		case ActivityQueryRange:
			// Rows of the ranges still running, added to the current run
			// (the workflow counts the finished ones).
			var hb QueryRangeHeartbeat
			if cur := st.currentQueryRun(); cur != nil && pa.GetHeartbeatDetails() != nil && dc.FromPayloads(pa.GetHeartbeatDetails(), &hb) == nil {
				for i := range cur.Tables {
					if cur.Tables[i].Table == hb.Table {
						cur.Tables[i].Rows += hb.Rows
						cur.Rows += hb.Rows
					}
				}
			}
			if started {
				w := worker(pa.GetLastWorkerIdentity())
				_, rng, _ := strings.Cut(id, "/") // run-N/TABLE/range-I
				w.Activities = append(w.Activities, "query "+rng)
			} else {
				st.Waiting = append(st.Waiting, id)
			}
		case ActivityStream:
			var hb StreamHeartbeat
			if pa.GetHeartbeatDetails() != nil && dc.FromPayloads(pa.GetHeartbeatDetails(), &hb) == nil {
				if hb.Position != "" {
					st.State.CDC.Position = hb.Position
				}
				st.State.CDC.Received += hb.Received
				st.State.CDC.Applied += hb.Applied
				st.State.CDC.LagSeconds = hb.LagSeconds
				st.State.CDC.SchemaChanges, st.State.CDC.SchemaEvents = hb.SchemaChanges, hb.SchemaEvents
				if hb.Snapshots != nil {
					st.State.CDC.Snapshots = hb.Snapshots
				}
			}
			if started {
				w := worker(pa.GetLastWorkerIdentity())
				w.Activities = append(w.Activities, "cdc")
			}
		default:
			if started {
				w := worker(pa.GetLastWorkerIdentity())
				w.Activities = append(w.Activities, strings.TrimPrefix(pa.GetActivityType().GetName(), "ferry."))
			}
		}
	}
	if pollers {
		if tq, err := c.DescribeTaskQueue(ctx, taskQueue, enumspb.TASK_QUEUE_TYPE_ACTIVITY); err == nil {
			for _, p := range tq.GetPollers() {
				w := worker(p.GetIdentity())
				if t := p.GetLastAccessTime(); t != nil {
					w.LastPoll = t.AsTime()
				}
			}
		}
	}
	for _, w := range workers {
		sort.Strings(w.Activities)
		st.Workers = append(st.Workers, *w)
	}
	sort.Slice(st.Workers, func(i, j int) bool { return st.Workers[i].Identity < st.Workers[j].Identity })
	if !st.Running() && st.State.Error != "" {
		st.Failure = st.State.Error
	}
	return st, nil
}

func statusName(s enumspb.WorkflowExecutionStatus) string {
	n := s.String()
	if n == "" {
		return "Unknown"
	}
	return n
}

// Snapshot converts the status to the engine's progress snapshot, which
// the terminal display and the dashboard show.
func (s *Status) Snapshot() engine.Snapshot {
	st := s.State
	snap := engine.Snapshot{Flow: s.Flow, Mode: st.Mode, Phase: engine.Phase(st.Phase), Started: st.Started, Abilities: st.Abilities, Cutover: st.Cut}
	end := time.Now()
	if !st.Ended.IsZero() {
		end = st.Ended
	}
	if !st.Started.IsZero() {
		snap.Elapsed = end.Sub(st.Started).Seconds()
	}
	if st.Phase == PhaseCancelled {
		snap.Phase = engine.PhaseStopped
	}
	if s.Query != nil {
		q := s.Query.QueryProgress
		snap.Query = &q
	}
	byTable := map[string]*engine.TableSnapshot{}
	var order []string
	if st.Plan != nil {
		dest := destinations(s.Options, st.Plan.Tables)
		for _, t := range st.Plan.Tables {
			ns := t.Namespace.String()
			byTable[ns] = &engine.TableSnapshot{Table: ns, Destination: dest[t.Namespace],
				RowsEstimated: t.EstimatedRows, BytesEstimated: t.EstimatedBytes, Done: st.TablesFinished}
			order = append(order, ns)
		}
	}
	// A plan in chunks counts its partitions per table, and keeps the
	// finished ones folded there; Parts are the chunks read since.
	for _, tp := range st.TableParts {
		t := byTable[tp.Table]
		if t == nil {
			continue
		}
		t.Partitions += tp.Partitions
		t.PartitionsDone += tp.Done
		t.RowsCopied += tp.Rows
		snap.ResumedPartitions += tp.Resumed
	}
	for _, p := range st.Parts {
		t := byTable[p.Table]
		if t == nil {
			continue
		}
		if st.TableParts == nil {
			t.Partitions++
		}
		t.RowsCopied += p.Rows
		switch p.State {
		case PartDone:
			t.PartitionsDone++
		case PartRunning:
			t.PartitionsRunning++
		}
		if p.ResumedRows > 0 {
			snap.ResumedPartitions++
		}
	}
	for ns, r := range st.CDC.Snapshots {
		if t := byTable[ns]; t != nil {
			r := r
			t.Resnapshot = &r
		}
	}
	for _, ns := range order {
		t := byTable[ns]
		if t.RowsEstimated > 0 && t.RowsCopied > 0 {
			t.BytesCopied = int64(float64(t.BytesEstimated) * min(float64(t.RowsCopied)/float64(t.RowsEstimated), 1))
		}
		snap.Tables = append(snap.Tables, *t)
		snap.RowsCopied += t.RowsCopied
		snap.RowsEstimated += t.RowsEstimated
		snap.BytesCopied += t.BytesCopied
	}
	sort.SliceStable(snap.Tables, func(i, j int) bool { return snap.Tables[i].Table < snap.Tables[j].Table })
	rows := map[string]int64{}
	for _, p := range st.Parts {
		rows[p.ID] = p.Rows
	}
	for _, w := range s.Workers {
		var tasks []string
		for _, a := range w.Activities {
			switch {
			case a == "cdc":
				tasks = append(tasks, "change data capture at "+string(st.CDC.Position))
			case strings.Contains(a, "/"):
				tasks = append(tasks, fmt.Sprintf("copying %s (%d rows)", a, rows[a]))
			default:
				tasks = append(tasks, a)
			}
		}
		task := strings.Join(tasks, "; ")
		if task == "" {
			task = "idle"
			if !w.LastPoll.IsZero() {
				task += fmt.Sprintf(" (polled %s ago)", time.Since(w.LastPoll).Round(time.Second))
			}
		}
		snap.Workers = append(snap.Workers, engine.WorkerSnapshot{ID: w.Identity, Task: task})
	}
	snap.CDC = engine.CDCSnapshot{Received: st.CDC.Received, Applied: st.CDC.Applied, Position: string(st.CDC.Position), LagSeconds: -1,
		SchemaChanges: st.CDC.SchemaChanges, SchemaEvents: st.CDC.SchemaEvents}
	if st.Phase == PhaseCDC || st.CDC.Activities > 0 {
		snap.CDC.LagSeconds = st.CDC.LagSeconds
	}
	return snap
}

// destinations names each table's destination table as the flow's
// engine does (the workflow's plan activity refused rules that do not map).
func destinations(o flow.Config, tables []*model.Table) map[model.Namespace]string {
	out := map[model.Namespace]string{}
	for _, t := range tables {
		out[t.Namespace] = t.Namespace.String()
	}
	r, err := flow.ParseRenames(o.Rename)
	if err != nil {
		return out
	}
	names := make([]model.Namespace, len(tables))
	for i, t := range tables {
		names[i] = t.Namespace
	}
	if r, err = r.Resolve(names); err != nil {
		return out
	}
	for _, t := range tables {
		out[t.Namespace] = r.Apply(t.Namespace).String()
	}
	return out
}

// FlowOptions are the options that define a flow, for comparing a running
// flow with what a runner asks for.
func definition(o flow.Config) map[string]string {
	// Whether the partition size was given only mattered to the plan
	// (flows from before it was recorded lack it).
	o.StateDir, o.FixedPartitionRows = "", false
	b, _ := json.Marshal(o) //nolint:errcheck // a flow.Config always marshals
	var m map[string]any
	json.Unmarshal(b, &m) //nolint:errcheck // just marshalled
	out := map[string]string{}
	for k, v := range m {
		vb, _ := json.Marshal(v) //nolint:errcheck // from JSON
		out[k] = string(vb)
	}
	return out
}

// Differences lists the options in which a and b differ ("Tables: [a.*]
// (running) vs [b.*]").
func Differences(running, asked flow.Config) []string {
	a, b := definition(running), definition(asked)
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		if a[k] != b[k] {
			out = append(out, fmt.Sprintf("%s: %s (running) vs %s (asked)", k, a[k], b[k]))
		}
	}
	return out
}

// onlyTables says running and asked differ in their table selection
// alone, which a streaming flow follows instead of refusing (ChangeTables).
func onlyTables(running, asked flow.Config) bool {
	if running.Selection() == asked.Selection() {
		return false
	}
	asked.Tables = running.Tables
	return len(Differences(running, asked)) == 0
}

// StartOptions say how to start a flow.
type StartOptions struct {
	TaskQueue string
	// Restart starts a flow that already finished again, from a new plan.
	Restart bool
	// Log, when set, is told what Start changed (a flow's tables).
	Log *slog.Logger
}

// Start starts the flow's workflow (ID = the flow's name), or finds the one
// that runs (or finished, unless Restart). attached reports an existing
// run. A running flow defined with other options is a configuration error.
// A flow of queries runs the query workflow (startQuery).
func Start(ctx context.Context, c client.Client, in FlowInput, opts StartOptions) (run client.WorkflowRun, attached bool, err error) {
	if len(in.Options.Queries) > 0 {
		return startQuery(ctx, c, in, opts)
	}
	name := in.Options.Name
	var reselect []string // a stopped flow's new --tables, applied once it runs
	for try := 0; try < 3; try++ {
		desc, err := c.DescribeWorkflowExecution(ctx, name, "")
		var nf *serviceerror.NotFound
		switch {
		case errors.As(err, &nf):
		case err != nil:
			return nil, false, fmt.Errorf("describe flow %q: %w", name, err)
		default:
			status := desc.GetWorkflowExecutionInfo().GetStatus()
			if status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				if in.Options.Source != "" || in.Options.Destination != "" {
					st, err := Progress(ctx, c, name, opts.TaskQueue)
					if err != nil {
						return nil, false, err
					}
					if onlyTables(st.Options, in.Options) {
						if err := changeTables(ctx, c, name, in.Options.Tables, opts); err != nil {
							return nil, false, err
						}
					} else if diff := Differences(st.Options, in.Options); len(diff) > 0 {
						return nil, false, errs.BadConfig(fmt.Sprintf("flow %q is running with other options: %s", name, strings.Join(diff, "; ")), "attach with the same options, choose another --name, or cancel it first: ferry flow cancel "+name)
					}
				}
				return c.GetWorkflow(ctx, name, ""), true, nil
			}
			// Attaching only (no connections given), or to a finished flow:
			// show how it ended.
			if (status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED && !opts.Restart) || (in.Options.Source == "" && in.Options.Destination == "") {
				return c.GetWorkflow(ctx, name, ""), true, nil
			}
			// A flow that stopped during its copy and starts over from a
			// new plan no longer needs the chunks of its old one.
			if status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED && opts.Restart && in.Options.Source != "" {
				if st, err := Progress(ctx, c, name, opts.TaskQueue); err == nil && st.State.unreleased() != nil {
					if err := releaseChunks(ctx, c, *st.State.unreleased(), nil); err != nil {
						return nil, false, err
					}
				}
			}
			// A flow that failed or was terminated resumes where it
			// stopped: its plan, finished partitions and CDC position carry
			// over (a cancelled one released everything: it starts over).
			if status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED && !opts.Restart && in.State == nil {
				if st, err := Progress(ctx, c, name, opts.TaskQueue); err == nil && st.State.Plan != nil && st.State.Phase != PhaseCancelled {
					if onlyTables(st.Options, in.Options) && streams(st.State) {
						// It resumes with its own tables, then changes them
						// (below) as a running flow does.
						reselect = in.Options.Tables
						in.Options.Tables = st.Options.Tables
					} else if diff := Differences(st.Options, in.Options); len(diff) > 0 {
						fix := "run it with the same options to resume it, or with --restart to start over"
						if onlyTables(st.Options, in.Options) && st.State.Mode != flow.ModeSnapshot {
							fix = "run it with the same --tables to resume it and let its copy finish, then run it again with the new --tables; or start over with --restart"
						}
						return nil, false, errs.BadConfig(fmt.Sprintf("flow %q stopped (%s) with other options: %s", name, st.Status, strings.Join(diff, "; ")), fix)
					}
					in.State = resumable(st.State)
				}
			}
		}
		if in.Options.Source == "" || in.Options.Destination == "" {
			return nil, false, errs.BadConfig(fmt.Sprintf("flow %q is not running", name), "start it with --source NAME --destination NAME")
		}
		in.Restart = opts.Restart
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID:                       name,
			TaskQueue:                opts.TaskQueue,
			WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		}, WorkflowName, in)
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if errors.As(err, &started) {
			continue // another runner started it first: attach to it
		}
		if err != nil {
			return nil, false, fmt.Errorf("start flow %q: %w", name, err)
		}
		if reselect != nil {
			if err := changeTables(ctx, c, name, reselect, opts); err != nil {
				return nil, false, fmt.Errorf("flow %q resumed with its --tables %q: %w", name, strings.Join(in.Options.Tables, ","), err)
			}
		}
		return run, false, nil
	}
	return nil, false, fmt.Errorf("start flow %q: it keeps starting and ending", name)
}

// streams says a flow's copy is over: it streams changes, and may change
// its --tables.
func streams(s FlowState) bool {
	return s.Plan != nil && s.Mode != flow.ModeSnapshot && (s.Mode == flow.ModeCDC || s.TablesFinished)
}

// changeTables changes a flow's --tables for Start, and says so.
func changeTables(ctx context.Context, c client.Client, name string, tables []string, opts StartOptions) error {
	ans, err := ChangeTables(ctx, c, name, tables)
	if err != nil {
		return err
	}
	if opts.Log != nil {
		opts.Log.Info("the flow's tables changed", "flow", name, "tables", strings.Join(tables, ","),
			"added", strings.Join(ans.Added, ", "), "dropped", strings.Join(ans.Dropped, ", "))
	}
	return nil
}

// resumable is the state of a stopped flow, ready to go on.
func resumable(s FlowState) *FlowState {
	s.Phase, s.Error, s.Ended = PhaseCopy, "", time.Time{}
	s.Paused, s.Cutover, s.Cancelled = false, false, false
	if s.Cut != nil && !s.Cut.Done {
		s.Cut = nil // a cutover that failed is asked for again
	}
	if s.Reverse != nil && s.Reverse.Start == "" {
		s.Reverse = nil // and so is its --reverse
	}
	s.Runs++
	for i := range s.Parts {
		if s.Parts[i].State != PartDone {
			s.Parts[i].State = PartPending
		}
	}
	return &s
}

// Signal sends a flow one of the control signals.
func Signal(ctx context.Context, c client.Client, name, signal string) error {
	if err := c.SignalWorkflow(ctx, name, "", signal, nil); err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return fmt.Errorf("flow %q is not running: %w", name, ErrNoFlow)
		}
		return fmt.Errorf("signal %s to flow %q: %w", signal, name, err)
	}
	return nil
}

// Flows lists the flows (workflows of the flow and query flow types) of
// the namespace, newest first.
func Flows(ctx context.Context, c client.Client) ([]FlowSummary, error) {
	var out []FlowSummary
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowType IN (%q, %q, %q)", WorkflowName, WorkflowNameV1, QueryWorkflowName), NextPageToken: token,
		})
		if err != nil {
			return nil, fmt.Errorf("list flows: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			fs := FlowSummary{Flow: e.GetExecution().GetWorkflowId(), RunID: e.GetExecution().GetRunId(), Status: statusName(e.GetStatus())}
			if t := e.GetStartTime(); t != nil {
				fs.Started = t.AsTime()
			}
			if t := e.GetCloseTime(); t != nil {
				fs.Closed = t.AsTime()
			}
			out = append(out, fs)
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			return out, nil
		}
	}
}

// FlowSummary is one line of ferry flow list and of the fleet dashboard.
// Flows fills the first fields from the list alone; Summarize adds the
// rest from the flow's status.
type FlowSummary struct {
	Flow    string    `json:"flow"`
	RunID   string    `json:"run_id"`
	Status  string    `json:"status"`
	Started time.Time `json:"started"`
	Closed  time.Time `json:"closed,omitzero"`

	// Phase is the workflow's (plan, copy, cdc, cutover, paused, done,
	// cancelled, failed); "" when the status could not be read.
	Phase  string `json:"phase"`
	Paused bool   `json:"paused"`
	// Percent is the copy's progress, 0 to 100; null without a copy (mode
	// cdc) or when unknown.
	Percent       *float64 `json:"percent"`
	RowsCopied    int64    `json:"rows_copied"`
	RowsEstimated int64    `json:"rows_estimated"`
	// LagSeconds is the CDC lag; null until change data capture applied
	// a change.
	LagSeconds *float64 `json:"lag_seconds"`
	// Health is "ok", "retrying" (a task failed and waits for its next
	// attempt), "failed", or "unknown" (the status could not be read);
	// Error says why when it is not ok.
	Health string `json:"health"`
	Error  string `json:"error,omitempty"`
	// Workers are the identities of the workers running the flow's tasks.
	Workers []string `json:"workers"`
	// Checked is when the status was read (zero: not yet).
	Checked time.Time `json:"checked,omitzero"`
}

// Summarize fills the summary's status fields from the flow's status;
// percent is the copy's progress as the dashboard computes it.
func (fs *FlowSummary) Summarize(st *Status, percent *float64) {
	snap := st.Snapshot()
	fs.Status, fs.Phase, fs.Paused, fs.Percent, fs.Checked = st.Status, st.State.Phase, st.State.Paused, percent, time.Now()
	fs.RowsCopied, fs.RowsEstimated = snap.RowsCopied, snap.RowsEstimated
	if q := st.Query; q != nil {
		// A query flow's rows are its run's: the one under way, else the last.
		switch {
		case q.Current != nil:
			fs.RowsCopied = q.Current.Rows
		case q.Last != nil:
			fs.RowsCopied = q.Last.Rows
		}
	}
	if snap.CDC.LagSeconds >= 0 {
		lag := snap.CDC.LagSeconds
		fs.LagSeconds = &lag
	}
	fs.Health, fs.Error = "ok", ""
	switch {
	case st.State.Phase == PhaseCancelled: // asked for, not a failure
	case st.Failure != "" || (!st.Running() && st.Status != "Completed"):
		fs.Health, fs.Error = "failed", st.Failure
		if fs.Error == "" {
			fs.Error = "workflow " + strings.ToLower(st.Status)
		}
	case len(st.Waiting) > 0:
		fs.Health, fs.Error = "retrying", "waiting for a worker after a failed attempt: "+strings.Join(st.Waiting, ", ")
	}
	fs.Workers = []string{}
	for _, w := range st.Workers {
		if len(w.Activities) > 0 {
			fs.Workers = append(fs.Workers, w.Identity)
		}
	}
}

// RequestCutover asks a flow to cut over (UpdateCutover) and returns the
// position it drains to. A refusal (the copy is unfinished, the flow has
// ended) is an errs.ConfigError saying why. Workers from before the update
// get the cutover signal: their flow stops at what was already read.
func RequestCutover(ctx context.Context, c client.Client, name string, req CutoverRequest) (CutoverAnswer, error) {
	var ans CutoverAnswer
	var args []any
	if req.Reverse {
		// A query flow answers no reverse query either, but not because
		// its workers are old: say what it is.
		if d, err := c.DescribeWorkflowExecution(ctx, name, ""); err == nil && d.GetWorkflowExecutionInfo().GetType().GetName() == QueryWorkflowName {
			return ans, errs.BadConfig(fmt.Sprintf("flow %q is a query flow: it has no change stream to cut over, nor a way back", name),
				"a query flow ends with ferry flow cancel "+name+" (its marks stay at the destination)")
		}
		// Workers from before --reverse would take the request as a plain
		// cutover and release the source's slot: they do not answer this.
		if _, err := c.QueryWorkflow(ctx, name, "", QueryReverse); err != nil {
			var nf *serviceerror.NotFound
			if errors.As(err, &nf) {
				return ans, fmt.Errorf("flow %q is not running: %w", name, ErrNoFlow)
			}
			if strings.Contains(err.Error(), "unknown queryType") {
				return ans, errs.BadConfig(fmt.Sprintf("the workers of flow %q predate --reverse", name), "upgrade the workers (ferry worker) first, then run ferry flow cutover --reverse again")
			}
			return ans, fmt.Errorf("cutover of flow %q: %w", name, err)
		}
		args = []any{req}
	}
	err := updateFlow(ctx, c, name, UpdateCutover, args, &ans)
	if err == nil || errors.Is(err, ErrNoFlow) {
		return ans, err
	}
	var ae *temporal.ApplicationError
	switch {
	case errors.As(err, &ae) && ae.Type() == errTypeConfig:
		fix := "wait for the copy to finish (ferry flow status " + name + " shows its progress), then run ferry flow cutover again"
		switch {
		case strings.Contains(ae.Message(), "--reverse"):
			fix = "cut over without --reverse, or fix what the message says first"
		case strings.Contains(ae.Message(), "is a query flow"):
			fix = "a query flow ends with ferry flow cancel " + name + " (its marks stay at the destination)"
		case strings.Contains(ae.Message(), "has ended"):
			fix = "ferry flow status " + name + " shows how it ended; a failed flow resumes with ferry run --name " + name
		}
		return ans, errs.BadConfig(ae.Message(), fix)
	case strings.Contains(err.Error(), "unknown update"):
		return CutoverAnswer{Undrained: true}, Signal(ctx, c, name, SignalCutover)
	}
	return ans, fmt.Errorf("cutover of flow %q: %w", name, err)
}

// updateFlow runs a workflow update of the flow and waits for its answer,
// in out. A flow that does not run is ErrNoFlow; any other error (a
// refusal, an update the workers do not know) is the update's, for the
// caller to word.
func updateFlow(ctx context.Context, c client.Client, name, update string, args []any, out any) error {
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: name, UpdateName: update, Args: args,
		WaitForStage: client.WorkflowUpdateStageCompleted})
	if err == nil {
		err = h.Get(ctx, out)
	}
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("flow %q is not running: %w", name, ErrNoFlow)
	}
	return err
}
