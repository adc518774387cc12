package file

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

func openChanges(t *testing.T, dir, format string) *ChangeFiles {
	t.Helper()
	u, err := url.Parse("file://" + dir + "?format=" + format + "&changes=files")
	if err != nil {
		t.Fatal(err)
	}
	c, err := openConnector(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	cf, ok := c.(*ChangeFiles)
	if !ok {
		t.Fatalf("changes=files opened a %T", c)
	}
	if !connector.Discover(c).Abilities.Events {
		t.Fatal("changes=files is not an event destination")
	}
	return cf
}

// readChangeFile reads a Parquet change file of tbl.
func readChangeFile(t *testing.T, path string, tbl *model.Table) []model.Row {
	t.Helper()
	ct, err := changeTable(tbl)
	if err != nil {
		t.Fatal(err)
	}
	l, err := newParquetLayout(ct)
	if err != nil {
		t.Fatal(err)
	}
	f, pf, err := openParquet(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := checkParquetSchema(pf.Schema(), ct); err != nil {
		t.Fatal(err)
	}
	var out []model.Row
	for _, rg := range pf.RowGroups() {
		var c Conn
		err := c.readRowGroup(context.Background(), rg, 0, rg.NumRows(), make([]parquetRow, 16), func(r parquetRow, _ int64) error {
			row, err := l.decodeRow(r)
			out = append(out, row)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func event(op model.Op, tbl *model.Table, pos string, row, key model.Row) connector.Event {
	return connector.Event{Op: op, Table: tbl, Source: tbl.Namespace, Row: row, Key: key, ID: pos + "/x", Position: model.Position(pos),
		CommitTime: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
}

// TestChangeFiles writes every kind of event as Parquet change files and
// reads them back: the operation, the position and the row's values.
func TestChangeFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tbl := idTable(model.Namespace{Schema: "s", Table: "t"})
	other := idTable(model.Namespace{Schema: "s", Table: "u"})
	c := openChanges(t, dir, formatParquet)
	if err := c.CreateTables(ctx, []*model.Table{tbl, other}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LoadCheckpoints(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	b := &connector.EventBatch{Position: "7", Checkpoint: &model.Checkpoint{Flow: "f", Key: "cdc", Value: "7"}, Events: []connector.Event{
		event(model.OpInsert, tbl, "1", model.Row{int64(1), "a"}, nil),
		event(model.OpUpdate, tbl, "2", model.Row{int64(1), model.Unchanged}, nil),
		event(model.OpUpdate, tbl, "3", model.Row{int64(2), "b"}, model.Row{int64(1)}),
		event(model.OpInsert, other, "4", model.Row{int64(9), nil}, nil),
		event(model.OpDelete, tbl, "5", nil, model.Row{int64(2)}),
		event(model.OpTruncate, tbl, "6", nil, nil),
	}}
	b.Events[3].Read = true
	if err := c.WriteEvents(ctx, b); err != nil {
		t.Fatal(err)
	}
	got := readChangeFile(t, filepath.Join(dir, "s.t.changes", "000000000001-1.parquet"), tbl)
	at := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	want := []model.Row{
		{"insert", "1", "1/x", at, nil, int64(1), "a"},
		{"update", "2", "2/x", at, `["note"]`, int64(1), nil},
		{"delete", "3", "3/x", at, nil, int64(1), nil},
		{"insert", "3", "3/x", at, nil, int64(2), "b"},
		{"delete", "5", "5/x", at, nil, int64(2), nil},
		{"truncate", "6", "6/x", at, nil, nil, nil},
	}
	ct, _ := changeTable(tbl)
	compareRows(t, ct.Columns, want, got)
	got = readChangeFile(t, filepath.Join(dir, "s.u.changes", "000000000001-1.parquet"), other)
	compareRows(t, ct.Columns, []model.Row{{"read", "4", "4/x", at, nil, int64(9), nil}}, got)

	// A table without a key: an update carries the whole old row.
	keyless := idTable(model.Namespace{Schema: "s", Table: "k"})
	keyless.PrimaryKey, keyless.FullRowIdentity = nil, true
	b = &connector.EventBatch{Position: "9", Checkpoint: &model.Checkpoint{Flow: "f", Key: "cdc", Value: "9"}, Events: []connector.Event{
		event(model.OpUpdate, keyless, "8", model.Row{int64(1), "new"}, model.Row{int64(1), "old"}),
		event(model.OpDelete, keyless, "9", nil, model.Row{int64(1), "new"}),
	}}
	if err := c.WriteEvents(ctx, b); err != nil {
		t.Fatal(err)
	}
	got = readChangeFile(t, filepath.Join(dir, "s.k.changes", "000000000002-1.parquet"), keyless)
	compareRows(t, ct.Columns, []model.Row{
		{"delete", "8", "8/x", at, nil, int64(1), "old"},
		{"insert", "8", "8/x", at, nil, int64(1), "new"},
		{"delete", "9", "9/x", at, nil, int64(1), "new"},
	}, got)
	// The change directories are not tables.
	tables, err := openDir(t, dir, formatParquet).Tables(ctx)
	if err != nil || len(tables) != 0 {
		t.Errorf("tables %v, %v; want none (no table file yet)", tables, err)
	}
}

// TestChangeFilesResume: a batch written after the last checkpoint is
// gone after LoadCheckpoints, and the resumed stream writes it again under
// the same name, once.
func TestChangeFilesResume(t *testing.T) {
	ctx := context.Background()
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			tbl := idTable(model.Namespace{Table: "t"})
			c := openChanges(t, dir, format)
			if err := c.CreateTables(ctx, []*model.Table{tbl}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.LoadCheckpoints(ctx, "f"); err != nil {
				t.Fatal(err)
			}
			write := func(c *ChangeFiles, pos string, ck bool, ids ...int64) {
				b := &connector.EventBatch{Position: model.Position(pos)}
				if ck {
					b.Checkpoint = &model.Checkpoint{Flow: "f", Key: "cdc", Value: pos}
				}
				for _, id := range ids {
					b.Events = append(b.Events, event(model.OpInsert, tbl, pos, model.Row{id, "n"}, nil))
				}
				if err := c.WriteEvents(ctx, b); err != nil {
					t.Fatal(err)
				}
			}
			write(c, "10", true, 1, 2)
			write(c, "20", false, 3)
			write(c, "30", false, 4)
			names := func() []string { return dirNames(t, filepath.Join(dir, "t.changes")) }
			if got := names(); len(got) != 3 {
				t.Fatalf("change files %q, want 3", got)
			}
			// Restart: the checkpoint says 10, batches 2 and 3 go.
			c2 := openChanges(t, dir, format)
			cks, err := c2.LoadCheckpoints(ctx, "f")
			if err != nil || cks["cdc"] != "10" {
				t.Fatalf("checkpoints %v, %v", cks, err)
			}
			want := []string{"000000000001-1." + format}
			if got := names(); !reflect.DeepEqual(got, want) {
				t.Fatalf("after LoadCheckpoints: %q, want %q", got, want)
			}
			write(c2, "30", true, 3, 4)
			want = append(want, "000000000002-1."+format)
			if got := names(); !reflect.DeepEqual(got, want) {
				t.Fatalf("after the resumed batch: %q, want %q", got, want)
			}
			if format == formatParquet {
				rows := readChangeFile(t, filepath.Join(dir, "t.changes", want[1]), tbl)
				if len(rows) != 2 || rows[0][5] != int64(3) || rows[1][5] != int64(4) {
					t.Errorf("resumed batch holds %v", rows)
				}
			}
			if format == formatJSONL {
				b, err := os.ReadFile(filepath.Join(dir, "t.changes", want[1]))
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(string(b), `{"_op":"insert","_position":"30","_id":"30/x","_commit_time":"2026-12-06T12:00:00Z","_unchanged":null,"id":3,`) {
					t.Errorf("JSON Lines change file:\n%s", b)
				}
			}
			// Dropping the flow drops its change files.
			if err := c2.DropCheckpoints(ctx, "f"); err != nil {
				t.Fatal(err)
			}
			if got := names(); len(got) != 0 {
				t.Errorf("change files after DropCheckpoints: %q", got)
			}
		})
	}
}

// TestChangeFilesRefusals: a column named like a change column, and
// changes=files with a bad value.
func TestChangeFilesRefusals(t *testing.T) {
	ctx := context.Background()
	c := openChanges(t, t.TempDir(), formatParquet)
	tbl := &model.Table{Namespace: model.Namespace{Table: "t"}, Columns: []model.Column{{Name: "_op", Type: typ(model.KindText)}}}
	err := c.WriteEvents(ctx, &connector.EventBatch{Events: []connector.Event{event(model.OpInsert, tbl, "1", model.Row{"x"}, nil)}})
	mustContain(t, err, "table t", `duplicate column "_op"`, "change file's own")
	u, _ := url.Parse("file:///tmp/x?changes=yes")
	_, err = Open(ctx, u)
	mustContain(t, err, `changes="yes"`)
}
