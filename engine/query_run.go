package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/internal/faultpoint"
	"github.com/ferrydb/ferry/model"
)

// runQuery runs (or resumes) one run of a query: bounds read at its start
// (rows arriving later wait for the next run), ranges read and written in
// parallel, then the run's upper bound recorded as the query's mark.
// Scale-out mode runs the same three steps (PlanRun, CopyRange,
// FinishRun) as activities of its own workflow.
func (f *QueryFlow) runQuery(ctx, stop context.Context, qt *queryTable) error {
	ns := qt.q.Name
	start := time.Now()
	run, err := f.planRun(ctx, stop, qt)
	if err != nil || run == nil {
		return err
	}
	// An outage's retry runs the query again: its part of the run is
	// reported anew.
	report := f.progress.table(QueryTableReport{Table: ns.String(), From: run.From, Ranges: len(run.Ranges), Resumed: run.Resumed})
	var rows atomic.Int64
	var first sync.Once
	g, gctx := errgroup.WithContext(ctx)
	for i := range run.Ranges {
		g.Go(func() error {
			_, err := f.copyRange(gctx, stop, qt, run, i, func(n int64) {
				rows.Add(n)
				f.progress.update(report, func(r *QueryTableReport) { r.Rows += n })
				first.Do(func() { faultpoint.Hold(gctx, faultpoint.QueryBatchWritten, f.log) })
			})
			if err == nil && stop.Err() == nil {
				f.progress.update(report, func(r *QueryTableReport) { r.RangesDone++ })
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if stop.Err() != nil {
		f.log.Info("query run stopped; the next start resumes it", "table", ns, "rows", rows.Load(), "from", run.From, "to", run.Hi)
		return nil
	}
	to, err := f.finishRun(ctx, qt, run)
	if err != nil {
		return err
	}
	f.progress.update(report, func(r *QueryTableReport) { r.To = to })
	f.log.Info("query run finished", "table", ns, "rows", rows.Load(), "from", run.From, "to", to,
		"ranges", len(run.Ranges), "resumed", run.Resumed, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// PlanRun starts one run of the query ns: the run recorded by an earlier
// start when there is one (Resumed), else bounds read now, the range
// split into the flow's --parallel ranges and recorded. A run without
// ranges found nothing past the mark and records nothing. nil: stop
// ended it before it was planned.
func (f *QueryFlow) PlanRun(ctx, stop context.Context, ns model.Namespace) (*QueryRun, error) {
	qt, err := f.query(ns)
	if err != nil {
		return nil, err
	}
	return f.planRun(ctx, stop, qt)
}

// CopyRange reads range i of the run and writes it, from the range's
// checkpoint when this run wrote some of it already; batch is told the
// rows of each batch written (rows and checkpoint committed). It returns
// the rows written, and stops early (without error) when stop is done.
func (f *QueryFlow) CopyRange(ctx, stop context.Context, ns model.Namespace, run *QueryRun, i int, batch func(rows int64)) (int64, error) {
	qt, err := f.query(ns)
	if err != nil {
		return 0, err
	}
	if i < 0 || i >= len(run.Ranges) {
		return 0, fmt.Errorf("query %s: run %s has no range %d", ns, run.ID, i)
	}
	return f.copyRange(ctx, stop, qt, run, i, batch)
}

// FinishRun records the run's upper bound as the query's mark, once every
// range is written, and returns the mark.
func (f *QueryFlow) FinishRun(ctx context.Context, ns model.Namespace, run *QueryRun) (string, error) {
	qt, err := f.query(ns)
	if err != nil {
		return "", err
	}
	return f.finishRun(ctx, qt, run)
}

func (f *QueryFlow) query(ns model.Namespace) (*queryTable, error) {
	for _, qt := range f.queries {
		if qt.q.Name == ns || qt.dst.Namespace == ns {
			return qt, nil
		}
	}
	return nil, fmt.Errorf("the flow has no query %s", ns)
}

func (f *QueryFlow) planRun(ctx, stop context.Context, qt *queryTable) (*QueryRun, error) {
	ns := qt.q.Name
	cps, err := f.ckpt.load(ctx, queryPrefix(ns))
	if err != nil {
		return nil, err
	}
	mark := cps[queryMarkKey(ns)]
	if was := cps[queryColumnKey(ns)]; was != "" && was != qt.q.Watermark {
		return nil, errs.BadConfig(fmt.Sprintf("query %s: the flow's watermark is %s, not %s", ns, was, qt.q.Watermark),
			fmt.Sprintf("keep --watermark %s=%s, or forget the flow's watermarks with ferry drop (the next run reads every row again)", ns, was))
	}
	if rec := cps[queryRunKey(ns)]; rec != "" {
		var run QueryRun
		if err := json.Unmarshal([]byte(rec), &run); err != nil {
			return nil, fmt.Errorf("query %s: its checkpoint %q: %w", ns, rec, err)
		}
		run.Resumed = true
		return &run, nil
	}
	last, err := qt.wm.decode(mark)
	if err != nil {
		return nil, fmt.Errorf("query %s: its watermark checkpoint %q: %w", ns, mark, err)
	}
	after := qt.wm.minus(last, f.lookback)
	lo, hi, err := f.reader.QueryBounds(stop, qt.q, qt.dst, after)
	if err != nil {
		if stop.Err() != nil {
			return nil, nil
		}
		return nil, err
	}
	if lo == nil {
		return &QueryRun{From: mark, Hi: mark}, nil
	}
	run := &QueryRun{ID: strconv.FormatInt(time.Now().UnixNano(), 36), From: mark}
	if run.Hi, err = qt.wm.encode(hi); err != nil {
		return nil, fmt.Errorf("query %s: %w", ns, err)
	}
	for _, r := range qt.wm.split(after, lo, hi, f.cfg.Parallel) {
		a, err := qt.wm.encode(r.After)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", ns, err)
		}
		u, err := qt.wm.encode(r.UpTo)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", ns, err)
		}
		run.Ranges = append(run.Ranges, QueryRunRange{After: a, UpTo: u})
	}
	b, err := json.Marshal(run)
	if err != nil {
		return nil, err
	}
	if err := f.saveQuery(ctx, ns, map[string]string{queryMarkKey(ns): mark, queryRunKey(ns): string(b), queryColumnKey(ns): qt.q.Watermark}); err != nil {
		return nil, err
	}
	return run, nil
}

// finishRun records the mark a run reached: its upper bound, or the mark
// before it when a lookback re-read only values below that, after a
// destination that assembles tables appended the run's rows. A run
// without ranges records nothing.
func (f *QueryFlow) finishRun(ctx context.Context, qt *queryTable, run *QueryRun) (string, error) {
	ns := qt.q.Name
	// Files: the run's rows join the table before its mark is recorded; a
	// crash between the two appends nothing twice (the parts are gone).
	if err := f.appendRun(ctx, qt); err != nil {
		return "", err
	}
	if len(run.Ranges) == 0 {
		return run.From, nil
	}
	to := run.Hi
	if run.From != "" {
		m, err1 := qt.wm.decode(run.From)
		h, err2 := qt.wm.decode(run.Hi)
		if err1 == nil && err2 == nil && qt.wm.less(h, m) {
			to = run.From // a lookback re-read below the mark
		}
	}
	if err := f.saveQuery(ctx, ns, map[string]string{queryMarkKey(ns): to, queryRunKey(ns): "", queryColumnKey(ns): qt.q.Watermark}); err != nil {
		return "", err
	}
	return to, nil
}

// appendRun adds what the run wrote to its table, at a destination that
// assembles tables.
func (f *QueryFlow) appendRun(ctx context.Context, qt *queryTable) error {
	if f.appender == nil {
		return nil
	}
	if err := f.appender.AppendTable(ctx, qt.dst); err != nil {
		return fmt.Errorf("query %s: %w", qt.q.Name, err)
	}
	return nil
}

// copyRange reads one range of a run and writes its batches in order,
// each with the range's cursor as its checkpoint. Reading stops at stop;
// what was read is still written.
func (f *QueryFlow) copyRange(ctx, stop context.Context, qt *queryTable, run *QueryRun, i int, batch func(rows int64)) (int64, error) {
	ns := qt.q.Name
	cps, err := f.ckpt.load(ctx, queryRangeKey(ns, i))
	if err != nil {
		return 0, err
	}
	from, done, err := run.rangeStart(cps, ns, i)
	if err != nil || done {
		return 0, err // done: written before the run was stopped
	}
	after, err := qt.wm.decode(from)
	if err != nil {
		return 0, fmt.Errorf("query %s: %w", ns, err)
	}
	upTo, err := qt.wm.decode(run.Ranges[i].UpTo)
	if err != nil {
		return 0, fmt.Errorf("query %s: %w", ns, err)
	}
	r := connector.QueryRange{After: after, UpTo: upTo}
	runID := run.ID
	var rows int64
	batches := make(chan *connector.QueryBatch, 2)
	g, gctx := errgroup.WithContext(ctx)
	readCtx, cancelRead := context.WithCancel(gctx)
	defer cancelRead()
	unstop := context.AfterFunc(stop, cancelRead)
	defer unstop()
	g.Go(func() error {
		defer close(batches)
		err := f.reader.ReadQuery(readCtx, qt.q, qt.dst, r, f.cfg.BatchRows, func(b *connector.QueryBatch) error {
			select {
			case batches <- b:
				return nil
			case <-readCtx.Done():
				return readCtx.Err()
			}
		})
		if err != nil && stop.Err() != nil && gctx.Err() == nil {
			return nil // stopped: what was read is written
		}
		if err != nil {
			return fmt.Errorf("query %s, range %d: %w", ns, i, err)
		}
		return nil
	})
	g.Go(func() error {
		write, closeWriter, err := f.openQueryWriter(gctx, qt)
		if err != nil {
			return err
		}
		defer closeWriter()
		for b := range batches {
			cursor, err := qt.wm.encode(b.Last)
			if err != nil {
				return fmt.Errorf("query %s: %w", ns, err)
			}
			value, err := json.Marshal(queryCursor{Run: runID, Cursor: cursor})
			if err != nil {
				return err
			}
			cp := &model.Checkpoint{Flow: f.name, Key: queryRangeKey(ns, i), Value: string(value)}
			if err := write(gctx, b, cp, model.Cursor(cursor), fmt.Sprintf("%s%s/%d", queryPrefix(ns), runID, i)); err != nil {
				return fmt.Errorf("query %s, range %d: %w", ns, i, err)
			}
			if f.dst.CheckpointKeeper == nil {
				if err := f.ckpt.saveLocal(gctx, map[string]string{cp.Key: cp.Value}); err != nil {
					return err
				}
			}
			rows += int64(len(b.Rows))
			if batch != nil {
				batch(int64(len(b.Rows)))
			}
		}
		return nil
	})
	err = g.Wait()
	return rows, err
}

// queryWrite writes one batch of a range with its checkpoint; cursor and
// partition name it for a row writer.
type queryWrite func(ctx context.Context, b *connector.QueryBatch, cp *model.Checkpoint, cursor model.Cursor, partition string) error

// openQueryWriter opens what a range writes through: the destination's
// applier for a query upserted by key, else a row writer appending.
func (f *QueryFlow) openQueryWriter(ctx context.Context, qt *queryTable) (write queryWrite, closeFn func(), err error) {
	if qt.upsert {
		w, err := f.dst.ChangeApplier.OpenApplier(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("query %s: open applier: %w", qt.q.Name, err)
		}
		write = func(ctx context.Context, b *connector.QueryBatch, cp *model.Checkpoint, _ model.Cursor, _ string) error {
			ups, err := qt.latestByKey(b.Rows)
			if err != nil {
				return err
			}
			return w.ApplyChanges(ctx, &model.ApplyBatch{Tables: []*model.TableChanges{{Table: qt.dst, Upserts: ups}}, Checkpoint: cp})
		}
		return write, func() { f.closeLogged("applier", w) }, nil
	}
	w, err := f.dst.Destination.OpenWriter(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("query %s: open writer: %w", qt.q.Name, err)
	}
	write = func(ctx context.Context, b *connector.QueryBatch, cp *model.Checkpoint, cursor model.Cursor, partition string) error {
		return w.WriteRows(ctx, &model.RowBatch{Table: qt.dst, Partition: partition, Rows: b.Rows, Cursor: cursor, Bytes: b.Bytes, Checkpoint: cp})
	}
	return write, func() { f.closeLogged("writer", w) }, nil
}

func (f *QueryFlow) closeLogged(what string, c interface{ Close() error }) {
	if err := c.Close(); err != nil {
		f.log.Warn("close failed", "what", what, "error", err)
	}
}

// latestByKey keeps, of rows sharing a key, the last (the newest: a
// range's rows come in watermark order), since one upsert statement may
// not touch a row twice. A NULL key is refused.
func (qt *queryTable) latestByKey(rows []model.Row) ([]model.Row, error) {
	at := make(map[string]int, len(rows))
	out := make([]model.Row, 0, len(rows))
	var sb strings.Builder
	for _, row := range rows {
		sb.Reset()
		for _, i := range qt.keyIdx {
			if row[i] == nil {
				return nil, fmt.Errorf("query %s: a row has NULL in key column %s; a key identifies every row", qt.q.Name, qt.dst.Columns[i].Name)
			}
			s, err := model.FormatText(qt.dst.Columns[i].Type, row[i])
			if err != nil {
				s = fmt.Sprint(row[i])
			}
			sb.WriteString(strconv.Itoa(len(s)))
			sb.WriteByte(':')
			sb.WriteString(s)
		}
		k := sb.String()
		if j, ok := at[k]; ok {
			out[j] = row
			continue
		}
		at[k] = len(out)
		out = append(out, row)
	}
	return out, nil
}
