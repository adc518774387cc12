package postgres

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/ferrydb/ferry/model"
)

// copyStream is a binary COPY stream of n (ctid, id, text) tuples as the
// server sends it, the tuples without their ctid as raw batches hold them,
// and each tuple's ctid.
func copyStream(n int) (stream, tuples []byte, ctids []model.Cursor) {
	stream = append(stream, copyHeader...)
	for i := 0; i < n; i++ {
		blk, off := uint32(i/7), uint16(i%7+1)
		var fields []byte
		fields = binary.BigEndian.AppendUint32(fields, 8)
		fields = binary.BigEndian.AppendUint64(fields, uint64(i))
		if i%5 == 0 {
			fields = binary.BigEndian.AppendUint32(fields, 0xffffffff) // NULL
		} else {
			s := bytes.Repeat([]byte{'a' + byte(i%26)}, i%40)
			fields = binary.BigEndian.AppendUint32(fields, uint32(len(s)))
			fields = append(fields, s...)
		}
		stream = binary.BigEndian.AppendUint16(stream, 3)
		stream = binary.BigEndian.AppendUint32(stream, 6)
		stream = binary.BigEndian.AppendUint32(stream, blk)
		stream = binary.BigEndian.AppendUint16(stream, off)
		stream = append(stream, fields...)
		tuples = binary.BigEndian.AppendUint16(tuples, 2)
		tuples = append(tuples, fields...)
		ctids = append(ctids, model.Cursor(fmt.Sprintf("(%d,%d)", blk, off)))
	}
	stream = append(stream, 0xff, 0xff)
	return stream, tuples, ctids
}

// TestTupleSplitterAnyChunking: however the stream is cut into writes,
// the batches hold every tuple once without its ctid, and each batch's
// cursor is the ctid of its last row.
func TestTupleSplitterAnyChunking(t *testing.T) {
	stream, tuples, ctids := copyStream(200)
	f := &model.RawFormat{Name: rawFormatName, Columns: []string{"id", "s"}, Types: []string{"bigint", "text"}}
	for _, chunk := range []int{1, 2, 3, 7, 19, 64, 1000, len(stream)} {
		var got []byte
		rows := 0
		s := &tupleSplitter{format: f, batchRows: 30, where: "test", emit: func(b *model.RowBatch) error {
			rows += b.Raw.Rows
			if want := ctids[rows-1]; b.Cursor != want {
				t.Fatalf("chunk %d: batch ending at row %d has cursor %s, want %s", chunk, rows, b.Cursor, want)
			}
			if b.Raw.Rows > 30 || int64(len(b.Raw.Data)) != b.Bytes {
				t.Fatalf("chunk %d: batch of %d rows, %d bytes (Bytes %d)", chunk, b.Raw.Rows, len(b.Raw.Data), b.Bytes)
			}
			got = append(got, b.Raw.Data...)
			return nil
		}}
		for off := 0; off < len(stream); off += chunk {
			part := append([]byte(nil), stream[off:min(off+chunk, len(stream))]...)
			if _, err := s.Write(part); err != nil {
				t.Fatalf("chunk %d: %v", chunk, err)
			}
			clear(part) // the caller reuses its buffer
		}
		if err := s.flush(); err != nil {
			t.Fatal(err)
		}
		if !s.ended || rows != 200 || !bytes.Equal(got, tuples) {
			t.Fatalf("chunk %d: ended %v, %d rows, data equal %v", chunk, s.ended, rows, bytes.Equal(got, tuples))
		}
	}
}

// TestTupleSplitterRefusesDisorder: rows out of ctid order would make the
// cursor skip rows on resume, so they fail the read.
func TestTupleSplitterRefusesDisorder(t *testing.T) {
	stream, _, _ := copyStream(3)
	// The second tuple gets the first one's ctid.
	first := bytes.Index(stream[19:], []byte{0, 3, 0, 0, 0, 6}) + 19
	second := bytes.Index(stream[first+1:], []byte{0, 3, 0, 0, 0, 6}) + first + 1
	copy(stream[second+6:second+12], stream[first+6:first+12])
	f := &model.RawFormat{Name: rawFormatName, Columns: []string{"id", "s"}, Types: []string{"bigint", "text"}}
	s := &tupleSplitter{format: f, batchRows: 30, where: "test", emit: func(*model.RowBatch) error { return nil }}
	if _, err := s.Write(stream); err == nil {
		t.Fatal("rows out of order were accepted")
	}
}
