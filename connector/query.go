package connector

import (
	"context"
	"time"

	"github.com/ferrydb/ferry/model"
)

// Query is a query a QueryReader runs for query replication: the user's
// SQL, which the reader wraps as a subquery and never alters, and the
// column of its result that orders and bounds each read.
type Query struct {
	// Name is the destination table, for messages.
	Name model.Namespace
	// SQL is the user's query text.
	SQL string
	// Watermark is a column of the query's result: an integer, a date or a
	// timestamp that grows as rows are added or changed.
	Watermark string
}

// QueryRange is a slice of a query's watermark values: After < watermark
// <= UpTo. After nil has no lower bound. Values are canonical: int64 for
// integers, time.Time for dates and timestamps.
type QueryRange struct {
	After, UpTo any
}

// QueryBatch is a run of a query's rows read in watermark order. No value
// of the watermark has rows in two batches, so Last (the watermark of the
// batch's last rows) is a cursor: a read resumed with After = Last neither
// repeats nor loses a row.
type QueryBatch struct {
	Rows  []model.Row
	Bytes int64
	Last  any
}

// QueryReader is a source that can replicate the result of a query
// (ferry sync --query): describe its columns, bound its watermark and read
// its rows in watermark order.
type QueryReader interface {
	// DescribeQuery returns the query's result columns as a table named
	// q.Name, in canonical types, without reading a row. A query that does
	// not run (syntax, unknown table or column) is a *errs.ConfigError
	// naming q.Name.
	DescribeQuery(ctx context.Context, q Query) (*model.Table, error)
	// QueryBounds returns the smallest and largest watermark of the
	// query's rows above after (nil: all rows); both nil when there is no
	// such row. t is what DescribeQuery returned.
	QueryBounds(ctx context.Context, q Query, t *model.Table, after any) (lo, hi any, err error)
	// ReadQuery reads the rows in r ordered by the watermark, in batches of
	// about batchRows rows (more when one watermark value has more), and
	// calls emit for each in order. Rows whose watermark is NULL are never
	// read.
	ReadQuery(ctx context.Context, q Query, t *model.Table, r QueryRange, batchRows int, emit func(*QueryBatch) error) error
}

// SameWatermark reports whether two watermark values are equal: int64s,
// or time.Times at the same instant.
func SameWatermark(a, b any) bool {
	switch x := a.(type) {
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	default:
		return a == b
	}
}

// QueryBatcher cuts a query's rows, read in watermark order, into
// QueryBatches of at least rows rows (or 4 MiB), each ending where the
// watermark changes: the one rule every QueryReader keeps. One watermark
// value's rows always go in one batch, however many.
type QueryBatcher struct {
	rows  int
	emit  func(*QueryBatch) error
	batch *QueryBatch
}

// NewQueryBatcher emits through emit batches of at least rows rows.
func NewQueryBatcher(rows int, emit func(*QueryBatch) error) *QueryBatcher {
	if rows <= 0 {
		rows = 5000
	}
	return &QueryBatcher{rows: rows, emit: emit, batch: &QueryBatch{}}
}

// queryBatchBytes also fills a batch, so wide rows keep memory bounded.
const queryBatchBytes = 4 << 20

// Add takes the next row, whose watermark is wm; a full batch (rows, or
// 4 MiB) goes out when wm differs from its last row's.
func (b *QueryBatcher) Add(row model.Row, wm any, size int64) error {
	full := len(b.batch.Rows) >= b.rows || b.batch.Bytes >= queryBatchBytes
	if full && len(b.batch.Rows) > 0 && !SameWatermark(wm, b.batch.Last) {
		if err := b.Flush(); err != nil {
			return err
		}
	}
	b.batch.Rows = append(b.batch.Rows, row)
	b.batch.Bytes += size
	b.batch.Last = wm
	return nil
}

// Flush emits the rows held, if any.
func (b *QueryBatcher) Flush() error {
	if len(b.batch.Rows) == 0 {
		return nil
	}
	out := b.batch
	b.batch = &QueryBatch{Rows: make([]model.Row, 0, b.rows)}
	return b.emit(out)
}
