package file

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/snappy"

	"github.com/ferrydb/ferry/model"
)

// A Parquet part file is a run of segments, one per batch: an 8-byte
// big-endian length, then a complete Parquet file of the batch's rows. A
// segment is appended and fsynced whole, and a checkpoint records the part
// file's length after it, so truncating to a checkpoint (as LoadCheckpoints
// does for every format) always leaves whole segments. FinishTable copies
// the segments' rows into the table's file, a row group (or more, past
// parquetRowGroupRows) per partition.

const segmentHeader = 8

// parquetRowGroupRows bounds a row group of the table file, so assembling a
// large partition holds a bounded number of rows in memory.
const parquetRowGroupRows = 128 << 10

func parquetWriterOptions(l *parquetLayout) []parquet.WriterOption {
	return []parquet.WriterOption{
		l.schema,
		parquet.Compression(&snappy.Codec{}),
		parquet.CreatedBy("ferry", "", ""),
		parquet.MaxRowsPerRowGroup(parquetRowGroupRows),
	}
}

// encodeParquetSegment renders a batch as one framed Parquet segment.
func encodeParquetSegment(b *model.RowBatch) ([]byte, error) {
	if len(b.Rows) == 0 {
		return nil, nil
	}
	l, err := newParquetLayout(b.Table)
	if err != nil {
		return nil, err
	}
	rows := make([]parquet.Row, len(b.Rows))
	for i, row := range b.Rows {
		if len(row) != len(l.cols) {
			return nil, fmt.Errorf("row %d has %d values, the table has %d columns", i, len(row), len(l.cols))
		}
		if rows[i], err = l.appendRow(nil, row); err != nil {
			if key := model.KeyText(b.Table, row); key != "" {
				return nil, fmt.Errorf("row with key %s: %w%s", key, err, excludeHint(err, b.Table))
			}
			return nil, fmt.Errorf("row %d: %w%s", i, err, excludeHint(err, b.Table))
		}
	}
	var buf bytes.Buffer
	buf.Write(make([]byte, segmentHeader))
	w := parquet.NewWriter(&buf, parquetWriterOptions(l)...)
	if _, err := w.WriteRows(rows); err != nil {
		return nil, fmt.Errorf("encode Parquet: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encode Parquet: %w", err)
	}
	out := buf.Bytes()
	binary.BigEndian.PutUint64(out, uint64(len(out)-segmentHeader))
	return out, nil
}

// assembleParquet writes a table's Parquet file from its part files through
// a temporary file and a rename.
func (c *Conn) assembleParquet(ctx context.Context, t *model.Table, final string, parts []partInfo) error {
	l, err := newParquetLayout(t)
	if err != nil {
		return err
	}
	f, err := createTemp(final)
	if err != nil {
		return err
	}
	w := parquet.NewWriter(f, parquetWriterOptions(l)...)
	for _, p := range parts {
		if err := copySegments(ctx, w, filepath.Join(c.dir, p.name)); err != nil {
			return abortTemp(f, err)
		}
		// A row group never spans two partitions.
		if err := w.Flush(); err != nil {
			return abortTemp(f, fmt.Errorf("write %s: %w", f.Name(), err))
		}
	}
	if err := w.Close(); err != nil {
		return abortTemp(f, fmt.Errorf("write %s: %w", f.Name(), err))
	}
	if err := commitTemp(f, final); err != nil {
		return err
	}
	return syncDir(c.dir)
}

// copySegments copies the rows of every segment of a part file.
func copySegments(ctx context.Context, w *parquet.Writer, path string) error {
	pf, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer pf.Close() // read-only: a close error loses nothing
	fi, err := pf.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	size := fi.Size()
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		var hdr [segmentHeader]byte
		if _, err := pf.ReadAt(hdr[:], off); err != nil {
			return fmt.Errorf("%s: segment at byte %d: %w", path, off, err)
		}
		n := int64(binary.BigEndian.Uint64(hdr[:]))
		if n <= 0 || n > size-off-segmentHeader {
			return fmt.Errorf("%s: segment at byte %d claims %d bytes, the file has %d after it", path, off, n, size-off-segmentHeader)
		}
		seg, err := parquet.OpenFile(io.NewSectionReader(pf, off+segmentHeader, n), n)
		if err != nil {
			return fmt.Errorf("%s: segment at byte %d: %w", path, off, err)
		}
		for _, rg := range seg.RowGroups() {
			rows := rg.Rows()
			_, err := parquet.CopyRows(w, rows)
			if cerr := rows.Close(); cerr != nil && err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("%s: segment at byte %d: copy rows: %w", path, off, err)
			}
		}
		off += segmentHeader + n
	}
	return nil
}

var errNotParquet = errors.New("not a Parquet file")
