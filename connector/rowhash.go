package connector

import (
	"context"

	"github.com/ferrydb/ferry/model"
)

// RowHasher is a source that hashes its own rows inside the database, so
// that verify moves hashes over the network instead of rows (pushdown).
// Each row's canonical text (in the engine's own spelling, under fixed
// session settings) is hashed with MD5; its key's text picks one of n
// buckets. Two sides agree only when their HashFamily is the same and
// their columns have the same native types: verify checks both, and reads
// the rows otherwise.
type RowHasher interface {
	// HashFamily names the canonical text the hashes are of
	// ("postgres"); equal families hash equal rows of equal types
	// equally.
	HashFamily() string
	// HashBuckets returns, for each of n buckets (indexed 0..n-1), the
	// count of t's rows whose key falls in it and two sums of their
	// hashes, for the buckets lo <= b < hi only (the others are zero), so
	// that scale-out spreads a table's buckets over workers. cols are the
	// columns hashed, in order; key the key columns.
	HashBuckets(ctx context.Context, t *model.Table, cols, key []string, n, lo, hi int) ([]BucketHash, error)
	// HashKeys returns each row of the given buckets: its bucket, its key
	// as text ("id=7, line=2") and its hash.
	HashKeys(ctx context.Context, t *model.Table, cols, key []string, n int, buckets []int) ([]KeyHash, error)
	// HashColumns returns, for each of the given keys (as HashKeys spells
	// them) found in the given buckets, one hash per column of cols, so
	// verify can name the columns of a row that differs.
	HashColumns(ctx context.Context, t *model.Table, cols, key []string, n int, buckets []int, keys []string) (map[string][]uint64, error)
}

// TotalHasher is a RowHasher that can sum the hashes of the rows of
// buckets lo <= b < hi in one total, without grouping them by bucket:
// about a third less work for the database than HashBuckets (PostgreSQL,
// a million rows), so verify asks both sides for their totals first and
// for the buckets only when the totals differ. The total is the sum,
// modulo 2^64, of what HashBuckets returns for those buckets.
type TotalHasher interface {
	HashTotal(ctx context.Context, t *model.Table, cols, key []string, n, lo, hi int) (BucketHash, error)
}

// BucketHash is one bucket of a table's rows hashed in the database.
type BucketHash struct {
	Rows       int64
	Sum1, Sum2 uint64 // sums modulo 2^64 of two 64-bit halves of each row's hash
}

// KeyHash is one row hashed in the database.
type KeyHash struct {
	Bucket int
	Key    string
	Hash   uint64
}

// KeyReader is a source that reads rows by key: verify's re-check reads
// the few keys that differed instead of the whole table.
type KeyReader interface {
	// ReadKeys reads the rows of t whose columns cols (a key) hold one of
	// keys, each the cols' values in t's types; a key not found is left
	// out. Batches come in no particular order.
	ReadKeys(ctx context.Context, t *model.Table, cols []string, keys []model.Row, emit func(*model.RowBatch) error) error
}
