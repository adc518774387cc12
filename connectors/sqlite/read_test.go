package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

func intTable(name string, rows int) (*model.Table, []model.Row) {
	tbl := &model.Table{
		Namespace:  model.Namespace{Schema: "main", Table: name},
		PrimaryKey: []string{"id"},
		Columns: []model.Column{
			{Name: "id", Type: model.Type{Kind: model.KindInt64}},
			{Name: "name", Type: model.Type{Kind: model.KindText}, Nullable: true},
		},
	}
	out := make([]model.Row, rows)
	for i := range out {
		// Spread the keys out and out of insertion order.
		id := int64((i*7919)%rows)*3 - int64(rows)
		out[i] = model.Row{id, fmt.Sprintf("row %d", id)}
	}
	return tbl, out
}

// readPartition collects a partition's rows from cursor, checking batch
// cursors along the way.
func readPartition(t *testing.T, c *Conn, tbl *model.Table, p model.Partition, from model.Cursor) ([]model.Row, []model.Cursor) {
	t.Helper()
	var rows []model.Row
	var cursors []model.Cursor
	err := c.ReadPartition(context.Background(), tbl, p, from, func(b *model.RowBatch) error {
		if len(b.Rows) == 0 {
			t.Errorf("partition %s: empty batch", p.ID)
		}
		if b.Bytes <= 0 {
			t.Errorf("partition %s: batch without a size", p.ID)
		}
		rows = append(rows, b.Rows...)
		cursors = append(cursors, b.Cursor)
		return nil
	})
	if err != nil {
		t.Fatalf("read %s from %q: %v", p.ID, from, err)
	}
	return rows, cursors
}

func TestPartitionsCoverEveryRowOnce(t *testing.T) {
	c, _ := newFile(t)
	tbl, rows := intTable("items", 10000)
	writeTable(t, c, tbl, rows)

	_, got, plan := readAll(t, c, connector.PlanOptions{PartitionRows: 1000, BatchRows: 300})
	if n := len(plan.Partitions); n < 9 || n > 11 {
		t.Errorf("%d partitions, want about 10", n)
	}
	for i, p := range plan.Partitions {
		if want := fmt.Sprintf("main.items/%04d", i); p.ID != want || p.Index != i {
			t.Errorf("partition %d: id %q index %d, want %q", i, p.ID, p.Index, want)
		}
		if (i == 0) != (p.Lower == "") || (i == len(plan.Partitions)-1) != (p.Upper == "") {
			t.Errorf("partition %s: bounds [%q, %q)", p.ID, p.Lower, p.Upper)
		}
		if i > 0 && plan.Partitions[i-1].Upper != p.Lower {
			t.Errorf("partition %s does not start where the previous ends", p.ID)
		}
		if p.EstimatedRows < 900 || p.EstimatedRows > 1100 {
			t.Errorf("partition %s: estimated %d rows", p.ID, p.EstimatedRows)
		}
	}
	seen := map[int64]int{}
	var prev int64 = math.MinInt64
	for _, r := range got["items"] {
		id := r[0].(int64)
		seen[id]++
		if id <= prev {
			t.Fatalf("rows out of key order: %d after %d", id, prev)
		}
		prev = id
		if r[1] != fmt.Sprintf("row %d", id) {
			t.Errorf("row %d: name %v", id, r[1])
		}
	}
	if len(seen) != len(rows) || len(got["items"]) != len(rows) {
		t.Errorf("read %d rows (%d distinct), wrote %d", len(got["items"]), len(seen), len(rows))
	}
}

func TestResumeFromCursor(t *testing.T) {
	c, _ := newFile(t)
	tbl, rows := intTable("items", 10000)
	writeTable(t, c, tbl, rows)
	ctx := context.Background()
	tables, err := c.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := c.Plan(ctx, tables, connector.PlanOptions{PartitionRows: 1000, BatchRows: 100})
	if err != nil {
		t.Fatal(err)
	}
	p := plan.Partitions[3]
	all, cursors := readPartition(t, c, tables[0], p, "")
	if len(cursors) < 5 {
		t.Fatalf("partition %s read in %d batches; want several", p.ID, len(cursors))
	}
	// Resume after the third batch: exactly the rows after it come back.
	rest, _ := readPartition(t, c, tables[0], p, cursors[2])
	if want := all[300:]; len(rest) != len(want) {
		t.Fatalf("resumed read returned %d rows, want %d", len(rest), len(want))
	}
	for i := range rest {
		if rest[i][0] != all[300+i][0] {
			t.Fatalf("resumed row %d: id %v, want %v", i, rest[i][0], all[300+i][0])
		}
	}
	// Resuming from the last cursor returns nothing.
	if tail, _ := readPartition(t, c, tables[0], p, cursors[len(cursors)-1]); len(tail) != 0 {
		t.Errorf("resume from the last cursor returned %d rows", len(tail))
	}
	// A corrupt cursor is an error naming the partition.
	err = c.ReadPartition(ctx, tables[0], p, "not json", func(*model.RowBatch) error { return nil })
	if err == nil || !strings.Contains(err.Error(), p.ID) {
		t.Errorf("corrupt cursor: %v", err)
	}
}

func TestCompositeKey(t *testing.T) {
	c, _ := newFile(t)
	tbl := &model.Table{
		Namespace:  model.Namespace{Schema: "shop", Table: "lines"},
		PrimaryKey: []string{"region", "ts", "n"},
		Columns: []model.Column{
			{Name: "n", Type: model.Type{Kind: model.KindInt32}},
			{Name: "region", Type: model.Type{Kind: model.KindText}},
			{Name: "ts", Type: model.Type{Kind: model.KindTimestampTZ}},
			{Name: "qty", Type: model.Type{Kind: model.KindDecimal, Precision: 10, Scale: 2}, Nullable: true},
		},
	}
	regions := []string{"eu", "us", "äsia", "bad\xffutf8", ""}
	var rows []model.Row
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 3000; i++ {
		rows = append(rows, model.Row{
			int64(i % 7), regions[i%len(regions)],
			base.Add(time.Duration(i/35) * 1500 * time.Millisecond), fmt.Sprintf("%d.50", i),
		})
	}
	writeTable(t, c, tbl, rows)

	tables, got, plan := readAll(t, c, connector.PlanOptions{PartitionRows: 500, BatchRows: 77})
	if n := len(plan.Partitions); n < 5 || n > 7 {
		t.Errorf("%d partitions, want about 6", n)
	}
	if pk := tables["lines"].PrimaryKey; strings.Join(pk, ",") != "region,ts,n" {
		t.Errorf("primary key %v", pk)
	}
	seen := map[string]bool{}
	for _, r := range got["lines"] {
		k := fmt.Sprintf("%q/%v/%v", r[1], r[2], r[0])
		if seen[k] {
			t.Errorf("row %s read twice", k)
		}
		seen[k] = true
	}
	if len(seen) != len(rows) {
		t.Errorf("read %d distinct rows, wrote %d", len(seen), len(rows))
	}
}

func TestTableWithoutKey(t *testing.T) {
	c, path := newFile(t)
	tbl := &model.Table{
		Namespace: model.Namespace{Schema: "main", Table: "events"},
		Columns: []model.Column{
			{Name: "kind", Type: model.Type{Kind: model.KindText}, Nullable: true},
			{Name: "oid", Type: model.Type{Kind: model.KindInt64}, Nullable: true}, // shadows one rowid alias
		},
	}
	var rows []model.Row
	for i := 0; i < 2500; i++ {
		rows = append(rows, model.Row{"same", int64(i % 3)}) // many identical rows
	}
	writeTable(t, c, tbl, rows)
	// Leave holes in the rowids.
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`DELETE FROM events WHERE rowid % 5 = 0`); err != nil {
		t.Fatal(err)
	}

	tables, got, plan := readAll(t, c, connector.PlanOptions{PartitionRows: 400, BatchRows: 150})
	if len(tables["events"].PrimaryKey) != 0 {
		t.Errorf("primary key %v, want none", tables["events"].PrimaryKey)
	}
	if n := len(plan.Partitions); n != 5 {
		t.Errorf("%d partitions for 2000 rows of 400, want 5", n)
	}
	if n := len(got["events"]); n != 2000 {
		t.Errorf("read %d rows, want 2000", n)
	}
}

// TestHandMadeTable reads a table that ferry did not create.
func TestHandMadeTable(t *testing.T) {
	path := t.TempDir() + "/app.db"
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, q := range []string{
		`CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL, score REAL, avatar BLOB,
			active BOOLEAN, balance NUMERIC(12,2), born DATE, seen DATETIME, misc, note TEXT)`,
		`INSERT INTO users VALUES (1, 'ann', 1.5, x'00ff', 1, 12.5, '1980-05-06', '2024-01-02 03:04:05', 42, 7)`,
		`INSERT INTO users VALUES (2, 'bob', 3, NULL, 'false', 7, NULL, '2024-01-02T03:04:05.250', 'x', NULL)`,
		`CREATE VIEW v AS SELECT * FROM users`,
		`CREATE TABLE _ferry_private (x)`,
		`CREATE TABLE sqlite_stat_like (x)`,
	} {
		if _, err := raw.Exec(q); err != nil {
			if strings.Contains(q, "sqlite_stat_like") {
				continue // reserved name, refused by SQLite itself
			}
			t.Fatalf("%s: %v", q, err)
		}
	}
	c := openPath(t, path)
	tables, got, _ := readAll(t, c, connector.PlanOptions{})
	if len(tables) != 1 || tables["users"] == nil {
		t.Fatalf("discovered %v, want only users", tables)
	}
	u := tables["users"]
	kinds := map[string]model.Kind{}
	for _, col := range u.Columns {
		kinds[col.Name] = col.Type.Kind
	}
	want := map[string]model.Kind{
		"id": model.KindInt64, "name": model.KindText, "score": model.KindFloat64, "avatar": model.KindBytes,
		"active": model.KindBool, "balance": model.KindDecimal, "born": model.KindDate, "seen": model.KindTimestamp,
		"misc": model.KindText, "note": model.KindText,
	}
	for name, k := range want {
		if kinds[name] != k {
			t.Errorf("column %s: kind %s, want %s", name, kinds[name], k)
		}
	}
	if u.Columns[1].Nullable || !u.Columns[2].Nullable || u.Columns[0].Nullable {
		t.Errorf("nullability: %+v", u.Columns[:3])
	}
	rows := got["users"]
	if len(rows) != 2 {
		t.Fatalf("read %d rows", len(rows))
	}
	wantRows := []model.Row{
		{int64(1), "ann", 1.5, []byte{0, 0xff}, true, "12.5", time.Date(1980, 5, 6, 0, 0, 0, 0, time.UTC),
			time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), "42", "7"},
		{int64(2), "bob", 3.0, nil, false, "7", nil, time.Date(2024, 1, 2, 3, 4, 5, 250e6, time.UTC), "x", nil},
	}
	for r := range wantRows {
		for i, col := range u.Columns {
			if !sameValue(t, col.Type, wantRows[r][i], rows[r][i]) {
				t.Errorf("row %d column %s: read %#v, want %#v", r, col.Name, rows[r][i], wantRows[r][i])
			}
		}
	}
}

func TestNullPrimaryKeyRefused(t *testing.T) {
	path := t.TempDir() + "/app.db"
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`CREATE TABLE t (a TEXT PRIMARY KEY, b INT); INSERT INTO t VALUES ('x', 1), (NULL, 2)`); err != nil {
		t.Fatal(err)
	}
	c := openPath(t, path)
	tables, err := c.Tables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Plan(context.Background(), tables, connector.PlanOptions{})
	if err == nil || !strings.Contains(err.Error(), "main.t") || !strings.Contains(err.Error(), "NULL") {
		t.Errorf("plan of a table with a NULL key: %v", err)
	}
}

func TestEmitErrorStopsRead(t *testing.T) {
	c, _ := newFile(t)
	tbl, rows := intTable("items", 500)
	writeTable(t, c, tbl, rows)
	tables, err := c.Tables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	plan, err := c.Plan(context.Background(), tables, connector.PlanOptions{BatchRows: 100})
	if err != nil {
		t.Fatal(err)
	}
	stop := fmt.Errorf("stop")
	calls := 0
	err = c.ReadPartition(context.Background(), tables[0], plan.Partitions[0], "", func(*model.RowBatch) error {
		calls++
		return stop
	})
	if err != stop || calls != 1 {
		t.Errorf("emit error: got %v after %d calls", err, calls)
	}
}
