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
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/transform"
)

// Options tunes a verification.
type Options struct {
	// Parallel is the number of partitions read at once on each side.
	Parallel int
	// MaxDiffs bounds the keys listed per table.
	MaxDiffs int
	// PartitionRows sizes the read partitions.
	PartitionRows int64
	// Online, when set, verifies while the flow applies changes: a key
	// that differs is read again once the flow passed the source's
	// position at which it was seen, up to Rechecks times (default 3).
	Online   Flow
	Rechecks int
	// NoPushdown reads every row through ferry even where both sides can
	// hash their rows themselves (pushdown.go).
	NoPushdown bool
	// Transforms are the flow's (--exclude, --mask, --filter, ...): a
	// table they reshape is compared as the destination should hold it,
	// its source rows transformed, always read through ferry.
	Transforms *transform.Rules
	// Range, when set, compares only the table's buckets [Lo, Hi) of Of:
	// one part of a table scale-out splits (ranges.go).
	Range *Range
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
	// DifferentKeys counts the keys that differ (all of them, listed or
	// not); online, those that still differed after every re-check with
	// the source's row unchanged: persistent differences.
	DifferentKeys int `json:"different_keys"`
	// Online marks a verification run while the flow applies changes:
	// differences were checked again once the flow had passed the source's
	// position at which they were seen, and row counts may be of moments
	// apart.
	Online bool `json:"online,omitempty"`
	// PendingKeys counts the keys (online) whose source row changed at
	// every re-check, so that they could not be judged; Pending lists them.
	PendingKeys int    `json:"pending_keys,omitempty"`
	Pending     []Diff `json:"pending,omitempty"`
	MorePending bool   `json:"more_pending,omitempty"`
	// Rechecks counts the re-check rounds run (online).
	Rechecks int `json:"rechecks,omitempty"`
	// RowsRead counts the rows verify read from both sides, and BytesRead
	// what crossed the network for them (rows as ferry reads them, or the
	// hashes a database computed itself).
	// Pushdown marks a table both databases hashed themselves: RowsRead
	// then counts the hash rows they returned.
	Pushdown  bool  `json:"pushdown,omitempty"`
	RowsRead  int64 `json:"rows_read"`
	BytesRead int64 `json:"bytes_read"`
	// Problem explains a table that could not be compared (missing at the
	// destination, a missing column).
	Problem string `json:"problem,omitempty"`
}

// Equal reports whether the table is the same on both sides.
func (r *Result) Equal() bool {
	if r.Online {
		// Counts and buckets are taken while rows change: only keys that
		// differed at every re-check count.
		return r.Problem == "" && r.DifferentKeys == 0
	}
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

	// hasher, when set, hashes the side's rows in its database
	// (pushdown.go); hashCols and hashKey name the columns it hashes.
	hasher            connector.RowHasher
	hashCols, hashKey []string

	// keyReader, when set, reads the rows of given keys (lookup.go);
	// keyCols name the key columns at this side.
	keyReader connector.KeyReader
	keyCols   []string

	// xf, on the source side of a transformed table, reshapes each row
	// read (and leaves out those its filter does not keep) before it is
	// compared.
	xf *transform.Table

	rowsRead, bytesRead atomic.Int64
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
	// shape is the table as the destination holds it: the source's, or
	// its transform's output.
	shape := st
	xf, err := opts.Transforms.For(st)
	if err != nil {
		return nil, err
	}
	if xf != nil {
		shape = xf.Output()
	}
	keyIdx := shape.KeyIndexes()
	if len(keyIdx) == 0 {
		keyIdx = make([]int, len(shape.Columns)) // no key: the whole row is the key
		for i := range keyIdx {
			keyIdx[i] = i
		}
	}
	srcSide := &side{src: src, table: st, srcCols: shape.Columns, keyIdx: keyIdx, xf: xf}
	dstSide := &side{src: dst, table: dt, srcCols: shape.Columns, keyIdx: keyIdx}
	var missing []string
	for i, c := range shape.Columns {
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
	res.Pushdown = xf == nil && usePushdown(srcSide, dstSide, dt, opts)
	if !res.Pushdown && xf == nil {
		useKeyReaders(srcSide, dstSide, st, dt)
	}
	nb, lo, hi := bucketCount(st), 0, 0
	if opts.Range != nil {
		nb, lo, hi = opts.Range.Of, opts.Range.Lo, opts.Range.Hi
	} else {
		hi = nb
	}
	res.Buckets = hi - lo
	res.Online = opts.Online != nil
	// Both databases total their rows' hashes first, which is cheaper than
	// summing them by bucket; the buckets are asked for only when the
	// totals differ. Not online: while changes flow the totals differ
	// most of the time, and the buckets would be read after them anyway.
	if res.Pushdown && opts.Online == nil {
		same, srcRows, dstRows, ok, err := sameTotals(ctx, srcSide, dstSide, nb, lo, hi)
		if err != nil {
			return nil, err
		}
		if ok && same {
			res.SourceRows, res.DestinationRows = srcRows, dstRows
			res.countReads(srcSide, dstSide)
			return res, nil
		}
	}
	var sb, db []bucket
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		sb, err = srcSide.buckets(gctx, nb, lo, hi, opts)
		return wrapSide(err, "source", st.Namespace)
	})
	g.Go(func() (err error) {
		db, err = dstSide.buckets(gctx, nb, lo, hi, opts)
		return wrapSide(err, "destination", dt.Namespace)
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var diff map[int]bool
	for i := lo; i < hi; i++ {
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
		res.countReads(srcSide, dstSide)
		return res, nil
	}
	// Narrow down: read the differing buckets again and compare key by key.
	found, err := narrow(ctx, srcSide, dstSide, nb, diff, nil, opts)
	if err != nil {
		return nil, err
	}
	var pending []keyDiff
	if opts.Online != nil && len(found) > 0 {
		if found, pending, err = recheck(ctx, res, srcSide, dstSide, nb, found, opts); err != nil {
			return nil, err
		}
	}
	defer res.countReads(srcSide, dstSide)
	if err := nameColumns(ctx, srcSide, dstSide, nb, found, 1000); err != nil {
		return nil, err
	}
	res.Diffs, res.MoreDiffs = listed(found, opts.MaxDiffs)
	res.Pending, res.MorePending = listed(pending, opts.MaxDiffs)
	res.PendingKeys = len(pending)
	res.DifferentKeys = len(found)
	return res, nil
}

// keyDiff is one differing key with what a re-check compares: the
// source's row hash and count when it was read.
type keyDiff struct {
	key     string
	bucket  int
	diff    Diff
	srcHash uint64
	srcRows int
	// keyVals are the key's values in the source's types, nil when the
	// rows were hashed in the databases (not read).
	keyVals model.Row
}

// narrow reads the buckets in want on both sides (only the keys in only,
// when set: each with its key values when known, so a side that reads by
// key looks them up) and returns every key that differs.
func narrow(ctx context.Context, srcSide, dstSide *side, nb int, want map[int]bool, only map[string]model.Row, opts Options) ([]keyDiff, error) {
	var sk, dk map[string]rowInfo
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		sk, err = srcSide.keys(gctx, nb, want, only, opts)
		return wrapSide(err, "source", srcSide.table.Namespace)
	})
	g.Go(func() (err error) {
		dk, err = dstSide.keys(gctx, nb, want, only, opts)
		return wrapSide(err, "destination", dstSide.table.Namespace)
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	cols := srcSide.srcCols
	var diffs []keyDiff
	for k, s := range sk {
		kd := keyDiff{key: k, bucket: s.bucket, srcHash: s.hash, srcRows: s.count, keyVals: srcSide.keyValues(s.row)}
		d, ok := dk[k]
		switch {
		case !ok || d.count < s.count:
			kd.diff = Diff{Key: s.text, Kind: "missing"}
		case d.count > s.count:
			kd.diff = Diff{Key: s.text, Kind: "extra"}
		case d.hash != s.hash:
			kd.diff = Diff{Key: s.text, Kind: "different", Columns: differingColumns(cols, s.row, d.row)}
		default:
			continue
		}
		diffs = append(diffs, kd)
	}
	for k, d := range dk {
		if _, ok := sk[k]; !ok {
			diffs = append(diffs, keyDiff{key: k, bucket: d.bucket, diff: Diff{Key: d.text, Kind: "extra"}, keyVals: srcSide.keyValues(d.row)})
		}
	}
	return diffs, nil
}

// listed sorts the differences by key and keeps at most max of them.
func listed(kds []keyDiff, max int) ([]Diff, bool) {
	if len(kds) == 0 {
		return nil, false
	}
	diffs := make([]Diff, len(kds))
	for i, kd := range kds {
		diffs[i] = kd.diff
	}
	sort.Slice(diffs, func(i, j int) bool { return diffs[i].Key < diffs[j].Key })
	if len(diffs) > max {
		return diffs[:max], true
	}
	return diffs, false
}

func (r *Result) countReads(sides ...*side) {
	for _, s := range sides {
		r.RowsRead += s.rowsRead.Load()
		r.BytesRead += s.bytesRead.Load()
	}
}

func wrapSide(err error, which string, ns model.Namespace) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("verify %s table %s: %w", which, ns, err)
}

func differingColumns(cols []model.Column, a, b model.Row) []string {
	if a == nil || b == nil {
		return nil // hashed in the databases: the rows were not read
	}
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
	bucket int
	text   string
	hash   uint64
	count  int
	row    model.Row
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
					var row model.Row
					var err error
					if s.xf != nil {
						var keep bool
						if raw, keep, err = s.xf.Row(raw); err != nil {
							return err
						}
						if !keep {
							continue
						}
					}
					if row, key, enc, err = s.convert(raw, key[:0], enc[:0]); err != nil {
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

// convert turns a row as the side reads it into the source's column order
// and types, with its canonical key and row encodings (appended to key and
// enc), and counts it read.
func (s *side) convert(raw model.Row, key, enc []byte) (model.Row, []byte, []byte, error) {
	row := make(model.Row, len(s.proj))
	for i, j := range s.proj {
		v, err := model.Coerce(s.srcCols[i].Type, raw[j])
		if err != nil {
			return nil, nil, nil, fmt.Errorf("column %s: %w", s.srcCols[i].Name, err)
		}
		row[i] = v
	}
	var err error
	if key, err = model.KeyOf(key, s.srcCols, s.keyIdx, row); err != nil {
		return nil, nil, nil, err
	}
	if enc, err = model.AppendRow(enc, s.srcCols, row); err != nil {
		return nil, nil, nil, err
	}
	s.rowsRead.Add(1)
	s.bytesRead.Add(int64(len(enc)))
	return row, key, enc, nil
}

// buckets sums the rows of buckets [lo, hi) of n; the others stay zero.
func (s *side) buckets(ctx context.Context, n, lo, hi int, opts Options) ([]bucket, error) {
	if s.hasher != nil {
		return s.hashedBuckets(ctx, n, lo, hi)
	}
	out := make([]bucket, n)
	var mu sync.Mutex
	err := s.scan(ctx, opts, func(_ model.Row, key, enc []byte) error {
		b := bucketOf(key, n)
		if b < lo || b >= hi {
			return nil
		}
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

func (s *side) keys(ctx context.Context, n int, want map[int]bool, only map[string]model.Row, opts Options) (map[string]rowInfo, error) {
	if s.hasher != nil {
		return s.hashedKeys(ctx, n, want, only)
	}
	if s.canLookUp(only) {
		return s.lookUp(ctx, n, only)
	}
	out := map[string]rowInfo{}
	var mu sync.Mutex
	err := s.scan(ctx, opts, func(row model.Row, key, enc []byte) error {
		if !want[bucketOf(key, n)] {
			return nil
		}
		if _, ok := only[string(key)]; only != nil && !ok {
			return nil
		}
		h := maphash.Bytes(seed1, enc)
		mu.Lock()
		defer mu.Unlock()
		ri, ok := out[string(key)]
		if !ok {
			ri = rowInfo{bucket: bucketOf(key, n), text: keyText(s.srcCols, s.keyIdx, row), hash: h, row: row}
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
