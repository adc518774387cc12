package file

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/parquet-go/parquet-go"

	"github.com/ferrydb/ferry/model"
)

// Appending is how query replication's runs reach files (FinishTable would
// replace a table's file with the parts of one run). A run writes its ranges
// as part files, as a copy does; AppendTable then adds them to the table's
// file:
//
//  1. the new file (the table's file, then the parts in partition order) is
//     written in full as .<table file>.appending and fsynced;
//  2. the append marker .<table file>.append names it and the parts, and is
//     made durable: from here on the append happens, whatever crashes;
//  3. the new file is renamed over the table's file, the parts are deleted,
//     then the marker.
//
// A crash before 2 leaves a staged file without a marker: the next call
// writes it again. A crash after 2 is completed by the next call: the rename
// if the staged file is still there, then the deletions. So each part's rows
// are appended exactly once.
const (
	appendSuffix = ".append"
	stagedSuffix = ".appending"
)

type appendMarker struct {
	Staged string   `json:"staged"`
	Parts  []string `json:"parts"`
}

// AppendTable adds the rows of a table's part files to its file, keeping the
// rows the file holds, and deletes the parts; a table without a file gets
// one. It can be called again after a crash at any point: parts are
// appended once.
func (c *Conn) AppendTable(ctx context.Context, t *model.Table) error {
	if t == nil {
		return fmt.Errorf("append table: nil table")
	}
	c.ckMu.RLock()
	defer c.ckMu.RUnlock()
	if err := c.appendTable(ctx, t); err != nil {
		return fmt.Errorf("append to table %s: %w", t.Namespace, err)
	}
	return nil
}

func (c *Conn) appendTable(ctx context.Context, t *model.Table) error {
	data := c.dataFile(t.Namespace)
	final := filepath.Join(c.dir, data)
	marker := filepath.Join(c.dir, "."+data+appendSuffix)
	staged := filepath.Join(c.dir, "."+data+stagedSuffix)
	if err := c.completeAppend(marker, final); err != nil {
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
	_, statErr := os.Stat(final)
	exists := statErr == nil
	if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) {
		return fmt.Errorf("stat %s: %w", final, statErr)
	}
	if len(parts) == 0 && exists {
		return nil
	}
	if err := c.stage(ctx, t, staged, final, exists, parts); err != nil {
		return err
	}
	m := appendMarker{Staged: filepath.Base(staged)}
	for _, p := range parts {
		m.Parts = append(m.Parts, p.name)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(marker, b); err != nil {
		return err
	}
	return c.completeAppend(marker, final)
}

// stage writes the table's file as it is, then every part, into staged.
func (c *Conn) stage(ctx context.Context, t *model.Table, staged, final string, exists bool, parts []partInfo) (err error) {
	f, err := os.OpenFile(staged, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
	if err != nil {
		return fmt.Errorf("create %s: %w", staged, err)
	}
	defer func() {
		if err != nil {
			err = abortTemp(f, err)
		}
	}()
	if c.format == formatParquet {
		l, err := newParquetLayout(t)
		if err != nil {
			return err
		}
		w := parquet.NewWriter(f, parquetWriterOptions(l)...)
		if exists {
			if err := copyParquetFile(ctx, w, final); err != nil {
				return err
			}
		}
		for _, p := range parts {
			if err := copySegments(ctx, w, filepath.Join(c.dir, p.name)); err != nil {
				return err
			}
			if err := w.Flush(); err != nil { // a row group never spans two partitions
				return fmt.Errorf("write %s: %w", staged, err)
			}
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("write %s: %w", staged, err)
		}
	} else {
		buf := make([]byte, 1<<20)
		switch {
		case exists:
			if err := copyPart(ctx, f, final, buf); err != nil {
				return err
			}
		case c.format == formatCSV:
			if _, err := f.Write(appendCSVHeader(nil, t.Columns)); err != nil {
				return fmt.Errorf("write %s: %w", staged, err)
			}
		}
		for _, p := range parts {
			if err := copyPart(ctx, f, filepath.Join(c.dir, p.name), buf); err != nil {
				return err
			}
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", staged, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", staged, err)
	}
	return nil
}

// copyParquetFile copies every row of a Parquet file, row group by row
// group.
func copyParquetFile(ctx context.Context, w *parquet.Writer, path string) error {
	pf, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer pf.Close() // read-only: a close error loses nothing
	fi, err := pf.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	file, err := parquet.OpenFile(io.NewSectionReader(pf, 0, fi.Size()), fi.Size())
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, rg := range file.RowGroups() {
		if err := ctx.Err(); err != nil {
			return err
		}
		rows := rg.Rows()
		_, err := parquet.CopyRows(w, rows)
		if cerr := rows.Close(); cerr != nil && err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: copy rows: %w", path, err)
		}
		if err := w.Flush(); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	return nil
}

// completeAppend finishes an append whose marker was written: the staged
// file renamed over the table's file if that was not done yet, then the
// parts and the marker deleted. Without a marker, a staged file is an
// append that never reached its marker: it goes.
func (c *Conn) completeAppend(marker, final string) error {
	b, err := os.ReadFile(marker)
	if errors.Is(err, fs.ErrNotExist) {
		return removeIfExists(filepath.Join(filepath.Dir(final), "."+filepath.Base(final)+stagedSuffix))
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", marker, err)
	}
	var m appendMarker
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("append marker %s: %w", marker, err)
	}
	if m.Staged != "."+filepath.Base(final)+stagedSuffix {
		return fmt.Errorf("append marker %s names %q, not the table's staged file", marker, m.Staged)
	}
	staged := filepath.Join(c.dir, m.Staged)
	switch _, err := os.Stat(staged); {
	case err == nil:
		if err := os.Rename(staged, final); err != nil {
			return fmt.Errorf("rename %s to %s: %w", staged, final, err)
		}
		if err := syncDir(c.dir); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("stat %s: %w", staged, err)
	}
	for _, p := range m.Parts {
		if _, _, ok := parsePart(p); !ok || filepath.Base(p) != p {
			return fmt.Errorf("append marker %s names %q, which is not a part file", marker, p)
		}
		if err := removeIfExists(filepath.Join(c.dir, p)); err != nil {
			return err
		}
		c.forgetPart(p)
	}
	if err := syncDir(c.dir); err != nil {
		return err
	}
	if err := removeIfExists(marker); err != nil {
		return err
	}
	return syncDir(c.dir)
}
