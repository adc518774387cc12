package engine

import (
	"context"
	"fmt"
	"strings"

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
