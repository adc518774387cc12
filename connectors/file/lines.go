package file

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// lineReader reads lines, '\n' included, keeping count of the bytes consumed.
// A line is valid until the next call.
type lineReader struct {
	br   *bufio.Reader
	long []byte
	// max bounds a line's length, so a file without line ends (or a CSV
	// quote that never closes) cannot take all memory.
	max int
	// off is the number of bytes consumed.
	off int64
	// eol reports whether the last line returned ended with '\n'.
	eol bool
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 256<<10), max: maxRecordBytes}
}

// maxRecordBytes bounds a row's size in a file: a line of JSON Lines, a
// record of CSV.
const maxRecordBytes = 1 << 30

// next returns the next line, with its '\n' unless it is the last line of an
// input that does not end with one; io.EOF when nothing is left.
func (r *lineReader) next() ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		r.long = append(r.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(r.long) > r.max {
				return nil, fmt.Errorf("line longer than %d bytes", r.max)
			}
			line, err = r.br.ReadSlice('\n')
			r.long = append(r.long, line...)
		}
		line = r.long
	}
	if err != nil && err != io.EOF {
		return nil, err
	}
	if len(line) == 0 {
		return nil, io.EOF
	}
	r.off += int64(len(line))
	r.eol = line[len(line)-1] == '\n'
	return line, nil
}

// trimEOL removes a line's "\n" or "\r\n".
func trimEOL(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	return bytes.TrimSuffix(line, []byte{'\r'})
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// lineNumber returns the 1-based number of the line that starts at byte off
// of path. It reads the file up to off, so it is only called to report an
// error.
func lineNumber(path string, off int64) (int64, error) {
	if off > maxCountBytes {
		return 0, fmt.Errorf("too far into the file to count lines")
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close() // read-only: a close error loses nothing
	buf := make([]byte, 256<<10)
	n := int64(1)
	r := io.LimitReader(f, off)
	for {
		k, err := r.Read(buf)
		n += int64(bytes.Count(buf[:k], []byte{'\n'}))
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// maxCountBytes bounds how much of a file an error message reads to give a
// line number; further in, the byte offset has to do.
const maxCountBytes = 1 << 30

// locate renders where a problem is: "path:line (byte off)", or just the byte
// offset when the line cannot be counted.
func locate(path string, off int64) string {
	if n, err := lineNumber(path, off); err == nil {
		return fmt.Sprintf("%s:%d (byte %d)", path, n, off)
	}
	return fmt.Sprintf("%s (byte %d)", path, off)
}

// alignToLine returns the offset of the first line that starts at or after
// off in f (of the given size): off itself if the byte before it is '\n'.
func alignToLine(f *os.File, off, size int64) (int64, error) {
	if off <= 0 {
		return 0, nil
	}
	buf := make([]byte, 64<<10)
	pos := off - 1
	for pos < size {
		n, err := f.ReadAt(buf, pos)
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			return pos + int64(i) + 1, nil
		}
		pos += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("read %s at byte %d: %w", f.Name(), pos, err)
		}
	}
	return size, nil
}
