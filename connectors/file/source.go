package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// Tables lists the table files of the URL's format in the directory (part
// files, temporary files and .ferry/ are not tables). A table's schema comes
// from its sidecar when there is one, and is inferred otherwise (see
// inferJSONL; a CSV file's columns are its header's names, all text).
func (c *Conn) Tables(ctx context.Context) ([]*model.Table, error) {
	fi, err := os.Stat(c.dir)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", c.dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", c.dir)
	}
	names, err := fileNames(c.dir)
	if err != nil {
		return nil, err
	}
	var out []*model.Table
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, "."+c.format) {
			continue
		}
		t, err := c.describe(name)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Namespace.String() < out[j].Namespace.String() })
	return out, nil
}

// describe reads the schema and size estimates of one table file.
func (c *Conn) describe(name string) (*model.Table, error) {
	path := filepath.Join(c.dir, name)
	sidecar := filepath.Join(c.dir, schemaFile(name))
	t, err := readSchema(sidecar)
	if err != nil {
		return nil, err
	}
	if c.format == formatParquet {
		if t, err = describeParquet(path, sidecar, t); err != nil {
			return nil, err
		}
		t.Namespace = parseBase(strings.TrimSuffix(name, "."+c.format))
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return t, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close() // read-only: a close error loses nothing
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	var start int64
	switch c.format {
	case formatJSONL:
		if t == nil {
			cols, err := inferJSONL(f, path)
			if err != nil {
				return nil, err
			}
			if len(cols) == 0 {
				return nil, fmt.Errorf("%s has no rows to infer its columns from; write a schema sidecar %s", path, sidecar)
			}
			t = &model.Table{Columns: cols}
		}
	case formatCSV:
		h, err := readCSVHeader(f, path)
		if err != nil {
			return nil, err
		}
		start = h.end
		if t == nil {
			if len(h.names) == 0 {
				return nil, fmt.Errorf("%s has no header to take its columns from; write a schema sidecar %s", path, sidecar)
			}
			t = &model.Table{}
			for _, n := range h.names {
				t.Columns = append(t.Columns, model.Column{Name: n, Type: model.Type{Kind: model.KindText}, Nullable: true})
			}
		} else if len(h.names) > 0 {
			if _, err := newCSVDecoder(t.Columns, h.names); err != nil {
				return nil, fmt.Errorf("%s: %w (the columns come from %s)", path, err, sidecar)
			}
		}
	}
	t.Namespace = parseBase(strings.TrimSuffix(name, "."+c.format))
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	avg, err := sampleLineLength(f, start)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	t.EstimatedBytes = fi.Size()
	t.EstimatedRows = estimateRows(fi.Size()-start, avg)
	return t, nil
}

// readSchema reads a schema sidecar; nil when there is none.
func readSchema(path string) (*model.Table, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read schema sidecar %s: %w", path, err)
	}
	var t model.Table
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("schema sidecar %s: %w", path, err)
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("schema sidecar %s: %w", path, err)
	}
	return &t, nil
}

// sampleLineLength is the average length of the first lines after start, to
// estimate row counts without reading a whole file.
func sampleLineLength(f *os.File, start int64) (float64, error) {
	lr := newLineReader(io.NewSectionReader(f, start, 1<<20))
	lines := 0
	for lines < inferLines {
		if _, err := lr.next(); err == io.EOF {
			break
		} else if err != nil {
			return 0, err
		}
		lines++
	}
	if lines == 0 {
		return 0, nil
	}
	return float64(lr.off) / float64(lines), nil
}

func estimateRows(bytes int64, avgLine float64) int64 {
	if bytes <= 0 || avgLine <= 0 {
		return 0
	}
	return int64(math.Round(float64(bytes) / avgLine))
}

// Plan splits each table's file into partitions of about opts.PartitionRows
// rows: byte ranges [Lower, Upper) that start at a line (a record, for CSV).
// Files have no change stream, so a plan for CDC is refused.
func (c *Conn) Plan(ctx context.Context, tables []*model.Table, opts connector.PlanOptions) (*model.Plan, error) {
	if opts.CDC {
		return nil, &errs.ConfigError{Msg: "files have no change data capture", Fix: "use --mode snapshot"}
	}
	partRows := opts.PartitionRows
	if partRows <= 0 {
		partRows = defaultPartitionRows
	}
	plan := &model.Plan{Tables: tables, CreatedAt: time.Now().UTC()}
	for _, t := range tables {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var bounds, rows, sizes []int64
		var err error
		if c.format == formatParquet {
			bounds, rows, sizes, err = c.splitParquet(filepath.Join(c.dir, c.dataFile(t.Namespace)), opts.RowsFor(t.Namespace, partRows))
		} else {
			bounds, rows, err = c.splitTable(ctx, t, opts.RowsFor(t.Namespace, partRows))
		}
		if err != nil {
			return nil, fmt.Errorf("plan table %s: %w", t.Namespace, err)
		}
		for i := 0; i+1 < len(bounds); i++ {
			plan.Partitions = append(plan.Partitions, model.Partition{
				ID:             fmt.Sprintf("%s/%04d", t.Namespace, i),
				Table:          t.Namespace,
				Index:          i,
				Lower:          strconv.FormatInt(bounds[i], 10),
				Upper:          strconv.FormatInt(bounds[i+1], 10),
				EstimatedRows:  rows[i],
				EstimatedBytes: bounds[i+1] - bounds[i],
			})
			if sizes != nil {
				plan.Partitions[len(plan.Partitions)-1].EstimatedBytes = sizes[i]
			}
		}
	}
	plan.SetBatchRows(opts.BatchRows)
	return plan, nil
}

// splitTable returns the partition boundaries of a table's file (the first is
// where the data starts, the last is the file's size) and each partition's
// estimated rows.
func (c *Conn) splitTable(ctx context.Context, t *model.Table, partRows int64) (bounds, rows []int64, err error) {
	path := filepath.Join(c.dir, c.dataFile(t.Namespace))
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close() // read-only: a close error loses nothing
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("stat %s: %w", path, err)
	}
	size := fi.Size()
	var start int64
	if c.format == formatCSV {
		h, err := readCSVHeader(io.NewSectionReader(f, 0, size), path)
		if err != nil {
			return nil, nil, err
		}
		start = h.end
	}
	avg, err := sampleLineLength(f, start)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	est := estimateRows(size-start, avg)
	n := int64(1)
	if est > partRows {
		n = (est + partRows - 1) / partRows
	}
	if n == 1 {
		return []int64{start, size}, []int64{est}, nil
	}
	if c.format == formatCSV {
		return splitCSV(ctx, f, start, size, n)
	}
	// A JSON Lines row never holds a raw newline, so any line start is a
	// row start: seek to evenly spaced offsets and move to the next line.
	bounds = []int64{start}
	for i := int64(1); i < n; i++ {
		b, err := alignToLine(f, start+(size-start)*i/n, size)
		if err != nil {
			return nil, nil, err
		}
		if b > bounds[len(bounds)-1] && b < size {
			bounds = append(bounds, b)
		}
	}
	bounds = append(bounds, size)
	for i := 0; i+1 < len(bounds); i++ {
		rows = append(rows, estimateRows(bounds[i+1]-bounds[i], avg))
	}
	return bounds, rows, nil
}

// splitCSV scans a CSV file once, tracking whether it is inside quotes, and
// cuts it at the first record start after each of n-1 evenly spaced offsets.
// A record may span lines inside quotes, so a line start is not enough. The
// quote count is exact for every file the reader accepts (quotes only open
// and close quoted fields, or come doubled inside them); a file it would
// reject fails in the partition that holds the first bad quote.
func splitCSV(ctx context.Context, f *os.File, start, size, n int64) (bounds, rows []int64, err error) {
	targets := make([]int64, 0, n-1)
	for i := int64(1); i < n; i++ {
		targets = append(targets, start+(size-start)*i/n)
	}
	bounds = []int64{start}
	var recs int64
	inQuote := false
	last := byte('\n')
	buf := make([]byte, 256<<10)
	off := start
	k := 0
	sr := io.NewSectionReader(f, start, size-start)
	for {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		nr, rerr := sr.Read(buf)
		for i := 0; i < nr; i++ {
			switch buf[i] {
			case '"':
				inQuote = !inQuote
			case '\n':
				if inQuote {
					continue
				}
				recs++
				pos := off + int64(i) + 1
				if k < len(targets) && pos >= targets[k] && pos < size {
					bounds = append(bounds, pos)
					rows = append(rows, recs)
					recs = 0
					for k < len(targets) && targets[k] <= pos {
						k++
					}
				}
			}
		}
		if nr > 0 {
			last = buf[nr-1]
		}
		off += int64(nr)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return nil, nil, fmt.Errorf("read %s at byte %d: %w", f.Name(), off, rerr)
		}
	}
	if last != '\n' {
		recs++ // the last record has no line end
	}
	return append(bounds, size), append(rows, recs), nil
}

func partitionBounds(p model.Partition) (lower, upper int64, err error) {
	lower, err = strconv.ParseInt(p.Lower, 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("partition %s: lower bound %q is not a byte offset", p.ID, p.Lower)
	}
	upper, err = strconv.ParseInt(p.Upper, 10, 64)
	if err != nil || upper < lower {
		return 0, 0, fmt.Errorf("partition %s: upper bound %q is not a byte offset after %d", p.ID, p.Upper, lower)
	}
	return lower, upper, nil
}

// rowSource yields a partition's rows and where each starts; io.EOF at the
// end.
type rowSource interface {
	next() (row model.Row, start int64, err error)
	// end is the offset right after the last row returned.
	end() int64
}

type jsonlRows struct {
	lr          *lineReader
	dec         *jsonlDecoder
	base, upper int64
	size        int64
}

func (r *jsonlRows) end() int64 { return r.base + r.lr.off }

func (r *jsonlRows) next() (model.Row, int64, error) {
	for {
		start := r.base + r.lr.off
		line, err := r.lr.next()
		if err != nil {
			return nil, start, err
		}
		if !r.lr.eol && r.upper < r.size {
			return nil, start, fmt.Errorf("the partition ends inside a line: the file changed since the plan was made")
		}
		body := trimEOL(line)
		if start == 0 {
			body = bytes.TrimPrefix(body, utf8BOM)
		}
		if len(bytes.TrimSpace(body)) == 0 {
			continue
		}
		row, err := r.dec.decode(body)
		return row, start, err
	}
}

type csvRows struct {
	cr          *csvReader
	dec         *csvDecoder
	base, upper int64
	size        int64
}

func (r *csvRows) end() int64 { return r.base + r.cr.offset() }

func (r *csvRows) next() (model.Row, int64, error) {
	for {
		start := r.base + r.cr.offset()
		rec, err := r.cr.read()
		if err != nil {
			return nil, start, err
		}
		if !r.cr.lr.eol && r.upper < r.size {
			return nil, start, fmt.Errorf("the partition ends inside a record: the file changed since the plan was made")
		}
		row, skip, err := r.dec.decode(rec)
		if skip {
			continue
		}
		return row, start, err
	}
}

// ReadPartition reads the rows of p from byte offset from ("" for its
// Lower) to its Upper, in batches whose Cursor is the offset after their last
// row.
func (c *Conn) ReadPartition(ctx context.Context, t *model.Table, p model.Partition, from model.Cursor, emit func(*model.RowBatch) error) error {
	if t == nil {
		return fmt.Errorf("read partition %s: no table", p.ID)
	}
	lower, upper, err := partitionBounds(p)
	if err != nil {
		return err
	}
	start := lower
	if from != "" {
		start, err = strconv.ParseInt(string(from), 10, 64)
		if err != nil || start < lower || start > upper {
			return fmt.Errorf("partition %s: cursor %q is not a byte offset within [%d, %d]", p.ID, from, lower, upper)
		}
	}
	if start == upper {
		return nil
	}
	name := c.dataFile(t.Namespace)
	path := filepath.Join(c.dir, name)
	if c.format == formatParquet {
		return c.readParquetPartition(ctx, t, p, path, start, upper, emit)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read table %s: %w", t.Namespace, err)
	}
	defer f.Close() // read-only: a close error loses nothing
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("read table %s: stat %s: %w", t.Namespace, path, err)
	}
	size := fi.Size()
	if size < upper {
		return fmt.Errorf("read table %s: %s has %d bytes, but partition %s ends at byte %d: the file changed since the plan was made", t.Namespace, path, size, p.ID, upper)
	}
	section := io.NewSectionReader(f, start, upper-start)
	var src rowSource
	switch c.format {
	case formatJSONL:
		src = &jsonlRows{lr: newLineReader(section), dec: newJSONLDecoder(t.Columns), base: start, upper: upper, size: size}
	case formatCSV:
		h, err := readCSVHeader(io.NewSectionReader(f, 0, size), path)
		if err != nil {
			return fmt.Errorf("read table %s: %w", t.Namespace, err)
		}
		dec, err := newCSVDecoder(t.Columns, h.names)
		if err != nil {
			return fmt.Errorf("read table %s: %s: %w", t.Namespace, path, err)
		}
		src = &csvRows{cr: newCSVReader(section), dec: dec, base: start, upper: upper, size: size}
	}

	batchRows := p.BatchSize(defaultBatchRows)
	batch := &model.RowBatch{Table: t, Partition: p.ID, Rows: make([]model.Row, 0, min(batchRows, 1024))}
	cursor := start
	for n := 0; ; n++ {
		if n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		row, rowStart, err := src.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read table %s partition %s: %s: %w%s", t.Namespace, p.ID, locate(path, rowStart), err, c.schemaHint(name))
		}
		batch.Rows = append(batch.Rows, row)
		end := src.end()
		batch.Bytes += end - cursor
		cursor = end
		if len(batch.Rows) >= batchRows || batch.Bytes >= maxBatchBytes {
			batch.Cursor = model.Cursor(strconv.FormatInt(cursor, 10))
			if err := emit(batch); err != nil {
				return err
			}
			batch = &model.RowBatch{Table: t, Partition: p.ID, Rows: make([]model.Row, 0, min(batchRows, 1024))}
		}
	}
	if end := src.end(); end != upper {
		return fmt.Errorf("read table %s partition %s: %s ended at byte %d, before the partition's end at byte %d: the file changed while it was read", t.Namespace, p.ID, path, end, upper)
	}
	if len(batch.Rows) > 0 {
		batch.Cursor = model.Cursor(strconv.FormatInt(upper, 10))
		return emit(batch)
	}
	return nil
}

// schemaHint tells how to fix a type error in a table without a sidecar.
func (c *Conn) schemaHint(dataFile string) string {
	sidecar := filepath.Join(c.dir, schemaFile(dataFile))
	if _, err := os.Stat(sidecar); err == nil {
		return ""
	}
	if c.format == formatCSV {
		return fmt.Sprintf(" (without a schema sidecar every column is text; %s sets the columns and types)", sidecar)
	}
	return fmt.Sprintf(" (without a schema sidecar the columns and types are inferred from the first %d rows; %s sets them)", inferLines, sidecar)
}
