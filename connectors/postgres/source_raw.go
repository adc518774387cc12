package postgres

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/ferrydb/ferry/model"
)

// RawFormat offers t's rows as COPY binary tuples when every column's type
// has a binary form another PostgreSQL server reads the same way.
func (c *Conn) RawFormat(ctx context.Context, t *model.Table) (*model.RawFormat, bool, error) {
	if c.keyPartitions() {
		// Key-range partitions' cursors are keys, which the raw tuples'
		// splitter does not take off (it takes a ctid): rows are decoded.
		return nil, false, nil
	}
	names := make([]string, len(t.Columns))
	for i, col := range t.Columns {
		names[i] = col.Name
	}
	cols, ok, err := wireColumns(ctx, c.pool, qualified(t.Namespace), names)
	if err != nil {
		return nil, false, c.classify(err, "read column types of "+t.Namespace.String())
	}
	if !ok {
		return nil, false, nil
	}
	f := &model.RawFormat{Name: rawFormatName, Columns: names, Types: make([]string, len(cols))}
	for i, col := range cols {
		f.Types[i] = col.sig
	}
	return f, true, nil
}

// ReadPartitionRaw reads the partition like ReadPartition, as COPY binary
// tuples.
func (c *Conn) ReadPartitionRaw(ctx context.Context, t *model.Table, p model.Partition, from model.Cursor, f *model.RawFormat, emit func(*model.RowBatch) error) error {
	if f == nil || f.Name != rawFormatName || len(f.Columns) != len(t.Columns) {
		return fmt.Errorf("table %s: raw format %v is not this connector's", t.Namespace, f)
	}
	q, rel, err := partitionQuery(t, p, from, true)
	if err != nil {
		return err
	}
	// The types were negotiated when the copy started and must still be
	// those: COPY sends the current types whatever the snapshot, so they are
	// read outside it (before the read takes its connection, so a lane never
	// holds two of the pool's).
	cols, ok, err := wireColumns(ctx, c.pool, rel, f.Columns)
	if err != nil {
		return c.classify(err, "read partition "+p.ID)
	}
	for i := range f.Types {
		if !ok || cols[i].sig != f.Types[i] {
			return fmt.Errorf("table %s, column %s: its type changed since the copy started; run again (or start the flow over with --restart)", t.Namespace, f.Columns[i])
		}
	}
	batchRows := p.BatchSize(defaultBatchRows)
	conn, end, err := c.beginRead(ctx, p)
	if err != nil {
		return err
	}
	defer end()
	s := &tupleSplitter{format: f, batchRows: batchRows, emit: emit, where: fmt.Sprintf("partition %s of %s", p.ID, t.Namespace)}
	_, err = conn.PgConn().CopyTo(ctx, s, "COPY ("+q+") TO STDOUT (FORMAT binary)")
	if s.err != nil {
		return s.err // the emit or framing error, not the closed connection it caused
	}
	if err != nil {
		return c.classify(err, fmt.Sprintf("read partition %s of %s", p.ID, t.Namespace))
	}
	if !s.ended {
		return fmt.Errorf("%s: COPY stream ended without its trailer", s.where)
	}
	return s.flush()
}

// tupleSplitter is the io.Writer a COPY TO STDOUT (FORMAT binary) of
// (ctid, columns...) writes into: it cuts the stream into tuples, takes
// each tuple's ctid off as the cursor, and emits batches of the rest.
type tupleSplitter struct {
	format    *model.RawFormat
	batchRows int
	emit      func(*model.RowBatch) error
	where     string

	pending []byte // an incomplete tuple (or header) carried to the next Write
	header  bool   // the header was read
	ended   bool   // the trailer was read
	err     error

	data    []byte
	rows    int
	last    tid
	started bool
}

func (s *tupleSplitter) Write(p []byte) (int, error) {
	n := len(p)
	if s.err != nil {
		return 0, s.err
	}
	if len(s.pending) > 0 {
		s.pending = append(s.pending, p...)
		p = s.pending
	}
	used, err := s.split(p)
	if err != nil {
		s.err = err
		return 0, err
	}
	rest := p[used:]
	if len(rest) == 0 {
		s.pending = s.pending[:0]
	} else {
		// Copy before p is reused; rest may alias s.pending.
		s.pending = append(s.pending[:0:0], rest...)
	}
	return n, nil
}

// split consumes every complete unit (header, tuple, trailer) at the start
// of p and returns how many bytes it used.
func (s *tupleSplitter) split(p []byte) (int, error) {
	off := 0
	if !s.header {
		if len(p) < 19 {
			return 0, nil
		}
		if string(p[:11]) != copyHeader[:11] {
			return 0, fmt.Errorf("%s: not a binary COPY stream", s.where)
		}
		ext := int(binary.BigEndian.Uint32(p[15:19]))
		if len(p) < 19+ext {
			return 0, nil
		}
		off = 19 + ext
		s.header = true
	}
	want := len(s.format.Columns) + 1
	for off < len(p) {
		if s.ended {
			return 0, fmt.Errorf("%s: data after the COPY trailer", s.where)
		}
		if len(p)-off < 2 {
			break
		}
		nf := int(int16(binary.BigEndian.Uint16(p[off:])))
		if nf == -1 {
			s.ended = true
			off += 2
			continue
		}
		if nf != want {
			return 0, fmt.Errorf("%s: COPY tuple of %d fields, want %d", s.where, nf, want)
		}
		// The ctid: length 6, block number (4 bytes), offset (2 bytes).
		pos := off + 2
		if len(p)-pos < 10 {
			break
		}
		if binary.BigEndian.Uint32(p[pos:]) != 6 {
			return 0, fmt.Errorf("%s: COPY tuple without its ctid", s.where)
		}
		cur := tid{int64(binary.BigEndian.Uint32(p[pos+4:])), int64(binary.BigEndian.Uint16(p[pos+8:]))}
		pos += 10
		body := pos
		complete := true
		for i := 1; i < nf; i++ {
			if len(p)-pos < 4 {
				complete = false
				break
			}
			l := int(int32(binary.BigEndian.Uint32(p[pos:])))
			pos += 4
			if l > 0 {
				if len(p)-pos < l {
					complete = false
					break
				}
				pos += l
			}
		}
		if !complete {
			break
		}
		if s.started && !s.last.less(cur) {
			return 0, fmt.Errorf("%s: rows came out of physical order (%v after %v); ferry's cursor needs a TID range or sequential scan", s.where, cur, s.last)
		}
		if s.data == nil {
			s.data = make([]byte, 0, min(maxBatchBytes+64<<10, max(64<<10, 2*(pos-off)*s.batchRows)))
		}
		s.data = binary.BigEndian.AppendUint16(s.data, uint16(nf-1))
		s.data = append(s.data, p[body:pos]...)
		s.rows++
		s.last, s.started = cur, true
		off = pos
		if s.rows >= s.batchRows || len(s.data) >= maxBatchBytes {
			if err := s.flush(); err != nil {
				return 0, err
			}
		}
	}
	return off, nil
}

// flush emits the batch being built, if any.
func (s *tupleSplitter) flush() error {
	if s.rows == 0 {
		return nil
	}
	b := &model.RowBatch{
		Raw:    &model.RawRows{Format: s.format, Data: s.data, Rows: s.rows},
		Cursor: model.Cursor("(" + strconv.FormatInt(s.last.block, 10) + "," + strconv.FormatInt(s.last.offset, 10) + ")"),
		Bytes:  int64(len(s.data)),
	}
	s.data, s.rows = nil, 0
	return s.emit(b)
}
