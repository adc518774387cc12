package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// ordered reports a table whose changes CDC applies unfolded, in the
// source's order, on writer fullRowWriter, each at most once (fullRowGate):
// a table without a primary key (applied by whole row), or one whose
// destination table holds unique constraints besides its key, which
// changes folded by key and applied in parallel could break for a moment
// (two rows swapping a value within one source transaction).
func (tr *tableRun) ordered() bool { return tr.fullRow() || tr.unique }

func (e *Engine) hasOrdered() bool {
	for _, tr := range e.tables {
		if tr.ordered() {
			return true
		}
	}
	return false
}

// findUniqueTables asks a destination that can tell which tables hold
// unique constraints besides their key (connector.UniqueReporter), before
// CDC starts; their changes are then applied in order.
func (e *Engine) findUniqueTables(ctx context.Context) error {
	ur := e.dst.UniqueReporter
	if ur == nil {
		return nil
	}
	byDst := make(map[model.Namespace]*tableRun, len(e.tables))
	var dst []*model.Table
	for _, tr := range e.tables {
		tr.unique = false // as the destination has it now
		if len(tr.src.PrimaryKey) > 0 {
			byDst[tr.dst.Namespace] = tr
			dst = append(dst, tr.dst)
		}
	}
	if len(dst) == 0 {
		return nil
	}
	var names []model.Namespace
	err := e.onDestination(ctx, "read unique constraints", func(ctx context.Context) (err error) {
		names, err = ur.UniqueTables(ctx, dst)
		return err
	})
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	var shown []string
	for _, ns := range names {
		if tr := byDst[ns]; tr != nil {
			tr.unique = true
			shown = append(shown, ns.String())
		}
	}
	if len(shown) > 0 {
		e.log.Info("these destination tables have unique constraints besides the primary key: their changes are applied in the source's order by one writer", "tables", strings.Join(shown, ", "))
	}
	return nil
}

// uniqueDonePrefix keys, per table with unique constraints besides its key
// (uniqueDonePrefix + destination table), the destination checkpoint of
// the end of the last transaction whose changes of that table writer
// fullRowWriter applied.
const uniqueDonePrefix = "cdc-unique/"

// uniqueDone finds, for each table applied in order for its unique
// constraints, the end of the last transaction whose changes of it the
// destination has, as fullRowDone does for tables without a key: the
// later of its saved mark and writer fullRowWriter's checkpoint. A table
// that had no mark was applied by key across writers until now, so only
// the resume position is known to be applied: its mark is start. The marks
// are saved again (and those of tables no longer in order dropped, as
// their changes go across writers again) before the writers' checkpoints
// are reset.
func (e *Engine) uniqueDone(ctx context.Context, cs connector.ChangeSource, cps map[string]string, start model.Position) (map[*tableRun]model.Position, error) {
	saved, err := e.ckpt.load(ctx, uniqueDonePrefix)
	if err != nil {
		return nil, err
	}
	w0 := model.Position(cps[cdcKey(fullRowWriter)])
	out := map[*tableRun]model.Position{}
	values := map[string]string{}
	for _, tr := range e.tables {
		if !tr.unique {
			continue
		}
		key := uniqueDonePrefix + tr.dst.Namespace.String()
		done := start
		if v := saved[key]; v != "" {
			done = model.Position(v)
			if w0 != "" {
				c, err := cs.ComparePositions(w0, done)
				if err != nil {
					return nil, fmt.Errorf("checkpoint %s: %w", key, err)
				}
				if c > 0 {
					done = w0
				}
			}
		}
		out[tr] = done
		values[key] = string(done)
	}
	if len(values) == 0 && len(saved) == 0 {
		return out, nil
	}
	save := func(ctx context.Context) error {
		return e.dst.CheckpointKeeper.ReplaceCheckpoints(ctx, e.name, uniqueDonePrefix, values)
	}
	if err := e.onDestination(ctx, "save checkpoints "+uniqueDonePrefix, save); err != nil {
		return nil, fmt.Errorf("save destination checkpoints %s: %w", uniqueDonePrefix, err)
	}
	return out, nil
}
