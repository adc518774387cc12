package scaleout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// fakeFlow records what the mocked activities were asked to do.
type fakeFlow struct {
	mu        sync.Mutex
	calls     []string
	copied    map[string]int
	running   atomic.Int32
	maxRun    atomic.Int32
	failOnce  map[string]bool
	streamRes StreamResult
	// head is where the cutover-position activity says the source is
	// (default: streamRes's position); drains records the drains asked for.
	head   model.Position
	drains []StreamInput
	// abilities is what the plan activity reports (nil: nothing, as a
	// worker from before abilities were reported).
	abilities *engine.Abilities
	// plan, when set, answers the plan activity.
	plan func(PlanInput) (PlanResult, error)
}

func newFakeFlow() *fakeFlow {
	return &fakeFlow{copied: map[string]int{}, failOnce: map[string]bool{}}
}

func (f *fakeFlow) record(s string) {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
}

func (f *fakeFlow) steps() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if len(out) == 0 || out[len(out)-1] != c {
			out = append(out, c)
		}
	}
	return out
}

func testPlan(parts int) *model.Plan {
	t := &model.Table{Namespace: model.Namespace{Schema: "shop", Table: "orders"}, EstimatedRows: int64(parts * 100),
		Columns: []model.Column{{Name: "id", Type: model.Type{Kind: model.KindInt64}}}, PrimaryKey: []string{"id"}}
	p := &model.Plan{Tables: []*model.Table{t}, T0: "0/10"}
	for i := 0; i < parts; i++ {
		p.Partitions = append(p.Partitions, model.Partition{ID: fmt.Sprintf("shop.orders/%04d", i), Table: t.Namespace, Index: i, EstimatedRows: 100})
	}
	return p
}

// env builds a test environment whose activities are the fake flow's.
func (f *fakeFlow) env(t *testing.T, mode flow.Mode, parts int, copyTakes time.Duration) *testsuite.TestWorkflowEnvironment {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(FlowWorkflow, workflow.RegisterOptions{Name: WorkflowName})
	env.RegisterWorkflowWithOptions(FlowWorkflow, workflow.RegisterOptions{Name: WorkflowNameV1})
	a := &Activities{}
	env.RegisterActivityWithOptions(a.Plan, activity.RegisterOptions{Name: ActivityPlan})
	env.RegisterActivityWithOptions(a.CopyPartition, activity.RegisterOptions{Name: ActivityCopy})
	env.RegisterActivityWithOptions(a.FinishTables, activity.RegisterOptions{Name: ActivityFinish})
	env.RegisterActivityWithOptions(a.StreamChanges, activity.RegisterOptions{Name: ActivityStream})
	env.RegisterActivityWithOptions(a.Release, activity.RegisterOptions{Name: ActivityRelease})
	env.RegisterActivityWithOptions(a.CutoverPosition, activity.RegisterOptions{Name: ActivityCutoverPosition})
	env.RegisterActivityWithOptions(a.FinishCutover, activity.RegisterOptions{Name: ActivityFinishCutover})
	env.RegisterActivityWithOptions(a.ChangeTables, activity.RegisterOptions{Name: ActivityChangeTables})
	env.RegisterActivityWithOptions(a.CheckReverse, activity.RegisterOptions{Name: ActivityCheckReverse})
	env.RegisterActivityWithOptions(a.StartReverse, activity.RegisterOptions{Name: ActivityStartReverse})
	env.RegisterActivityWithOptions(a.CheckOldSide, activity.RegisterOptions{Name: ActivityCheckOldSide})
	env.RegisterActivityWithOptions(a.ReadPlanChunk, activity.RegisterOptions{Name: ActivityReadPlanChunk})
	env.RegisterActivityWithOptions(a.ReleasePlan, activity.RegisterOptions{Name: ActivityReleasePlan})
	env.OnActivity(ActivityCutoverPosition, mock.Anything, mock.Anything).Return(func(ctx context.Context, in CutoverPositionInput) (CutoverPosition, error) {
		f.record("cutover-position")
		f.mu.Lock()
		defer f.mu.Unlock()
		lag := int64(30)
		if f.head == "" {
			return CutoverPosition{Position: f.streamRes.Position, LagBytes: &lag}, nil
		}
		return CutoverPosition{Position: f.head, LagBytes: &lag}, nil
	})
	env.OnActivity(ActivityFinishCutover, mock.Anything, mock.Anything).Return(func(ctx context.Context, in FinishCutoverInput) ([]engine.CutoverStep, error) {
		f.record("finish-cutover")
		return []engine.CutoverStep{{Name: engine.StepSequences, Seconds: 0.1, Detail: "2 sequence(s) set to the source's values"}}, nil
	})
	env.OnActivity(ActivityPlan, mock.Anything, mock.Anything).Return(func(ctx context.Context, in PlanInput) (PlanResult, error) {
		f.record("plan")
		if f.plan != nil {
			return f.plan(in)
		}
		return PlanResult{Plan: testPlan(parts), Mode: mode, Abilities: f.abilities}, nil
	})
	env.OnActivity(ActivityCopy, mock.Anything, mock.Anything).After(copyTakes).Return(func(ctx context.Context, in CopyInput) (CopyResult, error) {
		f.record("copy")
		n := f.running.Add(1)
		defer f.running.Add(-1)
		for {
			m := f.maxRun.Load()
			if n <= m || f.maxRun.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond) // let the window fill up
		info := activity.GetInfo(ctx)
		f.mu.Lock()
		fail := f.failOnce[in.Partition.ID]
		delete(f.failOnce, in.Partition.ID)
		f.copied[in.Partition.ID]++
		f.mu.Unlock()
		if fail {
			return CopyResult{}, temporal.NewApplicationError("connection reset", "")
		}
		return CopyResult{Rows: 100, RowsThisAttempt: 100, Attempt: info.Attempt, Worker: "w1"}, nil
	})
	env.OnActivity(ActivityFinish, mock.Anything, mock.Anything).Return(func(ctx context.Context, in TablesInput) error {
		f.record("finish")
		return nil
	})
	env.OnActivity(ActivityStream, mock.Anything, mock.Anything).After(time.Minute).Return(func(ctx context.Context, in StreamInput) (StreamResult, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if in.DrainTo != "" {
			f.calls = append(f.calls, "drain")
			f.drains = append(f.drains, in)
			return StreamResult{Position: in.DrainTo, Received: 4, Applied: 4, Drained: true}, nil
		}
		f.calls = append(f.calls, "stream")
		r := f.streamRes
		r.CaughtUp = in.Options.Until == "caught-up"
		return r, nil
	})
	env.OnActivity(ActivityRelease, mock.Anything, mock.Anything).Return(func(ctx context.Context, in ReleaseInput) error {
		f.record("release")
		return nil
	})
	return env
}

func options(until string) flow.Config {
	return flow.Config{Name: "shop", Source: "src", Destination: "dst", Parallel: 3, Until: until}
}

func result(t *testing.T, env *testsuite.TestWorkflowEnvironment) *FlowState {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("the workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	var s FlowState
	if err := env.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func query(t *testing.T, env *testsuite.TestWorkflowEnvironment) QueryResult {
	t.Helper()
	v, err := env.QueryWorkflow(QueryProgress)
	if err != nil {
		t.Fatal(err)
	}
	var q QueryResult
	if err := v.Get(&q); err != nil {
		t.Fatal(err)
	}
	return q
}

func TestStepsInOrderWithABoundedWindow(t *testing.T) {
	f := newFakeFlow()
	f.streamRes = StreamResult{Position: "0/99", Received: 7, Applied: 5}
	env := f.env(t, flow.ModeFull, 10, time.Second)
	env.ExecuteWorkflow(WorkflowName, FlowInput{Options: options("caught-up")})
	s := result(t, env)
	if got, want := fmt.Sprint(f.steps()), "[plan copy finish stream release]"; got != want {
		t.Fatalf("steps %s, want %s", got, want)
	}
	if len(f.copied) != 10 {
		t.Fatalf("%d partitions copied, want 10", len(f.copied))
	}
	if m := f.maxRun.Load(); m > 3 || m < 2 {
		t.Fatalf("%d partition copies ran at once; the window is 3", m)
	}
	if s.Phase != PhaseDone || !s.CDC.CaughtUp || s.CDC.Position != "0/99" || s.CDC.Received != 7 {
		t.Fatalf("final state: %+v", s)
	}
	for _, p := range s.Parts {
		if p.State != PartDone || p.Rows != 100 {
			t.Fatalf("partition %+v", p)
		}
	}
}

func TestSnapshotModeSkipsCDC(t *testing.T) {
	f := newFakeFlow()
	env := f.env(t, flow.ModeSnapshot, 4, time.Second)
	env.ExecuteWorkflow(WorkflowName, FlowInput{Options: options("")})
	s := result(t, env)
	if got, want := fmt.Sprint(f.steps()), "[plan copy finish]"; got != want {
		t.Fatalf("steps %s, want %s", got, want)
	}
	if s.Phase != PhaseDone {
		t.Fatalf("phase %s", s.Phase)
	}
}

// The workflow reads the destination's abilities from the plan: the
// finish activity runs only for a destination with work to do after the
// copy, and the abilities reach the status the dashboard shows.
func TestFinishRunsOnlyForADestinationThatFinishesTables(t *testing.T) {
	for _, finishes := range []bool{false, true} {
		f := newFakeFlow()
		f.abilities = &engine.Abilities{Source: connector.Abilities{Source: true}, Destination: connector.Abilities{Destination: true, FinishTables: finishes}}
		env := f.env(t, flow.ModeSnapshot, 4, time.Second)
		env.ExecuteWorkflow(WorkflowName, FlowInput{Options: options("")})
		s := result(t, env)
		want := "[plan copy]"
		if finishes {
			want = "[plan copy finish]"
		}
		if got := fmt.Sprint(f.steps()); got != want {
			t.Errorf("destination finishes tables %v: steps %s, want %s", finishes, got, want)
		}
		if !s.TablesFinished || s.Phase != PhaseDone {
			t.Errorf("final state: %+v", s)
		}
		snap := (&Status{Flow: "shop", State: *s}).Snapshot()
		if snap.Abilities == nil || *snap.Abilities != *f.abilities {
			t.Errorf("the status shows abilities %+v, want %+v", snap.Abilities, f.abilities)
		}
	}
}

func TestPauseStopsNewPartitionsUntilResume(t *testing.T) {
	f := newFakeFlow()
	env := f.env(t, flow.ModeSnapshot, 12, 10*time.Second)
	var atPause, whilePaused int
	var phase string
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalPause, nil)
	}, 15*time.Second)
	env.RegisterDelayedCallback(func() {
		f.mu.Lock()
		atPause = len(f.copied)
		f.mu.Unlock()
	}, 30*time.Second)
	env.RegisterDelayedCallback(func() {
		f.mu.Lock()
		whilePaused = len(f.copied)
		f.mu.Unlock()
		phase = query(t, env).State.Phase
		env.SignalWorkflow(SignalResume, nil)
	}, 2*time.Hour)
	env.ExecuteWorkflow(WorkflowName, FlowInput{Options: options("")})
	s := result(t, env)
	if atPause == 0 || atPause >= 12 || whilePaused != atPause {
		t.Fatalf("partitions copied: %d after the pause took effect, %d an hour later; want the same, fewer than 12", atPause, whilePaused)
	}
	if phase != PhasePaused {
		t.Fatalf("phase while paused: %q", phase)
	}
	if len(f.copied) != 12 || s.Phase != PhaseDone {
		t.Fatalf("after resume: %d partitions, phase %s", len(f.copied), s.Phase)
	}
}

func TestCancelStopsTheFlowAndReleasesIt(t *testing.T) {
	f := newFakeFlow()
	env := f.env(t, flow.ModeFull, 12, 10*time.Second)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalCancel, nil) }, 15*time.Second)
	env.ExecuteWorkflow(WorkflowName, FlowInput{Options: options("")})
	if !env.IsWorkflowCompleted() {
		t.Fatal("not completed")
	}
	var ae *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &ae) || ae.Type() != errTypeCancelled {
		t.Fatalf("workflow error %v, want a Cancelled application error", err)
	}
	steps := f.steps()
	if steps[len(steps)-1] != "release" {
		t.Fatalf("steps %v: the flow was not released", steps)
	}
	for _, s := range steps {
		if s == "stream" || s == "finish" {
			t.Fatalf("steps %v after cancel", steps)
		}
	}
	if len(f.copied) >= 12 {
		t.Fatalf("all partitions were copied despite the cancel")
	}
}

func TestCutoverEndsChangeDataCapture(t *testing.T) {
	f := newFakeFlow()
	f.streamRes = StreamResult{Position: "0/50", Received: 3, Applied: 3}
	env := f.env(t, flow.ModeFull, 2, time.Second)
	// CDC activities run a minute each; cut over during the third.
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalCutover, nil) }, 150*time.Second)
	env.ExecuteWorkflow(WorkflowName, FlowInput{Options: options("")})
	s := result(t, env)
	if got, want := fmt.Sprint(f.steps()), "[plan copy finish stream cutover-position stream drain finish-cutover release]"; got != want {
		t.Fatalf("steps %s, want %s", got, want)
	}
	if s.Phase != PhaseDone || s.CDC.Position != "0/50" || s.CDC.Activities < 3 || s.Cut == nil || !s.Cut.Done {
		t.Fatalf("final state %+v", s.CDC)
	}
}

func TestContinueAsNewCarriesTheState(t *testing.T) {
	f := newFakeFlow()
	env := f.env(t, flow.ModeSnapshot, 30, time.Second)
	env.ExecuteWorkflow(WorkflowName, FlowInput{Options: options(""), Settings: Settings{HistoryLimit: 40}})
	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("workflow error %v, want continue-as-new", err)
	}
	var next FlowInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	done := 0
	for _, p := range next.State.Parts {
		if p.State == PartDone {
			done++
		}
		if p.State == PartRunning {
			t.Fatalf("partition %s carried over as running", p.ID)
		}
	}
	if done == 0 || done == 30 || next.State.Runs != 1 || next.State.Plan == nil {
		t.Fatalf("carried state: %d partitions done, runs %d", done, next.State.Runs)
	}
	// The next run copies only the rest, without planning again.
	f2 := newFakeFlow()
	next.Settings.HistoryLimit = 0
	env2 := f2.env(t, flow.ModeSnapshot, 30, time.Second)
	env2.ExecuteWorkflow(WorkflowName, next)
	s := result(t, env2)
	if len(f2.copied) != 30-done || f2.steps()[0] == "plan" {
		t.Fatalf("second run copied %d partitions (want %d), steps %v", len(f2.copied), 30-done, f2.steps())
	}
	if s.Phase != PhaseDone || s.Runs != 1 {
		t.Fatalf("final %s, runs %d", s.Phase, s.Runs)
	}
}

func TestFailedPartitionIsRetried(t *testing.T) {
	f := newFakeFlow()
	f.failOnce["shop.orders/0002"] = true
	env := f.env(t, flow.ModeSnapshot, 4, time.Second)
	env.ExecuteWorkflow(WorkflowName, FlowInput{Options: options("")})
	s := result(t, env)
	if f.copied["shop.orders/0002"] != 2 {
		t.Fatalf("partition 2 ran %d times, want 2", f.copied["shop.orders/0002"])
	}
	for _, p := range s.Parts {
		want := int32(1)
		if p.ID == "shop.orders/0002" {
			want = 2
		}
		if p.State != PartDone || p.Attempts != want {
			t.Fatalf("partition %s: %s after %d attempts, want done after %d", p.ID, p.State, p.Attempts, want)
		}
	}
}

func TestConfigErrorFailsAtOnce(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(FlowWorkflow, workflow.RegisterOptions{Name: WorkflowName})
	env.RegisterWorkflowWithOptions(FlowWorkflow, workflow.RegisterOptions{Name: WorkflowNameV1})
	a := &Activities{}
	env.RegisterActivityWithOptions(a.Plan, activity.RegisterOptions{Name: ActivityPlan})
	calls := 0
	env.OnActivity(ActivityPlan, mock.Anything, mock.Anything).Return(func(ctx context.Context, in PlanInput) (PlanResult, error) {
		calls++
		_, err := (&Activities{Connections: mustConnections(t, "dst=null://")}).open(ctx, in.Options)
		return PlanResult{}, err
	})
	env.ExecuteWorkflow(WorkflowName, FlowInput{Options: options("")})
	var ae *temporal.ApplicationError
	err := env.GetWorkflowError()
	if !errors.As(err, &ae) || ae.Type() != errTypeConfig || calls != 1 {
		t.Fatalf("workflow error %v after %d plan attempts, want one ConfigError", err, calls)
	}
	if want := `source connection "src" is not defined (defined: dst)`; !contains(ae.Error(), want) {
		t.Fatalf("error %q does not say %q", ae.Error(), want)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestPauseDuringChangeDataCapture(t *testing.T) {
	f := newFakeFlow()
	f.streamRes = StreamResult{Position: "0/70", Received: 1}
	env := f.env(t, flow.ModeFull, 2, time.Second)
	streams := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		n := 0
		for _, c := range f.calls {
			if c == "stream" {
				n++
			}
		}
		return n
	}
	var atPause, later int
	var phase string
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalPause, nil) }, 90*time.Second)
	env.RegisterDelayedCallback(func() { atPause = streams() }, 3*time.Minute)
	env.RegisterDelayedCallback(func() {
		later, phase = streams(), query(t, env).State.Phase
		env.SignalWorkflow(SignalResume, nil)
	}, 3*time.Hour)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalCutover, nil) }, 3*time.Hour+150*time.Second)
	env.ExecuteWorkflow(WorkflowName, FlowInput{Options: options("")})
	s := result(t, env)
	if atPause == 0 || later != atPause || phase != PhasePaused {
		t.Fatalf("CDC activities: %d when paused, %d hours later (phase %q); want the same, paused", atPause, later, phase)
	}
	if streams() <= atPause || s.Phase != PhaseDone || s.CDC.Position != "0/70" {
		t.Fatalf("after resume and cutover: %d CDC activities, phase %s, position %s", streams(), s.Phase, s.CDC.Position)
	}
}

func mustConnections(t *testing.T, flags ...string) *connector.Connections {
	t.Helper()
	c, err := connector.LoadConnections("", nil, flags)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
