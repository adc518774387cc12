package mysql

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// Plan partitions each table into primary-key ranges of about
// opts.PartitionRows rows (by the server's row estimate), and with opts.CDC
// first checks the binlog and records T0. A table without a primary key is
// one partition, read in one pass.
func (c *Conn) Plan(ctx context.Context, tables []*model.Table, opts connector.PlanOptions) (*model.Plan, error) {
	partRows := opts.PartitionRows
	if partRows <= 0 {
		partRows = defaultPartitionRows
	}
	if err := c.Preflight(ctx, tables, opts); err != nil {
		return nil, err
	}
	plan := &model.Plan{Tables: tables, CreatedAt: time.Now().UTC()}
	if opts.CDC {
		// T0 comes before any row is read: every change after it is replayed.
		p, how, err := c.snapshotPosition(ctx)
		if err != nil {
			return nil, err
		}
		plan.T0 = p.position()
		c.log.Debug("mysql: recorded T0", "host", c.host, "t0", plan.T0, "method", how)
	}
	// Each table's key walk reads its whole key index: walk a few at once.
	parts := make([][]model.Partition, len(tables))
	errs := make([]error, len(tables))
	var g errgroup.Group
	g.SetLimit(4)
	for i, t := range tables {
		g.Go(func() error {
			parts[i], errs[i] = c.planTable(ctx, t, opts.RowsFor(t.Namespace, partRows))
			return nil
		})
	}
	g.Wait() //nolint:errcheck // errors are in errs, reported in table order
	for i := range tables {
		if errs[i] != nil {
			return nil, errs[i]
		}
		plan.Partitions = append(plan.Partitions, parts[i]...)
	}
	// Largest first: partitions are copied in plan order, so the small last
	// partitions of the tables end the copy together instead of a large one
	// running alone at the end.
	sort.SliceStable(plan.Partitions, func(i, j int) bool {
		return plan.Partitions[i].EstimatedRows > plan.Partitions[j].EstimatedRows
	})
	plan.SetBatchRows(opts.BatchRows)
	return plan, nil
}

func (c *Conn) planTable(ctx context.Context, t *model.Table, partRows int64) ([]model.Partition, error) {
	ks, err := keysetFor(t)
	if err != nil {
		return nil, err
	}
	var bounds []string
	if ks != nil && t.EstimatedRows > partRows {
		if bounds, err = c.sampleBounds(ctx, t, ks, partRows); err != nil {
			return nil, fmt.Errorf("table %s: choose partition bounds: %w", t.Namespace, c.scrubber.Err(err))
		}
	}
	n := int64(len(bounds) + 1)
	parts := make([]model.Partition, 0, n)
	for i := 0; i < int(n); i++ {
		// The walk makes every partition but the last exactly partRows rows;
		// the last holds what the estimate leaves.
		rows := t.EstimatedRows / n
		if len(bounds) > 0 {
			rows = partRows
			if i == len(bounds) {
				rows = min(max(t.EstimatedRows-int64(len(bounds))*partRows, 1), partRows)
			}
		}
		var bytes int64
		if t.EstimatedRows > 0 {
			bytes = t.EstimatedBytes / max(t.EstimatedRows, 1) * rows
		}
		p := model.Partition{
			ID:             fmt.Sprintf("%s/%04d", t.Namespace, i),
			Table:          t.Namespace,
			Index:          i,
			EstimatedRows:  rows,
			EstimatedBytes: bytes,
		}
		if i > 0 {
			p.Lower = bounds[i-1]
		}
		if i < len(bounds) {
			p.Upper = bounds[i]
		}
		parts = append(parts, p)
	}
	return parts, nil
}

// sampleBounds walks the primary key, step rows at a time: each bound is
// found by an index scan of step entries from the previous one, so the
// whole walk reads the key index once, on the server.
func (c *Conn) sampleBounds(ctx context.Context, t *model.Table, ks *keyset, step int64) ([]string, error) {
	codecs, err := c.codecs(t)
	if err != nil {
		return nil, err
	}
	sel := strings.Join(ks.names, ", ")
	var bounds []string
	var prev []any
	for len(bounds) < 100000 {
		q := "SELECT " + sel + " FROM " + quoteName(t.Namespace)
		var args []any
		if prev != nil {
			cond, a, err := ks.cond(">=", prev)
			if err != nil {
				return nil, err
			}
			q += " WHERE " + cond
			args = a
		}
		q += " ORDER BY " + ks.orderBy() + " LIMIT 1 OFFSET " + strconv.FormatInt(step, 10)
		raw := make([]any, len(ks.idx))
		ptrs := make([]any, len(raw))
		for i := range raw {
			ptrs[i] = &raw[i]
		}
		rows, done, err := c.query(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		found := rows.Next()
		if found {
			err = rows.Scan(ptrs...)
		}
		if err == nil {
			err = rows.Err()
		}
		done()
		if err != nil {
			return nil, err
		}
		if !found {
			break
		}
		key := make([]any, len(raw))
		for i, j := range ks.idx {
			if key[i], err = codecs[j].decode(raw[i], false); err != nil {
				return nil, fmt.Errorf("key column %s: %w", t.Columns[j].Name, err)
			}
		}
		b, err := ks.encode(key)
		if err != nil {
			return nil, err
		}
		bounds = append(bounds, b)
		prev = key
	}
	return bounds, nil
}
