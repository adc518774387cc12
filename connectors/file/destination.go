package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// CreateTables creates the directory if needed and writes each table's schema
// sidecar. A sidecar that already describes a different table is an error; a
// compatible one is brought up to date.
func (c *Conn) CreateTables(ctx context.Context, tables []*model.Table) error {
	c.ckMu.RLock()
	defer c.ckMu.RUnlock()
	if err := c.ensureDir(); err != nil {
		return err
	}
	wrote := false
	for _, t := range tables {
		if err := ctx.Err(); err != nil {
			return err
		}
		if t == nil {
			return fmt.Errorf("create tables: nil table")
		}
		if err := t.Validate(); err != nil {
			return fmt.Errorf("create table: %w", err)
		}
		if c.format == formatJSONL {
			if _, err := jsonlKeys(t.Columns); err != nil {
				return fmt.Errorf("create table %s: %w", t.Namespace, err)
			}
		}
		if c.format == formatParquet {
			if _, err := newParquetLayout(t); err != nil {
				return fmt.Errorf("create table %s: %w", t.Namespace, err)
			}
		}
		path := filepath.Join(c.dir, schemaFile(c.dataFile(t.Namespace)))
		want, err := sidecarJSON(t)
		if err != nil {
			return fmt.Errorf("create table %s: %w", t.Namespace, err)
		}
		have, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return fmt.Errorf("create table %s: read %s: %w", t.Namespace, path, err)
		case bytes.Equal(have, want):
			continue
		default:
			old, err := readSchema(path)
			if err != nil {
				return fmt.Errorf("create table %s: %w", t.Namespace, err)
			}
			if err := compatible(old, t); err != nil {
				return &errs.ConfigError{
					Msg: fmt.Sprintf("create table %s: %s describes a different table: %s", t.Namespace, path, err),
					Fix: "remove that table's files from the directory, or write to another directory",
				}
			}
		}
		if err := writeTempAndRename(path, want); err != nil {
			return fmt.Errorf("create table %s: %w", t.Namespace, err)
		}
		wrote = true
	}
	if wrote {
		return syncDir(c.dir)
	}
	return nil
}

// ensureDir creates the directory, and refuses a path that is not one.
func (c *Conn) ensureDir() error {
	fi, err := os.Stat(c.dir)
	if err == nil {
		if !fi.IsDir() {
			return &errs.ConfigError{Msg: fmt.Sprintf("%s exists and is not a directory", c.dir), Fix: "the file connector writes a directory of files: give a directory path"}
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stat %s: %w", c.dir, err)
	}
	if err := os.MkdirAll(c.dir, 0o777); err != nil {
		return fmt.Errorf("create directory %s: %w", c.dir, err)
	}
	return syncDir(filepath.Dir(c.dir))
}

// sidecarJSON is a table's schema sidecar: the model.Table, without the
// source's estimates (a source recomputes them from the file).
func sidecarJSON(t *model.Table) ([]byte, error) {
	s := t.Clone()
	s.EstimatedRows, s.EstimatedBytes = 0, 0
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// compatible reports how new differs from old in a way that would make the
// rows already written under old unreadable as new.
func compatible(old, new *model.Table) error {
	if len(old.Columns) != len(new.Columns) {
		return fmt.Errorf("it has %d columns, the table to write has %d", len(old.Columns), len(new.Columns))
	}
	for i, o := range old.Columns {
		n := new.Columns[i]
		if o.Name != n.Name {
			return fmt.Errorf("its column %d is %q, the table to write has %q", i+1, o.Name, n.Name)
		}
		if o.Type.String() != n.Type.String() {
			return fmt.Errorf("its column %q is %s, the table to write has %s", o.Name, o.Type, n.Type)
		}
	}
	return nil
}

// OpenWriter opens a writer. Writers share the connector's state, so any
// writer may take over a partition.
func (c *Conn) OpenWriter(context.Context) (connector.RowWriter, error) {
	return &writer{c: c}, nil
}

type writer struct{ c *Conn }

// WriteRows appends b's rows to its partition's part file, makes them durable
// and then, when b carries a checkpoint, commits the checkpoint together with
// the part file's length.
func (w *writer) WriteRows(ctx context.Context, b *model.RowBatch) error {
	return w.c.writeRows(ctx, b)
}

// Close releases nothing: part files are opened and closed per batch.
func (w *writer) Close() error { return nil }

// partState is what this process knows of one part file.
type partState struct {
	mu sync.Mutex
	// known is set once size has been read from the file.
	known bool
	// size is the file's length after the last successful write: anything
	// past it is a failed write's leftover.
	size int64
	// marks are the batches written since the last checkpoint, so a batch
	// sent again (a partition retried from its last checkpoint) replaces its
	// first copy instead of adding a second one.
	marks []mark
	// dirSynced is set once the file's directory entry is durable.
	dirSynced bool
}

type mark struct {
	cursor model.Cursor
	start  int64
}

// maxMarks bounds the marks of a partition whose batches carry no checkpoint.
const maxMarks = 1024

func (c *Conn) part(name string) *partState {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.parts[name]
	if !ok {
		st = &partState{}
		c.parts[name] = st
	}
	return st
}

func (c *Conn) writeRows(ctx context.Context, b *model.RowBatch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b == nil || b.Table == nil {
		return fmt.Errorf("write rows: batch without a table")
	}
	fail := func(err error) error {
		return fmt.Errorf("write table %s partition %s: %w", b.Table.Namespace, b.Partition, err)
	}
	if b.Checkpoint != nil && b.Checkpoint.Flow == "" {
		return fail(errors.New("checkpoint without a flow"))
	}
	var buf []byte
	var err error
	if c.format == formatParquet {
		buf, err = encodeParquetSegment(b)
	} else {
		buf, err = c.encodeRows(b)
	}
	if err != nil {
		return fail(err)
	}
	c.ckMu.RLock()
	defer c.ckMu.RUnlock()
	name := partName(c.dataFile(b.Table.Namespace), b.Partition)
	if err := c.checkForeign(name); err != nil {
		return fail(err)
	}
	st := c.part(name)
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := c.appendPart(st, name, b, buf); err != nil {
		return fail(err)
	}
	if b.Checkpoint != nil {
		// The part file is durable up to st.size: this rename commits it.
		rec := checkpointRecord{Key: b.Checkpoint.Key, Value: b.Checkpoint.Value, Part: name, Length: st.size}
		if err := c.writeCheckpoint(b.Checkpoint.Flow, rec); err != nil {
			return fail(err)
		}
		st.marks = st.marks[:0]
	}
	return nil
}

// encodeRows renders a batch in the directory's format, whole, so a value
// that cannot be written fails the batch before anything reaches the disk.
func (c *Conn) encodeRows(b *model.RowBatch) ([]byte, error) {
	cols := b.Table.Columns
	var keys [][]byte
	if c.format == formatJSONL {
		var err error
		if keys, err = jsonlKeys(cols); err != nil {
			return nil, err
		}
	}
	var buf []byte
	for i, row := range b.Rows {
		if len(row) != len(cols) {
			return nil, fmt.Errorf("row %d has %d values, the table has %d columns", i, len(row), len(cols))
		}
		var err error
		if c.format == formatJSONL {
			buf, err = appendJSONLRow(buf, cols, keys, row)
		} else {
			buf, err = appendCSVRow(buf, cols, row)
		}
		if err != nil {
			if key := model.KeyText(b.Table, row); key != "" {
				return nil, fmt.Errorf("row with key %s: %w%s", key, err, excludeHint(err, b.Table))
			}
			return nil, fmt.Errorf("row %d: %w%s", i, err, excludeHint(err, b.Table))
		}
	}
	return buf, nil
}

// excludeHint tells how to go on past a value no file can hold.
func excludeHint(err error, t *model.Table) string {
	if errors.Is(err, model.ErrMultiDimJSONArray) || errors.Is(err, errParquetMultiDim) {
		return fmt.Sprintf("; exclude the table with --tables '!%s' or copy it to another destination", t.Namespace)
	}
	return ""
}

// appendPart writes buf at the end of the part file's known content and
// fsyncs it.
func (c *Conn) appendPart(st *partState, name string, b *model.RowBatch, buf []byte) (err error) {
	path := filepath.Join(c.dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o666)
	if err != nil {
		return fmt.Errorf("open part file: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", path, cerr)
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if !st.known {
		// First write in this process: LoadCheckpoints has cut the file
		// back to its checkpoint, so all of it is committed.
		st.size, st.known = fi.Size(), true
	}
	if len(b.Rows) > 0 && b.Cursor != "" {
		for i, m := range st.marks {
			if m.cursor == b.Cursor {
				st.size, st.marks = m.start, st.marks[:i]
				break
			}
		}
	}
	changed := false
	switch {
	case fi.Size() < st.size:
		return fmt.Errorf("%s has %d bytes, but %d were written to it: something else truncated it", path, fi.Size(), st.size)
	case fi.Size() > st.size:
		// A failed write's leftover, or the first copy of a batch sent
		// again: cut it so that no row is written twice or half.
		if err := f.Truncate(st.size); err != nil {
			return fmt.Errorf("truncate %s to %d bytes: %w", path, st.size, err)
		}
		changed = true
	}
	if len(buf) > 0 {
		if _, err := f.WriteAt(buf, st.size); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		changed = true
	}
	if changed {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", path, err)
		}
	}
	if !st.dirSynced {
		// A checkpoint must never name a part file a crash can lose.
		if err := syncDir(c.dir); err != nil {
			return err
		}
		st.dirSynced = true
	}
	if len(b.Rows) > 0 && b.Cursor != "" {
		if len(st.marks) == maxMarks {
			st.marks = append(st.marks[:0], st.marks[1:]...)
		}
		st.marks = append(st.marks, mark{cursor: b.Cursor, start: st.size})
	}
	st.size += int64(len(buf))
	return nil
}

// FinishTable assembles a table's part files, in partition order, into its
// file (CSV: under one header), then deletes them. It can be called again
// after a crash at any point and produces the same file; a table that is
// already assembled is left alone.
func (c *Conn) FinishTable(ctx context.Context, t *model.Table) error {
	if t == nil {
		return fmt.Errorf("finish table: nil table")
	}
	c.ckMu.RLock()
	defer c.ckMu.RUnlock()
	if err := c.finish(ctx, t); err != nil {
		return fmt.Errorf("finish table %s: %w", t.Namespace, err)
	}
	return nil
}

func (c *Conn) finish(ctx context.Context, t *model.Table) error {
	data := c.dataFile(t.Namespace)
	final := filepath.Join(c.dir, data)
	marker := filepath.Join(c.dir, "."+data+finishSuffix)
	done, err := c.completeFinish(marker)
	if err != nil {
		return err
	}
	names, err := fileNames(c.dir)
	if err != nil {
		return err
	}
	parts := listParts(names, data)
	for _, p := range parts {
		if err := c.checkForeign(p.name); err != nil {
			return err
		}
	}
	if len(parts) == 0 {
		if done {
			return nil
		}
		if _, err := os.Stat(final); err == nil {
			return nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("stat %s: %w", final, err)
		}
		// A table without rows still gets its file (a CSV header), so
		// reading the directory back finds the table.
	} else if done {
		return fmt.Errorf("part files such as %s were written after %s was assembled; drop the flow's checkpoints (ferry sync --restart) to copy the table again", parts[0].name, final)
	}
	if err := removeTemps(c.dir, data); err != nil {
		return err
	}
	if err := c.assemble(ctx, t, final, parts); err != nil {
		return err
	}
	if len(parts) == 0 {
		return nil
	}
	// The table file holds every part now. Record which parts it was built
	// from before deleting them: a crash halfway through the deletions must
	// be completed by the next call, not taken for a table whose remaining
	// parts are all its rows.
	list := make([]string, len(parts))
	for i, p := range parts {
		list[i] = p.name
	}
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(marker, b); err != nil {
		return err
	}
	_, err = c.completeFinish(marker)
	return err
}

// assemble writes the table file from its parts through a temporary file.
func (c *Conn) assemble(ctx context.Context, t *model.Table, final string, parts []partInfo) error {
	if c.format == formatParquet {
		return c.assembleParquet(ctx, t, final, parts)
	}
	f, err := createTemp(final)
	if err != nil {
		return err
	}
	if c.format == formatCSV {
		if _, err := f.Write(appendCSVHeader(nil, t.Columns)); err != nil {
			return abortTemp(f, fmt.Errorf("write %s: %w", f.Name(), err))
		}
	}
	buf := make([]byte, 1<<20)
	for _, p := range parts {
		if err := copyPart(ctx, f, filepath.Join(c.dir, p.name), buf); err != nil {
			return abortTemp(f, err)
		}
	}
	if err := commitTemp(f, final); err != nil {
		return err
	}
	return syncDir(c.dir)
}

func copyPart(ctx context.Context, dst *os.File, path string, buf []byte) error {
	src, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer src.Close() // read-only: a close error loses nothing
	if _, err := copyCtx(ctx, dst, src, buf); err != nil {
		return fmt.Errorf("copy %s into %s: %w", path, dst.Name(), err)
	}
	return nil
}

// completeFinish deletes the part files a finish marker lists (they are in the
// table file already) and then the marker. It reports whether there was one.
func (c *Conn) completeFinish(marker string) (bool, error) {
	b, err := os.ReadFile(marker)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", marker, err)
	}
	var parts []string
	if err := json.Unmarshal(b, &parts); err != nil {
		return false, fmt.Errorf("finish marker %s: %w", marker, err)
	}
	for _, p := range parts {
		if _, _, ok := parsePart(p); !ok || filepath.Base(p) != p {
			return false, fmt.Errorf("finish marker %s names %q, which is not a part file", marker, p)
		}
		if err := removeIfExists(filepath.Join(c.dir, p)); err != nil {
			return false, err
		}
		c.forgetPart(p)
	}
	if err := syncDir(c.dir); err != nil {
		return false, err
	}
	if err := removeIfExists(marker); err != nil {
		return false, err
	}
	return true, syncDir(c.dir)
}

// completeFinishes completes every interrupted finish in the directory, so a
// stale marker can never delete part files a later run writes.
func (c *Conn) completeFinishes(names []string) error {
	for _, n := range names {
		data := strings.TrimSuffix(strings.TrimPrefix(n, "."), finishSuffix)
		isTable := strings.Contains(data, ".") && isFormat(data[strings.LastIndexByte(data, '.')+1:])
		if n[0] == '.' && strings.HasSuffix(n, finishSuffix) && isTable && !strings.HasPrefix(data, ".") {
			if _, err := c.completeFinish(filepath.Join(c.dir, n)); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkForeign refuses a part file that another flow's checkpoints name:
// one flow at a time may copy into a directory.
func (c *Conn) checkForeign(name string) error {
	c.mu.Lock()
	flow, ok := c.foreign[name]
	c.mu.Unlock()
	if ok {
		return &errs.ConfigError{
			Msg: fmt.Sprintf("%s belongs to the unfinished copy of flow %q in %s", name, flow, c.dir),
			Fix: fmt.Sprintf("finish flow %q, drop it (ferry sync --restart with that flow), or write to another directory", flow),
		}
	}
	return nil
}

func (c *Conn) forgetPart(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.parts, name)
}
