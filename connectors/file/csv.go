package file

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/ferrydb/ferry/model"
)

// ferry's CSV is RFC 4180 with one addition that encoding/csv cannot read
// back: an empty unquoted field is NULL, and the empty string is written as
// "" (quoted). Fields holding a comma, a quote, CR or LF are quoted, quotes
// doubled; everything else (leading spaces, NUL bytes, any other byte) is
// written verbatim. Records end with "\n"; "\r\n" is accepted on read.

// appendCSVField appends one non-NULL field.
func appendCSVField(buf []byte, s string) []byte {
	if s == "" {
		return append(buf, '"', '"')
	}
	if !strings.ContainsAny(s, ",\"\r\n") {
		return append(buf, s...)
	}
	buf = append(buf, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			buf = append(buf, '"')
		}
		buf = append(buf, s[i])
	}
	return append(buf, '"')
}

// appendCSVHeader appends the header record: the column names.
func appendCSVHeader(buf []byte, cols []model.Column) []byte {
	for i, c := range cols {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendCSVField(buf, c.Name)
	}
	return append(buf, '\n')
}

// appendCSVRow appends row as one record of model.FormatText values.
func appendCSVRow(buf []byte, cols []model.Column, row model.Row) ([]byte, error) {
	for i, c := range cols {
		if i > 0 {
			buf = append(buf, ',')
		}
		v := row[i]
		if v == nil {
			continue
		}
		if err := checkValue(c.Type, v); err != nil {
			return nil, fmt.Errorf("column %q: %w", c.Name, err)
		}
		s, err := model.FormatText(c.Type, v)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", c.Name, err)
		}
		buf = appendCSVField(buf, s)
	}
	return append(buf, '\n'), nil
}

// csvField is one parsed field; an unquoted empty field is NULL.
type csvField struct {
	s      string
	quoted bool
}

func (f csvField) isNull() bool { return !f.quoted && f.s == "" }

// csvReader parses records, which may span lines inside quotes.
type csvReader struct {
	lr     *lineReader
	fields []csvField
	buf    []byte
}

func newCSVReader(r io.Reader) *csvReader { return &csvReader{lr: newLineReader(r)} }

// offset is the number of bytes consumed.
func (r *csvReader) offset() int64 { return r.lr.off }

// read returns the next record (valid until the next call), or io.EOF.
func (r *csvReader) read() ([]csvField, error) {
	r.fields = r.fields[:0]
	line, err := r.lr.next()
	if err != nil {
		return nil, err
	}
	pos := 0
	for {
		if pos < len(line) && line[pos] == '"' {
			r.buf = r.buf[:0]
			pos++
			for {
				i := bytes.IndexByte(line[pos:], '"')
				if i < 0 {
					// The field goes on past the end of the line.
					r.buf = append(r.buf, line[pos:]...)
					if len(r.buf) > r.lr.max {
						return nil, fmt.Errorf("quoted field %d is longer than %d bytes: is a quote missing?", len(r.fields)+1, r.lr.max)
					}
					if line, err = r.lr.next(); err == io.EOF {
						return nil, fmt.Errorf("quoted field %d is not closed: the data ends inside it", len(r.fields)+1)
					} else if err != nil {
						return nil, err
					}
					pos = 0
					continue
				}
				r.buf = append(r.buf, line[pos:pos+i]...)
				pos += i + 1
				if pos < len(line) && line[pos] == '"' {
					r.buf = append(r.buf, '"')
					pos++
					continue
				}
				break
			}
			r.fields = append(r.fields, csvField{s: string(r.buf), quoted: true})
			switch {
			case pos == len(line):
				return r.fields, nil
			case line[pos] == ',':
				pos++
				continue
			case line[pos] == '\n' || (line[pos] == '\r' && pos+1 < len(line) && line[pos+1] == '\n'):
				return r.fields, nil
			}
			return nil, fmt.Errorf("field %d: unexpected %q after a closing quote (quotes inside a quoted field are doubled)", len(r.fields), line[pos])
		}
		end := pos
		for end < len(line) && line[end] != ',' && line[end] != '\n' {
			if line[end] == '"' {
				return nil, fmt.Errorf("field %d: quote inside an unquoted field (quote the field and double the quote)", len(r.fields)+1)
			}
			end++
		}
		field := line[pos:end]
		if end < len(line) && line[end] == '\n' {
			field = bytes.TrimSuffix(field, []byte{'\r'})
		}
		r.fields = append(r.fields, csvField{s: string(field)})
		if end < len(line) && line[end] == ',' {
			pos = end + 1
			continue
		}
		return r.fields, nil
	}
}

// csvHeader is a CSV file's header and where the data starts.
type csvHeader struct {
	names []string
	// end is the offset of the first data record.
	end int64
}

// maxHeaderBytes bounds a CSV header, read before anything is known of the
// file.
const maxHeaderBytes = 1 << 20

// readCSVHeader reads the header record at the start of r (a UTF-8 byte
// order mark, as spreadsheets write, is skipped). An empty file has no names.
func readCSVHeader(r io.Reader, path string) (csvHeader, error) {
	var bom [3]byte
	n, err := io.ReadFull(r, bom[:])
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return csvHeader{}, fmt.Errorf("read %s: %w", path, err)
	}
	var start int64
	if n == 3 && bytes.Equal(bom[:], utf8BOM) {
		start = 3
	} else {
		r = io.MultiReader(bytes.NewReader(bom[:n]), r)
	}
	cr := newCSVReader(r)
	cr.lr.max = maxHeaderBytes
	rec, err := cr.read()
	if err == io.EOF {
		return csvHeader{end: start}, nil
	}
	if err != nil {
		return csvHeader{}, fmt.Errorf("%s: header: %w", locate(path, start), err)
	}
	h := csvHeader{end: start + cr.offset()}
	for _, f := range rec {
		h.names = append(h.names, f.s)
	}
	return h, nil
}

// csvDecoder turns records into rows, mapping header positions to columns.
type csvDecoder struct {
	cols []model.Column
	// colOf[i] is the column of the header's field i.
	colOf []int
}

// newCSVDecoder matches a header to a table's columns by name: a header name
// that is not a column is an error (its data would be lost); a column absent
// from the header is NULL in every row.
func newCSVDecoder(cols []model.Column, header []string) (*csvDecoder, error) {
	d := &csvDecoder{cols: cols, colOf: make([]int, len(header))}
	index := make(map[string]int, len(cols))
	for i, c := range cols {
		index[c.Name] = i
	}
	seen := make(map[string]bool, len(header))
	for i, name := range header {
		c, ok := index[name]
		if !ok {
			return nil, fmt.Errorf("header column %q is not a column of the table", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("header names column %q twice", name)
		}
		seen[name] = true
		d.colOf[i] = c
	}
	return d, nil
}

// decode converts a record. skip is set for a blank line in a table of more
// than one column (it cannot be a row; in a one-column table it is a NULL).
func (d *csvDecoder) decode(rec []csvField) (row model.Row, skip bool, err error) {
	if len(rec) != len(d.colOf) {
		if len(rec) == 1 && rec[0].isNull() && len(d.colOf) > 1 {
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("record has %d fields, the header has %d", len(rec), len(d.colOf))
	}
	row = make(model.Row, len(d.cols))
	for i, f := range rec {
		if f.isNull() {
			continue
		}
		c := d.cols[d.colOf[i]]
		v, err := model.ParseText(c.Type, f.s)
		if err != nil {
			return nil, false, fmt.Errorf("column %q: %w", c.Name, err)
		}
		row[d.colOf[i]] = roundFloat32(c.Type, v)
	}
	return row, false, nil
}
