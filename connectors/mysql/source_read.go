package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

const (
	defaultPartitionRows = 250000
	defaultBatchRows     = 5000
	// offsetPrefix marks the cursor of a table without a key: the number of
	// rows already emitted.
	offsetPrefix = "offset:"
)

// Plan partitions each table into primary-key ranges of about
// opts.PartitionRows rows (by the server's row estimate), and with opts.CDC
// first checks the binlog and records T0. A table without a primary key is
// one partition, read in one pass.
func (c *Conn) Plan(ctx context.Context, tables []*model.Table, opts connector.PlanOptions) (*model.Plan, error) {
	if opts.BatchRows > 0 {
		c.batchRows.Store(int64(opts.BatchRows))
	}
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
			parts[i], errs[i] = c.planTable(ctx, t, partRows)
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

// codecs returns the decoders of t's columns, refusing a column of a type
// ferry cannot read.
func (c *Conn) codecs(t *model.Table) ([]*codec, error) {
	out := make([]*codec, len(t.Columns))
	for i, col := range t.Columns {
		if col.Type.Kind == model.KindUnknown {
			ct, err := parseColType(col.Type.Native)
			if err == nil {
				_, err = ct.canonical()
			}
			if err == nil {
				err = fmt.Errorf("type %s is not supported", col.Type.Native)
			}
			return nil, fmt.Errorf("table %s, column %s: %w", t.Namespace, col.Name, err)
		}
		cd, err := newCodec(col, "", c.opts.zeroNull)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", t.Namespace, err)
		}
		out[i] = cd
	}
	return out, nil
}

func (c *Conn) batchSize() int {
	if n := c.batchRows.Load(); n > 0 {
		return int(n)
	}
	return defaultBatchRows
}

// ReadPartition reads p in key order after from, one keyset-paginated query
// per batch, each at the server's current state (see the package doc for why
// that converges with CDC from T0).
func (c *Conn) ReadPartition(ctx context.Context, t *model.Table, p model.Partition, from model.Cursor, emit func(*model.RowBatch) error) error {
	codecs, err := c.codecs(t)
	if err != nil {
		return err
	}
	ks, err := keysetFor(t)
	if err != nil {
		return err
	}
	if ks == nil {
		return c.readWhole(ctx, t, p, from, codecs, emit)
	}
	where := func(err error) error {
		err = fmt.Errorf("table %s, partition %s: %w", t.Namespace, p.ID, err)
		if lostConnection(err) {
			return connector.Unavailable(err) // the engine reads again from the cursor
		}
		return err
	}
	lower, err := ks.decode(p.Lower)
	if err != nil {
		return where(fmt.Errorf("lower bound: %w", err))
	}
	upper, err := ks.decode(p.Upper)
	if err != nil {
		return where(fmt.Errorf("upper bound: %w", err))
	}
	cursor, err := ks.decode(string(from))
	if err != nil {
		return where(fmt.Errorf("cursor: %w", err))
	}
	batchRows := c.batchSize()
	head := "SELECT " + selectList(t) + " FROM " + quoteName(t.Namespace)
	tail := " ORDER BY " + ks.orderBy() + " LIMIT " + strconv.Itoa(batchRows)
	for {
		var conds []string
		var args []any
		add := func(op string, vals []any) error {
			cond, a, err := ks.cond(op, vals)
			if err != nil {
				return err
			}
			conds = append(conds, cond)
			args = append(args, a...)
			return nil
		}
		switch {
		case cursor != nil:
			err = add(">", cursor)
		case lower != nil:
			err = add(">=", lower)
		}
		if err == nil && upper != nil {
			err = add("<", upper)
		}
		if err != nil {
			return where(err)
		}
		q := head
		if len(conds) > 0 {
			q += " WHERE " + strings.Join(conds, " AND ")
		}
		b := &model.RowBatch{Table: t, Partition: p.ID, Rows: make([]model.Row, 0, batchRows)}
		if err := c.queryRows(ctx, q+tail, args, t, codecs, b); err != nil {
			return where(err)
		}
		if len(b.Rows) == 0 {
			return nil
		}
		cursor = ks.keyOf(b.Rows[len(b.Rows)-1])
		cur, err := ks.encode(cursor)
		if err != nil {
			return where(fmt.Errorf("cursor: %w", err))
		}
		b.Cursor = model.Cursor(cur)
		if err := emit(b); err != nil {
			return err
		}
		if len(b.Rows) < batchRows {
			return nil
		}
	}
}

// readWhole reads a table without a key in one query. Its cursor counts the
// rows emitted; a resumed read skips that many rows of a new scan, which
// returns them in the same order as long as the table is not written (an
// InnoDB table without a key is clustered by an internal row id).
func (c *Conn) readWhole(ctx context.Context, t *model.Table, p model.Partition, from model.Cursor, codecs []*codec, emit func(*model.RowBatch) error) error {
	var skip int64
	if from != "" {
		n, err := strconv.ParseInt(strings.TrimPrefix(string(from), offsetPrefix), 10, 64)
		if err != nil || !strings.HasPrefix(string(from), offsetPrefix) {
			return fmt.Errorf("table %s, partition %s: bad cursor %q", t.Namespace, p.ID, from)
		}
		skip = n
	}
	q := "SELECT " + selectList(t) + " FROM " + quoteName(t.Namespace)
	if skip > 0 {
		q += " LIMIT 18446744073709551615 OFFSET " + strconv.FormatInt(skip, 10)
	}
	batchRows := c.batchSize()
	emitted := skip
	flush := func(b *model.RowBatch) error {
		emitted += int64(len(b.Rows))
		b.Cursor = model.Cursor(offsetPrefix + strconv.FormatInt(emitted, 10))
		return emit(b)
	}
	rows, done, err := c.query(ctx, q)
	if err != nil {
		return fmt.Errorf("table %s, partition %s: %w", t.Namespace, p.ID, err)
	}
	defer done()
	sc := newRowScanner(codecs)
	b := &model.RowBatch{Table: t, Partition: p.ID, Rows: make([]model.Row, 0, batchRows)}
	for rows.Next() {
		raw, err := sc.scan(rows)
		if err != nil {
			return fmt.Errorf("table %s, partition %s: %w", t.Namespace, p.ID, c.scrubber.Err(err))
		}
		row, err := decodeRow(t, codecs, raw, false)
		if err != nil {
			return fmt.Errorf("table %s, partition %s, row %d: %w", t.Namespace, p.ID, emitted+int64(len(b.Rows))+1, err)
		}
		b.Rows = append(b.Rows, row)
		b.Bytes += rowSize(row)
		if len(b.Rows) == batchRows {
			if err := flush(b); err != nil {
				return err
			}
			b = &model.RowBatch{Table: t, Partition: p.ID, Rows: make([]model.Row, 0, batchRows)}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("table %s, partition %s: %w", t.Namespace, p.ID, c.scrubber.Err(err))
	}
	if len(b.Rows) > 0 {
		return flush(b)
	}
	return nil
}

func selectList(t *model.Table) string {
	cols := make([]string, len(t.Columns))
	for i, col := range t.Columns {
		cols[i] = quoteIdent(col.Name)
	}
	return strings.Join(cols, ", ")
}

// query runs a read through a prepared statement, so results arrive in the
// binary protocol: the text protocol prints a FLOAT with 6 digits, losing
// its exact value.
func (c *Conn) query(ctx context.Context, q string, args ...any) (*sql.Rows, func(), error) {
	stmt, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, nil, c.scrubber.Err(err)
	}
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		stmt.Close()
		return nil, nil, c.scrubber.Err(err)
	}
	return rows, func() { rows.Close(); stmt.Close() }, nil
}

// queryRows runs one page query into b.
func (c *Conn) queryRows(ctx context.Context, q string, args []any, t *model.Table, codecs []*codec, b *model.RowBatch) error {
	rows, done, err := c.query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer done()
	sc := newRowScanner(codecs)
	for rows.Next() {
		raw, err := sc.scan(rows)
		if err != nil {
			return c.scrubber.Err(err)
		}
		row, err := decodeRow(t, codecs, raw, false)
		if err != nil {
			return err
		}
		b.Rows = append(b.Rows, row)
		b.Bytes += rowSize(row)
	}
	return c.scrubber.Err(rows.Err())
}

// rowScanner scans result rows with one copy of each value: columns the
// binary protocol returns as bytes (text, decimals, dates, blobs) are
// scanned into sql.RawBytes, which the codecs copy as they decode, rather
// than into an any, for which database/sql makes a copy of its own.
//
// A byte column's value is its *sql.RawBytes, which codec.decode accepts.
type rowScanner struct {
	raw   []any
	ptrs  []any
	bytes []sql.RawBytes
}

func newRowScanner(codecs []*codec) *rowScanner {
	n := len(codecs)
	s := &rowScanner{raw: make([]any, n), ptrs: make([]any, n), bytes: make([]sql.RawBytes, n)}
	for i, cd := range codecs {
		if cd.bytesOnWire() {
			s.ptrs[i] = &s.bytes[i]
			s.raw[i] = &s.bytes[i]
		} else {
			s.ptrs[i] = &s.raw[i]
		}
	}
	return s
}

// scan reads the current row. The values are valid until the next call:
// decode them first.
func (s *rowScanner) scan(rows *sql.Rows) ([]any, error) {
	if err := rows.Scan(s.ptrs...); err != nil {
		return nil, err
	}
	return s.raw, nil
}

// decodeRow converts one row. An error names the column and, when it is not
// a key column, the row's key.
func decodeRow(t *model.Table, codecs []*codec, raw []any, fromBinlog bool) (model.Row, error) {
	row := make(model.Row, len(t.Columns))
	for i := range t.Columns {
		v, err := codecs[i].decode(raw[i], fromBinlog)
		if err != nil {
			return nil, columnErr(t, t.Columns[i].Name, decodeKey(t, codecs, raw, fromBinlog), err)
		}
		row[i] = v
	}
	return row, nil
}

// decodeKey decodes only the key columns of a row, for an error message; nil
// when one of them cannot be decoded.
func decodeKey(t *model.Table, codecs []*codec, raw []any, fromBinlog bool) model.Row {
	row := make(model.Row, len(t.Columns))
	for _, name := range t.PrimaryKey {
		i := t.ColumnIndex(name)
		if i < 0 {
			return nil
		}
		v, err := codecs[i].decode(raw[i], fromBinlog)
		if err != nil {
			return nil
		}
		row[i] = v
	}
	return row
}

func columnErr(t *model.Table, col string, row model.Row, err error) error {
	msg := "column " + col
	if row != nil && len(t.PrimaryKey) > 0 {
		msg += ", key " + formatKey(t, row)
	}
	if errors.As(err, new(cannotHold)) || errors.Is(err, model.ErrMultiDimJSONArray) {
		return fmt.Errorf("%s: %w; exclude the table with --tables '!%s' or copy it to another destination", msg, err, t.Namespace)
	}
	if errors.Is(err, errZeroDate) {
		return fmt.Errorf("%s: %w, which no date or timestamp can represent; add zero_dates=null to the source URL to read zero dates as NULL, or fix the rows", msg, err)
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// rowSize approximates a row's size in bytes.
func rowSize(row model.Row) int64 {
	var n int64
	for _, v := range row {
		switch x := v.(type) {
		case nil:
			n++
		case string:
			n += int64(len(x))
		case []byte:
			n += int64(len(x))
		default:
			n += 8
		}
	}
	return n
}
