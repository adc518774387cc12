package engine

import (
	"context"
	"errors"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// The way back after a cutover (docs/cutover.md#the-way-back) in either
// mode: which tables a forward flow took at a database, and whether the old
// database was written after the cutover. ferry sync (internal/cli) and the
// scale-out activities share these.

// SelectTables lists the tables of src the --tables patterns select.
func SelectTables(ctx context.Context, src connector.Source, patterns []string) ([]*model.Table, error) {
	if src == nil {
		return nil, errors.New("cannot list tables")
	}
	filter, err := flow.NewFilter(patterns)
	if err != nil {
		return nil, err
	}
	all, err := src.Tables(ctx)
	if err != nil {
		return nil, err
	}
	var out []*model.Table
	for _, t := range all {
		if filter.Match(t.Namespace) {
			out = append(out, t)
		}
	}
	return out, nil
}

// errReached ends the read of ChangesSince at the head.
var errReached = errors.New("reached the head")

// ChangesSince counts, per table, the changes a change source took after
// from, up to its position now. forward names the flow whose resources
// (PostgreSQL: its kept slot and publication) the stream reads.
func ChangesSince(ctx context.Context, caps connector.Capabilities, tables []*model.Table, from model.Position, forward string) (map[model.Namespace]int, error) {
	cs := caps.ChangeSource
	if cs == nil {
		return nil, errors.New("no change data capture")
	}
	var head model.Position
	var err error
	// A marker is read at once by the stream; without one, an idle source
	// reaches its head at its next heartbeat.
	if pm := caps.PositionMarker; pm != nil {
		head, err = pm.MarkPosition(ctx)
	}
	if pm := caps.PositionMarker; pm == nil || err != nil {
		if head, err = cs.HeadPosition(ctx); err != nil {
			return nil, err
		}
	}
	if c, err := cs.ComparePositions(from, head); err != nil {
		return nil, err
	} else if c >= 0 {
		return nil, nil
	}
	selected := map[model.Namespace]bool{}
	for _, t := range tables {
		selected[t.Namespace] = true
	}
	changed := map[model.Namespace]int{}
	err = cs.StreamChanges(ctx, tables, from, connector.StreamOptions{Flow: forward}, func(ctx context.Context, b *model.ChangeBatch) error {
		for _, c := range b.Changes {
			if selected[c.Table] {
				changed[c.Table]++
			}
		}
		if b.Position == "" {
			return nil
		}
		if c, err := cs.ComparePositions(b.Position, head); err != nil {
			return err
		} else if c >= 0 {
			return errReached
		}
		return nil
	})
	if err != nil && !errors.Is(err, errReached) {
		return nil, err
	}
	return changed, nil
}
