package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// rowsOf reads a table's rows by key through the source side.
func rowsOf(t *testing.T, c *Conn, name string) map[int64]model.Row {
	t.Helper()
	_, got, _ := readAll(t, c, connector.PlanOptions{})
	out := map[int64]model.Row{}
	for _, r := range got[name] {
		out[r[0].(int64)] = r
	}
	return out
}

func checkpoints(t *testing.T, c *Conn, flow string) map[string]string {
	t.Helper()
	cps, err := c.LoadCheckpoints(context.Background(), flow)
	if err != nil {
		t.Fatalf("load checkpoints: %v", err)
	}
	return cps
}

func TestWriteIsIdempotent(t *testing.T) {
	c, _ := newFile(t)
	tbl, rows := intTable("items", 1000)
	ctx := context.Background()
	if err := c.CreateTables(ctx, []*model.Table{tbl}); err != nil {
		t.Fatal(err)
	}
	// Creating again is harmless.
	if err := c.CreateTables(ctx, []*model.Table{tbl}); err != nil {
		t.Fatalf("create twice: %v", err)
	}
	w, err := c.OpenWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := &model.RowBatch{Table: tbl, Partition: "main.items/0000", Rows: rows,
		Checkpoint: &model.Checkpoint{Flow: "f", Key: "partition/main.items/0000", Value: "v1"}}
	for i := 0; i < 2; i++ {
		if err := w.WriteRows(ctx, b); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	got := rowsOf(t, c, "items")
	if len(got) != len(rows) {
		t.Errorf("%d rows after writing the batch twice, want %d", len(got), len(rows))
	}
	// An upsert replaces the row.
	changed := model.Row{rows[0][0], "changed"}
	if err := w.WriteRows(ctx, &model.RowBatch{Table: tbl, Rows: []model.Row{changed}}); err != nil {
		t.Fatal(err)
	}
	if got := rowsOf(t, c, "items"); got[rows[0][0].(int64)][1] != "changed" || len(got) != len(rows) {
		t.Errorf("upsert: row %v, %d rows", got[rows[0][0].(int64)], len(got))
	}
	if cps := checkpoints(t, c, "f"); cps["partition/main.items/0000"] != "v1" {
		t.Errorf("checkpoints %v", cps)
	}
}

func TestFailedBatchLeavesNoCheckpoint(t *testing.T) {
	c, _ := newFile(t)
	tbl, rows := intTable("items", 600)
	tbl.Columns[1].Nullable = false
	ctx := context.Background()
	if err := c.CreateTables(ctx, []*model.Table{tbl}); err != nil {
		t.Fatal(err)
	}
	w, err := c.OpenWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rows[550][1] = nil // NOT NULL violation in the third statement
	err = w.WriteRows(ctx, &model.RowBatch{Table: tbl, Partition: "main.items/0000", Rows: rows,
		Checkpoint: &model.Checkpoint{Flow: "f", Key: "partition/main.items/0000", Value: "v1"}})
	if err == nil || !strings.Contains(err.Error(), "main.items") || !strings.Contains(err.Error(), "main.items/0000") {
		t.Fatalf("write with a NULL in a NOT NULL column: %v", err)
	}
	if got := rowsOf(t, c, "items"); len(got) != 0 {
		t.Errorf("%d rows left by a failed batch", len(got))
	}
	if cps := checkpoints(t, c, "f"); len(cps) != 0 {
		t.Errorf("checkpoints left by a failed batch: %v", cps)
	}
	// A bad value names its column.
	rows[550][1] = int64(5)
	err = w.WriteRows(ctx, &model.RowBatch{Table: tbl, Partition: "p", Rows: rows})
	if err == nil || !strings.Contains(err.Error(), "column name") {
		t.Errorf("write of an int into a text column: %v", err)
	}
}

func TestApplyChanges(t *testing.T) {
	c, _ := newFile(t)
	tbl := &model.Table{
		Namespace:  model.Namespace{Schema: "public", Table: "docs"},
		PrimaryKey: []string{"id"},
		Columns: []model.Column{
			{Name: "id", Type: model.Type{Kind: model.KindInt64}},
			{Name: "title", Type: model.Type{Kind: model.KindText}, Nullable: true},
			{Name: "body", Type: model.Type{Kind: model.KindText}, Nullable: true},
		},
	}
	writeTable(t, c, tbl, []model.Row{
		{int64(1), "one", "big body 1"},
		{int64(2), "two", "big body 2"},
		{int64(3), "three", "big body 3"},
	})
	ctx := context.Background()
	a, err := c.OpenApplier(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = a.ApplyChanges(ctx, &model.ApplyBatch{
		Tables: []*model.TableChanges{{
			Table:   tbl,
			Deletes: []model.Row{{int64(2)}, {int64(99)}}, // 99 does not exist
			Upserts: []model.Row{
				{int64(1), "ONE", model.Unchanged},      // keep the body
				{int64(3), model.Unchanged, "new body"}, // keep the title
				{int64(4), "four", "body 4"},            // insert
			},
		}},
		Checkpoint: &model.Checkpoint{Flow: "f", Key: "cdc/0", Value: "lsn-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]model.Row{
		1: {int64(1), "ONE", "big body 1"},
		3: {int64(3), "three", "new body"},
		4: {int64(4), "four", "body 4"},
	}
	if got := rowsOf(t, c, "docs"); !reflect.DeepEqual(got, want) {
		t.Errorf("after apply: %v, want %v", got, want)
	}
	if cps := checkpoints(t, c, "f"); cps["cdc/0"] != "lsn-1" {
		t.Errorf("checkpoints %v", cps)
	}

	// An Unchanged value for a row the destination does not have cannot be
	// applied; the whole batch, checkpoint included, is rolled back.
	err = a.ApplyChanges(ctx, &model.ApplyBatch{
		Tables: []*model.TableChanges{{
			Table:   tbl,
			Deletes: []model.Row{{int64(1)}},
			Upserts: []model.Row{{int64(7), "seven", model.Unchanged}},
		}},
		Checkpoint: &model.Checkpoint{Flow: "f", Key: "cdc/0", Value: "lsn-2"},
	})
	if err == nil || !strings.Contains(err.Error(), "public.docs") || !strings.Contains(err.Error(), "id=7") || !strings.Contains(err.Error(), "body") {
		t.Errorf("unchanged value for a missing row: %v", err)
	}
	if got := rowsOf(t, c, "docs"); !reflect.DeepEqual(got, want) {
		t.Errorf("after a failed apply: %v, want %v", got, want)
	}
	if cps := checkpoints(t, c, "f"); cps["cdc/0"] != "lsn-1" {
		t.Errorf("checkpoint after a failed apply: %v", cps)
	}

	// Applying the same changes twice is harmless.
	again := &model.ApplyBatch{Tables: []*model.TableChanges{{
		Table:   tbl,
		Deletes: []model.Row{{int64(3)}},
		Upserts: []model.Row{{int64(5), "five", "body 5"}},
	}}}
	for i := 0; i < 2; i++ {
		if err := a.ApplyChanges(ctx, again); err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
	}
	if got := rowsOf(t, c, "docs"); len(got) != 3 || got[5] == nil || got[3] != nil {
		t.Errorf("after applying twice: %v", got)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCheckpoints(t *testing.T) {
	c, _ := newFile(t)
	ctx := context.Background()
	if cps := checkpoints(t, c, "f"); len(cps) != 0 {
		t.Fatalf("new file has checkpoints %v", cps)
	}
	if err := c.ReplaceCheckpoints(ctx, "f", "partition/", map[string]string{"partition/a": "1", "partition/b": "2"}); err != nil {
		t.Fatal(err)
	}
	if err := c.ReplaceCheckpoints(ctx, "f", "cdc/", map[string]string{"cdc/0": "x"}); err != nil {
		t.Fatal(err)
	}
	if err := c.ReplaceCheckpoints(ctx, "g", "", map[string]string{"partition/a": "other flow"}); err != nil {
		t.Fatal(err)
	}
	// Replacing a prefix drops its old keys only; % and _ are not wildcards.
	if err := c.ReplaceCheckpoints(ctx, "f", "partition/", map[string]string{"partition/c": "3"}); err != nil {
		t.Fatal(err)
	}
	if err := c.ReplaceCheckpoints(ctx, "f", "cd_/", nil); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"partition/c": "3", "cdc/0": "x"}
	if got := checkpoints(t, c, "f"); !reflect.DeepEqual(got, want) {
		t.Errorf("checkpoints %v, want %v", got, want)
	}
	if err := c.DropCheckpoints(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	if got := checkpoints(t, c, "f"); len(got) != 0 {
		t.Errorf("after drop: %v", got)
	}
	if got := checkpoints(t, c, "g"); got["partition/a"] != "other flow" {
		t.Errorf("other flow after drop: %v", got)
	}
	// A batch with only a checkpoint stores it.
	w, err := c.OpenWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRows(ctx, &model.RowBatch{Checkpoint: &model.Checkpoint{Flow: "f", Key: "k", Value: "v"}}); err != nil {
		t.Fatal(err)
	}
	if got := checkpoints(t, c, "f"); got["k"] != "v" {
		t.Errorf("checkpoint-only batch: %v", got)
	}
	// ferry's own table is not a source table.
	if tables, err := c.Tables(ctx); err != nil || len(tables) != 0 {
		t.Errorf("tables of a file with only checkpoints: %v, %v", tables, err)
	}
}

func TestCreateTablesRefusesConflicts(t *testing.T) {
	c, path := newFile(t)
	ctx := context.Background()
	a, _ := intTable("items", 0)
	a.Namespace = model.Namespace{Schema: "public", Table: "items"}
	b, _ := intTable("Items", 0)
	b.Namespace = model.Namespace{Schema: "shop", Table: "Items"}
	err := c.CreateTables(ctx, []*model.Table{a, b})
	if !errs.IsConfigError(err) || !strings.Contains(err.Error(), "public.items") || !strings.Contains(err.Error(), "shop.Items") {
		t.Errorf("two tables mapping to one name: %v", err)
	}

	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, q := range []string{
		`CREATE TABLE missing_col (id INTEGER PRIMARY KEY)`,
		`CREATE TABLE wrong_type (id INTEGER PRIMARY KEY, name INTEGER)`,
		`CREATE TABLE wrong_key (id INTEGER, name TEXT, PRIMARY KEY (name))`,
		`CREATE TABLE extra_required (id INTEGER PRIMARY KEY, name TEXT, flag INT NOT NULL)`,
		`CREATE TABLE compatible (ID INTEGER PRIMARY KEY, name VARCHAR(10), extra TEXT NOT NULL DEFAULT 'x')`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]string{
		"missing_col":    "without column(s) name",
		"wrong_type":     `name is declared "INTEGER"`,
		"wrong_key":      "primary key (name)",
		"extra_required": "NOT NULL column(s) flag",
	} {
		tbl, _ := intTable(name, 0)
		err := c.CreateTables(ctx, []*model.Table{tbl})
		if err == nil || !strings.Contains(err.Error(), "main."+name) || !strings.Contains(err.Error(), want) {
			t.Errorf("existing table %s: %v; want an error saying %q", name, err, want)
		}
	}
	tbl, rows := intTable("compatible", 10)
	writeTable(t, c, tbl, rows)
	if got := rowsOf(t, c, "compatible"); len(got) != 10 {
		t.Errorf("compatible existing table: %d rows", len(got))
	}
}

func TestAlterTable(t *testing.T) {
	c, _ := newFile(t)
	ctx := context.Background()
	from, rows := intTable("items", 3)
	writeTable(t, c, from, rows)

	to := from.Clone()
	to.Columns = append(to.Columns,
		model.Column{Name: "price", Type: model.Type{Kind: model.KindDecimal, Precision: 10, Scale: 2}, Nullable: false},
		model.Column{Name: "tags", Type: model.Type{Kind: model.KindArray, Elem: &model.Type{Kind: model.KindText}}, Nullable: true})
	filled := map[string]any{"price": "0.00"}
	if err := c.AlterTable(ctx, from, model.SchemaChange{Table: to, Filled: filled}); err != nil {
		t.Fatal(err)
	}
	// A resumed flow that had not recorded the new schema asks again.
	if err := c.AlterTable(ctx, from, model.SchemaChange{Table: to, Filled: filled}); err != nil {
		t.Fatalf("the same alter again (a resumed flow): %v", err)
	}
	w, err := c.OpenWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRows(ctx, &model.RowBatch{Table: to, Rows: []model.Row{{int64(1000), "new", "9.90", []any{"a"}}}}); err != nil {
		t.Fatal(err)
	}
	tables, got, _ := readAll(t, c, connector.PlanOptions{})
	if n := len(tables["items"].Columns); n != 4 {
		t.Errorf("%d columns after alter, want 4", n)
	}
	if len(got["items"]) != 4 {
		t.Errorf("%d rows after alter", len(got["items"]))
	}

	notNull := to.Clone()
	notNull.Columns = append(notNull.Columns, model.Column{Name: "qty", Type: model.Type{Kind: model.KindInt32}})
	retyped := to.Clone()
	retyped.Columns[1].Type = model.Type{Kind: model.KindInt64}
	rekeyed := to.Clone()
	rekeyed.PrimaryKey = []string{"name"}
	for name, bad := range map[string]*model.Table{
		"column qty: the source added it NOT NULL without a default":  notNull,
		"column name: the source changed its type from text to int64": retyped,
		"primary key changed": rekeyed,
	} {
		err := c.AlterTable(ctx, to, model.SchemaChange{Table: bad})
		if err == nil || !strings.Contains(err.Error(), "main.items") || !strings.Contains(err.Error(), name) {
			t.Errorf("alter: %v; want an error saying %q", err, name)
		}
	}
}

// TestParallelWriters checks that writers sharing the file never fail with
// SQLITE_BUSY and lose nothing.
func TestParallelWriters(t *testing.T) {
	c, _ := newFile(t)
	ctx := context.Background()
	tbl, rows := intTable("items", 4000)
	if err := c.CreateTables(ctx, []*model.Table{tbl}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			w, err := c.OpenWriter(ctx)
			if err != nil {
				errs <- err
				return
			}
			for i := g * 500; i < (g+1)*500; i += 50 {
				b := &model.RowBatch{Table: tbl, Partition: fmt.Sprint(g), Rows: rows[i : i+50],
					Checkpoint: &model.Checkpoint{Flow: "f", Key: fmt.Sprint(g), Value: fmt.Sprint(i)}}
				if err := w.WriteRows(ctx, b); err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := rowsOf(t, c, "items"); len(got) != len(rows) {
		t.Errorf("%d rows after parallel writes, want %d", len(got), len(rows))
	}
}
