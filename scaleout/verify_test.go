package scaleout

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/verify"
)

// The verify workflow compares each table in an activity of its own, at
// most the flow's --parallel at once, and returns the results in the
// tables' order.
func TestVerifyWorkflowComparesEachTableApart(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(VerifyWorkflow, workflow.RegisterOptions{Name: VerifyWorkflowName})
	a := &Activities{}
	env.RegisterActivityWithOptions(a.VerifyTables, activity.RegisterOptions{Name: ActivityVerifyTables})
	env.RegisterActivityWithOptions(a.VerifyTable, activity.RegisterOptions{Name: ActivityVerifyTable})
	names := []string{"shop.a", "shop.b", "shop.c", "shop.d", "shop.e"}
	env.OnActivity(ActivityVerifyTables, mock.Anything, mock.Anything).Return(func(context.Context, VerifyInput) ([]verify.Pair, error) {
		var pairs []verify.Pair
		for _, n := range names {
			ns := model.Namespace{Schema: "shop", Table: n[5:]}
			pairs = append(pairs, verify.Pair{Source: &model.Table{Namespace: ns}, Destination: ns})
		}
		return pairs, nil
	})
	var mu sync.Mutex
	running, most := 0, 0
	env.OnActivity(ActivityVerifyTable, mock.Anything, mock.Anything).Return(func(_ context.Context, in VerifyTableInput) (*verify.Result, error) {
		mu.Lock()
		running++
		most = max(most, running)
		mu.Unlock()
		defer func() { mu.Lock(); running--; mu.Unlock() }()
		r := &verify.Result{Table: in.Pair.Source.Namespace.String(), Destination: in.Pair.Destination.String()}
		if r.Table == "shop.c" {
			r.DifferentKeys = 1
		}
		return r, nil
	})
	env.ExecuteWorkflow(VerifyWorkflowName, VerifyInput{Options: flow.Config{Name: "f", Parallel: 2}, MaxDiffs: 5})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res []*verify.Result
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if len(res) != len(names) {
		t.Fatalf("%d results for %d tables", len(res), len(names))
	}
	for i, r := range res {
		if r.Table != names[i] || (r.DifferentKeys == 1) != (names[i] == "shop.c") {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	if most > 2 {
		t.Fatalf("%d tables compared at once with --parallel 2", most)
	}
}
