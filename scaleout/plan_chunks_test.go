package scaleout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// splitPlan keeps every partition once, in order, each chunk under the
// byte budget (a partition larger than the budget is a chunk of its own).
func TestSplitPlanBoundsEachChunk(t *testing.T) {
	const chunkBytes = 2000
	for _, n := range []int{0, 1, 15, 16, 1000} {
		parts := testPlan(n).Partitions
		if n == 15 {
			parts[7].Upper = strings.Repeat("k", 5000)
		}
		chunks, err := splitPlan(parts, chunkBytes)
		if err != nil {
			t.Fatal(err)
		}
		i := 0
		for _, c := range chunks {
			b, _ := json.Marshal(c)
			if len(c) == 0 || len(b) > chunkBytes && len(c) > 1 {
				t.Fatalf("%d partitions: a chunk of %d partitions, %d bytes", n, len(c), len(b))
			}
			for _, p := range c {
				if p.ID != parts[i].ID {
					t.Fatalf("%d partitions: chunk holds %s at %d, want %s", n, p.ID, i, parts[i].ID)
				}
				i++
			}
		}
		if i != n {
			t.Fatalf("%d partitions: chunks hold %d", n, i)
		}
	}
}

// A plan in chunks is read chunk by chunk while the window runs, every
// partition copied once across continue-as-new; finished partitions are
// folded into per-table counters so the carried state stays small, and
// the chunk workflows are released once the copy is over.
func TestPlanInChunksCopiesEveryPartitionWithBoundedState(t *testing.T) {
	defer func(k int) { keepDetail = k }(keepDetail)
	keepDetail = 10
	const parts, per = 95, 20 // the first chunk inline, four to read
	plan := testPlan(parts)
	chunk := func(k int) []model.Partition { return plan.Partitions[min(k*per, parts):min((k+1)*per, parts)] }
	f := newFakeFlow()
	var reads, releases []string
	in := FlowInput{Options: options(""), Settings: Settings{HistoryLimit: 150}}
	in.Options.Mode = flow.ModeSnapshot
	runs := 0
	maxCarried := 0
	for {
		f.plan = func(in PlanInput) (PlanResult, error) {
			if !in.Chunked {
				return PlanResult{}, errors.New("a new flow must ask for a plan in chunks")
			}
			p := *plan
			p.Partitions = chunk(0)
			return PlanResult{Plan: &p, Mode: flow.ModeSnapshot, Chunks: &PlanChunks{Prefix: "shop/plan/r.1", Count: 4},
				Tables: []TableParts{{Table: "shop.orders", Partitions: parts}}}, nil
		}
		env := f.env(t, flow.ModeSnapshot, parts, time.Second)
		env.OnActivity(ActivityReadPlanChunk, mock.Anything, mock.Anything).Return(func(ctx context.Context, in ReadChunkInput) ([]model.Partition, error) {
			reads = append(reads, in.ID)
			k, err := strconv.Atoi(in.ID[strings.LastIndex(in.ID, "/")+1:])
			if err != nil {
				return nil, err
			}
			return chunk(k + 1), nil
		})
		env.OnActivity(ActivityReleasePlan, mock.Anything, mock.Anything).Return(func(ctx context.Context, in ReleasePlanInput) error {
			releases = append(releases, fmt.Sprint(in.Chunks.Count))
			return nil
		})
		env.ExecuteWorkflow(WorkflowName, in)
		var can *workflow.ContinueAsNewError
		if err := env.GetWorkflowError(); errors.As(err, &can) {
			runs++
			if can.WorkflowType == nil || can.WorkflowType.Name != WorkflowName {
				t.Fatalf("continued as %+v, want %s (a type older workers do not run)", can.WorkflowType, WorkflowName)
			}
			if runs > 20 {
				t.Fatal("the flow keeps continuing as new")
			}
			var next FlowInput
			if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(next.State)
			maxCarried = max(maxCarried, len(next.State.Parts))
			if len(next.State.Parts) > keepDetail+per+in.Settings.withDefaults(in.Options).Window || len(next.State.Plan.Partitions) > len(next.State.Parts) {
				t.Fatalf("run %d carries %d partitions (%d bounds, %d bytes)", runs, len(next.State.Parts), len(next.State.Plan.Partitions), len(b))
			}
			in = next
			continue
		}
		s := result(t, env)
		if runs < 2 {
			t.Fatalf("the flow continued as new %d times; the test wants several", runs)
		}
		for id, n := range f.copied {
			if n != 1 {
				t.Errorf("partition %s copied %d times", id, n)
			}
		}
		if len(f.copied) != parts {
			t.Fatalf("%d partitions copied, want %d", len(f.copied), parts)
		}
		if got := strings.Join(reads, " "); got != "shop/plan/r.1/0 shop/plan/r.1/1 shop/plan/r.1/2 shop/plan/r.1/3" {
			t.Fatalf("chunks read: %s", got)
		}
		if fmt.Sprint(releases) != "[4]" || !s.Chunks.Released {
			t.Fatalf("chunk workflows released: %v (state %+v)", releases, s.Chunks)
		}
		done, total := s.partsDone()
		if done != parts || total != parts || len(s.Parts) > keepDetail {
			t.Fatalf("final state: %d of %d done, %d partitions kept one by one", done, total, len(s.Parts))
		}
		st := Status{Flow: "shop", State: *s}
		snap := st.Snapshot()
		if len(snap.Tables) != 1 || snap.Tables[0].Partitions != parts || snap.Tables[0].PartitionsDone != parts || snap.Tables[0].RowsCopied != parts*100 {
			t.Fatalf("status: %+v", snap.Tables)
		}
		t.Logf("%d runs, at most %d partitions carried", runs+1, maxCarried)
		return
	}
}

// A flow of the first type (started by a ferry from before the plan in
// chunks) may have its workflow tasks taken by workers that do not know
// chunks, which would end its copy after the chunks already read: it asks
// for its plan whole, and continues as new with its own type.
func TestFirstTypeFlowPlansWhole(t *testing.T) {
	f := newFakeFlow()
	var asked []bool
	f.plan = func(in PlanInput) (PlanResult, error) {
		asked = append(asked, in.Chunked)
		return PlanResult{Plan: testPlan(30), Mode: flow.ModeSnapshot}, nil
	}
	env := f.env(t, flow.ModeSnapshot, 30, time.Second)
	env.ExecuteWorkflow(WorkflowNameV1, FlowInput{Options: options(""), Settings: Settings{HistoryLimit: 40}})
	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("workflow error %v, want continue-as-new", err)
	}
	if fmt.Sprint(asked) != "[false]" {
		t.Fatalf("plan asked in chunks: %v", asked)
	}
	if can.WorkflowType == nil || can.WorkflowType.Name != WorkflowNameV1 {
		t.Fatalf("continued as %+v, want %s", can.WorkflowType, WorkflowNameV1)
	}
}
