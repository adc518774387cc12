package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/verify"
)

// VerifyStatus is a table's background verification while changes flow
// (ferry sync --verify): the last pass's counts, and the keys waiting
// for the flow right now.
type VerifyStatus struct {
	// Passes counts the passes over the table; LastPass is when the last
	// one ended.
	Passes   int64     `json:"passes"`
	LastPass time.Time `json:"last_pass,omitzero"`
	// RowsChecked counts the rows read on both sides by every pass.
	RowsChecked int64 `json:"rows_checked"`
	// Rechecking is how many keys wait for the flow to pass the source's
	// position now, to be read again (differences pending re-check).
	Rechecking int `json:"rechecking_keys"`
	// Different counts the keys the last pass found different after every
	// re-check (persistent differences); Pending those whose source row
	// changed at every re-check. Diffs lists the first differences.
	Different int           `json:"different_keys"`
	Pending   int           `json:"pending_keys"`
	Diffs     []verify.Diff `json:"diffs,omitempty"`
	// Error is why the last pass failed, "" when it did not.
	Error string `json:"error,omitempty"`
}

// verifyStats holds each table's VerifyStatus, by source table name.
type verifyStats struct {
	mu     sync.Mutex
	tables map[string]*VerifyStatus
}

func (v *verifyStats) update(table string, fn func(*VerifyStatus)) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.tables == nil {
		v.tables = map[string]*VerifyStatus{}
	}
	s := v.tables[table]
	if s == nil {
		s = &VerifyStatus{}
		v.tables[table] = s
	}
	fn(s)
}

func (v *verifyStats) get(table string) *VerifyStatus {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.tables[table]
	if s == nil {
		return nil
	}
	c := *s
	c.Diffs = append([]verify.Diff(nil), s.Diffs...)
	return &c
}

// VerifyWhileStreaming verifies the flow's tables while changes flow, one
// table per every, in turn, until ctx ends: each difference is re-checked
// once the flow passed the source's position at which it was seen (see
// verify.Options.Online). It reads with one partition at a time, so it
// takes little from either side. Results go to the progress (dashboard,
// metrics); a failed pass is recorded there, and the next one runs.
func (e *Engine) VerifyWhileStreaming(ctx context.Context, every time.Duration) error {
	if e.src.Source == nil || e.dst.Source == nil || e.src.ChangeSource == nil {
		return errs.BadConfig("--verify needs a source with change data capture and a destination ferry can read back", "leave out --verify; run ferry verify once writes stopped")
	}
	flowAt := &verify.PolledFlow{Source: e.src.ChangeSource,
		Applied: func(context.Context) (model.Position, error) { return e.CDCPosition(""), nil }}
	t := time.NewTicker(every)
	defer t.Stop()
	for i := 0; ; {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if e.progress.currentPhase() != PhaseCDC || e.CDCPosition("") == "" {
			continue
		}
		e.tablesMu.RLock()
		if len(e.tables) == 0 {
			e.tablesMu.RUnlock()
			continue
		}
		tr := e.tables[i%len(e.tables)]
		pair := verify.Pair{Source: tr.src, Destination: tr.dst.Namespace}
		e.tablesMu.RUnlock()
		i++
		e.verifyOnce(ctx, pair, flowAt)
	}
}

// waitingFlow counts the keys waiting for the flow into the table's status.
type waitingFlow struct {
	*verify.PolledFlow
	stats *verifyStats
}

func (w waitingFlow) WaitPassed(ctx context.Context, table string, keys int, pos model.Position) error {
	w.stats.update(table, func(s *VerifyStatus) { s.Rechecking = keys })
	defer w.stats.update(table, func(s *VerifyStatus) { s.Rechecking = 0 })
	return w.PolledFlow.WaitPassed(ctx, table, keys, pos)
}

func (e *Engine) verifyOnce(ctx context.Context, pair verify.Pair, flowAt *verify.PolledFlow) {
	table := pair.Source.Namespace.String()
	res, err := verify.Tables(ctx, e.src.Source, e.dst.Source, []verify.Pair{pair}, verify.Options{
		Parallel: 1, MaxDiffs: 10, PartitionRows: e.cfg.PartitionRows, Transforms: e.xf,
		Online: waitingFlow{flowAt, &e.progress.verify}, Rechecks: 3})
	if ctx.Err() != nil {
		return
	}
	e.progress.verify.update(table, func(s *VerifyStatus) {
		s.Passes++
		s.LastPass = time.Now()
		if err != nil {
			s.Error = err.Error()
			return
		}
		r := res[0]
		s.Error = r.Problem
		s.RowsChecked += r.RowsRead
		s.Different, s.Pending, s.Diffs = r.DifferentKeys, r.PendingKeys, r.Diffs
	})
	switch {
	case err != nil:
		e.log.Warn("background verification failed", "table", table, "error", err)
	case !res[0].Equal():
		e.log.Warn("background verification: the table differs", "table", table,
			"different_keys", res[0].DifferentKeys, "problem", res[0].Problem, "first", fmt.Sprint(res[0].Diffs))
	}
}

// AppliedFlow is the running flow a verification on another process
// waits for (ferry flow verify --online on a worker): the source's head,
// and the position the flow applied as the destination's checkpoints say.
// A source without CDC, a destination that keeps no checkpoints or a flow
// that applied no change yet is a errs.ConfigError.
func (e *Engine) AppliedFlow(ctx context.Context) (*verify.PolledFlow, error) {
	cs := e.src.ChangeSource
	if cs == nil {
		return nil, errs.BadConfig("the source has no change data capture", "--online verifies a flow that streams changes; verify without --online once writes stopped")
	}
	if e.dst.CheckpointKeeper == nil {
		return nil, errs.BadConfig("the destination keeps no checkpoints, so verify cannot tell how far the flow applied",
			"verify without --online once the flow is cut over or its source is quiet")
	}
	applied := func(ctx context.Context) (model.Position, error) {
		cps, err := e.ckpt.load(ctx, "cdc/")
		if err != nil {
			return "", err
		}
		return AppliedPosition(cs, cps)
	}
	if pos, err := applied(ctx); err != nil {
		return nil, err
	} else if pos == "" {
		return nil, errs.BadConfig(fmt.Sprintf("flow %s has applied no changes at the destination yet", e.name),
			"run ferry flow verify --online once the flow streams changes (phase cdc in ferry flow status)")
	}
	return &verify.PolledFlow{Source: cs, Applied: applied, Waiting: func(table string, keys int, pos model.Position) {
		e.log.Info("verify: re-checking differing keys once the flow applied the source's position", "table", table, "keys", keys, "position", string(pos))
	}}, nil
}
