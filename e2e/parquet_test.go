package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connectors/file"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/model"
)

// pgParquetTypes creates a table with a column of each type PostgreSQL
// users keep, rows at the ends of their ranges, and a larger table to copy
// in several partitions.
func pgParquetTypes(t *testing.T, srv *pgtest.Server, db string) {
	t.Helper()
	srv.Exec(t, db, `
		CREATE TYPE mood AS ENUM ('happy', 'sad');
		CREATE TABLE types (
			id int8 PRIMARY KEY, s int2, i int4, b int8, price numeric(12,2), big numeric(38,10), num numeric,
			r real, f float8, ok bool, t text, vc varchar(10), raw bytea, j json, jb jsonb, u uuid,
			d date, ts timestamp, tz timestamptz, tm time, ttz timetz, iv interval,
			ints int4[], words text[], ip inet, net cidr, mac macaddr, m mood);
		INSERT INTO types VALUES
			(1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
			 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
			(2, 32767, 2147483647, 9223372036854775807, 9999999999.99, 9999999999999999999999999999.9999999999, 1.50,
			 3.4028235e38, 1.7976931348623157e308, true, 'héllo 東京 🚢 "q" , x', 'ten chars!', '\x00ff00',
			 '{"b": 1, "a": [1, 2.50]}', '{"b": 1, "a": [1, 2.50]}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
			 '1969-12-31', '1969-12-31 23:59:59.999999', '1900-01-01 00:00:00.000001+00', '24:00:00', '23:59:59.999999-05:30',
			 '1 year 2 mons -3 days 04:05:06.7', '{1,NULL,-3}', '{"a,b","",NULL}', '10.0.0.1', '10.0.0.0/8', '08:00:2b:01:02:03', 'happy'),
			(3, -32768, -2147483648, -9223372036854775808, -9999999999.99, -0.0000000001, 'NaN',
			 'NaN', '-Infinity', false, '', '', '', '[]', '{}', '00000000-0000-0000-0000-000000000000',
			 '4713-01-01 BC', '-infinity', 'infinity', '00:00:00', '00:00:00+14', '0 seconds', '{}', '{}', '::1', '::/0', '00:00:00:00:00:00', 'sad'),
			(4, 0, 0, 0, 0, 0, '-123456789012345678901234567890.123456789012345678901234567890',
			 '-0', 'Infinity', NULL, E'tab\there\nnewline', NULL, '\x00', 'null', '"s"', NULL,
			 'infinity', 'infinity', '-infinity', '12:34:56.789', NULL, NULL, '{NULL}', '{NULL}', NULL, NULL, NULL, NULL);
		CREATE TABLE events (id int8 PRIMARY KEY, at timestamptz NOT NULL, amount numeric(10,2), tags text[]);
		INSERT INTO events SELECT g, '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 minute',
			(g % 1000) / 7.0, ARRAY['t' || (g % 3), NULL] FROM generate_series(1, 5000) g;`)
}

// TestParquetFromPostgres copies PostgreSQL into Parquet files with ferry
// sync --mode snapshot, verifies them equal, reads every value of the files
// back and compares it with the same rows exported as JSON Lines, and
// copies the files back into PostgreSQL, where the rows are the source's.
func TestParquetFromPostgres(t *testing.T) {
	srv := pgtest.Shared(t)
	src := srv.CreateDatabase(t, "parquetsrc")
	pgParquetTypes(t, srv, src)
	dir := t.TempDir()
	pq := "file://" + filepath.Join(dir, "pq") + "?format=parquet"
	jl := "file://" + filepath.Join(dir, "jl") + "?format=jsonl"
	for _, dst := range []string{pq, jl} {
		mustFerry(t, "sync", srv.URL(src), dst, "--mode", "snapshot", "--state-dir", dir, "--partition-rows", "1200")
	}
	v := ferry(t, "verify", srv.URL(src), pq)
	if v.code != 0 || !strings.Contains(v.stdout, "all 2 table(s) equal") {
		t.Fatalf("verify postgres vs parquet: %s", v)
	}
	nullDocs := 0
	for _, name := range []string{"public.types", "public.events"} {
		want := readFileTable(t, jl, name)
		got := readFileTable(t, pq, name)
		if len(want.rows) == 0 || len(got.rows) != len(want.rows) {
			t.Fatalf("%s: %d rows in Parquet, %d in JSON Lines", name, len(got.rows), len(want.rows))
		}
		for id, w := range want.rows {
			g, ok := got.rows[id]
			if !ok {
				t.Errorf("%s: row %s missing from Parquet", name, id)
				continue
			}
			for i, c := range want.table.Columns {
				if c.Type.Kind == model.KindJSON && w[i] == nil && g[i] == "null" {
					// JSON Lines writes the document null as null, which
					// reads back as SQL NULL; Parquet keeps them apart.
					nullDocs++
					continue
				}
				a, err1 := model.AppendCanonical(nil, c.Type, w[i])
				b, err2 := model.AppendCanonical(nil, c.Type, g[i])
				if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
					t.Errorf("%s row %s column %s (%s): Parquet %#v, JSON Lines %#v (%v, %v)", name, id, c.Name, c.Type, g[i], w[i], err1, err2)
				}
			}
		}
	}
	if nullDocs != 1 {
		t.Errorf("%d json documents null, want row 4's one", nullDocs)
	}
	if got := readFileTable(t, pq, "public.events"); got.partitions < 2 {
		t.Errorf("public.events reads as %d partition(s), want the copy's row groups", got.partitions)
	}

	back := srv.CreateDatabase(t, "parquetback")
	mustFerry(t, "sync", pq, srv.URL(back), "--state-dir", dir)
	sameRowsByID(t, srv, src, back, "types", "events")
}

type fileTable struct {
	table      *model.Table
	rows       map[string]model.Row // by id
	partitions int
}

// readFileTable reads a table of a file:// directory through the file
// connector, keyed by its first column.
func readFileTable(t *testing.T, rawURL, name string) fileTable {
	t.Helper()
	ctx := context.Background()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := file.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tables, err := c.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var tbl *model.Table
	for _, x := range tables {
		if x.Namespace.String() == name {
			tbl = x
		}
	}
	if tbl == nil {
		t.Fatalf("%s has no table %s", rawURL, name)
	}
	plan, err := c.Plan(ctx, []*model.Table{tbl}, connector.PlanOptions{PartitionRows: 1200})
	if err != nil {
		t.Fatal(err)
	}
	out := fileTable{table: tbl, rows: map[string]model.Row{}, partitions: len(plan.Partitions)}
	for _, p := range plan.Partitions {
		err := c.ReadPartition(ctx, tbl, p, "", func(b *model.RowBatch) error {
			for _, r := range b.Rows {
				id := fmt.Sprint(r[0])
				if _, dup := out.rows[id]; dup {
					return fmt.Errorf("row %s twice", id)
				}
				out.rows[id] = r
			}
			return nil
		})
		if err != nil {
			t.Fatalf("read %s of %s: %v", p.ID, rawURL, err)
		}
	}
	return out
}

// TestParquetKillDuringCopyThenResume kills ferry with SIGKILL during a copy
// into Parquet files, reruns the same command until it finishes, and checks
// every row is in the files once: a resumed partition writes no row twice.
func TestParquetKillDuringCopyThenResume(t *testing.T) {
	dir := t.TempDir()
	// At most 10,000 rows a second per lane: the copy of 90,000 rows takes
	// 3 s at least, so the kills land in it.
	src := "fake://?tables=3&rows=30000&seed=5&rows_per_sec=10000"
	dst := "file://" + filepath.Join(dir, "out") + "?format=parquet"
	args := []string{"sync", src, dst, "--mode", "snapshot", "--state-dir", dir, "--parallel", "3",
		"--partition-rows", "4000", "--batch-rows", "500", "--log-format", "json"}
	kills := 0
	for i, delay := range []time.Duration{700 * time.Millisecond, 900 * time.Millisecond} {
		bg := startFerry(t, args...)
		if !bg.waitFor(t, "copy starting", 30*time.Second) {
			t.Fatalf("run %d never started copying:\n%s", i, bg.stderr.String())
		}
		time.Sleep(delay)
		if bg.kill(t) {
			kills++
		}
	}
	if kills == 0 {
		t.Fatal("no kill landed during the copy")
	}
	parts, _ := filepath.Glob(filepath.Join(dir, "out", "*.part-*"))
	t.Logf("%d kills; %d part files left by the last one", kills, len(parts))
	mustFerry(t, args...)
	v := mustFerry(t, "verify", src, dst)
	if !strings.Contains(v.stdout, "all 3 table(s) equal") {
		t.Fatalf("verify: %s", v)
	}
	for i := 1; i <= 3; i++ {
		got := readFileTable(t, dst, fmt.Sprintf("fake.t%d", i))
		if len(got.rows) != 30000 {
			t.Errorf("fake.t%d: %d distinct rows, want 30000", i, len(got.rows))
		}
	}
}

// TestParquetChangeFilesFromPostgres runs a full flow from PostgreSQL into
// Parquet with changes=files: the copy writes the table files, then the
// changes made at the source (insert, update, a key change, delete)
// arrive as change files with their operations, in the source's order.
func TestParquetChangeFilesFromPostgres(t *testing.T) {
	srv := pgtest.Shared(t)
	src := srv.CreateDatabase(t, "parquetcdc")
	srv.Exec(t, src, `CREATE TABLE items (id int8 PRIMARY KEY, name text, price numeric(10,2), at timestamptz);
		INSERT INTO items SELECT g, 'item ' || g, g * 1.25, '2024-01-01 00:00:00+00' FROM generate_series(1, 100) g;`)
	dir := t.TempDir()
	dst := "file://" + filepath.Join(dir, "pq") + "?format=parquet&changes=files"
	args := []string{"sync", srv.URL(src), dst, "--mode", "full", "--state-dir", dir, "--until", "caught-up"}
	mustFerry(t, args...)
	if got := readFileTable(t, dst, "public.items"); len(got.rows) != 100 {
		t.Fatalf("the copy wrote %d rows", len(got.rows))
	}
	srv.Exec(t, src, `INSERT INTO items VALUES (101, 'new ✓', 9.99, '2026-12-06 12:00:00+00');
		UPDATE items SET price = 0.01 WHERE id = 5;
		UPDATE items SET id = 1000 WHERE id = 6;
		DELETE FROM items WHERE id = 7;`)
	mustFerry(t, args...)

	files, _ := filepath.Glob(filepath.Join(dir, "pq", "public.items.changes", "*.parquet"))
	if len(files) == 0 {
		t.Fatalf("no change files in %s", filepath.Join(dir, "pq"))
	}
	// Read the change files back through the connector as tables of their own.
	var ops []string
	for _, f := range files {
		cdir := t.TempDir()
		copyFile(t, f, filepath.Join(cdir, "c.parquet"))
		cols, rows := readAllRows(t, "file://"+cdir+"?format=parquet", "c")
		if cols[0].Name != "_op" || cols[5].Name != "id" {
			t.Fatalf("change file columns: %+v", cols)
		}
		for _, r := range rows {
			ops = append(ops, fmt.Sprintf("%s %v %v", r[0], r[5], r[7]))
		}
	}
	want := []string{"insert 101 9.99", "update 5 0.01", "delete 6 <nil>", "insert 1000 7.50", "delete 7 <nil>"}
	if strings.Join(ops, "; ") != strings.Join(want, "; ") {
		t.Errorf("changes:\n%s\nwant\n%s", strings.Join(ops, "; "), strings.Join(want, "; "))
	}
	// The table file stays the snapshot the copy wrote.
	v := ferry(t, "verify", srv.URL(src), "file://"+filepath.Join(dir, "pq")+"?format=parquet")
	if v.code == 0 {
		t.Errorf("verify found the snapshot equal to a source that changed since: %s", v)
	}
}

// readAllRows reads a table of a file:// directory in file order.
func readAllRows(t *testing.T, rawURL, name string) ([]model.Column, []model.Row) {
	t.Helper()
	ctx := context.Background()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := file.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tables, err := c.Tables(ctx)
	if err != nil || len(tables) != 1 || tables[0].Namespace.String() != name {
		t.Fatalf("tables of %s: %v, %v", rawURL, tables, err)
	}
	plan, err := c.Plan(ctx, tables, connector.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var rows []model.Row
	for _, p := range plan.Partitions {
		err := c.ReadPartition(ctx, tables[0], p, "", func(b *model.RowBatch) error {
			rows = append(rows, b.Rows...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return tables[0].Columns, rows
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestParquetEdgeValuesFromPostgres takes the edge values the JSON Lines and
// CSV round trip uses: infinity and BC dates and timestamps copy and
// verify; a multi-dimensional array and PostgreSQL's last timestamps (past
// Parquet's int64 microseconds) fail at their row, naming the table, the
// column and the key, and how to exclude the table.
func TestParquetEdgeValuesFromPostgres(t *testing.T) {
	srv := pgtest.Shared(t)
	src := srv.CreateDatabase(t, "parquetedge")
	edgeValues(t, srv, src)
	dir := t.TempDir()
	for _, tc := range []struct{ table, want string }{
		{"inf", `key (id=1): column "m": a multi-dimensional array has no Parquet LIST form here; exclude the table with --tables '!public.inf'`},
		{"bc", `key (id=3): column "ts": timestamp 294276-12-31T23:59:59.999999Z is outside the range of Parquet's TIMESTAMP(MICROS)`},
	} {
		out := "file://" + filepath.Join(dir, "out-"+tc.table) + "?format=parquet"
		r := ferry(t, "sync", srv.URL(src), out, "--state-dir", dir, "--tables", "public."+tc.table)
		if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s into Parquet: want exit 1 and %q, got %s", tc.table, tc.want, r)
		}
	}
	// Without the values Parquet cannot hold, the rest copies and verifies.
	srv.Exec(t, src, `DELETE FROM bc WHERE id = 3; UPDATE inf SET m = '{5,6}', words = '{x}' WHERE id = 1`)
	pq := "file://" + filepath.Join(dir, "ok") + "?format=parquet"
	mustFerry(t, "sync", srv.URL(src), pq, "--state-dir", dir)
	if v := ferry(t, "verify", srv.URL(src), pq); v.code != 0 || !strings.Contains(v.stdout, "all 2 table(s) equal") {
		t.Fatalf("verify: %s", v)
	}
	back := srv.CreateDatabase(t, "parquetedgeback")
	mustFerry(t, "sync", pq, srv.URL(back), "--state-dir", dir)
	sameRowsByID(t, srv, src, back, "inf", "bc")
}
