package engine

import (
	"context"
	"fmt"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/verify"
)

// Verify compares every table of the flow, as the source describes it now,
// with its destination table, as ferry verify does: row counts, then
// bucket hashes, then the keys of the buckets that differ (at most
// maxDiffs per table). It needs no plan, so a worker that did not run the
// flow can verify it.
func (e *Engine) Verify(ctx context.Context, maxDiffs int) ([]*verify.Result, error) {
	pairs, err := e.VerifyPairs(ctx)
	if err != nil {
		return nil, err
	}
	return e.VerifyTables(ctx, pairs, maxDiffs)
}

// VerifyPairs lists the tables Verify compares: each selected source table,
// as the source describes it now, with its destination name. Scale-out
// verifies each pair on a worker of its own.
func (e *Engine) VerifyPairs(ctx context.Context) ([]verify.Pair, error) {
	if e.src.Source == nil {
		return nil, errs.BadConfig("the source cannot be read", "verify reads both sides")
	}
	if e.dst.Source == nil {
		return nil, errs.BadConfig("the destination cannot be read back", "verify reads both sides; this destination keeps nothing to compare")
	}
	tables, err := e.selectTables(ctx)
	if err != nil {
		return nil, err
	}
	dsts, _, err := e.destinations(tables)
	if err != nil {
		return nil, err
	}
	pairs := make([]verify.Pair, len(tables))
	for i, t := range tables {
		pairs[i] = verify.Pair{Source: t, Destination: dsts[i].Namespace}
	}
	return pairs, nil
}

// VerifyTables compares the given pairs, as Verify does.
func (e *Engine) VerifyTables(ctx context.Context, pairs []verify.Pair, maxDiffs int) ([]*verify.Result, error) {
	if e.src.Source == nil || e.dst.Source == nil {
		return nil, errs.BadConfig("verify reads both sides, and one of them cannot be read", "verify a source and a destination ferry can read")
	}
	res, err := verify.Tables(ctx, e.src.Source, e.dst.Source, pairs,
		verify.Options{Parallel: e.cfg.Parallel, MaxDiffs: maxDiffs, PartitionRows: e.cfg.PartitionRows, Transforms: e.xf})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	return res, nil
}

// VerifyRanges lists the tables Verify compares, each with the ranges of
// its buckets that scale-out compares apart, at most most per table
// (verify.Split).
func (e *Engine) VerifyRanges(ctx context.Context, most int) ([]verify.TableRanges, error) {
	pairs, err := e.VerifyPairs(ctx)
	if err != nil {
		return nil, err
	}
	trs, err := verify.Split(ctx, e.src.Source, e.dst.Source, pairs, verify.Options{Transforms: e.xf}, most)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	return trs, nil
}

// VerifyRange compares one range of one table's buckets (all of them when
// rng is nil), as VerifyTables does; with online set, while the flow
// applies changes, re-checking a differing key up to rechecks times
// (verify.Options.Online).
func (e *Engine) VerifyRange(ctx context.Context, pair verify.Pair, rng *verify.Range, maxDiffs int, online verify.Flow, rechecks int) (*verify.Result, error) {
	if e.src.Source == nil || e.dst.Source == nil {
		return nil, errs.BadConfig("verify reads both sides, and one of them cannot be read", "verify a source and a destination ferry can read")
	}
	res, err := verify.Tables(ctx, e.src.Source, e.dst.Source, []verify.Pair{pair},
		verify.Options{Parallel: e.cfg.Parallel, MaxDiffs: maxDiffs, PartitionRows: e.cfg.PartitionRows, Range: rng,
			Online: online, Rechecks: rechecks, Transforms: e.xf})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	return res[0], nil
}
