package engine

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// storedSelection is the --tables the flow's plan was last made or changed
// for, and whether the state records one.
func (e *Engine) storedSelection(ctx context.Context) (string, bool, error) {
	v, err := e.store.Meta(ctx, "tables")
	if err != nil || v == "" {
		return "", false, err
	}
	sel, err := strconv.Unquote(v)
	if err != nil {
		return "", false, fmt.Errorf("state %s: table selection %q is corrupt (%v); run with --restart", e.store.Path(), v, err)
	}
	return sel, true, nil
}

// changeSelection follows a --tables other than the one the plan was made
// for. Tables it adds are checked as a new plan's are, added to the
// source's change stream, created at the destination, then copied while
// changes stream (an incremental snapshot), in that order: a change made
// after the copy read a row is in the stream. Tables it drops leave the
// plan and are no longer followed; their destination tables stay. The
// plan is persisted last, so a run stopped half way does it all again.
func (e *Engine) changeSelection(ctx context.Context, from string) error {
	c, err := e.diffSelection(ctx, from)
	if err != nil {
		return err
	}
	p, err := e.selectionPlan(ctx, from, c)
	if err != nil {
		return err
	}
	if err := e.storePlan(context.WithoutCancel(ctx), p); err != nil {
		return err
	}
	e.plan = p
	if err := e.mapTables(p.Tables); err != nil {
		return err
	}
	return e.copyAdded(ctx, c.added, "added to the flow's --tables")
}

// selectionChange is what a --tables other than the plan's (from) changes:
// the source tables it adds, the plan's tables it keeps and drops.
type selectionChange struct {
	added, kept []*model.Table
	dropped     []string
}

// diffSelection checks a changed --tables and says what it changes,
// changing nothing: a --mode snapshot flow, a selection keeping none of the
// plan's tables and (unless the flow only streams) an added table without
// a primary key are refused.
func (e *Engine) diffSelection(ctx context.Context, from string) (selectionChange, error) {
	to := e.cfg.Selection()
	var c selectionChange
	if e.mode == flow.ModeSnapshot {
		return c, errs.BadConfig(fmt.Sprintf("flow %q copies without change data capture (--mode snapshot) and was started with --tables %q, not %q", e.name, from, to),
			"run it with --tables "+strconv.Quote(from)+", or start it over with the new selection (--restart)")
	}
	selected, err := e.selectTables(ctx)
	if err != nil {
		return c, err
	}
	inPlan := map[model.Namespace]bool{}
	for _, t := range e.plan.Tables {
		inPlan[t.Namespace] = true
	}
	for _, t := range selected {
		if !inPlan[t.Namespace] {
			c.added = append(c.added, t)
		}
	}
	for _, t := range e.plan.Tables {
		if e.filter.Match(t.Namespace) {
			c.kept = append(c.kept, t)
		} else {
			c.dropped = append(c.dropped, t.Namespace.String())
		}
	}
	if len(c.kept) == 0 {
		// Most likely another flow between the same databases, which a
		// derived name no longer tells apart: taking over this one would
		// stop following every table it copied.
		return c, errs.BadConfig(fmt.Sprintf("flow %q follows %s; --tables %q keeps none of its tables", e.name, planNames(e.plan.Tables), to),
			"to run another flow between the same databases give it its own --name; to move this flow to these tables, keep one of its tables in --tables, or start it over (--restart)")
	}
	if e.mode != flow.ModeCDC {
		var keyless []string
		for _, t := range c.added {
			if len(t.PrimaryKey) == 0 {
				keyless = append(keyless, t.Namespace.String())
			}
		}
		if len(keyless) > 0 {
			return c, errs.BadConfig(fmt.Sprintf("flow %q cannot add %s to its --tables: a table added to a running flow is copied while its changes stream, merged by primary key, and it has none", e.name, strings.Join(keyless, ", ")),
				"add a primary key, or start the flow over with the new selection (--restart)")
		}
	}
	return c, nil
}

// selectionPlan adds what diffSelection found added (addTables) and
// returns the plan for the new selection: the kept tables, then the added
// ones, and the kept tables' partitions. It neither stores nor uses it.
func (e *Engine) selectionPlan(ctx context.Context, from string, c selectionChange) (*model.Plan, error) {
	if len(c.added) > 0 {
		if err := e.addTables(ctx, c.added); err != nil {
			return nil, err
		}
	}
	p := *e.plan
	p.Tables = append(c.kept, c.added...)
	p.Partitions = nil
	for _, part := range e.plan.Partitions {
		if e.filter.Match(part.Table) {
			p.Partitions = append(p.Partitions, part)
		}
	}
	if len(c.dropped) > 0 {
		e.log.Info("tables left the selection: no longer followed (their destination tables stay)", "tables", strings.Join(c.dropped, ", "), "from", from, "to", e.cfg.Selection())
	}
	return &p, nil
}

// addTables makes tables part of a running flow: checks (the source's
// Preflight of reading them, the destination's CheckTables), the source's
// stream (TableAdder), the destination tables. The caller then makes them
// part of the plan, and asks for their copy (copyAdded).
func (e *Engine) addTables(ctx context.Context, added []*model.Table) error {
	names := make([]string, len(added))
	for i, t := range added {
		names[i] = t.Namespace.String()
	}
	// The flow's stream exists already (a slot, a publication): the
	// source's CDC checks of the added tables are AddTables'.
	if pf := e.src.Preflighter; pf != nil {
		opts := connector.PlanOptions{Flow: e.name, PartitionRows: e.cfg.PartitionRows, BatchRows: e.cfg.BatchRows}
		if err := e.onSource(ctx, "preflight", func(ctx context.Context) error { return pf.Preflight(ctx, added, opts) }); err != nil {
			return fmt.Errorf("source, adding %s to the flow: %w", strings.Join(names, ", "), err)
		}
	}
	dsts, _, err := e.destinations(added)
	if err != nil {
		return err
	}
	if err := e.checkTables(ctx, dsts); err != nil {
		return fmt.Errorf("adding %s to the flow: %w", strings.Join(names, ", "), err)
	}
	// The source refuses what it cannot follow before anything is created.
	if ta := e.src.TableAdder; ta != nil {
		if err := e.onSource(ctx, "add tables", func(ctx context.Context) error { return ta.AddTables(ctx, e.name, added) }); err != nil {
			return fmt.Errorf("source, adding %s to the flow's change stream: %w", strings.Join(names, ", "), err)
		}
	}
	if err := e.onDestination(ctx, "create tables", func(ctx context.Context) error { return e.dst.Destination.CreateTables(ctx, dsts) }); err != nil {
		return fmt.Errorf("create destination tables of %s: %w", strings.Join(names, ", "), err)
	}
	return nil
}

// copyAdded asks for the copy of tables added to the flow, once they are
// in its plan, unless the flow only streams changes.
func (e *Engine) copyAdded(ctx context.Context, added []*model.Table, why string) error {
	names := make([]string, len(added))
	for i, t := range added {
		names[i] = t.Namespace.String()
	}
	if e.mode == flow.ModeCDC {
		e.log.Info("tables added to the flow: their changes are followed from now on (--mode cdc copies nothing)", "tables", strings.Join(names, ", "))
		return nil
	}
	for _, t := range added {
		if err := e.requestResnapshot(ctx, t.Namespace, why); err != nil {
			return err
		}
	}
	e.log.Info("tables added to the flow: copied while their changes stream", "tables", strings.Join(names, ", "))
	return nil
}

// planNames lists tables for a message, the first 10 of them.
func planNames(tables []*model.Table) string {
	var names []string
	for i, t := range tables {
		if i == 10 {
			names = append(names, fmt.Sprintf("and %d more", len(tables)-10))
			break
		}
		names = append(names, t.Namespace.String())
	}
	return strings.Join(names, ", ")
}
