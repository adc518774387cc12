package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// ChangeSelection is changeSelection for a coordinator that keeps the plan
// (scale-out): the engine's plan is the coordinator's (UsePlan), the
// engine's --tables (cfg.Tables) is the new selection and from the one the
// plan follows. The added tables are checked, added to the source's change
// stream, created at the destination and, unless the flow only streams,
// their copy is recorded with the destination's checkpoints, where the
// engine streaming the flow (another process) finds and runs it. It
// returns the new plan's tables; the coordinator stores them. Nothing is
// stored here.
func (e *Engine) ChangeSelection(ctx context.Context, from string) ([]*model.Table, error) {
	if e.plan == nil {
		return nil, fmt.Errorf("change the tables of flow %q: no plan (UsePlan first)", e.name)
	}
	c, err := e.diffSelection(ctx, from)
	if err != nil {
		return nil, err
	}
	// The request must reach the streaming engine: only checkpoints kept
	// at the destination do (see RecordSnapshot).
	if len(c.added) > 0 && e.mode != flow.ModeCDC && e.dst.CheckpointKeeper == nil {
		names := make([]string, len(c.added))
		for i, t := range c.added {
			names[i] = t.Namespace.String()
		}
		return nil, errs.BadConfig(fmt.Sprintf("flow %q cannot add %s while it runs: its destination keeps no checkpoints, where the worker streaming the flow would find the tables to copy", e.name, strings.Join(names, ", ")),
			"start the flow over with the new selection (ferry run --restart)")
	}
	p, err := e.selectionPlan(ctx, from, c)
	if err != nil {
		return nil, err
	}
	if err := e.copyAdded(ctx, c.added, "added to the flow's --tables"); err != nil {
		return nil, err
	}
	return p.Tables, nil
}
