package scaleout

import (
	"context"
	"fmt"
	"strings"
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
	env.RegisterActivityWithOptions(a.VerifyRanges, activity.RegisterOptions{Name: ActivityVerifyRanges})
	env.RegisterActivityWithOptions(a.VerifyTable, activity.RegisterOptions{Name: ActivityVerifyTable})
	names := []string{"shop.a", "shop.b", "shop.c", "shop.d", "shop.e"}
	env.OnActivity(ActivityVerifyRanges, mock.Anything, mock.Anything).Return(func(context.Context, VerifyInput) ([]verify.TableRanges, error) {
		var trs []verify.TableRanges
		for _, n := range names {
			ns := model.Namespace{Schema: "shop", Table: n[5:]}
			trs = append(trs, verify.TableRanges{Pair: verify.Pair{Source: &model.Table{Namespace: ns}, Destination: ns}})
		}
		return trs, nil
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

// A table split into ranges is compared by one activity per range, at
// most --parallel at once, and its result is the ranges' merged: counts
// added, differences in key order, at most --max-diffs of them.
func TestVerifyWorkflowSplitsALargeTableIntoRanges(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(VerifyWorkflow, workflow.RegisterOptions{Name: VerifyWorkflowName})
	a := &Activities{}
	env.RegisterActivityWithOptions(a.VerifyRanges, activity.RegisterOptions{Name: ActivityVerifyRanges})
	env.RegisterActivityWithOptions(a.VerifyTable, activity.RegisterOptions{Name: ActivityVerifyTable})
	big := model.Namespace{Schema: "shop", Table: "big"}
	small := model.Namespace{Schema: "shop", Table: "small"}
	env.OnActivity(ActivityVerifyRanges, mock.Anything, mock.Anything).Return(func(context.Context, VerifyInput) ([]verify.TableRanges, error) {
		return []verify.TableRanges{
			{Pair: verify.Pair{Source: &model.Table{Namespace: big}, Destination: big},
				Ranges: []verify.Range{{Lo: 0, Hi: 5, Of: 16}, {Lo: 5, Hi: 10, Of: 16}, {Lo: 10, Hi: 16, Of: 16}}},
			{Pair: verify.Pair{Source: &model.Table{Namespace: small}, Destination: small}},
		}, nil
	})
	var mu sync.Mutex
	running, most, calls := 0, 0, 0
	env.OnActivity(ActivityVerifyTable, mock.Anything, mock.Anything).Return(func(_ context.Context, in VerifyTableInput) (*verify.Result, error) {
		mu.Lock()
		running++
		calls++
		most = max(most, running)
		mu.Unlock()
		defer func() { mu.Lock(); running--; mu.Unlock() }()
		r := &verify.Result{Table: in.Pair.Source.Namespace.String(), Destination: in.Pair.Destination.String(), SourceRows: 10, DestinationRows: 10, Buckets: 16}
		if in.Range != nil {
			r.Buckets = in.Range.Hi - in.Range.Lo
			// Each range finds two keys; the lowest five overall are listed.
			r.DifferentKeys, r.DifferentBuckets = 2, 1
			r.Diffs = []verify.Diff{{Key: fmt.Sprintf("id=%d", in.Range.Lo), Kind: "different"}, {Key: fmt.Sprintf("id=%d", in.Range.Lo+1), Kind: "missing"}}
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
	if calls != 4 || most > 2 {
		t.Fatalf("%d activities (want 3 ranges + 1 table), %d at once with --parallel 2", calls, most)
	}
	b := res[0]
	var keys []string
	for _, d := range b.Diffs {
		keys = append(keys, d.Key)
	}
	if len(res) != 2 || b.Table != "shop.big" || b.SourceRows != 30 || b.Buckets != 16 || b.DifferentKeys != 6 || b.DifferentBuckets != 3 ||
		strings.Join(keys, " ") != "id=0 id=1 id=10 id=11 id=5" || !b.MoreDiffs || b.Equal() || res[1].Table != "shop.small" || !res[1].Equal() {
		t.Fatalf("merged: %+v (keys %v), then %+v", b, keys, res[1])
	}
}
