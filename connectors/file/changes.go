package file

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// Change files: with changes=files in its URL the connector is also an event
// destination (connector.EventWriter), so a full flow keeps writing after
// the copy. Each event batch becomes, for each table it touches, one file
// <table>.changes/<batch>-<n>.<format>, written whole through a temporary
// name and a rename: a change file is only visible complete. Its rows are
// the batch's events in source order, each with the columns below before the
// table's own (all nullable). A file never changes once written; the table
// file stays the snapshot.
//
// The batch number is committed by the checkpoint the batch carries (its
// record holds Changes, the last batch number written); LoadCheckpoints
// deletes the change files of batches after it, which the resumed stream
// sends again under the same numbers: every change is in the files once.

var _ connector.EventWriter = (*ChangeFiles)(nil)

// ChangeFiles is the connector opened with changes=files: a Conn that also
// writes change files.
type ChangeFiles struct{ *Conn }

const changesSuffix = ".changes"

// Columns of a change file, before the table's.
var changeColumns = []model.Column{
	{Name: "_op", Type: model.Type{Kind: model.KindText}},
	{Name: "_position", Type: model.Type{Kind: model.KindText}},
	{Name: "_id", Type: model.Type{Kind: model.KindText}},
	{Name: "_commit_time", Type: model.Type{Kind: model.KindTimestampTZ}, Nullable: true},
	// _unchanged lists, as a JSON array, the columns of an update the
	// source did not send (PostgreSQL TOAST): they hold NULL in the file
	// but kept their value.
	{Name: "_unchanged", Type: model.Type{Kind: model.KindText}, Nullable: true},
}

// changeDir is the directory of a table's change files.
func (c *Conn) changeDir(ns model.Namespace) string {
	return filepath.Join(c.dir, tableBase(ns)+changesSuffix)
}

// changeFileName is the file of batch n's k-th run of one table's events.
func (c *Conn) changeFileName(batch int64, k int) string {
	return fmt.Sprintf("%012d-%d.%s", batch, k, c.format)
}

// changeTable is the table a change file holds: the change columns, then
// t's columns, all nullable.
func changeTable(t *model.Table) (*model.Table, error) {
	ct := &model.Table{Namespace: t.Namespace, Columns: append([]model.Column(nil), changeColumns...)}
	for _, c := range t.Columns {
		ct.Columns = append(ct.Columns, model.Column{Name: c.Name, Type: c.Type, Nullable: true})
	}
	if err := ct.Validate(); err != nil {
		return nil, fmt.Errorf("%w: a column's name is one of the change file's own (_op, _position, _id, _commit_time, _unchanged)", err)
	}
	return ct, nil
}

// WriteEvents writes b's events as change files, then b's checkpoint.
func (c *ChangeFiles) WriteEvents(ctx context.Context, b *connector.EventBatch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.Checkpoint != nil && b.Checkpoint.Flow == "" {
		return errors.New("write events: checkpoint without a flow")
	}
	c.ckMu.RLock()
	defer c.ckMu.RUnlock()
	c.changesMu.Lock()
	defer c.changesMu.Unlock()
	if err := c.writeEvents(b); err != nil {
		return fmt.Errorf("write changes up to position %s: %w", b.Position, err)
	}
	return nil
}

// run is consecutive events of one table in one shape.
type run struct {
	table *model.Table
	rows  []model.Row
}

func (c *Conn) writeEvents(b *connector.EventBatch) error {
	if c.changeBatch < 0 {
		n, err := c.lastChangeBatch()
		if err != nil {
			return err
		}
		c.changeBatch = n
	}
	batch := c.changeBatch + 1
	var runs []*run
	last := map[model.Namespace]*run{}
	for i, ev := range b.Events {
		if ev.Table == nil || ev.Op == 0 {
			continue // a schema change: the next events carry the new shape
		}
		r := last[ev.Table.Namespace]
		if r == nil || r.table != ev.Table {
			r = &run{table: ev.Table}
			runs = append(runs, r)
			last[ev.Table.Namespace] = r
		}
		rows, err := eventRows(ev)
		if err != nil {
			return fmt.Errorf("event %d (%s) of table %s: %w", i, ev.ID, ev.Table.Namespace, err)
		}
		r.rows = append(r.rows, rows...)
	}
	type file struct {
		dir, name string
		data      []byte
	}
	var files []file
	seen := map[model.Namespace]int{}
	for _, r := range runs {
		ct, err := changeTable(r.table)
		if err != nil {
			return fmt.Errorf("table %s: %w", r.table.Namespace, err)
		}
		data, err := c.encodeChangeFile(&model.RowBatch{Table: ct, Partition: "changes", Rows: r.rows})
		if err != nil {
			return fmt.Errorf("table %s: %w", r.table.Namespace, err)
		}
		seen[ct.Namespace]++
		files = append(files, file{dir: c.changeDir(ct.Namespace), name: c.changeFileName(batch, seen[ct.Namespace]), data: data})
	}
	if len(files) > 0 {
		if err := c.ensureDir(); err != nil {
			return err
		}
	}
	dirs := map[string]bool{}
	for _, f := range files {
		if !dirs[f.dir] {
			if err := os.MkdirAll(f.dir, 0o777); err != nil {
				return fmt.Errorf("create %s: %w", f.dir, err)
			}
			dirs[f.dir] = true
		}
		if err := writeTempAndRename(filepath.Join(f.dir, f.name), f.data); err != nil {
			return err
		}
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	if len(dirs) > 0 {
		if err := syncDir(c.dir); err != nil {
			return err
		}
	}
	if len(files) > 0 {
		c.changeBatch = batch
	}
	if cp := b.Checkpoint; cp != nil {
		// The checkpoint commits every change file up to batch.
		rec := checkpointRecord{Key: cp.Key, Value: cp.Value, Changes: c.changeBatch}
		if err := c.writeCheckpoint(cp.Flow, rec); err != nil {
			return err
		}
	}
	return nil
}

// eventRows is the change file rows of one event: an update that moves a
// row to another key (or any update of a table without a key) is a delete
// of the old key (old row), then an insert.
func eventRows(ev connector.Event) ([]model.Row, error) {
	t := ev.Table
	meta := func(op string) model.Row {
		row := make(model.Row, len(changeColumns)+len(t.Columns))
		row[0], row[1], row[2] = op, string(ev.Position), ev.ID
		if !ev.CommitTime.IsZero() {
			row[3] = ev.CommitTime.UTC()
		}
		return row
	}
	// keyRow puts an event's Key (the key columns in key order, or the
	// whole old row of a table without a key) into a row.
	keyRow := func(op string) (model.Row, error) {
		row := meta(op)
		if len(t.PrimaryKey) == 0 {
			if len(ev.Key) != len(t.Columns) {
				return nil, fmt.Errorf("the old row has %d values, the table %d columns", len(ev.Key), len(t.Columns))
			}
			copy(row[len(changeColumns):], ev.Key)
			return row, nil
		}
		if len(ev.Key) != len(t.PrimaryKey) {
			return nil, fmt.Errorf("the key has %d values, the table's key %d columns", len(ev.Key), len(t.PrimaryKey))
		}
		for i, j := range t.KeyIndexes() {
			row[len(changeColumns)+j] = ev.Key[i]
		}
		return row, nil
	}
	newRow := func(op string) (model.Row, error) {
		if len(ev.Row) != len(t.Columns) {
			return nil, fmt.Errorf("the row has %d values, the table %d columns", len(ev.Row), len(t.Columns))
		}
		row := meta(op)
		var unchanged []string
		for i, v := range ev.Row {
			if model.IsUnchanged(v) {
				unchanged = append(unchanged, t.Columns[i].Name)
				continue
			}
			row[len(changeColumns)+i] = v
		}
		if unchanged != nil {
			b, err := json.Marshal(unchanged)
			if err != nil {
				return nil, err
			}
			row[4] = string(b)
		}
		return row, nil
	}
	switch ev.Op {
	case model.OpInsert:
		op := "insert"
		if ev.Read {
			op = "read"
		}
		r, err := newRow(op)
		return []model.Row{r}, err
	case model.OpUpdate:
		// Key is set when the update moved the row to another key, and for
		// every update of a table without a key (its whole old row): the
		// old row's identity is then written as a delete.
		if ev.Key != nil {
			del, err := keyRow("delete")
			if err != nil {
				return nil, err
			}
			ins, err := newRow("insert")
			return []model.Row{del, ins}, err
		}
		r, err := newRow("update")
		return []model.Row{r}, err
	case model.OpDelete:
		if ev.Key == nil && ev.Row != nil {
			r, err := newRow("delete")
			return []model.Row{r}, err
		}
		r, err := keyRow("delete")
		return []model.Row{r}, err
	case model.OpTruncate:
		return []model.Row{meta("truncate")}, nil
	}
	return nil, fmt.Errorf("unknown operation %d", ev.Op)
}

// encodeChangeFile renders a whole change file in the directory's format.
func (c *Conn) encodeChangeFile(b *model.RowBatch) ([]byte, error) {
	switch c.format {
	case formatParquet:
		seg, err := encodeParquetSegment(b)
		if err != nil {
			return nil, err
		}
		return seg[segmentHeader:], nil
	case formatCSV:
		rows, err := c.encodeRows(b)
		if err != nil {
			return nil, err
		}
		return append(appendCSVHeader(nil, b.Table.Columns), rows...), nil
	}
	return c.encodeRows(b)
}

// changeFiles lists the change files in the directory with their batch
// numbers.
func (c *Conn) changeFiles() (files map[string]int64, dirs []string, err error) {
	entries, err := os.ReadDir(c.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list %s: %w", c.dir, err)
	}
	out := map[string]int64{}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || !strings.HasSuffix(e.Name(), changesSuffix) {
			continue
		}
		dir := filepath.Join(c.dir, e.Name())
		dirs = append(dirs, dir)
		names, err := fileNames(dir)
		if err != nil {
			return nil, nil, err
		}
		for _, n := range names {
			num, _, ok := strings.Cut(n, "-")
			b, err := strconv.ParseInt(num, 10, 64)
			if !ok || err != nil || strings.HasPrefix(n, ".") {
				continue
			}
			out[filepath.Join(dir, n)] = b
		}
	}
	return out, dirs, nil
}

// lastChangeBatch is the highest batch number of the change files present.
func (c *Conn) lastChangeBatch() (int64, error) {
	files, _, err := c.changeFiles()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, b := range files {
		n = max(n, b)
	}
	return n, nil
}

// cutChanges deletes the change files of batches after committed (and
// leftover temporary files), so the stream resumed from the checkpoint
// writes them again once.
func (c *Conn) cutChanges(committed int64) error {
	files, dirs, err := c.changeFiles()
	if err != nil {
		return err
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if files[p] > committed {
			if err := removeIfExists(p); err != nil {
				return err
			}
		}
	}
	for _, d := range dirs {
		if err := removeTempFiles(d); err != nil {
			return err
		}
		if err := syncDir(d); err != nil {
			return err
		}
	}
	c.changeBatch = committed
	return nil
}
