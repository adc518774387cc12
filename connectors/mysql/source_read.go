package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

const (
	defaultPartitionRows = 250000
	defaultBatchRows     = 5000
	// offsetPrefix marks the cursor of a table without a key: the number of
	// rows already emitted.
	offsetPrefix = "offset:"
)

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
			return errs.Unavailable(err) // the engine reads again from the cursor
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
	batchRows := p.BatchSize(defaultBatchRows)
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
	batchRows := p.BatchSize(defaultBatchRows)
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
