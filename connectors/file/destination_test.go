package file

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

func idTable(ns model.Namespace) *model.Table {
	return &model.Table{Namespace: ns, PrimaryKey: []string{"id"}, Columns: []model.Column{
		{Name: "id", Type: typ(model.KindInt64)},
		{Name: "note", Type: typ(model.KindText), Nullable: true},
	}}
}

func idRows(from, to int64) []model.Row {
	var rows []model.Row
	for i := from; i < to; i++ {
		rows = append(rows, model.Row{i, fmt.Sprintf("row %d, \"quoted\"\nsecond line", i)})
	}
	return rows
}

// writeBatches writes rows [from, to) of a partition in batches of size n;
// with checkpoint, every batch carries one whose value is its cursor.
func writeBatches(t *testing.T, w connector.RowWriter, tbl *model.Table, pid string, from, to, n int64, flow string) {
	t.Helper()
	for i := from; i < to; i += n {
		end := min(i+n, to)
		b := &model.RowBatch{Table: tbl, Partition: pid, Rows: idRows(i, end), Cursor: model.Cursor(strconv.FormatInt(end, 10))}
		if flow != "" {
			b.Checkpoint = &model.Checkpoint{Flow: flow, Key: "partition/" + pid, Value: string(b.Cursor)}
		}
		if err := w.WriteRows(context.Background(), b); err != nil {
			t.Fatalf("write %s rows %d-%d: %v", pid, i, end, err)
		}
	}
}

// readIDs reads a table file's ids in file order.
func readIDs(t *testing.T, dir, format string, ns model.Namespace) []int64 {
	t.Helper()
	src := openDir(t, dir, format)
	tbl := idTable(ns)
	plan, err := src.Plan(context.Background(), []*model.Table{tbl}, connector.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, p := range plan.Partitions {
		err := src.ReadPartition(context.Background(), tbl, p, "", func(b *model.RowBatch) error {
			for _, r := range b.Rows {
				id := r[0].(int64)
				if want := fmt.Sprintf("row %d, \"quoted\"\nsecond line", id); r[1] != want {
					return fmt.Errorf("row %d: note %q", id, r[1])
				}
				ids = append(ids, id)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func seq(from, to int64) []int64 {
	var out []int64
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// TestParallelPartitions writes a table's partitions through several writers
// at once and checks the assembled file has every row once, in partition
// order.
func TestParallelPartitions(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			ns := model.Namespace{Schema: "s", Table: "t"}
			tbl := idTable(ns)
			dst := openDir(t, dir, format)
			if err := dst.CreateTables(ctx, []*model.Table{tbl}); err != nil {
				t.Fatal(err)
			}
			if _, err := dst.LoadCheckpoints(ctx, "f"); err != nil {
				t.Fatal(err)
			}
			// Partition i holds ids [i*1000, i*1000+100); "s.t/10000" sorts
			// after "s.t/0011" by number, not by text.
			ids := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 10000}
			const writers = 3
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for wi := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					w, err := dst.OpenWriter(ctx)
					if err != nil {
						errs <- err
						return
					}
					for k, id := range ids {
						if k%writers != wi {
							continue
						}
						pid := fmt.Sprintf("%s/%04d", ns, id)
						for i := int64(id * 1000); i < int64(id*1000+100); i += 7 {
							end := min(i+7, int64(id*1000+100))
							b := &model.RowBatch{Table: tbl, Partition: pid, Rows: idRows(i, end), Cursor: model.Cursor(strconv.FormatInt(end, 10)),
								Checkpoint: &model.Checkpoint{Flow: "f", Key: "partition/" + pid, Value: strconv.FormatInt(end, 10)}}
							if err := w.WriteRows(ctx, b); err != nil {
								errs <- err
								return
							}
						}
					}
					errs <- w.Close()
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := dst.FinishTable(ctx, tbl); err != nil {
				t.Fatal(err)
			}
			var want []int64
			for _, id := range ids {
				want = append(want, seq(int64(id*1000), int64(id*1000+100))...)
			}
			if got := readIDs(t, dir, format, ns); !reflect.DeepEqual(got, want) {
				t.Errorf("table file holds %d ids %v..., want %d in partition order", len(got), got[:min(len(got), 20)], len(want))
			}
			if parts := listParts(mustNames(t, dir), ""); len(parts) != 0 {
				t.Errorf("part files left: %v", parts)
			}
			// Idempotent.
			before, _ := os.ReadFile(filepath.Join(dir, "s.t."+format))
			if err := dst.FinishTable(ctx, tbl); err != nil {
				t.Fatal(err)
			}
			after, _ := os.ReadFile(filepath.Join(dir, "s.t."+format))
			if string(before) != string(after) {
				t.Error("a second FinishTable changed the table file")
			}
		})
	}
}

func mustNames(t *testing.T, dir string) []string {
	t.Helper()
	names, err := fileNames(dir)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func appendRaw(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCrashBeforeCheckpoint simulates a crash after rows reached a part file
// but before their checkpoint did (and a torn write after them): on restart,
// LoadCheckpoints rolls the part file back, and resuming from the checkpoint
// leaves no duplicate.
func TestCrashBeforeCheckpoint(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			ns := model.Namespace{Schema: "s", Table: "t"}
			tbl := idTable(ns)
			p0, p1 := "s.t/0000", "s.t/0001"
			part0 := filepath.Join(dir, partName("s.t."+format, p0))
			part1 := filepath.Join(dir, partName("s.t."+format, p1))

			// First run.
			c1 := openDir(t, dir, format)
			if err := c1.CreateTables(ctx, []*model.Table{tbl}); err != nil {
				t.Fatal(err)
			}
			w, _ := c1.OpenWriter(ctx)
			writeBatches(t, w, tbl, p0, 0, 50, 10, "f")
			committed := fileSize(t, part0)
			writeBatches(t, w, tbl, p0, 50, 60, 10, "") // crash before the checkpoint
			appendRaw(t, part0, `{"id":6`)              // and a torn write
			writeBatches(t, w, tbl, p1, 1000, 1020, 10, "")
			if fileSize(t, part0) <= committed {
				t.Fatal("uncheckpointed rows did not reach the part file")
			}

			// Restart.
			c2 := openDir(t, dir, format)
			cks, err := c2.LoadCheckpoints(ctx, "f")
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]string{"partition/" + p0: "50"}; !reflect.DeepEqual(cks, want) {
				t.Errorf("checkpoints %v, want %v", cks, want)
			}
			if got := fileSize(t, part0); got != committed {
				t.Errorf("part file is %d bytes after LoadCheckpoints, want the checkpoint's %d", got, committed)
			}
			if _, err := os.Stat(part1); !os.IsNotExist(err) {
				t.Errorf("part file without a checkpoint survived LoadCheckpoints: %v", err)
			}
			// Resume p0 from its checkpoint, p1 from the start.
			w2, _ := c2.OpenWriter(ctx)
			writeBatches(t, w2, tbl, p0, 50, 100, 10, "f")
			writeBatches(t, w2, tbl, p1, 1000, 1030, 10, "f")
			if err := c2.FinishTable(ctx, tbl); err != nil {
				t.Fatal(err)
			}
			want := append(seq(0, 100), seq(1000, 1030)...)
			if got := readIDs(t, dir, format, ns); !reflect.DeepEqual(got, want) {
				t.Errorf("got ids %v, want %v", got, want)
			}
		})
	}
}

// TestRetriedBatches: within one run, a failed write's leftover and a batch
// sent again after its partition was retried from its last checkpoint are
// written once.
func TestRetriedBatches(t *testing.T) {
	for _, format := range []string{formatJSONL, formatParquet} {
		ctx := context.Background()
		dir := t.TempDir()
		ns := model.Namespace{Table: "t"}
		tbl := idTable(ns)
		c := openDir(t, dir, format)
		if err := c.CreateTables(ctx, []*model.Table{tbl}); err != nil {
			t.Fatal(err)
		}
		w, _ := c.OpenWriter(ctx)
		writeBatches(t, w, tbl, "t/0000", 0, 20, 10, "f")
		writeBatches(t, w, tbl, "t/0000", 20, 40, 10, "") // no checkpoint yet
		// The partition is retried from its checkpoint at 20, by another writer.
		w2, _ := c.OpenWriter(ctx)
		writeBatches(t, w2, tbl, "t/0000", 20, 30, 10, "")
		// A write fails halfway.
		appendRaw(t, filepath.Join(dir, partName("t."+format, "t/0000")), `{"id":30,"no`)
		writeBatches(t, w2, tbl, "t/0000", 30, 50, 10, "f")
		// An empty batch that only carries the final checkpoint.
		if err := w2.WriteRows(ctx, &model.RowBatch{Table: tbl, Partition: "t/0000", Cursor: "50",
			Checkpoint: &model.Checkpoint{Flow: "f", Key: "partition/t/0000", Value: "done"}}); err != nil {
			t.Fatal(err)
		}
		if err := c.FinishTable(ctx, tbl); err != nil {
			t.Fatal(err)
		}
		if got := readIDs(t, dir, format, ns); !reflect.DeepEqual(got, seq(0, 50)) {
			t.Errorf("got ids %v", got)
		}
	}
}

// TestFinishCrash simulates crashes inside FinishTable: after the table file
// was renamed into place, and after some part files were deleted.
func TestFinishCrash(t *testing.T) {
	ctx := context.Background()
	ns := model.Namespace{Schema: "s", Table: "t"}
	tbl := idTable(ns)
	setup := func(t *testing.T) (*Conn, []partInfo) {
		dir := t.TempDir()
		c := openDir(t, dir, formatCSV)
		if err := c.CreateTables(ctx, []*model.Table{tbl}); err != nil {
			t.Fatal(err)
		}
		w, _ := c.OpenWriter(ctx)
		for i := range 3 {
			writeBatches(t, w, tbl, fmt.Sprintf("s.t/%04d", i), int64(i*100), int64(i*100+30), 10, "f")
		}
		return c, listParts(mustNames(t, dir), "s.t.csv")
	}
	want := append(append(seq(0, 30), seq(100, 130)...), seq(200, 230)...)
	final := func(c *Conn) string { return filepath.Join(c.dir, "s.t.csv") }

	t.Run("after rename", func(t *testing.T) {
		c, parts := setup(t)
		if err := c.assemble(ctx, tbl, final(c), parts); err != nil {
			t.Fatal(err)
		}
		if err := c.FinishTable(ctx, tbl); err != nil {
			t.Fatal(err)
		}
		if got := readIDs(t, c.dir, formatCSV, ns); !reflect.DeepEqual(got, want) {
			t.Errorf("got ids %v", got)
		}
	})
	t.Run("during deletions", func(t *testing.T) {
		for _, via := range []string{"FinishTable", "LoadCheckpoints"} {
			c, parts := setup(t)
			if err := c.assemble(ctx, tbl, final(c), parts); err != nil {
				t.Fatal(err)
			}
			list, _ := json.Marshal([]string{parts[0].name, parts[1].name, parts[2].name})
			if err := writeFileAtomic(filepath.Join(c.dir, ".s.t.csv"+finishSuffix), list); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(c.dir, parts[1].name)); err != nil {
				t.Fatal(err)
			}
			c2 := openDir(t, c.dir, formatCSV)
			if via == "LoadCheckpoints" {
				if _, err := c2.LoadCheckpoints(ctx, "f"); err != nil {
					t.Fatal(err)
				}
			}
			if err := c2.FinishTable(ctx, tbl); err != nil {
				t.Fatal(err)
			}
			if got := readIDs(t, c.dir, formatCSV, ns); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: got ids %v", via, got)
			}
			wantNames := []string{
				".ferry/", ".ferry/f/", ".ferry/f/partition%2Fs.t%2F0000.json", ".ferry/f/partition%2Fs.t%2F0001.json",
				".ferry/f/partition%2Fs.t%2F0002.json", "s.t.csv", "s.t.schema.json",
			}
			if names := dirNames(t, c.dir); !reflect.DeepEqual(names, wantNames) {
				t.Errorf("%s: directory holds %q, want %q", via, names, wantNames)
			}
		}
	})
	t.Run("empty table", func(t *testing.T) {
		dir := t.TempDir()
		c := openDir(t, dir, formatCSV)
		if err := c.CreateTables(ctx, []*model.Table{tbl}); err != nil {
			t.Fatal(err)
		}
		if err := c.FinishTable(ctx, tbl); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "s.t.csv"))
		if err != nil || string(b) != "id,note\n" {
			t.Errorf("empty table file: %q, %v", b, err)
		}
		if got := readIDs(t, dir, formatCSV, ns); len(got) != 0 {
			t.Errorf("got ids %v", got)
		}
	})
}

func TestReplaceCheckpoints(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tbl := idTable(model.Namespace{Table: "t"})
	c := openDir(t, dir, formatJSONL)
	if err := c.CreateTables(ctx, []*model.Table{tbl}); err != nil {
		t.Fatal(err)
	}
	w, _ := c.OpenWriter(ctx)
	writeBatches(t, w, tbl, "t/0000", 0, 20, 10, "f")
	writeBatches(t, w, tbl, "t/0001", 100, 120, 10, "f")
	part0 := filepath.Join(dir, partName("t.jsonl", "t/0000"))
	size0 := fileSize(t, part0)

	// A replaced key keeps its part file.
	if err := c.ReplaceCheckpoints(ctx, "f", "partition/t/0000", map[string]string{"partition/t/0000": "moved", "table/t": "copying"}); err != nil {
		t.Fatal(err)
	}
	cks, err := openDir(t, dir, formatJSONL).LoadCheckpoints(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"partition/t/0000": "moved", "partition/t/0001": "120", "table/t": "copying"}
	if !reflect.DeepEqual(cks, want) {
		t.Errorf("checkpoints %v, want %v", cks, want)
	}
	if got := fileSize(t, part0); got != size0 {
		t.Errorf("part file of a replaced checkpoint is %d bytes, want %d", got, size0)
	}

	// A journal left by a crash is replayed.
	j := replaceJournal{Prefix: "partition/", Records: []checkpointRecord{{Key: "table/t", Value: "done"}}}
	b, _ := json.Marshal(j)
	if err := writeFileAtomic(filepath.Join(dir, stateDir, "f", journalName), b); err != nil {
		t.Fatal(err)
	}
	c2 := openDir(t, dir, formatJSONL)
	if err := c2.FinishTable(ctx, tbl); err != nil { // before the partitions' checkpoints go
		t.Fatal(err)
	}
	cks, err = c2.LoadCheckpoints(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"table/t": "done"}; !reflect.DeepEqual(cks, want) {
		t.Errorf("checkpoints after replaying the journal: %v, want %v", cks, want)
	}
	if _, err := os.Stat(filepath.Join(dir, stateDir, "f", journalName)); !os.IsNotExist(err) {
		t.Errorf("journal still there: %v", err)
	}
	if got := readIDs(t, dir, formatJSONL, tbl.Namespace); !reflect.DeepEqual(got, append(seq(0, 20), seq(100, 120)...)) {
		t.Errorf("got ids %v", got)
	}
}

func TestDropCheckpoints(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ta, tb := idTable(model.Namespace{Table: "a"}), idTable(model.Namespace{Table: "b"})
	c := openDir(t, dir, formatJSONL)
	if err := c.CreateTables(ctx, []*model.Table{ta, tb}); err != nil {
		t.Fatal(err)
	}
	w, _ := c.OpenWriter(ctx)
	writeBatches(t, w, ta, "a/0000", 0, 20, 10, "one")
	writeBatches(t, w, ta, "a/0001", 0, 20, 10, "") // no checkpoint: nobody's
	writeBatches(t, w, tb, "b/0000", 0, 20, 10, "two")
	if err := c.DropCheckpoints(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		".ferry/", ".ferry/two/", ".ferry/two/partition%2Fb%2F0000.json",
		"a.schema.json", "b.jsonl.part-b%2F0000", "b.schema.json",
	}
	if got := dirNames(t, dir); !reflect.DeepEqual(got, want) {
		t.Errorf("after dropping flow one the directory holds\n%q\nwant\n%q", got, want)
	}
	cks, err := c.LoadCheckpoints(ctx, "one")
	if err != nil || len(cks) != 0 {
		t.Errorf("flow one after drop: %v, %v", cks, err)
	}
	// Flow two's unfinished copy is not flow one's to touch.
	err = w.WriteRows(ctx, &model.RowBatch{Table: tb, Partition: "b/0000", Rows: idRows(0, 1)})
	mustContain(t, err, "b.jsonl.part-b%2F0000", `flow "two"`)
	if !errs.IsConfigError(err) {
		t.Errorf("not a ConfigError: %v", err)
	}
	mustContain(t, c.FinishTable(ctx, tb), `flow "two"`)
	// The flow starts again from scratch.
	writeBatches(t, w, ta, "a/0000", 0, 30, 10, "one")
	if err := c.FinishTable(ctx, ta); err != nil {
		t.Fatal(err)
	}
	if got := readIDs(t, dir, formatJSONL, ta.Namespace); !reflect.DeepEqual(got, seq(0, 30)) {
		t.Errorf("got ids %v", got)
	}
}

func TestCreateTables(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	tbl := idTable(model.Namespace{Schema: "s", Table: "t"})

	notDir := filepath.Join(root, "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o666); err != nil {
		t.Fatal(err)
	}
	err := openDir(t, notDir, formatJSONL).CreateTables(ctx, []*model.Table{tbl})
	mustContain(t, err, notDir, "not a directory")
	if !errs.IsConfigError(err) {
		t.Errorf("not a ConfigError: %v", err)
	}

	dir := filepath.Join(root, "a", "b")
	c := openDir(t, dir, formatJSONL)
	for range 2 { // idempotent
		if err := c.CreateTables(ctx, []*model.Table{tbl}); err != nil {
			t.Fatal(err)
		}
	}
	// A compatible change (nullability) is recorded.
	t2 := tbl.Clone()
	t2.Columns[1].Nullable = false
	if err := c.CreateTables(ctx, []*model.Table{t2}); err != nil {
		t.Fatal(err)
	}
	got, err := readSchema(filepath.Join(dir, "s.t.schema.json"))
	if err != nil || got.Columns[1].Nullable {
		t.Errorf("sidecar not updated: %+v, %v", got, err)
	}
	// An incompatible one is refused.
	t3 := tbl.Clone()
	t3.Columns[1].Type = typ(model.KindBytes)
	err = c.CreateTables(ctx, []*model.Table{t3})
	mustContain(t, err, "s.t.schema.json", `column "note" is text`, "bytes")
	if !errs.IsConfigError(err) {
		t.Errorf("not a ConfigError: %v", err)
	}
}

// TestPartFileIsLines checks that a part file is whole lines after every
// batch, whatever happened before it.
func TestPartFileIsLines(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tbl := idTable(model.Namespace{Table: "t"})
	c := openDir(t, dir, formatJSONL)
	if err := c.CreateTables(ctx, []*model.Table{tbl}); err != nil {
		t.Fatal(err)
	}
	w, _ := c.OpenWriter(ctx)
	writeBatches(t, w, tbl, "t/0000", 0, 5, 5, "f")
	path := filepath.Join(dir, partName("t.jsonl", "t/0000"))
	appendRaw(t, path, "garbage")
	writeBatches(t, w, tbl, "t/0000", 5, 10, 5, "f")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Errorf("line %d: %v: %q", n+1, err, sc.Text())
		}
		n++
	}
	if n != 10 {
		t.Errorf("%d lines, want 10", n)
	}
}

func TestCheckpointsBeforeTheDirectoryExists(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "later")
	c := openDir(t, dir, formatCSV)
	cks, err := c.LoadCheckpoints(ctx, "f")
	if err != nil || len(cks) != 0 {
		t.Fatalf("LoadCheckpoints: %v, %v", cks, err)
	}
	if err := c.DropCheckpoints(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LoadCheckpoints(ctx, ""); err == nil {
		t.Error("empty flow name accepted")
	}
	if err := c.ReplaceCheckpoints(ctx, "f", "", map[string]string{"cdc/0": "x"}); err != nil {
		t.Fatal(err)
	}
	cks, err = c.LoadCheckpoints(ctx, "f")
	if err != nil || cks["cdc/0"] != "x" || len(cks) != 1 {
		t.Fatalf("LoadCheckpoints: %v, %v", cks, err)
	}
}
