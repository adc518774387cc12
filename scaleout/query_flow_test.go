package scaleout

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// fakeQueries answers the query flow's activities: each run of each
// query has three ranges of 10 rows, up to a mark one higher than the
// last, except runs listed in empty, which find nothing.
type fakeQueries struct {
	mu       sync.Mutex
	plans    int
	ranges   map[string]int // range activities by activity ID
	finishes int
	empty    map[int]bool
}

func (q *fakeQueries) env(t *testing.T) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(QueryFlowWorkflow, workflow.RegisterOptions{Name: QueryWorkflowName})
	a := &Activities{}
	env.RegisterActivityWithOptions(a.QueryPrepare, activity.RegisterOptions{Name: ActivityQueryPrepare})
	env.RegisterActivityWithOptions(a.QueryPlanRun, activity.RegisterOptions{Name: ActivityQueryPlanRun})
	env.RegisterActivityWithOptions(a.QueryCopyRange, activity.RegisterOptions{Name: ActivityQueryRange})
	env.RegisterActivityWithOptions(a.QueryFinishRun, activity.RegisterOptions{Name: ActivityQueryFinishRun})
	env.OnActivity(ActivityQueryPrepare, mock.Anything, mock.Anything).Return(func(ctx context.Context, in QueryPrepareInput) ([]*model.Table, error) {
		return []*model.Table{{Namespace: model.Namespace{Schema: "rep", Table: "orders"}, Columns: []model.Column{{Name: "seq", Type: model.Type{Kind: model.KindInt64}}}}}, nil
	})
	env.OnActivity(ActivityQueryPlanRun, mock.Anything, mock.Anything).Return(func(ctx context.Context, in QueryRunInput) (*engine.QueryRun, error) {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.plans++
		from := strconv.Itoa(q.finishes)
		if q.empty[q.plans] {
			return &engine.QueryRun{From: from, Hi: from}, nil
		}
		to := strconv.Itoa(q.finishes + 1)
		return &engine.QueryRun{ID: "r" + to, From: from, Hi: to, Ranges: []engine.QueryRunRange{{After: from, UpTo: to}, {UpTo: to}, {UpTo: to}}}, nil
	})
	env.OnActivity(ActivityQueryRange, mock.Anything, mock.Anything).Return(func(ctx context.Context, in QueryRunInput) (QueryRangeResult, error) {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.ranges[activity.GetInfo(ctx).ActivityID]++
		return QueryRangeResult{Rows: 10, Attempt: 1}, nil
	})
	env.OnActivity(ActivityQueryFinishRun, mock.Anything, mock.Anything).Return(func(ctx context.Context, in QueryRunInput) (string, error) {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.finishes++
		return in.Run.Hi, nil
	})
	return env
}

func queryOptions(every time.Duration) flow.Config {
	return flow.Config{Name: "totals", Source: "src", Destination: "dst", Every: every,
		Queries: []flow.Query{{Name: "rep.orders", SQL: "SELECT seq FROM orders", Watermark: "seq"}}}
}

// Without --every the flow runs once and ends: each range once, the mark
// recorded, the run's rows counted.
func TestQueryFlowRunsOnce(t *testing.T) {
	q := &fakeQueries{ranges: map[string]int{}}
	env := q.env(t)
	env.ExecuteWorkflow(QueryWorkflowName, QueryFlowInput{Options: queryOptions(0)})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var s QueryFlowState
	if err := env.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	if s.Phase != PhaseDone || s.Runs != 1 || s.Marks["rep.orders"] != "1" || s.Last == nil || s.Last.Rows != 30 || s.Last.Tables[0].RangesDone != 3 {
		t.Fatalf("state after one run: %+v (last %+v)", s, s.Last)
	}
	if len(q.ranges) != 3 || q.finishes != 1 {
		t.Fatalf("ranges %v, finishes %d; want 3 ranges once each and one finish", q.ranges, q.finishes)
	}
}

// Every --every a run; a run that finds nothing records nothing (no
// finish); the history limit makes the workflow continue as new with its
// counts and marks; a cancel during the wait ends the flow as cancelled.
func TestQueryFlowScheduleContinuesAsNewAndCancels(t *testing.T) {
	q := &fakeQueries{ranges: map[string]int{}, empty: map[int]bool{2: true}}
	env := q.env(t)
	// About 6 events an activity: the prepare and three runs (the empty
	// one a single activity) are 12 activities, 72 events.
	env.ExecuteWorkflow(QueryWorkflowName, QueryFlowInput{Options: queryOptions(time.Minute), Settings: Settings{HistoryLimit: 70}})
	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("the workflow did not continue as new: %v", err)
	}
	var next QueryFlowInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	s := next.State
	if can.WorkflowType.Name != QueryWorkflowName || s == nil || s.Continued != 1 || s.Runs != 3 || s.Marks["rep.orders"] != "2" || len(s.Tables) != 1 {
		t.Fatalf("continued as new with %+v", s)
	}
	if q.plans != 3 || q.finishes != 2 || s.Last.Rows != 30 {
		t.Fatalf("plans %d, finishes %d (the empty run records nothing), last run %+v", q.plans, q.finishes, s.Last)
	}

	// The next run of the workflow goes on from that state; a cancel in
	// its wait ends it.
	q2 := &fakeQueries{ranges: map[string]int{}, finishes: 2}
	env = q2.env(t)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalCancel, nil) }, 30*time.Second)
	env.ExecuteWorkflow(QueryWorkflowName, next)
	var ae *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &ae) || ae.Type() != errTypeCancelled {
		t.Fatalf("cancelled during the wait: %v", err)
	}
	v, err := env.QueryWorkflow(QueryProgress)
	if err != nil {
		t.Fatal(err)
	}
	var res QueryResult
	if err := v.Get(&res); err != nil {
		t.Fatal(err)
	}
	if res.Query == nil || res.Query.Phase != PhaseCancelled || res.Query.Runs != 4 || res.Query.Marks["rep.orders"] != "3" || res.State.Phase != PhaseCancelled {
		t.Fatalf("after the cancel: %+v", res.Query)
	}
}
