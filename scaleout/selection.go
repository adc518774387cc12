package scaleout

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// A streaming flow follows another --tables without starting over, as
// ferry sync does (engine/selection.go): ferry run with a changed --tables
// sends UpdateTables; the running CDC activity ends at its next control
// poll, an activity applies the change (engine.ChangeSelection: added
// tables checked, added to the source's change stream, created at the
// destination, their copy recorded with the destination's checkpoints),
// the workflow keeps the new --tables and plan tables, and the next CDC
// activity streams them and copies the added tables in chunks while
// changes flow (an incremental snapshot). See
// docs/decisions/2026-12-06-scale-out-selection.md.

// versionTables marks the change of --tables. Only an accepted
// UpdateTables reaches it, which no history from before it holds; the
// version lets a later change of this step keep those flows replaying.
const versionTables = "tables-update"

// tablesChange is a change of --tables asked for and, once done, its
// answer or why it failed.
type tablesChange struct {
	req  TablesRequest
	done bool
	ans  TablesAnswer
	err  error
}

// reselecting says a change of --tables waits to be applied.
func (r *flowRun) reselecting() bool { return r.sel != nil && !r.sel.done }

// validateTables refuses a change of --tables the flow cannot take now,
// before anything is recorded.
func (r *flowRun) validateTables(_ workflow.Context, req TablesRequest) error {
	s, name := r.s, r.in.Options.Name
	refuse := func(format string, a ...any) error {
		return temporal.NewApplicationError(fmt.Sprintf(format, a...), errTypeConfig)
	}
	if _, err := flow.NewFilter(req.Tables); err != nil {
		return refuse("--tables: %v", err)
	}
	switch {
	case s.Cancelled || s.Phase == PhaseCancelled || s.Phase == PhaseFailed || s.Phase == PhaseDone:
		return refuse("flow %q has ended (%s): its tables cannot change", name, s.Phase)
	case s.Cutover:
		return refuse("flow %q is cutting over: its tables cannot change", name)
	case s.Mode == flow.ModeSnapshot:
		return refuse("flow %q copies without change data capture (--mode snapshot): tables cannot be added while it runs", name)
	case s.Plan == nil || s.Mode != flow.ModeCDC && !s.TablesFinished:
		return refuse("flow %q is still copying (phase %s): its --tables can change once the copy has finished and it streams changes; wait for the copy to finish", name, s.Phase)
	case r.sel != nil:
		return refuse("flow %q is already changing its --tables", name)
	case r.continuing:
		return refuse("flow %q is continuing as new; run again in a moment", name)
	}
	return nil
}

// onTables handles UpdateTables: the stream loop applies the change
// between two CDC activities (changeTables); the handler answers with what
// it did.
func (r *flowRun) onTables(ctx workflow.Context, req TablesRequest) (TablesAnswer, error) {
	s := r.s
	sel := &tablesChange{req: req}
	if (&flow.Config{Tables: req.Tables}).Selection() == r.in.Options.Selection() {
		return TablesAnswer{}, nil
	}
	r.sel = sel
	defer func() { r.sel = nil }()
	if err := workflow.Await(ctx, func() bool { return sel.done || s.Cancelled || s.Cutover || r.continuing }); err != nil {
		return TablesAnswer{}, err
	}
	if !sel.done {
		return TablesAnswer{}, temporal.NewApplicationError(fmt.Sprintf("flow %q was cancelled, cut over or continued as new before its tables changed; run again", r.in.Options.Name), errTypeConfig)
	}
	return sel.ans, sel.err
}

// changeTables applies the change of --tables asked for: an activity sets
// up the added tables and returns the plan's tables for the new selection,
// which the workflow keeps with the new --tables. A refusal leaves the
// flow as it was.
func (r *flowRun) changeTables(ctx, actCtx workflow.Context) {
	s, sel := r.s, r.sel
	defer func() { sel.done = true }()
	if workflow.GetVersion(ctx, versionTables, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		sel.err = temporal.NewApplicationError("this flow's workflow cannot change its tables", errTypeConfig)
		return
	}
	s.Selections++
	r.activities++
	opts := r.in.Options
	opts.Tables = sel.req.Tables
	in := ChangeTablesInput{Options: opts, From: r.in.Options.Selection(), Tables: s.Plan.Tables, T0: s.Plan.T0}
	var res ChangeTablesResult
	id := "tables#" + strconv.Itoa(s.Runs) + "." + strconv.Itoa(s.Selections)
	err := workflow.ExecuteActivity(r.options(actCtx, id, 30*time.Minute), ActivityChangeTables, in).Get(actCtx, &res)
	if err != nil {
		var ae *temporal.ApplicationError
		typ := ""
		if errors.As(err, &ae) {
			typ = ae.Type()
		}
		sel.err = temporal.NewApplicationError(reason(err), typ)
		return
	}
	r.in.Options.Tables = sel.req.Tables
	s.Plan.Tables = res.Tables
	sel.ans = res.TablesAnswer
	workflow.GetLogger(ctx).Info("tables changed", "added", res.Added, "dropped", res.Dropped)
}

// ChangeTables applies a change of --tables to the flow's plan
// (engine.ChangeSelection) and says which tables it added and dropped.
func (a *Activities) ChangeTables(ctx context.Context, in ChangeTablesInput) (ChangeTablesResult, error) {
	o, err := a.open(ctx, in.Options)
	if err != nil {
		return ChangeTablesResult{}, err
	}
	defer o.close()
	stop := keepAlive(ctx, func() any { return nil })
	defer stop()
	if err := o.eng.UsePlan(&model.Plan{Tables: in.Tables, T0: in.T0}); err != nil {
		return ChangeTablesResult{}, a.failure(err, o.secrets)
	}
	tables, err := o.eng.ChangeSelection(ctx, in.From)
	if err != nil {
		return ChangeTablesResult{}, a.failure(fmt.Errorf("flow %s, --tables %q: %w", in.Options.Name, in.Options.Selection(), err), o.secrets)
	}
	res := ChangeTablesResult{Tables: tables}
	before, after := map[model.Namespace]bool{}, map[model.Namespace]bool{}
	for _, t := range in.Tables {
		before[t.Namespace] = true
	}
	for _, t := range tables {
		after[t.Namespace] = true
		if !before[t.Namespace] {
			res.Added = append(res.Added, t.Namespace.String())
		}
	}
	for _, t := range in.Tables {
		if !after[t.Namespace] {
			res.Dropped = append(res.Dropped, t.Namespace.String())
		}
	}
	a.logger().Info("flow's tables changed", "flow", in.Options.Name, "added", strings.Join(res.Added, ", "), "dropped", strings.Join(res.Dropped, ", "))
	return res, nil
}

// ChangeTables asks the flow called name to follow --tables tables
// (UpdateTables) and waits until it does. A change the flow cannot take
// (still copying, a table without a primary key, ...) is an
// errs.ConfigError saying why; the flow then goes on as it was.
func ChangeTables(ctx context.Context, c client.Client, name string, tables []string) (TablesAnswer, error) {
	var ans TablesAnswer
	err := updateFlow(ctx, c, name, UpdateTables, []any{TablesRequest{Tables: tables}}, &ans)
	if err == nil || errors.Is(err, ErrNoFlow) {
		return ans, err
	}
	var ae *temporal.ApplicationError
	switch {
	case errors.As(err, &ae) && ae.Type() == errTypeConfig:
		fix := "the flow goes on with its tables; ferry flow status " + name + " shows where it is"
		if strings.Contains(ae.Message(), "still copying") {
			fix = "wait for the copy to finish (ferry flow status " + name + " shows its progress), then run again with the new --tables"
		}
		return ans, errs.BadConfig(ae.Message(), fix)
	case strings.Contains(err.Error(), "unknown update"):
		return ans, errs.BadConfig(fmt.Sprintf("flow %q runs on workers from before a running flow could change its --tables", name),
			"upgrade the workers (the flow survives their restart), then run again")
	}
	return ans, fmt.Errorf("change the tables of flow %q: %w", name, err)
}
