package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/internal/faultpoint"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/transform"
)

// Prepare makes or reloads the plan and creates the destination tables. It is
// the last step before data moves; every configuration error surfaces here or
// earlier, with nothing written. An engine without a state store (a
// scale-out plan activity) always makes a new plan, which its caller keeps.
func (e *Engine) Prepare(ctx context.Context) error {
	if e.store == nil {
		return e.makePlan(ctx)
	}
	ident, err := e.store.Meta(ctx, "identity")
	if err != nil {
		return err
	}
	sameFlow, legacy, legacySelection := e.cfg.MatchIdentity(ident)
	movedFrom, moved := "", false
	storedServer, err := e.store.Meta(ctx, sourceServerKey)
	if err != nil {
		return err
	}
	if ident != "" && !sameFlow {
		movedFrom, moved = e.cfg.SourceMoved(ident)
		byServer := moved && storedServer != "" && e.src.ServerIdentifier != nil
		byHistory := moved && e.src.HistoryChecker != nil && e.mode != flow.ModeSnapshot
		if !byServer && !byHistory {
			return errs.BadConfig(fmt.Sprintf("flow %q was started with another source, destination or --rename", e.name), "run with --restart to start the flow over, or choose another --name")
		}
	}
	planJSON, err := e.store.Meta(ctx, "plan")
	if err != nil {
		return err
	}
	if moved {
		if err := e.acceptMovedSource(ctx, movedFrom, storedServer, planJSON); err != nil {
			return err
		}
	} else if sameFlow && storedServer == "" {
		// A flow started before the server was recorded.
		e.recordSourceServer(ctx)
	}
	if planJSON != "" {
		var p model.Plan
		if err := json.Unmarshal([]byte(planJSON), &p); err != nil {
			return fmt.Errorf("state %s: plan is corrupt (%v); run with --restart", e.store.Path(), err)
		}
		if storedMode, _ := e.store.Meta(ctx, "mode"); storedMode != "" && storedMode != string(e.mode) {
			return errs.BadConfig(fmt.Sprintf("flow %q was started in mode %s, not %s", e.name, storedMode, e.mode), "run with --restart to change the mode")
		}
		if err := e.sameTransforms(ctx); err != nil {
			return err
		}
		e.plan = &p
		e.log.Info("resuming flow", "tables", len(p.Tables), "partitions", len(p.Partitions), "t0", p.T0)
		selection, known, err := e.storedSelection(ctx)
		if err != nil {
			return err
		}
		if legacy {
			selection, known = legacySelection, true
		}
		if err := e.mapTables(e.plan.Tables); err != nil {
			return err
		}
		if known && selection != e.cfg.Selection() {
			if err := e.changeSelection(ctx, selection); err != nil {
				return err
			}
		} else if legacy {
			// The older identity held the selection: rewrite it.
			if err := e.storePlan(ctx, e.plan); err != nil {
				return err
			}
		}
		if err := e.loadMemberships(ctx); err != nil {
			return err
		}
		if err := e.addNewTables(ctx); err != nil {
			return err
		}
		if err := e.refuseFullRowCopyOutsideT0(ctx, e.plan.Partitions, true); err != nil {
			return err
		}
		// The destination tables have the shape of the last schema change
		// CDC followed, not the plan's.
		if err := e.loadSchemas(ctx); err != nil {
			return err
		}
		return e.createTables(ctx)
	}
	return e.makePlan(ctx)
}

// acceptMovedSource lets a flow resume on a source at another host, the
// replica promoted after a failover, when the source's history holds the
// flow's position: the plan's T0 here; the change stream checks the
// position it resumes from. The identity then names the new host.
func (e *Engine) acceptMovedSource(ctx context.Context, from, storedServer, planJSON string) error {
	now := errs.Redact(e.cfg.Source)
	if si := e.src.ServerIdentifier; si != nil && storedServer != "" {
		return e.acceptSameServer(ctx, si, from, storedServer)
	}
	var p model.Plan
	if planJSON == "" || json.Unmarshal([]byte(planJSON), &p) != nil || p.T0 == "" {
		return errs.BadConfig(fmt.Sprintf("flow %q was started on source %s, not %s, and has no change stream position to resume from there", e.name, from, now), "point the flow at "+from+", or run with --restart")
	}
	if err := e.src.HistoryChecker.CheckHistory(ctx, p.T0); err != nil {
		return fmt.Errorf("flow %q was started on source %s and cannot resume on %s: %w", e.name, from, now, err)
	}
	e.log.Warn("source moved: the flow resumes on another server of its replication topology, whose history holds the flow's position", "from", from, "to", now, "t0", string(p.T0))
	return e.store.SetMeta(ctx, "identity", e.cfg.Identity())
}

// createTables creates the destination tables of every table in the flow.
// While the copy is still to run, a destination that can defer primary keys
// creates the tables without them: the copy fills them and FinishTable,
// which runs before any change is applied, builds the keys. A flow that
// only streams changes, or whose copy is done, needs the keys at once.
func (e *Engine) createTables(ctx context.Context) error {
	dstTables := make([]*model.Table, len(e.tables))
	for i, t := range e.tables {
		dstTables[i] = t.dst
	}
	if err := e.checkTables(ctx, dstTables); err != nil {
		return err
	}
	e.warnObjects(ctx)
	create := e.dst.Destination.CreateTables
	if d := e.dst.KeyDeferrer; d != nil && e.mode != flow.ModeCDC {
		done, err := e.ckpt.copyDone(ctx)
		if err != nil {
			return err
		}
		if !done {
			create = d.CreateTablesForCopy
		}
	}
	if err := e.onDestination(ctx, "create tables", func(ctx context.Context) error { return create(ctx, dstTables) }); err != nil {
		return fmt.Errorf("create destination tables: %w", err)
	}
	return nil
}

// checkTables lets a destination that can tell refuse the tables before any
// is created, and warns once per flow start of each column it holds in a
// type that loses the source type's meaning (hstore, citext as text).
func (e *Engine) checkTables(ctx context.Context, dstTables []*model.Table) error {
	tc := e.dst.TableChecker
	if tc == nil {
		return nil
	}
	var conv []connector.Conversion
	err := e.onDestination(ctx, "check tables", func(ctx context.Context) (err error) {
		conv, err = tc.CheckTables(ctx, dstTables)
		return err
	})
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	for _, c := range conv {
		e.warnConversion(c)
	}
	return nil
}

func (e *Engine) warnConversion(c connector.Conversion) {
	if c.Fix != "" {
		e.log.Warn("the destination column is not created as the source's", "table", c.Table.String(), "column", c.Column, "source", c.From, "destination", c.To, "fix", c.Fix)
		return
	}
	e.log.Warn("the destination has no such type: the column holds the source type's text form", "table", c.Table.String(), "column", c.Column, "type", c.From, "becomes", c.To)
}

// warnAddedConversions warns of the columns a schema change added that the
// destination holds as text, as checkTables does for the flow's tables.
func (e *Engine) warnAddedConversions(ctx context.Context, from, to *model.Table) {
	tc := e.dst.TableChecker
	if tc == nil {
		return
	}
	conv, err := tc.CheckTables(ctx, []*model.Table{to})
	if err != nil {
		// The change is applied already; only the warning is lost.
		e.log.Warn("could not check the changed table's column types", "table", to.Namespace.String(), "error", err)
		return
	}
	for _, c := range conv {
		if from.ColumnIndex(c.Column) < 0 {
			e.warnConversion(c)
		}
	}
}

// StartOver makes the next plan of the flow empty its destination tables
// once they exist, before T0: a restarted flow must not keep rows an earlier
// run copied that the source has deleted since. Call it with Drop.
func (e *Engine) StartOver() { e.startOver = true }

// emptyTables empties the destination tables of a flow started over.
func (e *Engine) emptyTables(ctx context.Context) error {
	if !e.startOver {
		return nil
	}
	em := e.dst.Emptier
	if em == nil {
		return nil
	}
	dstTables := make([]*model.Table, len(e.tables))
	names := make([]string, len(e.tables))
	for i, t := range e.tables {
		dstTables[i], names[i] = t.dst, t.dst.Namespace.String()
	}
	if err := e.onDestination(ctx, "empty tables", func(ctx context.Context) error { return em.EmptyTables(ctx, dstTables) }); err != nil {
		return fmt.Errorf("empty the destination tables to start over: %w", err)
	}
	e.log.Info("emptied the destination tables to start the flow over", "tables", strings.Join(names, ", "))
	e.startOver = false
	return nil
}

// PartitionSizes is each large table's partition size, grown from the
// flow's base (flow.PartitionRowsFor), unless the size was given.
func PartitionSizes(cfg flow.Config, tables []*model.Table) map[model.Namespace]int64 {
	if cfg.FixedPartitionRows {
		return nil
	}
	var out map[model.Namespace]int64
	for _, t := range tables {
		if n := flow.PartitionRowsFor(cfg.PartitionRows, t.EstimatedRows, t.EstimatedBytes); n != cfg.PartitionRows {
			if out == nil {
				out = map[model.Namespace]int64{}
			}
			out[t.Namespace] = n
		}
	}
	return out
}

// makePlan discovers and selects the source tables, lets the source refuse
// them, creates the destination tables, then asks the source for a plan and
// persists it.
func (e *Engine) makePlan(ctx context.Context) error {
	selected, err := e.selectTables(ctx)
	if err != nil {
		return err
	}
	planOpts := connector.PlanOptions{CDC: e.mode != flow.ModeSnapshot, Flow: e.name, PartitionRows: e.cfg.PartitionRows, BatchRows: e.cfg.BatchRows, Recorded: e.cfg.Reverse,
		TableRows: PartitionSizes(e.cfg, selected)}
	// A source that can tell it will refuse the plan (a binlog that cannot
	// feed CDC, missing privileges) says so before the destination is touched.
	if pf := e.src.Preflighter; pf != nil {
		if err := e.onSource(ctx, "preflight", func(ctx context.Context) error { return pf.Preflight(ctx, selected, planOpts) }); err != nil {
			return fmt.Errorf("source: %w", err)
		}
	}
	if err := e.prepareDestination(ctx, selected); err != nil {
		return err
	}
	start := time.Now()
	var plan *model.Plan
	parts := 0
	err = e.onSource(ctx, "plan", func(ctx context.Context) (err error) {
		if e.planSink == nil {
			plan, err = e.src.Source.Plan(ctx, selected, planOpts)
			if err == nil {
				parts = len(plan.Partitions)
			}
			return err
		}
		// A retried plan starts over.
		if err := e.planSink.Restart(ctx); err != nil {
			return err
		}
		parts = 0
		plan, err = connector.StreamPlan(ctx, e.src.Source, selected, planOpts, func(p model.Partition) error {
			parts++
			return e.planSink.Add(p)
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	faultpoint.Hold(ctx, faultpoint.PlanMade, e.log)
	// The source may hold a slot for this plan now: a stop must not cut
	// persisting it short, or the next run would find a slot and no plan.
	if err := e.savePlan(context.WithoutCancel(ctx), plan); err != nil {
		return err
	}
	e.log.Info("planned flow", "tables", len(plan.Tables), "partitions", parts, "t0", plan.T0, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// selectTables discovers the source's tables and returns those --tables
// selects, refusing a selection that is empty, a --rename of a table the
// source lacks, and (when changes are captured) tables whose keys CDC
// cannot follow.
func (e *Engine) selectTables(ctx context.Context) ([]*model.Table, error) {
	var all []*model.Table
	err := e.onSource(ctx, "discover tables", func(ctx context.Context) (err error) {
		all, err = e.src.Source.Tables(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("discover source tables: %w", err)
	}
	var selected []*model.Table
	var names []model.Namespace
	for _, t := range all {
		names = append(names, t.Namespace)
		if e.filter.Match(t.Namespace) {
			selected = append(selected, t)
		}
	}
	if len(selected) == 0 {
		return nil, e.noTableSelected(names)
	}
	if selected = e.leaveOutUnstreamable(selected); len(selected) == 0 {
		return nil, errs.BadConfig("change data capture cannot see the changes of any table --tables selects (each is UNLOGGED or the like; the warning above lists them)", "copy them without CDC with --mode snapshot, or make them logged at the source (ALTER TABLE ... SET LOGGED)")
	}
	if err := e.renames.CheckUnused(names); err != nil {
		return nil, err
	}
	if err := e.xf.CheckUnused(selected); err != nil {
		return nil, err
	}
	if e.mode != flow.ModeSnapshot {
		if err := e.checkKeys(selected); err != nil {
			return nil, err
		}
	}
	return selected, nil
}

// leaveOutUnstreamable leaves out, in a flow with change data capture, the
// tables whose changes the source's stream cannot see (model.Table's
// NoChangeStream: PostgreSQL's UNLOGGED tables), with a warning that lists
// them: copied, they would silently fall behind. A snapshot copies them.
func (e *Engine) leaveOutUnstreamable(tables []*model.Table) []*model.Table {
	if e.mode == flow.ModeSnapshot {
		return tables
	}
	var kept []*model.Table
	var left []string
	for _, t := range tables {
		if t.NoChangeStream != "" {
			left = append(left, t.Namespace.String()+" ("+t.NoChangeStream+")")
			continue
		}
		kept = append(kept, t)
	}
	if len(left) > 0 {
		e.log.Warn(unstreamableMessage(left), "tables", len(left))
	}
	return kept
}

// unstreamableMessage is the warning for tables left out of a flow with
// change data capture: at its start, or created at the source during CDC.
func unstreamableMessage(left []string) string {
	return fmt.Sprintf("tables left out of the flow: change data capture cannot see their changes: %s; copy them with --mode snapshot (a flow of their own), or make them logged at the source (ALTER TABLE ... SET LOGGED) and run the flow again", strings.Join(left, ", "))
}

// noTableSelected is the error of a selection that matches no table: it
// lists (the first 20 of) the tables the source has.
func (e *Engine) noTableSelected(names []model.Namespace) error {
	var have []string
	for _, n := range names {
		have = append(have, n.String())
	}
	sort.Strings(have)
	if len(have) > 20 {
		have = append(have[:20], "...")
	}
	if e.filter.Empty() {
		return errs.BadConfig(fmt.Sprintf("source %s has no tables", errs.Redact(e.cfg.Source)), "create tables at the source first")
	}
	return errs.BadConfig(fmt.Sprintf("--tables %q matches no table", e.filter.String()), "the source has: "+strings.Join(have, ", "))
}

// prepareDestination creates (and, starting over, empties) the destination
// tables and drops the destination's checkpoints of an older plan. It runs
// before the source records T0 (and, for a database, creates a replication
// slot): a destination that refuses the tables leaves nothing behind at the
// source.
func (e *Engine) prepareDestination(ctx context.Context, selected []*model.Table) error {
	if err := e.mapTables(selected); err != nil {
		return err
	}
	if err := e.createTables(ctx); err != nil {
		return err
	}
	if err := e.emptyTables(ctx); err != nil {
		return err
	}
	// Checkpoints the destination holds for this flow belong to an older plan.
	return e.ckpt.dropForNewPlan(ctx)
}

// savePlan persists the plan, the flow's identity and its mode, then makes
// the plan the engine's. The plan and T0 are persisted before any row is
// read, so a crash after this point resumes with the same T0 and no change
// is missed.
func (e *Engine) savePlan(ctx context.Context, plan *model.Plan) error {
	if err := e.refuseInexactFullRow(ctx, plan); err != nil {
		return err
	}
	if plan.CreatedAt.IsZero() {
		plan.CreatedAt = time.Now().UTC()
	}
	// Without a state store (a scale-out plan activity) the caller keeps
	// the plan: it returns to the workflow.
	if e.store != nil {
		if err := e.storePlan(ctx, plan); err != nil {
			return err
		}
	}
	e.plan = plan
	return e.mapTables(plan.Tables)
}

// storePlan records the plan, and what it was made for, in the state store.
func (e *Engine) storePlan(ctx context.Context, plan *model.Plan) error {
	b, err := json.Marshal(plan)
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	if err := e.store.SetMeta(ctx, "plan", string(b)); err != nil {
		return err
	}
	if err := e.store.SetMeta(ctx, "identity", e.cfg.Identity()); err != nil {
		return err
	}
	e.recordSourceServer(ctx)
	if err := e.store.SetMeta(ctx, "tables", strconv.Quote(e.cfg.Selection())); err != nil {
		return err
	}
	if err := e.store.SetMeta(ctx, "transforms", e.transformsPrint()); err != nil {
		return err
	}
	return e.store.SetMeta(ctx, "mode", string(e.mode))
}

func (e *Engine) mapTables(tables []*model.Table) error {
	e.byNS = map[model.Namespace]*tableRun{}
	e.tables = nil
	for _, t := range tables {
		if err := t.Validate(); err != nil {
			return fmt.Errorf("plan: %w", err)
		}
	}
	dsts, xfs, err := e.destinations(tables)
	if err != nil {
		return err
	}
	for i, t := range tables {
		tr := newTableRun(t, dsts[i], xfs[i])
		e.tables = append(e.tables, tr)
		e.byNS[t.Namespace] = tr
	}
	e.progress.setTables(e.tables)
	return nil
}

// newTableRun pairs source table t with its destination table d, into
// whose shape x (nil: none) transforms its rows.
func newTableRun(t, d *model.Table, x *transform.Table) *tableRun {
	tr := &tableRun{src: t, dst: d, xf: x, keyIdx: d.KeyIndexes(), stats: &TableStats{Table: t.Namespace.String(), Destination: d.Namespace.String()}}
	tr.stats.RowsEstimated.Store(t.EstimatedRows)
	tr.stats.BytesEstimated.Store(t.EstimatedBytes)
	return tr
}

// Plan returns the flow's plan once Prepare has run.
func (e *Engine) Plan() *model.Plan { return e.plan }

// PlanSink takes a new plan's partitions as the source cuts them, in plan
// order (Engine.SetPlanSink). Restart is called before each try: a plan
// retried after a source outage starts over.
type PlanSink interface {
	Restart(ctx context.Context) error
	Add(p model.Partition) error
}

// SetPlanSink makes an engine without a state store (a scale-out plan
// activity) hand a new plan's partitions to sink instead of keeping them:
// Plan then returns the plan without partitions, and a plan of millions of
// them is never whole in memory.
func (e *Engine) SetPlanSink(sink PlanSink) { e.planSink = sink }
