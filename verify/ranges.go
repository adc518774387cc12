package verify

import (
	"context"
	"fmt"
	"sort"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// Range is a part of a table's bucket space, buckets Lo <= b < Hi of Of,
// that one scale-out activity compares; Merge puts the parts' results
// together into the table's.
type Range struct {
	Lo int `json:"lo"`
	Hi int `json:"hi"`
	Of int `json:"of"`
}

// TableRanges is one table to compare and the ranges it is split into
// (none: compared whole, in one piece).
type TableRanges struct {
	Pair   Pair    `json:"pair"`
	Ranges []Range `json:"ranges,omitempty"`
}

// RangeRows is about how many rows one range of a table holds: a table
// is split when it holds more.
const RangeRows = 20_000

// bucketOf is the bucket of a key (its canonical encoding) read through
// ferry: FNV-1a, the same in every process, so that ranges compared by
// different workers split a table's keys between them exactly. (The row
// hashes summed in a bucket are compared within one process only.)
func bucketOf(key []byte, n int) int {
	h := uint64(14695981039346656037)
	for _, c := range key {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return int(h % uint64(n))
}

// bucketCount is how many buckets a table's rows are spread over.
func bucketCount(t *model.Table) int {
	return int(min(max(t.EstimatedRows/5000, 16), 4096))
}

// Split says how each pair is compared: a table both databases hash
// themselves (pushdown) and that holds more than RangeRows rows is split
// into at most most ranges of its buckets, each hashed apart in the
// databases, so several workers share it. A table read through ferry is
// compared whole: its buckets are a hash of the key, so every range would
// read the whole table again.
func Split(ctx context.Context, src, dst connector.Source, pairs []Pair, opts Options, most int) ([]TableRanges, error) {
	dstTables, err := dst.Tables(ctx)
	if err != nil {
		return nil, fmt.Errorf("discover destination tables: %w", err)
	}
	out := make([]TableRanges, len(pairs))
	for i, p := range pairs {
		out[i].Pair = p
		dt := findTable(dstTables, p.Destination)
		if dt == nil || !pushable(src, dst, p.Source, dt, opts) {
			continue
		}
		nb := bucketCount(p.Source)
		k := int(min(int64(most), int64(nb), p.Source.EstimatedRows/RangeRows))
		if k < 2 {
			continue
		}
		for j := range k {
			out[i].Ranges = append(out[i].Ranges, Range{Lo: j * nb / k, Hi: (j + 1) * nb / k, Of: nb})
		}
	}
	return out, nil
}

// pushable tells whether compare would hash the table in both databases.
func pushable(src, dst connector.Source, st, dt *model.Table, opts Options) bool {
	if x, err := opts.Transforms.For(st); err != nil || x != nil {
		return false // a transformed table is read through ferry
	}
	keyIdx := st.KeyIndexes()
	if len(keyIdx) == 0 {
		for i := range st.Columns {
			keyIdx = append(keyIdx, i)
		}
	}
	s := &side{src: src, table: st, srcCols: st.Columns, keyIdx: keyIdx}
	d := &side{src: dst, table: dt, srcCols: st.Columns, keyIdx: keyIdx}
	for i, c := range st.Columns {
		j := dt.ColumnIndex(c.Name)
		if j < 0 {
			return false
		}
		s.proj, d.proj = append(s.proj, i), append(d.proj, j)
	}
	return usePushdown(s, d, dt, opts)
}

// Merge puts the results of a table's ranges together into the result
// the table compared whole gives: counts added, differences listed in key
// order, at most maxDiffs of them.
func Merge(parts []*Result, maxDiffs int) *Result {
	if len(parts) == 0 {
		return nil
	}
	if maxDiffs <= 0 {
		maxDiffs = 20
	}
	r := *parts[0]
	r.Diffs, r.Pending, r.MoreDiffs, r.MorePending = nil, nil, false, false
	r.SourceRows, r.DestinationRows, r.Buckets, r.DifferentBuckets = 0, 0, 0, 0
	r.DifferentKeys, r.PendingKeys, r.RowsRead, r.BytesRead, r.Rechecks = 0, 0, 0, 0, 0
	for _, p := range parts {
		r.SourceRows += p.SourceRows
		r.DestinationRows += p.DestinationRows
		r.Buckets += p.Buckets
		r.DifferentBuckets += p.DifferentBuckets
		r.DifferentKeys += p.DifferentKeys
		r.PendingKeys += p.PendingKeys
		r.RowsRead += p.RowsRead
		r.BytesRead += p.BytesRead
		r.Rechecks = max(r.Rechecks, p.Rechecks)
		r.Pushdown = r.Pushdown && p.Pushdown
		r.Online = r.Online || p.Online
		r.MoreDiffs = r.MoreDiffs || p.MoreDiffs
		r.MorePending = r.MorePending || p.MorePending
		if r.Problem == "" {
			r.Problem = p.Problem
		}
		r.Diffs = append(r.Diffs, p.Diffs...)
		r.Pending = append(r.Pending, p.Pending...)
	}
	r.Diffs, r.MoreDiffs = firstDiffs(r.Diffs, maxDiffs, r.MoreDiffs)
	r.Pending, r.MorePending = firstDiffs(r.Pending, maxDiffs, r.MorePending)
	return &r
}

func firstDiffs(d []Diff, n int, more bool) ([]Diff, bool) {
	sort.Slice(d, func(i, j int) bool { return d[i].Key < d[j].Key })
	if len(d) > n {
		return d[:n], true
	}
	return d, more
}
