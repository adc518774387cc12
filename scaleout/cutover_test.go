package scaleout

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/flow"
)

// cutoverAnswer collects the answer to one UpdateCutover.
type cutoverAnswer struct {
	rejected error
	answer   CutoverAnswer
	err      error
	done     bool
}

func requestCutover(env *testsuite.TestWorkflowEnvironment, id string) *cutoverAnswer {
	a := &cutoverAnswer{}
	env.UpdateWorkflow(UpdateCutover, id, &testsuite.TestUpdateCallback{
		OnAccept: func() {},
		OnReject: func(err error) { a.rejected, a.done = err, true },
		OnComplete: func(v any, err error) {
			a.err, a.done = err, true
			if ans, ok := v.(CutoverAnswer); ok {
				a.answer = ans
			}
		},
	})
	return a
}

func (f *fakeFlow) count(step string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == step {
			n++
		}
	}
	return n
}

// The cutover drains to the source's position at the request (read by its
// own activity while CDC still runs), from where CDC stopped, then runs the
// finishing steps, and the report is in the workflow's state.
func TestCutoverDrainsToThePositionAtTheRequest(t *testing.T) {
	f := newFakeFlow()
	f.streamRes = StreamResult{Position: "0/50", Received: 3, Applied: 3}
	f.head = "0/80"
	env := f.env(t, flow.ModeFull, 2, time.Second)
	var ans *cutoverAnswer
	var during QueryResult
	// CDC activities run a minute each; cut over during the third.
	env.RegisterDelayedCallback(func() { ans = requestCutover(env, "c1") }, 150*time.Second)
	env.RegisterDelayedCallback(func() { during = query(t, env) }, 170*time.Second)
	env.ExecuteWorkflow(WorkflowName, FlowInput{Options: options("")})
	s := result(t, env)
	if !ans.done || ans.rejected != nil || ans.err != nil || ans.answer.Position != "0/80" || ans.answer.Already {
		t.Fatalf("answer to the cutover: %+v", ans)
	}
	if got, want := fmt.Sprint(f.steps()), "[plan copy finish stream cutover-position stream drain finish-cutover release]"; got != want {
		t.Fatalf("steps %s, want %s", got, want)
	}
	if len(f.drains) != 1 || f.drains[0].From != "0/50" || f.drains[0].DrainTo != "0/80" {
		t.Fatalf("drains %+v, want one from 0/50 (where CDC stopped) to 0/80", f.drains)
	}
	if during.State.Phase != PhaseCutover || during.State.Cut == nil || during.State.Cut.Step != engine.StepDrain {
		t.Fatalf("state while the running CDC activity stops: phase %s, cutover %+v", during.State.Phase, during.State.Cut)
	}
	r := s.Cut
	if s.Phase != PhaseDone || r == nil || !r.Done || r.Position != "0/80" || r.LagBytes == nil || *r.LagBytes != 30 || r.Changes != 4 || r.Step != "" {
		t.Fatalf("final state %s, report %+v", s.Phase, r)
	}
	if len(r.Steps) != 2 || r.Steps[0].Name != engine.StepDrain || r.Steps[1].Name != engine.StepSequences || r.Steps[0].Seconds < 1 {
		t.Fatalf("report steps %+v, want the drain (from the request to its end) then the sequences", r.Steps)
	}
	if s.CDC.Position != "0/80" {
		t.Fatalf("CDC position %s after the drain, want 0/80", s.CDC.Position)
	}
	if snap := (&Status{Flow: "shop", State: *s}).Snapshot(); snap.Cutover == nil || !snap.Cutover.Done {
		t.Fatalf("the dashboard's snapshot has no cutover: %+v", snap.Cutover)
	}
}

// Before the copy is done a cutover is refused with the copy's progress,
// nothing is recorded, and the flow goes on; a later request cuts over.
func TestCutoverRefusedBeforeTheCopyIsDone(t *testing.T) {
	f := newFakeFlow()
	f.streamRes = StreamResult{Position: "0/60", Received: 1, Applied: 1}
	env := f.env(t, flow.ModeFull, 12, 10*time.Second)
	var early, later *cutoverAnswer
	var after QueryResult
	env.RegisterDelayedCallback(func() { early = requestCutover(env, "early") }, 15*time.Second)
	env.RegisterDelayedCallback(func() { after = query(t, env) }, 16*time.Second)
	env.RegisterDelayedCallback(func() { later = requestCutover(env, "later") }, 10*time.Minute)
	env.ExecuteWorkflow(WorkflowName, FlowInput{Options: options("")})
	s := result(t, env)
	var ae *temporal.ApplicationError
	if early == nil || !errors.As(early.rejected, &ae) || ae.Type() != errTypeConfig {
		t.Fatalf("early cutover: %+v, want a ConfigError rejection", early)
	}
	if msg := ae.Message(); !strings.Contains(msg, `flow "shop" has not finished its copy (`) || !strings.Contains(msg, " of 12 partitions copied") {
		t.Fatalf("refusal %q does not give the copy's progress", msg)
	}
	if after.State.Cut != nil || after.State.Cutover || after.State.Phase != PhaseCopy {
		t.Fatalf("state after the refusal: phase %s, cutover %v %+v", after.State.Phase, after.State.Cutover, after.State.Cut)
	}
	if later == nil || later.rejected != nil || later.err != nil || later.answer.Position != "0/60" {
		t.Fatalf("cutover after the copy: %+v", later)
	}
	if len(f.copied) != 12 || s.Cut == nil || !s.Cut.Done || f.count("drain") != 1 {
		t.Fatalf("%d partitions copied, report %+v, %d drains", len(f.copied), s.Cut, f.count("drain"))
	}
}

// A second request, while the first drains, answers with the first one's
// position and starts nothing.
func TestSecondCutoverRequestIsHarmless(t *testing.T) {
	f := newFakeFlow()
	f.streamRes = StreamResult{Position: "0/50", Received: 3, Applied: 3}
	f.head = "0/90"
	env := f.env(t, flow.ModeFull, 2, time.Second)
	var first, second *cutoverAnswer
	env.RegisterDelayedCallback(func() { first = requestCutover(env, "one") }, 150*time.Second)
	env.RegisterDelayedCallback(func() { second = requestCutover(env, "two") }, 160*time.Second)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalCutover, nil) }, 165*time.Second)
	env.ExecuteWorkflow(WorkflowName, FlowInput{Options: options("")})
	s := result(t, env)
	if first == nil || first.err != nil || first.rejected != nil || first.answer.Already {
		t.Fatalf("first cutover: %+v", first)
	}
	if second == nil || second.err != nil || second.rejected != nil || !second.answer.Already || second.answer.Position != "0/90" {
		t.Fatalf("second cutover: %+v, want the first one's position, already", second)
	}
	if n := f.count("cutover-position"); n != 1 {
		t.Fatalf("the source's position was read %d times, want once", n)
	}
	if f.count("drain") != 1 || f.count("finish-cutover") != 1 || s.Cut == nil || s.Cut.Position != "0/90" || !s.Cut.Done {
		t.Fatalf("%d drains, %d finishes, report %+v", f.count("drain"), f.count("finish-cutover"), s.Cut)
	}
}

// A run that continued as new during a cutover picks it up where the state
// says: the position read if it was not yet, the drain if not done, then
// the finishing steps; never a second drain.
func TestCutoverGoesOnAfterContinueAsNew(t *testing.T) {
	for _, c := range []struct {
		name  string
		cut   engine.CutoverReport
		steps string
	}{
		{"before the position", engine.CutoverReport{Step: engine.StepDrain}, "[cutover-position drain finish-cutover release]"},
		{"during the drain", engine.CutoverReport{Step: engine.StepDrain, Position: "0/70"}, "[drain finish-cutover release]"},
		{"after the drain", engine.CutoverReport{Step: StepFinish, Position: "0/70",
			Steps: []engine.CutoverStep{{Name: engine.StepDrain, Seconds: 2}}}, "[finish-cutover release]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeFlow()
			f.head = "0/70"
			env := f.env(t, flow.ModeFull, 2, time.Second)
			plan := testPlan(2)
			st := &FlowState{Phase: PhaseCutover, Mode: flow.ModeFull, Plan: plan, TablesFinished: true, Runs: 1,
				CDC: CDCState{Position: "0/40", Activities: 3}, Cutover: true, Cut: &c.cut}
			for _, p := range plan.Partitions {
				st.Parts = append(st.Parts, PartitionState{ID: p.ID, Table: p.Table.String(), State: PartDone, Rows: 100})
			}
			env.ExecuteWorkflow(WorkflowName, FlowInput{Options: options(""), State: st})
			s := result(t, env)
			if got := fmt.Sprint(f.steps()); got != c.steps {
				t.Fatalf("steps %s, want %s", got, c.steps)
			}
			if s.Phase != PhaseDone || s.Cut == nil || !s.Cut.Done || s.Cut.Position != "0/70" || len(s.Cut.Steps) != 2 {
				t.Fatalf("final %s, report %+v", s.Phase, s.Cut)
			}
		})
	}
}
