package verify

import (
	"context"
	"fmt"
	"sort"

	"golang.org/x/sync/errgroup"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// usePushdown sets both sides up to hash their rows in their databases
// when they can and agree: the same hash family (the same engine's
// canonical text, so MySQL to PostgreSQL keeps reading rows) and every
// column of the same native type on both sides. It reports whether it did.
func usePushdown(src, dst *side, dt *model.Table, opts Options) bool {
	if opts.NoPushdown {
		return false
	}
	sh, dh := connector.Discover(src.src).RowHasher, connector.Discover(dst.src).RowHasher
	if sh == nil || dh == nil || sh.HashFamily() == "" || sh.HashFamily() != dh.HashFamily() {
		return false
	}
	var cols []string
	for i, c := range src.srcCols {
		d := dt.Columns[dst.proj[i]]
		if !sameText(c.Type, d.Type) {
			return false
		}
		cols = append(cols, c.Name)
	}
	key := make([]string, len(src.keyIdx))
	for i, j := range src.keyIdx {
		key[i] = src.srcCols[j].Name
	}
	src.hasher, dst.hasher = sh, dh
	src.hashCols, dst.hashCols = cols, cols
	src.hashKey, dst.hashKey = key, key
	return true
}

// sameText tells whether the database spells values of the two types
// alike: the same native type, or text of any size (a MySQL text column
// the destination made longtext).
func sameText(a, b model.Type) bool {
	if a.Kind != b.Kind || a.Native == "" || b.Native == "" {
		return false
	}
	if a.Kind == model.KindText && !a.TextForm && !b.TextForm && a.Elem == nil && b.Elem == nil && len(a.EnumValues) == 0 && len(b.EnumValues) == 0 {
		return true
	}
	return a.Native == b.Native
}

// hashedBuckets asks the database for each bucket's count and hash sums;
// only the n sums cross the network.
func (s *side) hashedBuckets(ctx context.Context, n, lo, hi int) ([]bucket, error) {
	hs, err := s.hasher.HashBuckets(ctx, s.table, s.hashCols, s.hashKey, n, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("hash in the database: %w", err)
	}
	out := make([]bucket, n)
	for i, h := range hs {
		if (i < lo || i >= hi) && h.Rows != 0 {
			return nil, fmt.Errorf("the database hashed bucket %d, outside the range [%d, %d) asked for", i, lo, hi)
		}
		out[i] = bucket{rows: h.Rows, sum1: h.Sum1, sum2: h.Sum2}
	}
	s.rowsRead.Add(int64(hi - lo))
	s.bytesRead.Add(int64(hi-lo) * 24)
	return out, nil
}

// sameTotals asks both databases for one count and hash sum over buckets
// [lo, hi) (connector.TotalHasher) and tells whether they agree, with each
// side's row count. ok is false when a side cannot total: the buckets are
// then asked for at once.
func sameTotals(ctx context.Context, src, dst *side, n, lo, hi int) (same bool, srcRows, dstRows int64, ok bool, err error) {
	st, ok1 := src.hasher.(connector.TotalHasher)
	dt, ok2 := dst.hasher.(connector.TotalHasher)
	if !ok1 || !ok2 {
		return false, 0, 0, false, nil
	}
	var a, b connector.BucketHash
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		a, err = st.HashTotal(gctx, src.table, src.hashCols, src.hashKey, n, lo, hi)
		return wrapSide(err, "source", src.table.Namespace)
	})
	g.Go(func() (err error) {
		b, err = dt.HashTotal(gctx, dst.table, dst.hashCols, dst.hashKey, n, lo, hi)
		return wrapSide(err, "destination", dst.table.Namespace)
	})
	if err := g.Wait(); err != nil {
		return false, 0, 0, true, err
	}
	for _, s := range []*side{src, dst} {
		s.rowsRead.Add(1)
		s.bytesRead.Add(24)
	}
	return a == b, a.Rows, b.Rows, true, nil
}

// hashedKeys asks the database for the key and hash of each row of the
// buckets in want (only the keys in only, when set).
func (s *side) hashedKeys(ctx context.Context, n int, want map[int]bool, only map[string]model.Row) (map[string]rowInfo, error) {
	buckets := make([]int, 0, len(want))
	for b := range want {
		buckets = append(buckets, b)
	}
	sort.Ints(buckets)
	khs, err := s.hasher.HashKeys(ctx, s.table, s.hashCols, s.hashKey, n, buckets)
	if err != nil {
		return nil, fmt.Errorf("hash in the database: %w", err)
	}
	out := map[string]rowInfo{}
	for _, kh := range khs {
		s.rowsRead.Add(1)
		s.bytesRead.Add(int64(len(kh.Key)) + 12)
		if _, ok := only[kh.Key]; only != nil && !ok {
			continue
		}
		ri, ok := out[kh.Key]
		if !ok {
			ri = rowInfo{bucket: kh.Bucket, text: kh.Key, hash: kh.Hash}
		}
		ri.count++
		out[kh.Key] = ri
	}
	if len(out) > 1_000_000 {
		return nil, fmt.Errorf("more than a million rows differ; compare the tables with a smaller --tables selection")
	}
	return out, nil
}

// nameColumns names the differing columns of rows hashed in the databases
// (at most limit of them): each side hashes every column of those rows.
func nameColumns(ctx context.Context, src, dst *side, n int, diffs []keyDiff, limit int) error {
	if src.hasher == nil {
		return nil // read through ferry: named already
	}
	var keys []string
	want := map[int]bool{}
	var at []int
	for i, kd := range diffs {
		if kd.diff.Kind == "different" && len(keys) < limit {
			keys = append(keys, kd.key)
			at = append(at, i)
			want[kd.bucket] = true
		}
	}
	if len(keys) == 0 {
		return nil
	}
	buckets := make([]int, 0, len(want))
	for b := range want {
		buckets = append(buckets, b)
	}
	sort.Ints(buckets)
	sh, err := src.hasher.HashColumns(ctx, src.table, src.hashCols, src.hashKey, n, buckets, keys)
	if err != nil {
		return wrapSide(err, "source", src.table.Namespace)
	}
	dh, err := dst.hasher.HashColumns(ctx, dst.table, dst.hashCols, dst.hashKey, n, buckets, keys)
	if err != nil {
		return wrapSide(err, "destination", dst.table.Namespace)
	}
	for _, i := range at {
		a, b := sh[diffs[i].key], dh[diffs[i].key]
		if len(a) != len(src.hashCols) || len(b) != len(a) {
			continue // changed since: the re-check or the next run tells
		}
		for j := range a {
			if a[j] != b[j] {
				diffs[i].diff.Columns = append(diffs[i].diff.Columns, src.hashCols[j])
			}
		}
	}
	src.rowsRead.Add(int64(len(sh)))
	dst.rowsRead.Add(int64(len(dh)))
	src.bytesRead.Add(int64(len(sh) * 8 * len(src.hashCols)))
	dst.bytesRead.Add(int64(len(dh) * 8 * len(dst.hashCols)))
	return nil
}
