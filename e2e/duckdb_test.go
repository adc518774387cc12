//go:build cgo && duckdb

package e2e

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/ferrydb/ferry/internal/faultpoint"
	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

func init() { ferryBuildFlags = append(ferryBuildFlags, "-tags", "duckdb") }

// duckRows runs query on a DuckDB file no ferry has open, each row as
// fmt.Sprint renders its values.
func duckRows(t *testing.T, path, query string) []string {
	t.Helper()
	db, err := sql.Open("duckdb", path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer db.Close()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprint(vals...))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPostgresToDuckDBWithConcurrentWriter copies the shop into DuckDB
// while a writer inserts, updates and deletes orders, streams the changes,
// is stopped and run again until caught up; verify finds the tables equal,
// the columns have DuckDB's own types and the checkpoints are in the file.
func TestPostgresToDuckDBWithConcurrentWriter(t *testing.T) {
	srv := pgtest.Shared(t)
	src := srv.CreateDatabase(t, "duckcdc")
	pgShop(t, srv, src, 8000)
	dir := t.TempDir()
	path := filepath.Join(dir, "shop.duckdb")
	w := startPGWriter(t, srv.URL(src), 8001)
	args := []string{"sync", srv.URL(src), "duckdb://" + path, "--name", "pg2duck", "--state-dir", dir, "--parallel", "3",
		"--partition-rows", "1500", "--batch-rows", "500", "--log-format", "json", "--progress", "none"}
	bg := startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("ferry did not reach CDC:\n%s", bg.stderr.String())
	}
	time.Sleep(1500 * time.Millisecond) // changes during CDC
	w.halt(t)
	if w.ops.Load() < 50 {
		t.Fatalf("the writer made only %d changes", w.ops.Load())
	}
	if code := bg.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("ferry exited %d after SIGTERM:\n%s", code, bg.stderr.String())
	}
	r := mustFerry(t, append(args, "--until", "caught-up")...)
	if fin := r.logLine("flow finished"); fin == nil {
		t.Fatalf("no final log line:\n%s", r)
	}
	v := mustFerry(t, "verify", srv.URL(src), "duckdb://"+path)
	if !strings.Contains(v.stdout, "all 2 table(s) equal") {
		t.Fatalf("verify: %s", v)
	}
	// The same rows, read by DuckDB itself, with no key twice.
	for _, q := range []struct{ pg, duck string }{
		{`SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || sum(amount) || ' ' || extract(epoch FROM max(placed))::bigint FROM orders`,
			`SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || sum(amount) || ' ' || epoch(max(placed))::BIGINT FROM public.orders`},
		{`SELECT count(*) || ' ' || sum(qty) FROM lines`, `SELECT count(*) || ' ' || sum(qty) FROM public.lines`},
		{`SELECT n || ' ' || count(*) FROM (SELECT coalesce(array_length(tags, 1), 0) AS n FROM orders) q GROUP BY n ORDER BY n`,
			`SELECT n || ' ' || count(*) FROM (SELECT coalesce(len(tags), 0) AS n FROM public.orders) q GROUP BY n ORDER BY n`},
	} {
		a, b := pgRows(t, srv, src, q.pg), duckRows(t, path, q.duck)
		if strings.Join(a, "\n") != strings.Join(b, "\n") || len(a) == 0 {
			t.Fatalf("%s: PostgreSQL %v, DuckDB %v", q.duck, a, b)
		}
	}
	types := duckRows(t, path, `SELECT column_name || ' ' || data_type FROM duckdb_columns() WHERE table_name = 'orders' ORDER BY column_index`)
	if got := strings.Join(types, ", "); got != "id BIGINT, customer INTEGER, amount DECIMAL(12,2), note VARCHAR, tags VARCHAR[], placed TIMESTAMP WITH TIME ZONE" {
		t.Fatalf("orders's DuckDB columns: %s", got)
	}
	if n := duckRows(t, path, `SELECT count(*) FROM main._ferry_checkpoints WHERE flow = 'pg2duck' AND key LIKE 'cdc/%'`); n[0] == "0" {
		t.Fatalf("no CDC checkpoint in the DuckDB file")
	}

	// And back out: the DuckDB file as a source, into PostgreSQL.
	back := srv.CreateDatabase(t, "duckback")
	mustFerry(t, "sync", "duckdb://"+path, srv.URL(back), "--state-dir", dir, "--mode", "snapshot", "--partition-rows", "1000")
	v = mustFerry(t, "verify", "duckdb://"+path, srv.URL(back))
	if !strings.Contains(v.stdout, "all 2 table(s) equal") {
		t.Fatalf("verify duckdb vs postgres: %s", v)
	}
	samePG(t, srv, src, back)
}

// TestPostgresToDuckDBKillDuringCopyThenResume kills ferry during the copy
// (the source behind a narrow link), once the file holds finished
// partitions, and runs it again: those partitions are skipped, and the
// result verifies equal.
func TestPostgresToDuckDBKillDuringCopyThenResume(t *testing.T) {
	srv := pgtest.Shared(t)
	src := srv.CreateDatabase(t, "duckkill")
	pgShop(t, srv, src, 20000)
	dir := t.TempDir()
	path := filepath.Join(dir, "shop.duckdb")
	args := []string{"sync", srv.URL(src), "duckdb://" + path, "--name", "duckkill", "--state-dir", dir, "--parallel", "2",
		"--partition-rows", "1000", "--batch-rows", "250", "--log-format", "json", "--progress", "none", "--mode", "snapshot",
		"--max-rate", "20000"}
	bg := startFerry(t, args...)
	if !bg.waitFor(t, "copy starting", 60*time.Second) {
		t.Fatalf("the copy did not start:\n%s", bg.stderr.String())
	}
	time.Sleep(700 * time.Millisecond)
	if !bg.kill(t) {
		t.Fatalf("ferry finished before it could be killed:\n%s", bg.stderr.String())
	}
	done := duckRows(t, path, `SELECT count(*) FROM main._ferry_checkpoints WHERE flow = 'duckkill' AND key LIKE 'partition/%' AND value LIKE '%"done":true%'`)[0]
	if done == "0" {
		t.Fatalf("no partition was finished at the kill:\n%s", bg.stderr.String())
	}
	r := mustFerry(t, args[:len(args)-2]...)
	start := r.logLine("copy starting")
	if start == nil || fmt.Sprint(start["skipped"]) != done {
		t.Fatalf("resumed copy: %v; want %s partitions skipped", start, done)
	}
	v := mustFerry(t, "verify", srv.URL(src), "duckdb://"+path)
	if !strings.Contains(v.stdout, "all 2 table(s) equal") {
		t.Fatalf("verify: %s", v)
	}
	if dup := duckRows(t, path, `SELECT count(*) - count(DISTINCT id) FROM public.orders`)[0]; dup != "0" {
		t.Fatalf("%s orders twice after the resume", dup)
	}
}

// TestQueryReplicationIntoDuckDB keeps a join's result in a DuckDB file by
// key: rows inserted and updated at the source between two runs arrive,
// none twice.
func TestQueryReplicationIntoDuckDB(t *testing.T) {
	srv := pgtest.Shared(t)
	src := srv.CreateDatabase(t, "qduck")
	queryShop(t, srv, src)
	path := filepath.Join(t.TempDir(), "replica.duckdb")
	args := []string{"sync", srv.URL(src), "duckdb://" + path, "--name", "qduck", "--state-dir", t.TempDir(), "--log-format", "json", "--progress", "none",
		"--query", "rep.orders=" + queryOrders, "--watermark", "updated_at", "--key", "id", "--batch-rows", "50"}
	same := func(when string) {
		t.Helper()
		a := pgRows(t, srv, src, `SELECT id || ' ' || customer || ' ' || total || ' ' || status || ' ' || extract(epoch FROM updated_at)::bigint FROM (`+queryOrders+`) q ORDER BY id`)
		b := duckRows(t, path, `SELECT id || ' ' || customer || ' ' || total || ' ' || status || ' ' || epoch(updated_at)::BIGINT FROM rep.orders ORDER BY id`)
		if strings.Join(a, "\n") != strings.Join(b, "\n") {
			n := min(len(a), len(b), 3)
			t.Fatalf("%s: DuckDB has %d rows (%v...), the query %d (%v...)", when, len(b), b[:n], len(a), a[:n])
		}
		if dup := duckRows(t, path, `SELECT count(*) - count(DISTINCT id) FROM rep.orders`)[0]; dup != "0" {
			t.Fatalf("%s: %s rows twice", when, dup)
		}
	}
	r := mustFerry(t, args...)
	if runs := queryRuns(r.stderr); len(runs) != 1 || runs[0] != "1800" {
		t.Fatalf("first run: rows %v, want one run of 1800:\n%s", runs, r.stderr)
	}
	same("after the first run")
	srv.Exec(t, src, `INSERT INTO orders SELECT g, 1 + g % 20, g, 'open', '2026-02-01T00:00:00Z' FROM generate_series(2001, 2100) g;
		UPDATE orders SET total = total + 1000, updated_at = '2026-02-01T00:00:01Z' WHERE id % 7 = 0 AND status <> 'void'`)
	r = mustFerry(t, args...)
	changed := pgRows(t, srv, src, `SELECT count(*) FROM (`+queryOrders+`) q WHERE updated_at >= '2026-02-01'`)[0]
	if runs := queryRuns(r.stderr); len(runs) != 1 || runs[0] != changed {
		t.Fatalf("second run: rows %v, want one run of the %s new and changed rows:\n%s", runs, changed, r.stderr)
	}
	same("after the second run")
}

// TestQueryReplicationMySQLIntoDuckDB: a MariaDB query kept in a DuckDB
// file by key; rows updated and inserted between runs arrive, none twice,
// and a run killed after its first batch resumes.
func TestQueryReplicationMySQLIntoDuckDB(t *testing.T) {
	requireMariaDB(t)
	my := mysqltest.Shared(t)
	src := my.CreateDatabase(t, "qduckmy")
	my.Exec(t, "CREATE TABLE `"+src+"`.items (id int PRIMARY KEY, name varchar(30) NOT NULL, price decimal(8,2), kind enum('a','b'), changed datetime(3) NOT NULL)",
		"INSERT INTO `"+src+"`.items WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < 1000) SELECT g, CONCAT('item ', g), g / 4, IF(g % 2 = 0, 'a', 'b'), TIMESTAMP('2026-01-01') + INTERVAL (g DIV 3) SECOND FROM s")
	path := filepath.Join(t.TempDir(), "items.duckdb")
	args := []string{"sync", my.URL(src), "duckdb://" + path, "--name", "qduckmy", "--state-dir", t.TempDir(), "--log-format", "json", "--progress", "none",
		"--query", "items_b=SELECT id, name, price, kind, changed FROM items WHERE kind = 'b'", "--watermark", "changed", "--key", "id", "--batch-rows", "40"}
	compare := func(when string) {
		t.Helper()
		var want string
		if err := my.Connect(t, src).QueryRow(`SELECT CONCAT(COUNT(*), '|', SUM(price), '|', SUM(CHAR_LENGTH(name)), '|', DATE_FORMAT(MAX(changed), '%Y-%m-%d %H:%i:%s.%f')) FROM items WHERE kind = 'b'`).Scan(&want); err != nil {
			t.Fatal(err)
		}
		got := duckRows(t, path, `SELECT count(*) || '|' || sum(price) || '|' || sum(length(name)) || '|' || strftime(max(changed), '%Y-%m-%d %H:%M:%S.%f') FROM items_b`)[0]
		if got != want {
			t.Fatalf("%s: DuckDB %s, MariaDB %s (count|sum price|name lengths|last change)", when, got, want)
		}
		if dup := duckRows(t, path, `SELECT count(*) - count(DISTINCT id) FROM items_b`)[0]; dup != "0" {
			t.Fatalf("%s: %s rows twice", when, dup)
		}
	}
	mustFerry(t, args...)
	compare("after the first run")
	my.Exec(t, "UPDATE `"+src+"`.items SET price = price + 100, changed = '2026-02-01 00:00:00.250' WHERE id % 5 = 0",
		"INSERT INTO `"+src+"`.items VALUES (1001, 'new', 1.50, 'b', '2026-02-02 00:00:00')")
	killedAt(t, faultpoint.QueryBatchWritten, args...)
	mustFerry(t, args...)
	compare("after the killed run resumed")
}

// TestDuckDBBadInput: a file in a missing directory, a file another
// process has open and a value DuckDB cannot hold are refused with what to
// do, and the binary without the connector says how to get one.
func TestDuckDBBadInput(t *testing.T) {
	srv := pgtest.Shared(t)
	src := srv.CreateDatabase(t, "duckbad")
	srv.Exec(t, src, `CREATE TABLE grid (id int PRIMARY KEY, cells int[]); INSERT INTO grid VALUES (1, '{1,2}'), (2, '{{1,2},{3,4}}')`)
	dir := t.TempDir()
	base := []string{"--state-dir", dir, "--mode", "snapshot", "--progress", "none"}

	r := ferry(t, append([]string{"sync", srv.URL(src), "duckdb://" + filepath.Join(dir, "nope", "x.duckdb")}, base...)...)
	if r.code != 2 || !strings.Contains(r.stderr, "directory of duckdb file") || !strings.Contains(r.stderr, "create the directory first") {
		t.Fatalf("a missing directory: %s", r)
	}

	locked := filepath.Join(dir, "locked.duckdb")
	db, err := sql.Open("duckdb", locked)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	r = ferry(t, append([]string{"sync", srv.URL(src), "duckdb://" + locked}, base...)...)
	db.Close()
	if r.code != 2 || !strings.Contains(r.stderr, "another process has it open") {
		t.Fatalf("a file another process holds: %s", r)
	}

	r = ferry(t, append([]string{"sync", srv.URL(src), "duckdb://" + filepath.Join(dir, "grid.duckdb")}, base...)...)
	if r.code == 0 || !strings.Contains(r.stderr, "multi-dimensional") || !strings.Contains(r.stderr, "column cells") {
		t.Fatalf("a two-dimensional array: %s", r)
	}

	// A binary built without the connector refuses the scheme, saying how
	// to get one that has it.
	plain := filepath.Join(t.TempDir(), "ferry-plain")
	if out, err := runGo(t, "build", "-o", plain, "../cmd/ferry"); err != nil {
		t.Fatalf("build without -tags duckdb: %v\n%s", err, out)
	}
	out, err := runCmd(t, plain, "verify", srv.URL(src), "duckdb://"+locked)
	if err == nil || !strings.Contains(out, "has no DuckDB connector") || !strings.Contains(out, "-duckdb image") {
		t.Fatalf("a binary without the connector: %v\n%s", err, out)
	}
}

func runGo(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runCmd(t, "go", args...)
}

func runCmd(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestScaleOutDuckDBOneWorker: a worker with a DuckDB connection refuses
// to start while other workers poll its task queue, and a second worker on
// the same file cannot start either; the one worker on a task queue of its
// own runs a PostgreSQL to DuckDB flow that verifies equal.
func TestScaleOutDuckDBOneWorker(t *testing.T) {
	ts := startTemporal(t)
	srv := pgtest.Shared(t)
	src := srv.CreateDatabase(t, "soduck")
	pgShop(t, srv, src, 3000)
	path := filepath.Join(t.TempDir(), "shop.duckdb")
	srcConn, dstConn := "src="+srv.URL(src), "dst=duckdb://"+path

	other := ts.worker(t, srcConn) // polls the default task queue
	// Its polls reach the server a moment after it logs that it polls.
	pid := fmt.Sprintf(":%d", other.cmd.Process.Pid)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, _ := exec.Command(ts.bin, "task-queue", "describe", "--task-queue", "ferry", "--task-queue-type", "activity", "--address", ts.addr).CombinedOutput()
		if strings.Contains(string(out), pid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first worker never showed among the task queue's pollers:\n%s", out)
		}
	}
	r := ferry(t, "worker", "--temporal", ts.addr, "--connection", srcConn, "--connection", dstConn)
	if r.code != 2 || !strings.Contains(r.stderr, `connection "dst" is a duckdb destination, which one process writes at a time, and other workers poll task queue ferry`) ||
		!strings.Contains(r.stderr, "--task-queue") {
		t.Fatalf("a DuckDB worker beside another on its task queue: %s", r)
	}
	other.signal(t, syscall.SIGTERM)

	duck := ts.worker(t, srcConn, dstConn, "--task-queue=duck")
	r = ferry(t, "worker", "--temporal", ts.addr, "--task-queue", "duck2", "--connection", dstConn)
	if r.code != 2 || !strings.Contains(r.stderr, "another process has it open") {
		t.Fatalf("a second worker on the same DuckDB file: %s", r)
	}
	// A worker that comes to the DuckDB worker's task queue later is
	// reported by it.
	late := ts.worker(t, srcConn, "--task-queue=duck")
	if !duck.waitFor(t, "other workers poll this worker's task queue", 30*time.Second) {
		t.Fatalf("the DuckDB worker did not report a worker that came to its task queue:\n%s", duck.stderr.String())
	}
	late.signal(t, syscall.SIGTERM)

	run := startFerry(t, "run", "--temporal", ts.addr, "--task-queue", "duck", "--source", "src", "--destination", "dst", "--name", "soduck",
		"--mode", "snapshot", "--partition-rows", "500", "--parallel", "3", "--progress", "none", "--log-format", "json")
	if code := run.waitExit(t, 3*time.Minute); code != 0 {
		t.Fatalf("ferry run exited %d:\n%s", code, run.stderr.String())
	}
	st := ts.flowStatus(t, "soduck")
	if st == nil || st.Status != "Completed" || st.Snapshot().RowsCopied != 6000 {
		t.Fatalf("status: %+v", st)
	}
	// The worker lets go of the file when it stops; then it verifies.
	if code := duck.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("the DuckDB worker exited %d:\n%s", code, duck.stderr.String())
	}
	if v := mustFerry(t, "verify", srv.URL(src), "duckdb://"+path); !strings.Contains(v.stdout, "all 2 table(s) equal") {
		t.Fatalf("verify: %s", v)
	}
}

// TestPostgresSchemaChangesIntoDuckDB: columns added (one with a default
// the existing rows get), widened and dropped at the source while changes
// stream are followed in the DuckDB file, also across a kill.
func TestPostgresSchemaChangesIntoDuckDB(t *testing.T) {
	srv := pgtest.Shared(t)
	src := srv.CreateDatabase(t, "duckddl")
	pgShop(t, srv, src, 500)
	dir := t.TempDir()
	path := filepath.Join(dir, "dst.duckdb")
	args := []string{"sync", srv.URL(src), "duckdb://" + path, "--state-dir", dir, "--log-format", "json"}
	bg := startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("CDC never started:\n%s", bg.stderr.String())
	}
	srv.Exec(t, src, `ALTER TABLE orders ADD COLUMN coupon text; ALTER TABLE orders ADD COLUMN tier int NOT NULL DEFAULT 3;
		UPDATE orders SET coupon = 'SPRING' WHERE id <= 10`)
	if !bg.waitFor(t, "applied schema change", 30*time.Second) {
		t.Fatalf("the added columns were not applied:\n%s", bg.stderr.String())
	}
	bg.kill(t)
	srv.Exec(t, src, `UPDATE orders SET coupon = 'AUTUMN', tier = 5 WHERE id > 490; ALTER TABLE lines ALTER COLUMN qty TYPE bigint;
		UPDATE lines SET qty = 5000000000 WHERE order_id = 1`)
	mustFerry(t, append(args, "--until", "caught-up")...)
	// (A column dropped while the table's recopy after the rewrite above
	// is pending fails the recopy at the source: an engine matter, not the
	// destination's, so the drop comes after.)
	srv.Exec(t, src, `ALTER TABLE lines DROP COLUMN sku`)
	mustFerry(t, append(args, "--until", "caught-up")...)
	got := duckRows(t, path, `SELECT count(*) FILTER (WHERE coupon = 'SPRING') || ' ' || count(*) FILTER (WHERE coupon = 'AUTUMN') || ' ' || sum(tier) FROM public.orders`)
	if want := fmt.Sprintf("10 10 %d", 490*3+10*5); got[0] != want {
		t.Fatalf("orders at the destination: SPRING, AUTUMN, sum(tier) = %s, want %s", got[0], want)
	}
	cols := duckRows(t, path, `SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY column_index) FROM duckdb_columns() WHERE table_name = 'lines'`)
	if cols[0] != "order_id BIGINT, line INTEGER, qty BIGINT" {
		t.Fatalf("lines at the destination: %s", cols[0])
	}
	v := mustFerry(t, "verify", srv.URL(src), "duckdb://"+path)
	if !strings.Contains(v.stdout, "all 2 table(s) equal") {
		t.Fatalf("verify: %s", v)
	}
}

// The MySQL connector's round-trip values (connectors/mysql/roundtrip_test.go):
// a column of every MySQL type ferry maps, with its edge values.
const duckMySQLTypesDDL = `CREATE TABLE types (
	id int NOT NULL PRIMARY KEY,
	b tinyint(1), ti tinyint, tiu tinyint unsigned, si smallint, siu smallint unsigned,
	mi mediumint, miu mediumint unsigned, i int, iu int unsigned, bi bigint, biu bigint unsigned,
	d decimal(65,30), d2 decimal(10,2), f float, dbl double,
	c char(5), vc varchar(50), t text, lt longtext, l1 varchar(20) CHARACTER SET latin1,
	bn binary(4), vb varbinary(20), bl blob,
	j json, e enum('small','médium','large 😀'), st set('a','b','c'),
	dt date, tm time(6), dtm datetime(6), ts timestamp(6) NULL DEFAULT NULL, y year, bt bit(10), bt1 bit(1)
) DEFAULT CHARSET=utf8mb4`

var duckMySQLTypesInsert = []string{
	`INSERT INTO types VALUES (1, 1, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295,
		9223372036854775807, 18446744073709551615,
		99999999999999999999999999999999999.999999999999999999999999999999, 99999999.99,
		3.4028234663852886e38, 1.7976931348623157e308,
		'ab', 'héllo 😀 "quoted" \\ back', 'line1\nline2\ttab', REPEAT('x', 70000), 'café €',
		X'00010200', X'00FF00', X'',
		'{"a": [1, 2.5, "x"], "b": null, "emoji": "😀"}', 'large 😀', 'a,c',
		'9999-12-31', '23:59:59.999999', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999', 2155, b'1111111111', b'1')`,
	`INSERT INTO types VALUES (2, 0, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0,
		-9223372036854775808, 0,
		-0.000000000000000000000000000001, -99999999.99,
		-1.1754943508222875e-38, 4.9e-324,
		'', '', '', '', '',
		X'00000000', X'', X'00',
		'[]', 'small', '',
		'1000-01-01', '00:00:00', '1000-01-01 00:00:00', '1970-01-01 00:00:01', 1901, b'0', b'0')`,
	`INSERT INTO types (id) VALUES (3)`,
	`INSERT INTO types VALUES (4, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, -12.5, 0.10, 0.1, 0.1,
		'x', 'it''s', 'text', 'long', 'naïve',
		X'61626364', X'01', X'DEADBEEF',
		'{"k": "v"}', 'médium', 'b',
		'2024-02-29', '12:34:56.5', '2024-02-29 12:00:00', '2024-02-29 12:00:00.123456', 2024, b'101', b'1')`,
}

// TestMariaDBToDuckDBEdgeValues copies MySQL's edge values (unsigned
// BIGINT's maximum, DECIMAL(65,30), FLOAT's limits, 4-byte UTF-8, the
// largest DATETIME(6), YEAR, BIT, SET) into DuckDB; verify finds every row
// equal, and DuckDB holds them in its own types.
func TestMariaDBToDuckDBEdgeValues(t *testing.T) {
	requireMariaDB(t)
	my := mysqltest.Shared(t)
	db := my.CreateDatabase(t, "duckedge")
	my.Exec(t, "USE `"+db+"`; "+duckMySQLTypesDDL)
	// The TIMESTAMP values are UTC's: say so, since the shared server's
	// pooled connections may carry another test's session time zone
	// (crossdb_test's +05:30 made 1970-01-01 00:00:01 out of range).
	for _, ins := range duckMySQLTypesInsert {
		my.Exec(t, "SET time_zone = '+00:00'; USE `"+db+"`; "+ins)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "edge.duckdb")
	mustFerry(t, "sync", my.URL(db), "duckdb://"+path, "--state-dir", dir, "--mode", "snapshot")
	v := mustFerry(t, "verify", my.URL(db), "duckdb://"+path)
	if !strings.Contains(v.stdout, "all 1 table(s) equal") {
		t.Fatalf("verify: %s", v)
	}
	got := duckRows(t, path, `SELECT biu::VARCHAR || ' ' || d2::VARCHAR || ' ' || dtm::VARCHAR || ' ' || e FROM "`+db+`".types WHERE id = 1`)
	if want := "18446744073709551615 99999999.99 9999-12-31 23:59:59.999999 large 😀"; got[0] != want {
		t.Fatalf("row 1 in DuckDB: %q, want %q", got[0], want)
	}
}
