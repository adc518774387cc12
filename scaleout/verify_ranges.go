package scaleout

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/ferrydb/ferry/verify"
)

// verifyByRanges compares each table in one activity, or a large table
// both databases hash themselves in one activity per range of its
// buckets, at most the flow's --parallel activities at once over all
// tables, so that one large table spreads over the workers; each table's
// parts are merged into the result comparing it whole gives.
func verifyByRanges(ctx, actx workflow.Context, in VerifyInput) ([]*verify.Result, error) {
	opts := in.Options
	opts.Defaults()
	window := max(opts.Parallel, 1)
	var tables []verify.TableRanges
	if err := workflow.ExecuteActivity(actx, ActivityVerifyRanges, in).Get(ctx, &tables); err != nil {
		return nil, err
	}
	type job struct {
		table int
		in    VerifyTableInput
	}
	var jobs []job
	for i, tr := range tables {
		if len(tr.Ranges) == 0 {
			jobs = append(jobs, job{i, VerifyTableInput{VerifyInput: in, Pair: tr.Pair}})
			continue
		}
		for _, r := range tr.Ranges {
			jobs = append(jobs, job{i, VerifyTableInput{VerifyInput: in, Pair: tr.Pair, Range: &r}})
		}
	}
	parts := make([][]*verify.Result, len(tables))
	futures := make([]workflow.Future, len(jobs))
	wait := func(j int) error {
		var r *verify.Result
		if err := futures[j].Get(ctx, &r); err != nil {
			return err
		}
		parts[jobs[j].table] = append(parts[jobs[j].table], r)
		return nil
	}
	for j, jb := range jobs {
		if j >= window {
			if err := wait(j - window); err != nil {
				return nil, err
			}
		}
		futures[j] = workflow.ExecuteActivity(actx, ActivityVerifyTable, jb.in)
	}
	for j := max(len(jobs)-window, 0); j < len(jobs); j++ {
		if err := wait(j); err != nil {
			return nil, err
		}
	}
	res := make([]*verify.Result, len(tables))
	for i := range tables {
		res[i] = verify.Merge(parts[i], in.MaxDiffs)
	}
	return res, nil
}

// VerifyRanges lists the tables of the flow a verification compares, with
// the ranges a large table is split into (verify.Split), at most the
// flow's --parallel per table.
func (a *Activities) VerifyRanges(ctx context.Context, in VerifyInput) ([]verify.TableRanges, error) {
	o, err := a.open(ctx, in.Options)
	if err != nil {
		return nil, err
	}
	defer o.close()
	stop := keepAlive(ctx, func() any { return nil })
	defer stop()
	opts := in.Options
	opts.Defaults()
	trs, err := o.eng.VerifyRanges(ctx, max(opts.Parallel, 1))
	if err != nil {
		return nil, a.failure(fmt.Errorf("flow %s: %w", in.Options.Name, err), o.secrets)
	}
	return trs, nil
}
