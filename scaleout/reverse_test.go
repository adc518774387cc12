package scaleout

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/state"
)

// reverseEnv adds the way back's activities to a fake flow; refuse makes
// the destination's check fail.
func (f *fakeFlow) reverseEnv(t *testing.T, mode flow.Mode, refuse bool) *testsuite.TestWorkflowEnvironment {
	env := f.env(t, mode, 2, time.Second)
	env.OnActivity(ActivityCheckReverse, mock.Anything, mock.Anything).Return(func(ctx context.Context, in ReleaseInput) error {
		f.record("check-reverse")
		if refuse {
			return temporal.NewNonRetryableApplicationError("destination dst cannot be the source of a reverse flow", errTypeConfig, nil)
		}
		return nil
	})
	env.OnActivity(ActivityStartReverse, mock.Anything, mock.Anything).Return(func(ctx context.Context, in StartReverseInput) (state.ReverseStart, error) {
		f.record("start-reverse")
		return state.ReverseStart{Forward: in.Options.Name, Reverse: ReverseName(in.Options.Name), Source: in.Options.Source,
			Destination: in.Options.Destination, Start: "0/900", ForwardEnd: in.ForwardEnd}, nil
	})
	env.OnActivity(ActivityCheckOldSide, mock.Anything, mock.Anything).Return(func(ctx context.Context, in CheckOldSideInput) (state.ReverseStart, error) {
		f.record("check-old-side")
		return state.ReverseStart{Forward: "shop", Reverse: in.Options.Name, Tables: []string{"public.*"}, Start: "0/900", Checked: true}, nil
	})
	return env
}

func requestReverseCutover(env *testsuite.TestWorkflowEnvironment, id string) *cutoverAnswer {
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
	}, CutoverRequest{Reverse: true})
	return a
}

// A cutover --reverse checks the destination before the drain, records the
// reverse start after the finishing steps, and keeps the source's slot
// (no release).
func TestCutoverReverseRecordsTheStartAndKeepsTheSlot(t *testing.T) {
	f := newFakeFlow()
	f.streamRes = StreamResult{Position: "0/50", Received: 3, Applied: 3}
	f.head = "0/80"
	env := f.reverseEnv(t, flow.ModeFull, false)
	var ans *cutoverAnswer
	env.RegisterDelayedCallback(func() { ans = requestReverseCutover(env, "c1") }, 150*time.Second)
	env.ExecuteWorkflow(WorkflowName, FlowInput{Options: options("")})
	s := result(t, env)
	if !ans.done || ans.err != nil || ans.rejected != nil || ans.answer.Position != "0/80" {
		t.Fatalf("answer to the cutover --reverse: %+v", ans)
	}
	if got, want := fmt.Sprint(f.steps()), "[plan copy finish stream check-reverse cutover-position stream drain finish-cutover start-reverse]"; got != want {
		t.Fatalf("steps %s, want %s", got, want)
	}
	if r := s.Reverse; r == nil || r.Start != "0/900" || r.ForwardEnd != "0/80" || r.Reverse != "shop-reverse" || r.Source != "src" {
		t.Fatalf("recorded reverse start: %+v", s.Reverse)
	}
	if last := s.Cut.Steps[len(s.Cut.Steps)-1]; last.Name != StepReverse || !strings.Contains(last.Detail, "shop-reverse starts at 0/900") {
		t.Fatalf("the report's last step: %+v", last)
	}
}

// A destination that cannot be a change source refuses the cutover
// --reverse before anything is drained: the flow keeps streaming.
func TestCutoverReverseRefusedBeforeTheDrain(t *testing.T) {
	f := newFakeFlow()
	f.streamRes = StreamResult{Position: "0/50", Received: 3, Applied: 3}
	env := f.reverseEnv(t, flow.ModeFull, true)
	var ans *cutoverAnswer
	var after QueryResult
	env.RegisterDelayedCallback(func() { ans = requestReverseCutover(env, "c1") }, 150*time.Second)
	env.RegisterDelayedCallback(func() { after = query(t, env) }, 200*time.Second)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalCancel, nil) }, 300*time.Second)
	env.ExecuteWorkflow(WorkflowName, FlowInput{Options: options("")})
	if !ans.done || ans.err == nil || !strings.Contains(ans.err.Error(), "cannot be the source of a reverse flow") {
		t.Fatalf("answer to the refused cutover --reverse: %+v", ans)
	}
	if after.State.Cut != nil || after.State.Reverse != nil || after.State.Phase != PhaseCDC {
		t.Fatalf("after the refusal: phase %s, cutover %+v, reverse %+v", after.State.Phase, after.State.Cut, after.State.Reverse)
	}
	if f.count("cutover-position") != 0 || f.count("drain") != 0 {
		t.Fatalf("the refused cutover drained: %v", f.steps())
	}
}

// A reverse flow checks the old side before its plan and follows the
// forward flow's tables.
func TestReverseFlowChecksTheOldSideFirst(t *testing.T) {
	f := newFakeFlow()
	f.streamRes = StreamResult{Position: "0/950", Received: 3, Applied: 3}
	env := f.reverseEnv(t, flow.ModeCDC, false)
	o := options("caught-up")
	o.Name, o.Source, o.Destination, o.Mode, o.Reverse = "shop-reverse", "dst", "src", flow.ModeCDC, true
	env.ExecuteWorkflow(WorkflowName, FlowInput{Options: o})
	s := result(t, env)
	if got, want := fmt.Sprint(f.steps()), "[check-old-side plan stream release]"; got != want {
		t.Fatalf("steps %s, want %s", got, want)
	}
	if s.ReverseOf == nil || !s.ReverseOf.Checked || s.Reverse != nil {
		t.Fatalf("reverse state: of %+v, own %+v", s.ReverseOf, s.Reverse)
	}
}

// A flow that failed during its cutover --reverse resumes streaming; the
// request, --reverse included, is asked for again. A recorded start stays.
func TestResumedFlowAsksForItsReverseCutoverAgain(t *testing.T) {
	s := resumable(FlowState{Phase: PhaseFailed, Cut: &engine.CutoverReport{Position: "0/80"}, Reverse: &state.ReverseStart{Forward: "shop"}})
	if s.Cut != nil || s.Reverse != nil {
		t.Fatalf("resumed with cutover %+v, reverse %+v; want both asked for again", s.Cut, s.Reverse)
	}
	s = resumable(FlowState{Phase: PhaseFailed, Cut: &engine.CutoverReport{Position: "0/80", Done: true}, Reverse: &state.ReverseStart{Forward: "shop", Start: "0/900"}})
	if s.Reverse == nil || s.Reverse.Start != "0/900" {
		t.Fatalf("resumed without its recorded reverse start: %+v", s.Reverse)
	}
}
