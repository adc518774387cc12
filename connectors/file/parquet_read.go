package file

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/ferrydb/ferry/model"
)

// A Parquet table file is read by row number: a partition is a run of whole
// row groups, [Lower, Upper) the numbers of its first row and of the row
// after its last, and a cursor the number of the next row to read.

// openParquet opens a table's Parquet file; the caller closes f.
func openParquet(path string) (*os.File, *parquet.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close() // read-only: a close error loses nothing
		return nil, nil, fmt.Errorf("stat %s: %w", path, err)
	}
	pf, err := parquet.OpenFile(f, fi.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		f.Close() // read-only: a close error loses nothing
		return nil, nil, fmt.Errorf("%s: %w: %w", path, errNotParquet, err)
	}
	return f, pf, nil
}

// describeParquet reads a Parquet table file's columns (from its sidecar t
// when there is one) and size.
func describeParquet(path, sidecar string, t *model.Table) (*model.Table, error) {
	f, pf, err := openParquet(path)
	if err != nil {
		return nil, err
	}
	defer f.Close() // read-only: a close error loses nothing
	if t == nil {
		cols, err := inferParquet(pf.Schema())
		if err != nil {
			return nil, fmt.Errorf("%s: %w; write a schema sidecar %s", path, err, sidecar)
		}
		t = &model.Table{Columns: cols}
	} else if err := checkParquetSchema(pf.Schema(), t); err != nil {
		return nil, fmt.Errorf("%s: %w (the columns come from %s)", path, err, sidecar)
	}
	t.EstimatedRows = pf.NumRows()
	t.EstimatedBytes = pf.Size()
	return t, nil
}

// checkParquetSchema refuses a file whose leaf columns are not the table's
// columns, in order.
func checkParquetSchema(s *parquet.Schema, t *model.Table) error {
	l, err := newParquetLayout(t)
	if err != nil {
		return err
	}
	got, want := s.Fields(), l.schema.Fields()
	if len(got) != len(want) {
		return fmt.Errorf("it has %d columns, the table %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Name() != want[i].Name() {
			return fmt.Errorf("its column %d is %q, the table's is %q", i+1, got[i].Name(), want[i].Name())
		}
		if !parquet.EqualNodes(got[i], want[i]) {
			return fmt.Errorf("its column %q is %s, the table's type %s is %s", got[i].Name(), nodeString(got[i]), t.Columns[i].Type, nodeString(want[i]))
		}
	}
	return nil
}

func nodeString(n parquet.Node) string {
	if n.Leaf() {
		return n.Type().String()
	}
	return n.String()
}

// inferParquet reads the columns of a Parquet file without a sidecar from its
// schema: flat columns and LISTs of them, by their logical types.
func inferParquet(s *parquet.Schema) ([]model.Column, error) {
	var cols []model.Column
	for _, f := range s.Fields() {
		c := model.Column{Name: f.Name(), Nullable: f.Optional()}
		if f.Repeated() {
			return nil, fmt.Errorf("column %q is repeated without a LIST annotation", f.Name())
		}
		var err error
		if !f.Leaf() {
			if !isListNode(f) {
				return nil, fmt.Errorf("column %q is a group, which only a LIST may be", f.Name())
			}
			inner := f.Fields()
			if len(inner) != 1 || !inner[0].Repeated() || inner[0].Leaf() || len(inner[0].Fields()) != 1 || !inner[0].Fields()[0].Leaf() {
				return nil, fmt.Errorf("column %q is a LIST of a form ferry does not read", f.Name())
			}
			elem, err := inferLeafType(inner[0].Fields()[0])
			if err != nil {
				return nil, fmt.Errorf("column %q: %w", f.Name(), err)
			}
			c.Type = model.Type{Kind: model.KindArray, Elem: &elem}
		} else if c.Type, err = inferLeafType(f); err != nil {
			return nil, fmt.Errorf("column %q: %w", f.Name(), err)
		}
		cols = append(cols, c)
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("the file has no columns")
	}
	return cols, nil
}

// inferLeafType is the model type of a leaf column written the way ferry
// writes that type; the others are refused.
func inferLeafType(n parquet.Node) (model.Type, error) {
	typ := n.Type()
	k := func(k model.Kind) (model.Type, error) { return model.Type{Kind: k}, nil }
	var lv format.LogicalTypeValue
	if lt := typ.LogicalType(); lt != nil {
		lv = lt.Value
	}
	switch x := lv.(type) {
	case *format.IntType:
		switch {
		case !x.IsSigned:
		case x.BitWidth <= 16:
			return k(model.KindInt16)
		case x.BitWidth == 32:
			return k(model.KindInt32)
		case x.BitWidth == 64:
			return k(model.KindInt64)
		}
	case *format.DecimalType:
		return model.Type{Kind: model.KindDecimal, Precision: int(x.Precision), Scale: int(x.Scale)}, nil
	case *format.StringType, *format.EnumType:
		return k(model.KindText)
	case *format.JsonType:
		return k(model.KindJSON)
	case *format.UUIDType:
		return k(model.KindUUID)
	case *format.DateType:
		return k(model.KindDate)
	case *format.TimestampType:
		if isMicros(x.Unit) {
			if x.IsAdjustedToUTC {
				return k(model.KindTimestampTZ)
			}
			return k(model.KindTimestamp)
		}
	case *format.TimeType:
		if isMicros(x.Unit) {
			return k(model.KindTime)
		}
	case nil:
		if typ.ConvertedType() != nil {
			break
		}
		switch typ.Kind() {
		case parquet.Boolean:
			return k(model.KindBool)
		case parquet.Int32:
			return k(model.KindInt32)
		case parquet.Int64:
			return k(model.KindInt64)
		case parquet.Float:
			return k(model.KindFloat32)
		case parquet.Double:
			return k(model.KindFloat64)
		case parquet.ByteArray:
			return k(model.KindBytes)
		}
	}
	return model.Type{}, fmt.Errorf("Parquet type %s has no model type here", typ)
}

func isListNode(n parquet.Node) bool {
	lt := n.Type().LogicalType()
	if lt == nil {
		return false
	}
	_, ok := lt.Value.(*format.ListType)
	return ok
}

func isMicros(u format.TimeUnit) bool {
	_, ok := u.Value.(*format.MicroSeconds)
	return ok
}

// splitParquet cuts a table's Parquet file into partitions of whole row
// groups of about partRows rows.
func (c *Conn) splitParquet(path string, partRows int64) (bounds, rows, sizes []int64, err error) {
	f, pf, err := openParquet(path)
	if err != nil {
		return nil, nil, nil, err
	}
	defer f.Close() // read-only: a close error loses nothing
	bounds = []int64{0}
	var n, size, at int64
	for _, rg := range pf.Metadata().RowGroups {
		n += rg.NumRows
		size += rg.TotalCompressedSize
		at += rg.NumRows
		if n >= partRows {
			bounds, rows, sizes = append(bounds, at), append(rows, n), append(sizes, size)
			n, size = 0, 0
		}
	}
	if n > 0 || len(rows) == 0 {
		bounds, rows, sizes = append(bounds, at), append(rows, n), append(sizes, size)
	}
	return bounds, rows, sizes, nil
}

// readParquetPartition reads rows [start, upper) of a table's Parquet file.
func (c *Conn) readParquetPartition(ctx context.Context, t *model.Table, p model.Partition, path string, start, upper int64, emit func(*model.RowBatch) error) error {
	f, pf, err := openParquet(path)
	if err != nil {
		return fmt.Errorf("read table %s: %w", t.Namespace, err)
	}
	defer f.Close() // read-only: a close error loses nothing
	fail := func(err error) error {
		return fmt.Errorf("read table %s partition %s: %s: %w", t.Namespace, p.ID, path, err)
	}
	if pf.NumRows() < upper {
		return fail(fmt.Errorf("it has %d rows, but the partition ends at row %d: the file changed since the plan was made", pf.NumRows(), upper))
	}
	if err := checkParquetSchema(pf.Schema(), t); err != nil {
		return fail(err)
	}
	l, err := newParquetLayout(t)
	if err != nil {
		return fail(err)
	}
	batchRows := p.BatchSize(defaultBatchRows)
	batch := &model.RowBatch{Table: t, Partition: p.ID, Rows: make([]model.Row, 0, min(batchRows, 1024))}
	buf := make([]parquet.Row, 256)
	cursor := start
	var rgStart int64
	for _, rg := range pf.RowGroups() {
		rgEnd := rgStart + rg.NumRows()
		if rgEnd <= cursor || rgStart >= upper {
			rgStart = rgEnd
			continue
		}
		if err := c.readRowGroup(ctx, rg, cursor-rgStart, min(upper, rgEnd)-cursor, buf, func(r parquet.Row, size int64) error {
			row, err := l.decodeRow(r)
			if err != nil {
				return fmt.Errorf("row %d: %w", cursor, err)
			}
			batch.Rows = append(batch.Rows, row)
			batch.Bytes += size
			cursor++
			if len(batch.Rows) >= batchRows || batch.Bytes >= maxBatchBytes {
				batch.Cursor = model.Cursor(strconv.FormatInt(cursor, 10))
				if err := emit(batch); err != nil {
					return err
				}
				batch = &model.RowBatch{Table: t, Partition: p.ID, Rows: make([]model.Row, 0, min(batchRows, 1024))}
			}
			return nil
		}); err != nil {
			if ctx.Err() != nil {
				return err
			}
			return fail(err)
		}
		rgStart = rgEnd
	}
	if cursor != upper {
		return fail(fmt.Errorf("read up to row %d, before the partition's end at row %d", cursor, upper))
	}
	if len(batch.Rows) > 0 {
		batch.Cursor = model.Cursor(strconv.FormatInt(upper, 10))
		return emit(batch)
	}
	return nil
}

// readRowGroup calls each for n rows of rg from its row skip on.
func (c *Conn) readRowGroup(ctx context.Context, rg parquet.RowGroup, skip, n int64, buf []parquet.Row, each func(parquet.Row, int64) error) (err error) {
	rows := rg.Rows()
	defer func() {
		if cerr := rows.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if skip > 0 {
		if err := rows.SeekToRow(skip); err != nil {
			return fmt.Errorf("seek to row %d of a row group: %w", skip, err)
		}
	}
	for n > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		k, rerr := rows.ReadRows(buf[:min(int64(len(buf)), n)])
		for _, r := range buf[:k] {
			var size int64
			for _, v := range r {
				size += 8
				if k := v.Kind(); (k == parquet.ByteArray || k == parquet.FixedLenByteArray) && !v.IsNull() {
					size += int64(len(v.ByteArray()))
				}
			}
			if err := each(r, size); err != nil {
				return err
			}
		}
		n -= int64(k)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if n > 0 {
		return fmt.Errorf("the row group ended %d rows early", n)
	}
	return nil
}

// parquetRow is a row as parquet-go reads it.
type parquetRow = parquet.Row
