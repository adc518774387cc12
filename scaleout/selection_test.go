package scaleout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

type tablesReply struct {
	rejected error
	answer   TablesAnswer
	err      error
	done     bool
}

func requestTables(env *testsuite.TestWorkflowEnvironment, id string, tables ...string) *tablesReply {
	a := &tablesReply{}
	env.UpdateWorkflow(UpdateTables, id, &testsuite.TestUpdateCallback{
		OnAccept: func() {},
		OnReject: func(err error) { a.rejected, a.done = err, true },
		OnComplete: func(v any, err error) {
			a.err, a.done = err, true
			if ans, ok := v.(TablesAnswer); ok {
				a.answer = ans
			}
		},
	}, TablesRequest{Tables: tables})
	return a
}

// A change of --tables during the copy is refused with "wait for the copy
// to finish"; once the flow streams, the change runs between two CDC
// activities, the next one streams the new plan's tables, and the flow
// keeps its partitions and its new --tables. An added table's incremental
// snapshot, as the CDC activity reports it, is in the status.
func TestTablesChangeBetweenCDCActivities(t *testing.T) {
	f := newFakeFlow()
	f.streamRes = StreamResult{Position: "0/50", Received: 3, Applied: 3,
		Snapshots: map[string]engine.Resnapshot{"shop.lines": {Rows: 200, Done: true}}}
	env := f.env(t, flow.ModeFull, 4, 10*time.Second)
	var changes []ChangeTablesInput
	env.OnActivity(ActivityChangeTables, mock.Anything, mock.Anything).Return(func(ctx context.Context, in ChangeTablesInput) (ChangeTablesResult, error) {
		f.record("change-tables")
		changes = append(changes, in)
		lines := &model.Table{Namespace: model.Namespace{Schema: "shop", Table: "lines"}, PrimaryKey: []string{"id"},
			Columns: []model.Column{{Name: "id", Type: model.Type{Kind: model.KindInt64}}}}
		return ChangeTablesResult{Tables: append(append([]*model.Table{}, in.Tables...), lines), TablesAnswer: TablesAnswer{Added: []string{"shop.lines"}}}, nil
	})
	var early, later, same *tablesReply
	var after QueryResult
	env.RegisterDelayedCallback(func() { early = requestTables(env, "early", "shop.*") }, 5*time.Second)
	env.RegisterDelayedCallback(func() { later = requestTables(env, "later", "shop.orders", "shop.lines") }, 150*time.Second)
	env.RegisterDelayedCallback(func() { same = requestTables(env, "same", "shop.orders", "shop.lines") }, 250*time.Second)
	env.RegisterDelayedCallback(func() { after = query(t, env) }, 260*time.Second)
	env.RegisterDelayedCallback(func() { requestCutover(env, "cut") }, 300*time.Second)
	env.ExecuteWorkflow(WorkflowName, FlowInput{Options: options("")})
	s := result(t, env)

	var ae *temporal.ApplicationError
	if early == nil || !errors.As(early.rejected, &ae) || ae.Type() != errTypeConfig || !strings.Contains(ae.Message(), "wait for the copy to finish") {
		t.Fatalf("change during the copy: %+v, want a ConfigError rejection saying to wait", early)
	}
	if later == nil || later.rejected != nil || later.err != nil || fmt.Sprint(later.answer.Added) != "[shop.lines]" {
		t.Fatalf("change while streaming: %+v", later)
	}
	if same == nil || same.rejected != nil || same.err != nil || len(same.answer.Added) != 0 {
		t.Fatalf("the same --tables again: %+v, want nothing changed", same)
	}
	if len(changes) != 1 || changes[0].From != "" || strings.Join(changes[0].Options.Tables, ",") != "shop.orders,shop.lines" || len(changes[0].Tables) != 1 {
		t.Fatalf("change activities: %+v", changes)
	}
	steps := strings.Join(f.steps(), " ")
	if !strings.HasPrefix(steps, "plan copy finish stream change-tables stream") {
		t.Fatalf("steps %s: want the change between two CDC activities", steps)
	}
	if f.count("copy") != 4 || len(s.Parts) != 4 || s.Selections != 1 || len(s.Plan.Tables) != 2 {
		t.Fatalf("%d copies, %d partitions, %d selections, %d tables; want 4, 4, 1, 2", f.count("copy"), len(s.Parts), s.Selections, len(s.Plan.Tables))
	}
	if strings.Join(after.Options.Tables, ",") != "shop.orders,shop.lines" {
		t.Fatalf("the flow's --tables after the change: %v", after.Options.Tables)
	}
	snap := (&Status{Flow: "shop", Options: after.Options, State: after.State}).Snapshot()
	for _, tb := range snap.Tables {
		if tb.Table == "shop.lines" && (tb.Resnapshot == nil || tb.Resnapshot.Rows != 200 || !tb.Resnapshot.Done) {
			t.Fatalf("shop.lines's incremental snapshot in the status: %+v", tb.Resnapshot)
		}
	}
}
