package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// Tables created and dropped at the source while changes stream
// (model.SchemaChange.Created and Dropped). A table created that --tables
// selects joins the flow where the stream saw it created: it is checked
// as an added table is, created at the destination, and copied while
// changes stream (an incremental snapshot); a table of the flow dropped
// leaves it, and its destination table stays. Both are recorded with the
// checkpoints (membershipKey), so a stream resumed past the event, in this
// process or on another worker, follows the tables the flow has now.

// tableMembership records a table that joined the flow during CDC (Table
// set) or left it (Left set).
type tableMembership struct {
	Table  *model.Table    `json:"table,omitempty"`
	NS     model.Namespace `json:"ns"`
	Joined time.Time       `json:"joined,omitzero"`
	Left   time.Time       `json:"left,omitzero"`
}

func membershipKey(ns model.Namespace) string { return tableKey("member/", ns) }

func (c *checkpoints) saveMembership(ctx context.Context, m tableMembership) error {
	return c.saveTableRecord(ctx, membershipKey(m.NS), m)
}

// memberships are the tables CDC added to or dropped from the flow.
func (c *checkpoints) memberships(ctx context.Context) (map[model.Namespace]tableMembership, error) {
	raw, err := c.load(ctx, "member/")
	if err != nil {
		return nil, err
	}
	out := make(map[model.Namespace]tableMembership, len(raw))
	for k, v := range raw {
		var m tableMembership
		if err := json.Unmarshal([]byte(v), &m); err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", k, err)
		}
		out[m.NS] = m
	}
	return out, nil
}

// tableCreated makes a table the source created during CDC part of the
// flow, when --tables selects it. A table the flow already takes (the
// event replayed after a resume, or a table dropped and created again) is
// made again the same way: its destination table is emptied and copied
// again, which leaves it as the source has it either way.
func (e *Engine) tableCreated(ctx context.Context, t *model.Table) (*tableRun, error) {
	ns := t.Namespace
	if e.mode == flow.ModeSnapshot || !e.filter.Match(ns) {
		return nil, nil
	}
	if t.NoChangeStream != "" {
		// Left out as at the flow's start (leaveOutUnstreamable).
		e.log.Warn(unstreamableMessage([]string{ns.String() + " (" + t.NoChangeStream + ")"}), "tables", 1, "created_at_source", true)
		e.progress.CDC.schemaChanged(ns.String(), "created at the source: left out ("+t.NoChangeStream+")")
		return nil, nil
	}
	if e.cfg.DDL == flow.DDLStop {
		return nil, errs.BadConfig(fmt.Sprintf("table %s was created at the source, --tables selects it, and the flow runs with --ddl stop, so it stops before anything after that", ns),
			"run again with --ddl apply, which adds the table to the flow and copies it while changes stream, or leave it out of the flow: --tables '...,!"+ns.String()+"'")
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("table %s created at the source: %w", ns, err)
	}
	if len(t.PrimaryKey) == 0 {
		// Its rows are copied while its changes stream, merged by key;
		// and a keyless table's changes need the stream's ordered apply,
		// set up when the stream starts.
		return nil, errs.BadConfig(fmt.Sprintf("table %s was created at the source and --tables selects it, but it has no primary key: a table that joins a running flow is copied while its changes stream, merged by its key", ns),
			"add a primary key to it at the source (ALTER TABLE ... ADD PRIMARY KEY), or leave it out of the flow: --tables '...,!"+ns.String()+"'; then run the flow again")
	}
	if oscShadow(ns) {
		e.log.Info("table created at the source looks like an online schema change tool's shadow table (gh-ost, pt-online-schema-change): not added to the flow", "table", ns)
		return nil, nil
	}
	if e.byNS[ns] != nil {
		if err := e.leave(ctx, ns); err != nil {
			return nil, err
		}
	}
	if err := e.addTables(ctx, []*model.Table{t}); err != nil {
		return nil, fmt.Errorf("table %s created at the source: %w", ns, err)
	}
	// Rows a destination table of that name holds are not the new
	// table's (one dropped at the source and created again).
	if err := e.emptyJoined(ctx, t); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	if err := e.ckpt.saveMembership(ctx, tableMembership{Table: t, NS: ns, Joined: now}); err != nil {
		return nil, err
	}
	if err := e.ckpt.saveSchema(ctx, t); err != nil {
		return nil, err
	}
	tr, err := e.join(ctx, t)
	if err != nil {
		return nil, err
	}
	if err := e.copyAdded(ctx, []*model.Table{t}, "created at the source"); err != nil {
		return nil, err
	}
	e.log.Info("table created at the source joined the flow", "table", ns, "destination", tr.dst.Namespace)
	e.progress.CDC.schemaChanged(ns.String(), "created at the source: joined the flow")
	return tr, nil
}

// emptyJoined empties the destination table of a table that joins the
// flow new at the source, before its copy, unless the flow copies nothing
// (--mode cdc: the user fills it).
func (e *Engine) emptyJoined(ctx context.Context, t *model.Table) error {
	em := e.dst.Emptier
	if em == nil || e.mode == flow.ModeCDC {
		return nil
	}
	d, _, err := e.destination(t)
	if err != nil {
		return err
	}
	if err := e.onDestination(ctx, "empty "+d.Namespace.String(), func(ctx context.Context) error {
		return em.EmptyTables(ctx, []*model.Table{d})
	}); err != nil {
		return fmt.Errorf("empty destination table %s for table %s, created at the source: %w", d.Namespace, t.Namespace, err)
	}
	return nil
}

// tableDropped stops following a table of the flow the source dropped.
func (e *Engine) tableDropped(ctx context.Context, ns model.Namespace) (bool, error) {
	tr := e.byNS[ns]
	if tr == nil {
		return false, nil
	}
	if e.cfg.DDL == flow.DDLStop {
		return false, errs.BadConfig(fmt.Sprintf("table %s was dropped at the source and the flow runs with --ddl stop, so it stops before anything after that", ns),
			"run again with --ddl apply, which stops following the table (its destination table stays)")
	}
	if err := e.ckpt.saveMembership(ctx, tableMembership{NS: ns, Left: time.Now().UTC()}); err != nil {
		return false, err
	}
	if err := e.leave(ctx, ns); err != nil {
		return false, err
	}
	e.log.Info("table dropped at the source: no longer followed; its destination table stays", "table", ns, "destination", tr.dst.Namespace)
	e.progress.CDC.schemaChanged(ns.String(), "dropped at the source: no longer followed, destination table kept")
	return true, nil
}

// join adds a table to the running flow: its run, the plan (persisted in
// the state store, when there is one).
func (e *Engine) join(ctx context.Context, t *model.Table) (*tableRun, error) {
	d, x, err := e.destination(t)
	if err != nil {
		return nil, err
	}
	tr := newTableRun(t, d, x)
	e.tablesMu.Lock()
	p := *e.plan
	p.Tables = append(append([]*model.Table(nil), p.Tables...), t)
	e.plan = &p
	e.tables = append(e.tables, tr)
	e.byNS[t.Namespace] = tr
	e.tablesMu.Unlock()
	e.progress.setTables(e.tables)
	return tr, e.persistPlan(ctx)
}

// leave removes a table (and its partitions) from the running flow.
func (e *Engine) leave(ctx context.Context, ns model.Namespace) error {
	e.tablesMu.Lock()
	p := *e.plan
	p.Tables, p.Partitions = nil, nil
	for _, t := range e.plan.Tables {
		if t.Namespace != ns {
			p.Tables = append(p.Tables, t)
		}
	}
	for _, part := range e.plan.Partitions {
		if part.Table != ns {
			p.Partitions = append(p.Partitions, part)
		}
	}
	e.plan = &p
	var kept []*tableRun
	for _, tr := range e.tables {
		if tr.src.Namespace != ns {
			kept = append(kept, tr)
		}
	}
	e.tables = kept
	delete(e.byNS, ns)
	e.tablesMu.Unlock()
	e.progress.setTables(e.tables)
	return e.persistPlan(ctx)
}

// persistPlan stores the plan after CDC changed its tables, in the state
// store when there is one (a coordinator keeps its own: SourceTables).
func (e *Engine) persistPlan(ctx context.Context) error {
	if e.store == nil {
		return nil
	}
	return e.storePlan(context.WithoutCancel(ctx), e.currentPlan())
}

// currentPlan is the plan, for goroutines other than the stream's batcher,
// which changes it when a table joins or leaves the flow.
func (e *Engine) currentPlan() *model.Plan {
	e.tablesMu.RLock()
	defer e.tablesMu.RUnlock()
	return e.plan
}

// loadMemberships makes the flow's tables those CDC left it with: a table
// that joined it (and that --tables still selects) is added, one dropped
// at the source removed. Their shapes then come from loadSchemas.
func (e *Engine) loadMemberships(ctx context.Context) error {
	ms, err := e.ckpt.memberships(ctx)
	if err != nil {
		return err
	}
	for ns, m := range ms {
		switch {
		case !m.Left.IsZero() && e.byNS[ns] != nil:
			if err := e.leave(ctx, ns); err != nil {
				return err
			}
			e.log.Info("table dropped at the source earlier: not followed", "table", ns)
		case m.Left.IsZero() && m.Table != nil && e.byNS[ns] == nil && e.filter.Match(ns) && e.mode != flow.ModeSnapshot:
			if _, err := e.join(ctx, m.Table); err != nil {
				return err
			}
			e.log.Info("table created at the source earlier: followed", "table", ns)
		}
	}
	return nil
}

// oscShadow reports the tables gh-ost (_t_gho, _t_ghc, _t_del) and
// pt-online-schema-change (_t_new, _t_old) make beside a table t while
// they change its shape: a selection such as "shop.*" matches them, but
// their rows reach t when they are swapped in, which the source follows.
func oscShadow(ns model.Namespace) bool {
	n := ns.Table
	if len(n) < 6 || n[0] != '_' {
		return false
	}
	for _, suf := range []string{"_gho", "_ghc", "_del", "_new", "_old"} {
		if strings.HasSuffix(n, suf) && len(n) > len(suf)+1 {
			return true
		}
	}
	return false
}

// markUnique applies a table that joined the flow in the source's order
// when its destination table holds unique constraints besides its key, as
// findUniqueTables does for the tables a stream starts with. gate is the
// stream's (nil when no table needed one yet: it is made then).
func (e *Engine) markUnique(ctx context.Context, tr *tableRun, gate **fullRowGate, at model.Position) error {
	ur := e.dst.UniqueReporter
	if ur == nil {
		return nil
	}
	var names []model.Namespace
	if err := e.onDestination(ctx, "read unique constraints", func(ctx context.Context) (err error) {
		names, err = ur.UniqueTables(ctx, []*model.Table{tr.dst})
		return err
	}); err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	if len(names) == 0 {
		return nil
	}
	tr.unique = true
	if *gate == nil {
		*gate = &fullRowGate{cs: e.src.ChangeSource, done: at, tables: map[*tableRun]model.Position{}}
	}
	(*gate).tables[tr] = at
	e.log.Info("this destination table has unique constraints besides the primary key: its changes are applied in the source's order by one writer", "tables", tr.dst.Namespace)
	return nil
}

// leftWhileRead tells, after a chunk of table ns failed to read, whether
// the table left the flow: dropped at the source, which the stream, behind
// the source, had not reached yet. It waits (at most leftWait) for the
// stream to reach the source's position of now, which is past the drop.
func (e *Engine) leftWhileRead(ctx context.Context, cs positionOrder, ns model.Namespace) bool {
	if e.planTable(ns) == nil {
		return true
	}
	head, err := e.watermark(ctx, e.src.ChangeSource)
	if err != nil {
		return false
	}
	deadline := time.NewTimer(leftWait)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if e.planTable(ns) == nil {
			return true
		}
		if at := e.ckpt.cdcReached(); at != "" {
			if c, err := cs.ComparePositions(at, head); err == nil && c >= 0 {
				return e.planTable(ns) == nil
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return false
		case <-tick.C:
		}
	}
}

// leftWait bounds leftWhileRead's wait for the stream.
var leftWait = time.Minute

// addNewTables adds to a resumed flow the tables --tables selects that the
// flow does not take yet: created at the source while the flow was
// stopped, or by a source whose stream cannot tell (PostgreSQL without its
// DDL log). They join it as tables created during CDC do.
func (e *Engine) addNewTables(ctx context.Context) error {
	if e.mode == flow.ModeSnapshot {
		return nil
	}
	var all []*model.Table
	if err := e.onSource(ctx, "discover tables", func(ctx context.Context) (err error) {
		all, err = e.src.Source.Tables(ctx)
		return err
	}); err != nil {
		return fmt.Errorf("discover source tables: %w", err)
	}
	var added []*model.Table
	for _, t := range all {
		if e.filter.Match(t.Namespace) && e.byNS[t.Namespace] == nil && !oscShadow(t.Namespace) {
			added = append(added, t)
		}
	}
	if added = e.leaveOutUnstreamable(added); len(added) == 0 {
		return nil
	}
	if err := e.checkKeys(added); err != nil {
		return err
	}
	if e.mode != flow.ModeCDC {
		if err := refuseKeyless(added, "add a primary key at the source, or leave the table out of --tables ('...,!schema.table')"); err != nil {
			return fmt.Errorf("tables --tables selects that the flow does not take yet (created at the source since it was planned): %w", err)
		}
	}
	if err := e.addTables(ctx, added); err != nil {
		return err
	}
	// A table the flow followed until the source dropped it, created
	// again: its destination table holds the old table's rows.
	ms, err := e.ckpt.memberships(ctx)
	if err != nil {
		return err
	}
	for _, t := range added {
		if m, ok := ms[t.Namespace]; ok && !m.Left.IsZero() {
			if err := e.emptyJoined(ctx, t); err != nil {
				return err
			}
		}
	}
	now := time.Now().UTC()
	for _, t := range added {
		if err := e.ckpt.saveMembership(ctx, tableMembership{Table: t, NS: t.Namespace, Joined: now}); err != nil {
			return err
		}
		if _, err := e.join(ctx, t); err != nil {
			return err
		}
	}
	return e.copyAdded(ctx, added, "created at the source since the flow was planned")
}
