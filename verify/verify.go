// Package verify compares a source with a destination without trusting
// either's ordering or collation: every row's key is hashed into one of a
// table's buckets (verify's partitions), each bucket keeps a row count and an
// order-independent sum of row hashes, and only the buckets that differ are
// read again to name the keys that differ.
package verify

import (
	"context"
	"fmt"
	"hash/maphash"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// Options tunes a verification.
type Options struct {
	// Parallel is the number of partitions read at once on each side.
	Parallel int
	// MaxDiffs bounds the keys listed per table.
	MaxDiffs int
	// PartitionRows sizes the read partitions.
	PartitionRows int64
}

// Pair is one table to compare: the source table and its destination name.
type Pair struct {
	Source      *model.Table
	Destination model.Namespace
}

// Diff is one key that differs.
type Diff struct {
	Key string `json:"key"`
	// Kind is "missing" (at the destination), "extra" (only at the
	// destination) or "different" (values differ).
	Kind string `json:"kind"`
	// Columns names the differing columns of a "different" row.
	Columns []string `json:"columns,omitempty"`
}

// Result is one table's comparison.
type Result struct {
	Table            string `json:"table"`
	Destination      string `json:"destination"`
	SourceRows       int64  `json:"source_rows"`
	DestinationRows  int64  `json:"destination_rows"`
	Buckets          int    `json:"buckets"`
	DifferentBuckets int    `json:"different_buckets"`
	Diffs            []Diff `json:"diffs,omitempty"`
	// MoreDiffs reports that more keys differ than are listed.
	MoreDiffs bool `json:"more_diffs,omitempty"`
	// Problem explains a table that could not be compared (missing at the
	// destination, a missing column).
	Problem string `json:"problem,omitempty"`
}

// Equal reports whether the table is the same on both sides.
func (r *Result) Equal() bool {
	return r.Problem == "" && r.DifferentBuckets == 0 && r.SourceRows == r.DestinationRows
}

var seed1, seed2 = maphash.MakeSeed(), maphash.MakeSeed()

type bucket struct {
	rows     int64
	sum1     uint64
	sum2     uint64
	sumOrder uint64
}

// side reads one side of one table.
type side struct {
	src   connector.Source
	table *model.Table // as the side's connector describes it
	// proj maps source column i to this side's column; coerce converts this
	// side's values to the source's types.
	proj    []int
	srcCols []model.Column
	keyIdx  []int // in source column positions
}

// Tables compares each pair and returns one result per pair.
func Tables(ctx context.Context, src, dst connector.Source, pairs []Pair, opts Options) ([]*Result, error) {
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	if opts.MaxDiffs <= 0 {
		opts.MaxDiffs = 20
	}
	dstTables, err := dst.Tables(ctx)
	if err != nil {
		return nil, fmt.Errorf("discover destination tables: %w", err)
	}
	var out []*Result
	for _, p := range pairs {
		r, err := compare(ctx, src, dst, dstTables, p, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// findTable finds the destination table: by exact name, or by table name
// alone for a destination without schemas (SQLite's "main", files).
func findTable(tables []*model.Table, ns model.Namespace) *model.Table {
	var byName []*model.Table
	for _, t := range tables {
		if t.Namespace == ns {
			return t
		}
		if t.Namespace.Table == ns.Table {
			byName = append(byName, t)
		}
	}
	if len(byName) == 1 {
		return byName[0]
	}
	return nil
}

func compare(ctx context.Context, src, dst connector.Source, dstTables []*model.Table, p Pair, opts Options) (*Result, error) {
	st := p.Source
	res := &Result{Table: st.Namespace.String(), Destination: p.Destination.String()}
	dt := findTable(dstTables, p.Destination)
	if dt == nil {
		res.Problem = "table is missing at the destination"
		return res, nil
	}
	keyIdx := st.KeyIndexes()
	if len(keyIdx) == 0 {
		keyIdx = make([]int, len(st.Columns)) // no key: the whole row is the key
		for i := range keyIdx {
			keyIdx[i] = i
		}
	}
	srcSide := &side{src: src, table: st, srcCols: st.Columns, keyIdx: keyIdx}
	dstSide := &side{src: dst, table: dt, srcCols: st.Columns, keyIdx: keyIdx}
	var missing []string
	for i, c := range st.Columns {
		srcSide.proj = append(srcSide.proj, i)
		j := dt.ColumnIndex(c.Name)
		if j < 0 {
			missing = append(missing, c.Name)
		}
		dstSide.proj = append(dstSide.proj, j)
	}
	if len(missing) > 0 {
		res.Problem = "columns missing at the destination: " + strings.Join(missing, ", ")
		return res, nil
	}
	nb := int(min(max(st.EstimatedRows/5000, 16), 4096))
	res.Buckets = nb
	var sb, db []bucket
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		sb, err = srcSide.buckets(gctx, nb, opts)
		return wrapSide(err, "source", st.Namespace)
	})
	g.Go(func() (err error) {
		db, err = dstSide.buckets(gctx, nb, opts)
		return wrapSide(err, "destination", dt.Namespace)
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var diff map[int]bool
	for i := range sb {
		res.SourceRows += sb[i].rows
		res.DestinationRows += db[i].rows
		if sb[i] != db[i] {
			if diff == nil {
				diff = map[int]bool{}
			}
			diff[i] = true
		}
	}
	res.DifferentBuckets = len(diff)
	if len(diff) == 0 {
		return res, nil
	}
	// Narrow down: read the differing buckets again and compare key by key.
	var sk, dk map[string]rowInfo
	g, gctx = errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		sk, err = srcSide.keys(gctx, nb, diff, opts)
		return wrapSide(err, "source", st.Namespace)
	})
	g.Go(func() (err error) {
		dk, err = dstSide.keys(gctx, nb, diff, opts)
		return wrapSide(err, "destination", dt.Namespace)
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var diffs []Diff
	for k, s := range sk {
		d, ok := dk[k]
		switch {
		case !ok || d.count < s.count:
			diffs = append(diffs, Diff{Key: s.text, Kind: "missing"})
		case d.count > s.count:
			diffs = append(diffs, Diff{Key: s.text, Kind: "extra"})
		case d.hash != s.hash:
			diffs = append(diffs, Diff{Key: s.text, Kind: "different", Columns: differingColumns(st.Columns, s.row, d.row)})
		}
	}
	for k, d := range dk {
		if _, ok := sk[k]; !ok {
			diffs = append(diffs, Diff{Key: d.text, Kind: "extra"})
		}
	}
	sort.Slice(diffs, func(i, j int) bool { return diffs[i].Key < diffs[j].Key })
	if len(diffs) > opts.MaxDiffs {
		diffs, res.MoreDiffs = diffs[:opts.MaxDiffs], true
	}
	res.Diffs = diffs
	return res, nil
}

func wrapSide(err error, which string, ns model.Namespace) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("verify %s table %s: %w", which, ns, err)
}

func differingColumns(cols []model.Column, a, b model.Row) []string {
	var out []string
	for i, c := range cols {
		x, err1 := model.AppendCanonical(nil, c.Type, a[i])
		y, err2 := model.AppendCanonical(nil, c.Type, b[i])
		if err1 != nil || err2 != nil || string(x) != string(y) {
			out = append(out, c.Name)
		}
	}
	return out
}

type rowInfo struct {
	text  string
	hash  uint64
	count int
	row   model.Row
}

// scan reads every partition of the side's table in parallel and calls fn
// with each row converted to the source's column order and types, plus its
// canonical key and row encodings. fn is called concurrently.
func (s *side) scan(ctx context.Context, opts Options, fn func(row model.Row, key, enc []byte) error) error {
	plan, err := s.src.Plan(ctx, []*model.Table{s.table}, connector.PlanOptions{PartitionRows: opts.PartitionRows})
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Parallel)
	for _, p := range plan.Partitions {
		g.Go(func() error {
			var key, enc []byte
			return s.src.ReadPartition(gctx, s.table, p, "", func(b *model.RowBatch) error {
				for _, raw := range b.Rows {
					row := make(model.Row, len(s.proj))
					for i, j := range s.proj {
						v, err := model.Coerce(s.srcCols[i].Type, raw[j])
						if err != nil {
							return fmt.Errorf("column %s: %w", s.srcCols[i].Name, err)
						}
						row[i] = v
					}
					var err error
					if key, err = model.KeyOf(key[:0], s.srcCols, s.keyIdx, row); err != nil {
						return err
					}
					if enc, err = model.AppendRow(enc[:0], s.srcCols, row); err != nil {
						return err
					}
					if err := fn(row, key, enc); err != nil {
						return err
					}
				}
				return nil
			})
		})
	}
	return g.Wait()
}

func (s *side) buckets(ctx context.Context, n int, opts Options) ([]bucket, error) {
	out := make([]bucket, n)
	var mu sync.Mutex
	err := s.scan(ctx, opts, func(_ model.Row, key, enc []byte) error {
		b := int(maphash.Bytes(seed1, key) % uint64(n))
		h1, h2 := maphash.Bytes(seed1, enc), maphash.Bytes(seed2, enc)
		mu.Lock()
		out[b].rows++
		out[b].sum1 += h1
		out[b].sum2 += h2
		out[b].sumOrder += h1 * (h2 | 1)
		mu.Unlock()
		return nil
	})
	return out, err
}

func (s *side) keys(ctx context.Context, n int, want map[int]bool, opts Options) (map[string]rowInfo, error) {
	out := map[string]rowInfo{}
	var mu sync.Mutex
	err := s.scan(ctx, opts, func(row model.Row, key, enc []byte) error {
		if !want[int(maphash.Bytes(seed1, key)%uint64(n))] {
			return nil
		}
		h := maphash.Bytes(seed1, enc)
		mu.Lock()
		defer mu.Unlock()
		ri, ok := out[string(key)]
		if !ok {
			ri = rowInfo{text: keyText(s.srcCols, s.keyIdx, row), hash: h, row: row}
		}
		ri.count++
		out[string(key)] = ri
		if len(out) > 1_000_000 {
			return fmt.Errorf("more than a million rows differ; compare the tables with a smaller --tables selection")
		}
		return nil
	})
	return out, err
}

func keyText(cols []model.Column, idx []int, row model.Row) string {
	parts := make([]string, len(idx))
	for i, j := range idx {
		v := "NULL"
		if row[j] != nil {
			if s, err := model.FormatText(cols[j].Type, row[j]); err == nil {
				v = s
			}
			if len(v) > 64 {
				v = v[:61] + "..."
			}
		}
		parts[i] = cols[j].Name + "=" + v
	}
	return strings.Join(parts, ", ")
}
