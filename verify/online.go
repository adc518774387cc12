package verify

import (
	"context"
	"fmt"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// Flow is the running flow an online verification waits for: a key that
// differs while changes flow may only be behind, so it is read again once
// the flow has applied everything the source had committed when the
// difference was seen (DMS re-validation does the same).
type Flow interface {
	// Head is the source's position now: every change committed before
	// the call is at or before it.
	Head(ctx context.Context) (model.Position, error)
	// WaitPassed returns once the flow has applied every change up to pos
	// at the destination.
	WaitPassed(ctx context.Context, table string, keys int, pos model.Position) error
}

// PolledFlow is a Flow whose applied position is read now and then: from
// the destination's checkpoints (ferry verify --online) or from the
// running engine (ferry sync --verify).
type PolledFlow struct {
	Source connector.ChangeSource
	// Applied is the position the flow applied at the destination; "" when
	// it applied nothing yet.
	Applied func(ctx context.Context) (model.Position, error)
	// Every is how often Applied is read while waiting (default 200ms).
	Every time.Duration
	// Waiting, when set, is called once per wait, before the first poll,
	// with the table and how many of its keys wait.
	Waiting func(table string, keys int, pos model.Position)
}

// Head reads the source's head position. A source that can mark its
// stream (PostgreSQL's logical message, as a cutover writes) is marked, so
// that the flow reaches the position at once even when the source is idle;
// when marking fails (a read-only user), the head is read instead.
func (f *PolledFlow) Head(ctx context.Context) (model.Position, error) {
	if m, ok := f.Source.(connector.PositionMarker); ok {
		if pos, err := m.MarkPosition(ctx); err == nil {
			return pos, nil
		}
	}
	pos, err := f.Source.HeadPosition(ctx)
	if err != nil {
		return "", fmt.Errorf("read the source's position: %w", err)
	}
	return pos, nil
}

// WaitPassed polls the applied position until it reaches pos.
func (f *PolledFlow) WaitPassed(ctx context.Context, table string, keys int, pos model.Position) error {
	every := f.Every
	if every <= 0 {
		every = 200 * time.Millisecond
	}
	if f.Waiting != nil {
		f.Waiting(table, keys, pos)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		applied, err := f.Applied(ctx)
		if err != nil {
			return fmt.Errorf("read the flow's applied position: %w", err)
		}
		if applied != "" {
			c, err := f.Source.ComparePositions(applied, pos)
			if err != nil {
				return fmt.Errorf("compare the flow's position %s with the source's %s: %w", applied, pos, err)
			}
			if c >= 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the flow to apply the source's position %s: %w", pos, ctx.Err())
		case <-t.C:
		}
	}
}

// recheck reads the differing keys again, up to opts.Rechecks times, each
// time once the flow passed the source's head taken after the last read.
// A key that agrees drops out; one that still differs is persistent when
// the source's row did not change since the read before, pending when it
// did (it keeps changing, so it cannot be judged yet).
func recheck(ctx context.Context, res *Result, srcSide, dstSide *side, nb int, found []keyDiff, opts Options) (persistent, pending []keyDiff, err error) {
	rounds := opts.Rechecks
	if rounds <= 0 {
		rounds = 3
	}
	changed := map[string]bool{}
	for round := 0; round < rounds && len(found) > 0; round++ {
		head, err := opts.Online.Head(ctx)
		if err != nil {
			return nil, nil, err
		}
		if err := opts.Online.WaitPassed(ctx, res.Table, len(found), head); err != nil {
			return nil, nil, fmt.Errorf("re-check %d key(s) of %s: %w", len(found), res.Table, err)
		}
		prev := make(map[string]keyDiff, len(found))
		only := make(map[string]model.Row, len(found))
		want := map[int]bool{}
		for _, kd := range found {
			prev[kd.key], only[kd.key] = kd, kd.keyVals
			want[kd.bucket] = true
		}
		again, err := narrow(ctx, srcSide, dstSide, nb, want, only, opts)
		if err != nil {
			return nil, nil, err
		}
		res.Rechecks++
		changed = map[string]bool{}
		for _, kd := range again {
			if p := prev[kd.key]; p.srcHash != kd.srcHash || p.srcRows != kd.srcRows {
				changed[kd.key] = true
			}
		}
		found = again
	}
	for _, kd := range found {
		if changed[kd.key] {
			pending = append(pending, kd)
		} else {
			persistent = append(persistent, kd)
		}
	}
	return persistent, pending, nil
}
