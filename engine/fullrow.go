package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// fullRow reports a table whose changes CDC applies by whole row: it has
// no primary key (checkKeys let it in only with a full replica identity
// and a destination that applies whole rows at most once). Its changes are
// not folded, go in order to writer fullRowWriter, and are applied at most
// once (see fullRowGate).
func (tr *tableRun) fullRow() bool { return len(tr.src.PrimaryKey) == 0 }

// checkKeys refuses, before anything is written, tables CDC cannot apply:
// without a primary key, a table's changes are applied by whole row, which
// needs a source that sends whole old rows (a full replica identity) and a
// destination that applies them at most once.
func (e *Engine) checkKeys(tables []*model.Table) error {
	dstCan := e.dst.Abilities.FullRows && e.dst.Abilities.Checkpoints
	var noIdent, noDst []string
	for _, t := range tables {
		switch {
		case len(t.PrimaryKey) > 0:
		case !t.FullRowIdentity:
			noIdent = append(noIdent, t.Namespace.String())
		case !dstCan:
			noDst = append(noDst, t.Namespace.String())
		}
	}
	if len(noIdent) > 0 {
		// The source words its own setting; the engine knows no database.
		whole := "make the source send whole rows"
		if h := e.src.Hints.FullRowIdentity; h != "" {
			whole += " (" + h + ")"
		}
		return errs.BadConfig(fmt.Sprintf("change data capture needs a primary key or a full replica identity to apply changes, and these tables have neither: %s", strings.Join(noIdent, ", ")), "add a primary key, or "+whole+", exclude the tables with --tables '!name', or copy them with --mode snapshot")
	}
	if len(noDst) > 0 {
		can := connector.Offering(func(a connector.Abilities) bool { return a.FullRows && a.Checkpoints })
		return errs.BadConfig(fmt.Sprintf("these tables have no primary key, and destination %s cannot apply changes by whole row: %s", errs.Redact(e.cfg.Destination), strings.Join(noDst, ", ")), "add a primary key, use a destination that applies whole rows"+connector.SuchAs(can)+", exclude the tables with --tables '!name', or copy them with --mode snapshot")
	}
	return nil
}

// refuseInexactFullRow refuses a plan whose copy is not exactly at T0 when
// a table has no primary key: the changes between T0 and the copy would be
// applied on top of rows that already have them, duplicating rows.
func (e *Engine) refuseInexactFullRow(ctx context.Context, plan *model.Plan) error {
	if plan.SnapshotConsistent || e.mode == flow.ModeSnapshot {
		return nil
	}
	var nokey []string
	for _, t := range plan.Tables {
		if len(t.PrimaryKey) == 0 {
			nokey = append(nokey, t.Namespace.String())
		}
	}
	if len(nokey) > 0 {
		// Replaying changes already in the copy would duplicate rows
		// of a table without a key; release what the plan made.
		if d := e.src.FlowDropper; d != nil {
			if err := d.DropFlow(ctx, e.name); err != nil {
				e.log.Warn("could not release the source's resources for the refused flow", "error", err)
			}
		}
		return errs.BadConfig(fmt.Sprintf("the source's copy is not exactly at the change stream's start, so changes would be applied twice, and these tables have no primary key to make that harmless: %s", strings.Join(nokey, ", ")), "add a primary key, exclude the tables with --tables '!name', or copy them with --mode snapshot")
	}
	return nil
}

// fullRowKey is the destination checkpoint that remembers, across runs and
// resets of the per-writer checkpoints, the end of the last transaction
// whose full-row changes were applied.
const fullRowKey = "cdc-fullrow"

func (e *Engine) hasFullRow() bool {
	for _, tr := range e.tables {
		if tr.fullRow() {
			return true
		}
	}
	return false
}

// fullRowDone finds, on resume, the end of the last transaction whose
// full-row changes the destination has: the later of writer
// fullRowWriter's checkpoint and the one saved by an earlier run. It is
// saved again before the per-writer checkpoints are reset to the (lower)
// resume position, so a crash right after cannot lose it.
func (e *Engine) fullRowDone(ctx context.Context, cs connector.ChangeSource, cps map[string]string, start model.Position) (model.Position, error) {
	done := start
	all, err := e.ckpt.load(ctx, fullRowKey)
	if err != nil {
		return "", err
	}
	for _, v := range []string{cps[cdcKey(fullRowWriter)], all[fullRowKey]} {
		if v == "" {
			continue
		}
		c, err := cs.ComparePositions(model.Position(v), done)
		if err != nil {
			return "", fmt.Errorf("checkpoint %s: %w", fullRowKey, err)
		}
		if c > 0 {
			done = model.Position(v)
		}
	}
	save := func(ctx context.Context) error {
		return e.dst.CheckpointKeeper.ReplaceCheckpoints(ctx, e.name, fullRowKey, map[string]string{fullRowKey: string(done)})
	}
	if err := e.onDestination(ctx, "save checkpoint "+fullRowKey, save); err != nil {
		return "", fmt.Errorf("save destination checkpoint %s: %w", fullRowKey, err)
	}
	return done, nil
}

// fullRowGate lets each change of a table applied in order
// (tableRun.ordered) reach the folder exactly once. Replaying one twice
// would duplicate a row of a table without a key, or write into a unique
// column of a table with a key a value another row holds by now; and
// sources replay: a resumed stream starts at the lowest writer checkpoint,
// a reconnect starts at the last acknowledged position. The gate keeps the
// end of the last transaction whose ordered changes it let through (done)
// and drops those of any transaction ending at or before it. A partial
// batch (the first parts of a huge transaction) does not know its
// transaction's end, so its ordered changes are held until the batch that
// ends it.
//
// With the folder flushing only at batch ends, and all ordered changes on
// writer fullRowWriter, that writer's checkpoint (stored in the same
// destination transaction as the changes) is then exactly the end of the
// last transaction whose ordered changes it applied.
//
// A table with unique constraints besides its key has a done of its own
// (tables, from uniqueDone): it may have joined writer 0 later than the
// tables without a key.
type fullRowGate struct {
	cs     positionOrder
	done   model.Position
	tables map[*tableRun]model.Position
	held   []heldChange
}

// positionOrder orders a source's positions (connector.ChangeSource).
type positionOrder interface {
	ComparePositions(a, b model.Position) (int, error)
}

type heldChange struct {
	tr *tableRun
	c  *model.Change
}

// hold takes a full-row change of batch b.
func (g *fullRowGate) hold(tr *tableRun, c *model.Change) {
	g.held = append(g.held, heldChange{tr, c})
}

// release returns the held changes to fold once b ends their transaction:
// those of each table whose done b is after, none of a table whose changes
// up to b were applied before.
func (g *fullRowGate) release(b *model.ChangeBatch) ([]heldChange, error) {
	if b.Partial {
		return nil, nil
	}
	held := g.held
	g.held = nil
	after := func(done model.Position) (bool, error) {
		c, err := g.cs.ComparePositions(b.Position, done)
		return c > 0, err
	}
	afterDone, err := after(g.done)
	if err != nil {
		return nil, err
	}
	var out []heldChange
	through := map[*tableRun]bool{}
	for _, h := range held {
		done, own := g.tables[h.tr]
		if !own {
			if afterDone {
				out = append(out, h)
			}
			continue
		}
		ok, seen := through[h.tr]
		if !seen {
			if ok, err = after(done); err != nil {
				return nil, err
			}
			through[h.tr] = ok
		}
		if ok {
			out = append(out, h)
		}
	}
	if afterDone {
		g.done = b.Position
	}
	for tr, ok := range through {
		if ok {
			g.tables[tr] = b.Position
		}
	}
	return out, nil
}

// appliedAlready tells, after a failed attempt to apply a job holding
// changes of tables applied in order, whether the attempt committed
// nonetheless (the connection broke after COMMIT): the writer's checkpoint
// at the destination then has reached the job's position. Applying it
// again would duplicate rows (no key) or replay older values into unique
// columns other rows hold now.
func (e *Engine) appliedAlready(ctx context.Context, writer int, job applyJob) (bool, error) {
	if e.dst.CheckpointKeeper == nil {
		return false, nil
	}
	if !job.once {
		return false, nil
	}
	cps, err := e.dst.CheckpointKeeper.LoadCheckpoints(ctx, e.name)
	if err != nil {
		return false, err
	}
	v := cps[cdcKey(writer)]
	if v == "" {
		return false, nil
	}
	c, err := e.src.ChangeSource.ComparePositions(model.Position(v), job.position)
	if err != nil {
		return false, err
	}
	return c >= 0, nil
}

// refuseFullRowCopyOutsideT0 refuses to copy a table without a primary key
// outside the plan's snapshot in a flow with CDC: a resumed process or a
// scale-out worker reads current rows, which already hold changes after T0
// that CDC then applies again, duplicating rows no key can collapse. A
// resumed flow checks the partitions it has still to copy; a scale-out copy
// activity (resumed false) the partitions it was given.
func (e *Engine) refuseFullRowCopyOutsideT0(ctx context.Context, parts []model.Partition, resumed bool) error {
	if e.mode != flow.ModeFull {
		return nil
	}
	var left map[string]bool
	if resumed {
		if done, err := e.ckpt.copyDone(ctx); err != nil || done {
			return err
		}
		raw, err := e.ckpt.load(ctx, "partition/")
		if err != nil {
			return err
		}
		left = map[string]bool{}
		for _, p := range parts {
			var cp PartitionProgress
			if v, ok := raw[partitionKey(p.ID)]; ok && json.Unmarshal([]byte(v), &cp) == nil && cp.Done {
				continue
			}
			left[p.ID] = true
		}
	}
	var names []string
	seen := map[model.Namespace]bool{}
	for _, p := range parts {
		tr := e.byNS[p.Table]
		if tr == nil || !tr.fullRow() || seen[p.Table] || (left != nil && !left[p.ID]) {
			continue
		}
		seen[p.Table] = true
		names = append(names, p.Table.String())
	}
	if len(names) == 0 {
		return nil
	}
	how := "the copy of these tables was interrupted, and a new process reads their rest outside the snapshot at T0"
	fix := "start the flow over with --restart (it copies again), or exclude the tables"
	if !resumed {
		how = "scale-out workers read partitions outside the snapshot at T0"
		fix = "copy these tables with ferry sync, or give them a primary key"
	}
	return errs.BadConfig(fmt.Sprintf("%s, so changes already in the rows read would be applied again, and without a primary key that duplicates rows: %s", how, strings.Join(names, ", ")), fix)
}
