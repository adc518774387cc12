package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/faultpoint"
	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// The query replication tests keep a join's result in sync: orders of
// customers, without the void ones, by updated_at.
const (
	queryOrders = `SELECT o.id, c.name AS customer, o.total, o.status, o.updated_at
		FROM orders o JOIN customers c ON c.id = o.customer WHERE o.status <> 'void'`
	// queryAtSource is the query's result in the destination's order.
	queryAtSource      = `SELECT id, customer, total, status, updated_at FROM (` + queryOrders + `) q ORDER BY id`
	queryAtDestination = `SELECT id, customer, total, status, updated_at FROM rep.orders ORDER BY id`
)

// queryShop makes the source: 20 customers and 2000 orders, five to a
// second of updated_at (so batches must keep each second whole), every
// tenth one void.
func queryShop(t *testing.T, srv *pgtest.Server, db string) {
	t.Helper()
	srv.Exec(t, db, `CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
		INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 20) g;
		CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL REFERENCES customers, total numeric(12,2) NOT NULL,
			status text NOT NULL, updated_at timestamptz NOT NULL);
		INSERT INTO orders SELECT g, 1 + g % 20, g * 1.25, CASE WHEN g % 10 = 0 THEN 'void' ELSE 'open' END,
			'2026-01-01T00:00:00Z'::timestamptz + ((g - 1) / 5) * interval '1 second' FROM generate_series(1, 2000) g`)
}

// queryRuns is the rows each "query run finished" line of a run reports.
func queryRuns(stderr string) []string {
	var out []string
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, `"msg":"query run finished"`) {
			i := strings.Index(line, `"rows":`)
			j := strings.IndexAny(line[i+7:], ",}")
			out = append(out, line[i+7:i+7+j])
		}
	}
	return out
}

func sameQueryResult(t *testing.T, srv *pgtest.Server, src, dst, when string) {
	t.Helper()
	a, b := pgRows(t, srv, src, queryAtSource), pgRows(t, srv, dst, queryAtDestination)
	if strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Fatalf("%s: the destination (%d rows) is not the query's result (%d rows)", when, len(b), len(a))
	}
}

// TestQueryReplicationUpsert: a join replicated by key, run once, changed
// at the source and run again; then a run killed after its first batch and
// resumed: the destination is the query's result each time.
func TestQueryReplicationUpsert(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "qsrc"), srv.CreateDatabase(t, "qdst")
	queryShop(t, srv, src)
	args := []string{"sync", srv.URL(src), srv.URL(dst), "--name", "qrep", "--state-dir", t.TempDir(), "--log-format", "json", "--progress", "none",
		"--query", "rep.orders=" + queryOrders, "--watermark", "updated_at", "--key", "id", "--batch-rows", "50", "--parallel", "3"}
	r := mustFerry(t, args...)
	if runs := queryRuns(r.stderr); len(runs) != 1 || runs[0] != "1800" {
		t.Fatalf("first run: rows %v, want one run of 1800:\n%s", runs, r.stderr)
	}
	sameQueryResult(t, srv, src, dst, "after the first run")
	if pk := pgRows(t, srv, dst, `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'rep.orders'::regclass AND i.indisprimary`); strings.Join(pk, ",") != "id" {
		t.Fatalf("rep.orders's primary key is %v, want id", pk)
	}

	// New orders, and orders changed (the watermark advancing).
	srv.Exec(t, src, `INSERT INTO orders SELECT g, 1 + g % 20, g, 'open', '2026-02-01T00:00:00Z' FROM generate_series(2001, 2100) g;
		UPDATE orders SET total = total + 1000, updated_at = '2026-02-01T00:00:01Z' WHERE id % 7 = 0 AND status <> 'void'`)
	r = mustFerry(t, args...)
	changed := pgRows(t, srv, src, `SELECT count(*) FROM (`+queryOrders+`) q WHERE updated_at >= '2026-02-01'`)[0]
	if runs := queryRuns(r.stderr); len(runs) != 1 || runs[0] != changed {
		t.Fatalf("second run: rows %v, want one run of the %s new and changed rows:\n%s", runs, changed, r.stderr)
	}
	sameQueryResult(t, srv, src, dst, "after the second run")

	// Killed after its first batch, then resumed: every change arrives.
	srv.Exec(t, src, `UPDATE orders SET status = 'paid', updated_at = '2026-03-01T00:00:00Z'::timestamptz + (id / 3) * interval '1 ms' WHERE id % 2 = 1`)
	killedAt(t, faultpoint.QueryBatchWritten, args...)
	paid := pgRows(t, srv, dst, `SELECT count(*) FROM rep.orders WHERE status = 'paid'`)[0]
	if paid == "0" || paid == "1050" {
		t.Fatalf("killed after the first batch the destination has %s paid orders, want some and not all", paid)
	}
	r = mustFerry(t, args...)
	if !strings.Contains(r.stderr, `"resumed":true`) {
		t.Fatalf("the run after the kill did not resume the killed run:\n%s", r.stderr)
	}
	sameQueryResult(t, srv, src, dst, "after the resumed run")

	// Nothing new: a run reads nothing.
	r = mustFerry(t, args...)
	if runs := queryRuns(r.stderr); len(runs) != 1 || runs[0] != "0" {
		t.Fatalf("a run without changes: rows %v, want 0", runs)
	}

	// A late row, committed with a watermark below the one reached: only
	// a --lookback reaches back for it, upserting what it reads again.
	srv.Exec(t, src, `INSERT INTO orders VALUES (5000, 1, 9.99, 'late', '2026-03-01T00:00:00.1Z')`)
	mustFerry(t, args...)
	if n := pgRows(t, srv, dst, `SELECT count(*) FROM rep.orders WHERE id = 5000`)[0]; n != "0" {
		t.Fatalf("a row below the watermark was read without --lookback")
	}
	mustFerry(t, append(append([]string{}, args...), "--lookback", "24h")...)
	sameQueryResult(t, srv, src, dst, "after a run with --lookback")

	// The mark is a value of its column: another watermark is refused.
	other := append(append([]string{}, args[:len(args)-8]...), "--watermark", "id", "--key", "id", "--batch-rows", "50", "--parallel", "3")
	if r := ferry(t, other...); r.code != 2 || !strings.Contains(r.stderr, "the flow's watermark is updated_at, not id") {
		t.Fatalf("another watermark for the same flow: exit %d, want 2:\n%s", r.code, r.stderr)
	}
}

// TestQueryReplicationAppend: without a key rows are appended; the second
// run appends only the new rows, and a run killed after its first batch
// and resumed writes none twice.
func TestQueryReplicationAppend(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "qsrc"), srv.CreateDatabase(t, "qdst")
	srv.Exec(t, src, `CREATE TABLE events (id bigint PRIMARY KEY, kind text NOT NULL, seq bigint NOT NULL);
		INSERT INTO events SELECT g, CASE WHEN g % 4 = 0 THEN 'debug' ELSE 'info' END, g / 3 FROM generate_series(1, 3000) g`)
	query := `SELECT id, kind, seq FROM events WHERE kind <> 'debug'`
	args := []string{"sync", srv.URL(src), srv.URL(dst), "--name", "qappend", "--state-dir", t.TempDir(), "--log-format", "json", "--progress", "none",
		"--query", "log=" + query, "--watermark", "seq", "--batch-rows", "100", "--parallel", "2"}
	check := func(when string, want int) {
		t.Helper()
		got := pgRows(t, srv, dst, `SELECT count(*), count(DISTINCT id) FROM log`)[0]
		if got != fmt.Sprintf("%d|%d", want, want) {
			t.Fatalf("%s: the destination holds (rows|distinct ids) %s, want %d once each", when, got, want)
		}
		if a, b := pgRows(t, srv, src, query+` ORDER BY id`), pgRows(t, srv, dst, `SELECT id, kind, seq FROM log ORDER BY id`); strings.Join(a, "\n") != strings.Join(b, "\n") {
			t.Fatalf("%s: the destination's rows are not the query's", when)
		}
	}
	mustFerry(t, args...)
	check("after the first run", 2250)
	srv.Exec(t, src, `INSERT INTO events SELECT g, CASE WHEN g % 4 = 0 THEN 'debug' ELSE 'info' END, g / 3 FROM generate_series(3001, 4000) g`)
	r := mustFerry(t, args...)
	if runs := queryRuns(r.stderr); len(runs) != 1 || runs[0] != "750" {
		t.Fatalf("second run: rows %v, want the 750 new rows", runs)
	}
	check("after the second run", 3000)

	// g / 3 + 1: a new row at the mark itself would wait for a --lookback.
	srv.Exec(t, src, `INSERT INTO events SELECT g, 'info', g / 3 + 1 FROM generate_series(4001, 6000) g`)
	killedAt(t, faultpoint.QueryBatchWritten, args...)
	if n := pgRows(t, srv, dst, `SELECT count(*) FROM log`)[0]; n <= "3000" || n >= "5000" {
		t.Fatalf("killed after its first batch the destination holds %s rows, want some of the 2000 new ones", n)
	}
	mustFerry(t, args...)
	check("after the killed run resumed", 5000)

	// --restart empties the table and reads every row again.
	r = mustFerry(t, append(append([]string{}, args...), "--restart")...)
	if runs := queryRuns(r.stderr); len(runs) != 1 || runs[0] != "5000" {
		t.Fatalf("--restart: rows %v, want all 5000 read again", runs)
	}
	check("after --restart", 5000)
}

// TestQueryReplicationMySQL: a MySQL/MariaDB query into PostgreSQL, by
// key, run twice with rows changed in between.
func TestQueryReplicationMySQL(t *testing.T) {
	if !mysqltest.Available() {
		t.Skip("MariaDB is not installed")
	}
	my := mysqltest.Shared(t)
	srv := pgtest.Shared(t)
	src, dst := my.CreateDatabase(t, "qsrc"), srv.CreateDatabase(t, "qdst")
	my.Exec(t, "CREATE TABLE `"+src+"`.items (id int PRIMARY KEY, name varchar(30) NOT NULL, price decimal(8,2), kind enum('a','b'), changed datetime(3) NOT NULL)",
		"INSERT INTO `"+src+"`.items WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < 500) SELECT g, CONCAT('item ', g), g / 4, IF(g % 2 = 0, 'a', 'b'), TIMESTAMP('2026-01-01') + INTERVAL (g DIV 3) SECOND FROM s")
	args := []string{"sync", my.URL(src), srv.URL(dst), "--name", "qmy", "--state-dir", t.TempDir(), "--log-format", "json", "--progress", "none",
		"--query", "items_b=SELECT id, name, price, kind, changed FROM items WHERE kind = 'b'", "--watermark", "changed", "--key", "id", "--batch-rows", "40"}
	compare := func(when string) {
		t.Helper()
		db := my.Connect(t, src)
		var want string
		if err := db.QueryRow(`SELECT CONCAT(COUNT(*), '|', SUM(price), '|', SUM(CHAR_LENGTH(name)), '|', DATE_FORMAT(MAX(changed), '%Y-%m-%d %H:%i:%s.%f')) FROM items WHERE kind = 'b'`).Scan(&want); err != nil {
			t.Fatal(err)
		}
		got := pgRows(t, srv, dst, `SELECT count(*) || '|' || sum(price) || '|' || sum(char_length(name)) || '|' || to_char(max(changed), 'YYYY-MM-DD HH24:MI:SS.US') FROM items_b`)[0]
		if got != want {
			t.Fatalf("%s: destination %s, source %s (count|sum price|name lengths|last change)", when, got, want)
		}
	}
	mustFerry(t, args...)
	compare("after the first run")
	my.Exec(t, "UPDATE `"+src+"`.items SET price = price + 100, changed = '2026-02-01 00:00:00.250' WHERE id % 5 = 0",
		"INSERT INTO `"+src+"`.items VALUES (501, 'new', 1.50, 'b', '2026-02-02 00:00:00')")
	r := mustFerry(t, args...)
	if runs := queryRuns(r.stderr); len(runs) != 1 || runs[0] != "51" {
		t.Fatalf("second run: rows %v, want the 50 changed and 1 new row of kind b:\n%s", runs, r.stderr)
	}
	compare("after the second run")
}

// TestQueryReplicationEvery: --every runs the query on a schedule until
// SIGINT, which exits 0; the dashboard (--ui) shows the runs, the
// watermark and the rows of the last run.
func TestQueryReplicationEvery(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "qsrc"), srv.CreateDatabase(t, "qdst")
	queryShop(t, srv, src)
	bg := startFerry(t, "sync", srv.URL(src), srv.URL(dst), "--name", "qevery", "--state-dir", t.TempDir(), "--log-format", "json", "--progress", "none",
		"--query", "rep.orders="+queryOrders, "--watermark", "updated_at", "--key", "id", "--every", "1s", "--ui", "127.0.0.1:0")
	deadline := time.Now().Add(time.Minute)
	for len(queryRuns(bg.stderr.String())) < 3 {
		if time.Now().After(deadline) || bg.hasExited() {
			t.Fatalf("fewer than 3 runs:\n%s", bg.stderr.String())
		}
		if len(queryRuns(bg.stderr.String())) == 1 {
			srv.Exec(t, src, `UPDATE orders SET updated_at = '2026-05-01' WHERE id = 1`)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ui := result{stderr: bg.stderr.String()}.logLine("dashboard listening")["url"].(string)
	var f queryFlowDoc
	deadline = time.Now().Add(time.Minute)
	for {
		code, body := httpGet(ui + "api/flow")
		if code != 200 || json.Unmarshal([]byte(body), &f) != nil || f.Query == nil {
			t.Fatalf("/api/flow: %d %s", code, body)
		}
		if f.Query.Runs >= 3 && f.Query.Last != nil && f.Query.Last.Rows == 0 {
			break // the runs after the update read nothing
		}
		if time.Now().After(deadline) {
			t.Fatalf("/api/flow does not show three runs, the last of 0 rows: %s", body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if f.Phase != "run" && f.Phase != "wait" || f.Query.Marks["rep.orders"] < "2026-05-01" || len(f.Query.Last.Tables) != 1 || f.Query.Last.Tables[0].Table != "rep.orders" {
		t.Fatalf("/api/flow: phase %s, query %+v, last run %+v", f.Phase, f.Query, f.Query.Last)
	}
	if code := bg.signal(t, syscall.SIGINT); code != 0 {
		t.Fatalf("SIGINT: exit %d, want 0:\n%s", code, bg.stderr.String())
	}
	runs := queryRuns(bg.stderr.String())
	if runs[0] != "1800" {
		t.Fatalf("runs %v: the first should read 1800 rows", runs)
	}
	sameQueryResult(t, srv, src, dst, "after the scheduled runs")
}

// queryFlowDoc is what the query tests read of the dashboard's /api/flow.
type queryFlowDoc struct {
	Phase string `json:"phase"`
	Query *struct {
		Runs  int               `json:"runs"`
		Marks map[string]string `json:"marks"`
		Last  *struct {
			Number int   `json:"number"`
			Rows   int64 `json:"rows"`
			Tables []struct {
				Table  string `json:"table"`
				Rows   int64  `json:"rows"`
				Ranges int    `json:"ranges"`
			} `json:"tables"`
		} `json:"last_run"`
	} `json:"query"`
}

// TestQueryReplicationRefusals: what a query flow refuses, exit 2 with
// what to do, before anything is written.
func TestQueryReplicationRefusals(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "qsrc"), srv.CreateDatabase(t, "qdst")
	queryShop(t, srv, src)
	base := []string{"sync", srv.URL(src), srv.URL(dst), "--state-dir", t.TempDir(), "--progress", "none"}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"bad SQL", []string{"--query", "rep.bad=SELEC id FROM orders", "--watermark", "id"}, "query rep.bad does not run at the source"},
		{"no such table", []string{"--query", "rep.bad=SELECT id FROM nowhere", "--watermark", "id"}, "query rep.bad does not run at the source"},
		{"watermark not in the result", []string{"--query", "rep.orders=" + queryOrders, "--watermark", "created_at"}, `no column "created_at" for the watermark`},
		{"watermark of another type", []string{"--query", "rep.orders=" + queryOrders, "--watermark", "status"}, "a watermark is an integer, a date or a timestamp"},
		{"lookback without a key", []string{"--query", "rep.orders=" + queryOrders, "--watermark", "updated_at", "--lookback", "10m"}, "--lookback without a key"},
		{"lookback of the wrong kind", []string{"--query", "rep.orders=" + queryOrders, "--watermark", "updated_at", "--key", "id", "--lookback", "100"}, "give a duration"},
		{"no watermark", []string{"--query", "rep.orders=" + queryOrders}, "has no watermark"},
		{"tables", []string{"--query", "rep.orders=" + queryOrders, "--watermark", "updated_at", "--tables", "public.*"}, "--tables with --query"},
		{"mode cdc", []string{"--query", "rep.orders=" + queryOrders, "--watermark", "updated_at", "--mode", "cdc"}, "--mode cdc with --query"},
		{"two queries, one watermark", []string{"--query", "a=SELECT 1 AS x", "--query", "b=SELECT 2 AS x", "--watermark", "x"}, "say which: --watermark NAME=x"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := ferry(t, append(append([]string{}, base...), c.args...)...)
			if r.code != 2 || !strings.Contains(r.stderr, c.want) {
				t.Fatalf("exit %d, want 2 with %q:\n%s", r.code, c.want, r.stderr)
			}
		})
	}
	if n := pgRows(t, srv, dst, `SELECT count(*) FROM pg_tables WHERE schemaname = 'rep'`)[0]; n != "0" {
		t.Fatalf("the refusals left %s tables at the destination", n)
	}
}

// TestQueryReplicationDestinations: the same query into SQLite and MariaDB
// (upserted by key), run twice with rows added and changed in between;
// files are refused.
func TestQueryReplicationDestinations(t *testing.T) {
	srv := pgtest.Shared(t)
	src := srv.CreateDatabase(t, "qsrc")
	srv.Exec(t, src, `CREATE TABLE events (id bigint PRIMARY KEY, kind text NOT NULL, seq bigint NOT NULL);
		INSERT INTO events SELECT g, 'k' || g % 3, g FROM generate_series(1, 500) g`)
	query := "SELECT id, kind, seq FROM events WHERE kind <> 'k0'"
	dir := t.TempDir()
	type dest struct {
		name, url string
		key       bool
		count     func() int
	}
	sqlitePath := filepath.Join(dir, "q.db")
	dests := []dest{
		{"sqlite", "sqlite://" + sqlitePath, true, func() int {
			db := openSQLite(t, sqlitePath)
			defer db.Close()
			var n int
			if err := db.QueryRow(`SELECT count(*) FROM events_out`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}},
	}
	if mysqltest.Available() {
		my := mysqltest.Shared(t)
		db := my.CreateDatabase(t, "qdst")
		dests = append(dests, dest{"mariadb", my.URL(db), true, func() int {
			var n int
			if err := my.Connect(t, db).QueryRow("SELECT count(*) FROM events_out").Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}})
	}
	for i, d := range dests {
		args := []string{"sync", srv.URL(src), d.url, "--name", "qdest" + d.name, "--state-dir", t.TempDir(), "--log-format", "json", "--progress", "none",
			"--query", "events_out=" + query, "--watermark", "seq", "--batch-rows", "40"}
		if d.key {
			args = append(args, "--key", "id")
		}
		mustFerry(t, args...)
		if n := d.count(); n != 334+i*10 { // with the rows earlier rounds added
			t.Fatalf("%s: %d rows after the first run, want %d", d.name, n, 334+i*10)
		}
		next := 501 + i*100
		srv.Exec(t, src, fmt.Sprintf(`INSERT INTO events SELECT g, 'k1', g FROM generate_series(%d, %d) g;
			UPDATE events SET seq = seq + 100000 WHERE id = 1`, next, next+9))
		r := mustFerry(t, args...)
		if runs := queryRuns(r.stderr); len(runs) != 1 || runs[0] != "11" {
			t.Fatalf("%s: second run rows %v, want 11:\n%s", d.name, runs, r.stderr)
		}
		want := 334 + 10 + i*10
		if n := d.count(); n != want {
			t.Fatalf("%s: %d rows after the second run, want %d", d.name, n, want)
		}
		srv.Exec(t, src, `UPDATE events SET seq = 1 WHERE id = 1`)
	}
}

// TestQueryReplicationFlowFile: two queries from a flow file, one upserted
// by key and one appended; other commands refuse the file; ferry drop
// forgets the watermarks, so the next run reads everything again.
func TestQueryReplicationFlowFile(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "qsrc"), srv.CreateDatabase(t, "qdst")
	queryShop(t, srv, src)
	file := filepath.Join(t.TempDir(), "flow.yaml")
	yaml := fmt.Sprintf(`name: qfile
source: %q
destination: %q
state_dir: %q
batch_rows: 200
queries:
  - name: rep.orders
    query: |
      %s
    watermark: updated_at
    key: [id]
  - name: rep.customer_orders
    query: SELECT customer, count(*) AS orders, max(id) AS last_id FROM orders GROUP BY customer
    watermark: last_id
`, srv.URL(src), srv.URL(dst), t.TempDir(), strings.ReplaceAll(queryOrders, "\n", " "))
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	r := mustFerry(t, "sync", "-f", file, "--log-format", "json", "--progress", "none")
	if runs := queryRuns(r.stderr); strings.Join(runs, ",") != "1800,20" {
		t.Fatalf("runs read %v rows, want 1800 and 20:\n%s", runs, r.stderr)
	}
	sameQueryResult(t, srv, src, dst, "from the flow file")
	for _, args := range [][]string{{"verify", "-f", file}, {"plan", srv.URL(src), "-f", file}} {
		if r := ferry(t, args...); r.code != 2 || !strings.Contains(r.stderr, "does not run query replication") {
			t.Fatalf("ferry %s with a query flow file: exit %d, want 2:\n%s", args[0], r.code, r.stderr)
		}
	}
	mustFerry(t, "drop", "-f", file)
	r = mustFerry(t, "sync", "-f", file, "--log-format", "json", "--progress", "none")
	if runs := queryRuns(r.stderr); strings.Join(runs, ",") != "1800,20" {
		t.Fatalf("after ferry drop the runs read %v rows, want everything again", runs)
	}
	if n := pgRows(t, srv, dst, `SELECT count(*) FROM rep.customer_orders`)[0]; n != "40" {
		t.Fatalf("the appended query holds %s rows after two full runs, want 40", n)
	}
	sameQueryResult(t, srv, src, dst, "after the drop and a new run")
}

// TestQueryReplicationOutage: a scheduled query flow whose destination
// restarts waits it out, and its next run writes what changed meanwhile.
func TestQueryReplicationOutage(t *testing.T) {
	srv := pgtest.Shared(t)
	down := pgtest.Start(t)
	src, dst := srv.CreateDatabase(t, "qsrc"), down.CreateDatabase(t, "qdst")
	queryShop(t, srv, src)
	bg := startFerry(t, "sync", srv.URL(src), down.URL(dst), "--name", "qout", "--state-dir", t.TempDir(), "--log-format", "json", "--progress", "none",
		"--query", "rep.orders="+queryOrders, "--watermark", "updated_at", "--key", "id", "--every", "500ms")
	if !bg.waitFor(t, "query run finished", time.Minute) {
		t.Fatalf("no first run:\n%s", bg.stderr.String())
	}
	down.Down(t, "fast")
	srv.Exec(t, src, `UPDATE orders SET total = 0, updated_at = '2026-06-01' WHERE id <= 100`)
	if !bg.waitFor(t, "source or destination unavailable; retrying query run rep.orders", time.Minute) {
		t.Fatalf("the outage was not ridden out:\n%s", bg.stderr.String())
	}
	down.Up(t)
	if !bg.waitFor(t, "source or destination available again; query run rep.orders", time.Minute) {
		t.Fatalf("no recovery:\n%s", bg.stderr.String())
	}
	deadline := time.Now().Add(time.Minute)
	for strings.Join(pgRows(t, srv, src, queryAtSource), "\n") != strings.Join(pgRows(t, down, dst, queryAtDestination), "\n") {
		if time.Now().After(deadline) {
			t.Fatalf("the changes made during the outage never arrived:\n%s", bg.stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code := bg.signal(t, syscall.SIGINT); code != 0 {
		t.Fatalf("SIGINT: exit %d:\n%s", code, bg.stderr.String())
	}
}

// TestQueryReplicationIntoFiles: query runs into files append each run's
// rows to the table's file (JSON Lines, CSV, Parquet); a run killed after
// its first batch resumes without writing a row twice; the files read back
// (copied into SQLite by ferry) hold every row of the query once.
func TestQueryReplicationIntoFiles(t *testing.T) {
	srv := pgtest.Shared(t)
	for _, format := range []string{"jsonl", "csv", "parquet"} {
		t.Run(format, func(t *testing.T) {
			src := srv.CreateDatabase(t, "qfsrc")
			srv.Exec(t, src, `CREATE TABLE events (id bigint PRIMARY KEY, kind text NOT NULL, seq bigint NOT NULL);
				INSERT INTO events SELECT g, CASE WHEN g % 4 = 0 THEN 'debug' ELSE 'info' END, g / 3 FROM generate_series(1, 3000) g`)
			query := `SELECT id, kind, seq FROM events WHERE kind <> 'debug'`
			dir := filepath.Join(t.TempDir(), "files")
			dst := "file://" + dir + "?format=" + format
			args := []string{"sync", srv.URL(src), dst, "--name", "qfiles", "--state-dir", t.TempDir(), "--log-format", "json", "--progress", "none",
				"--query", "log=" + query, "--watermark", "seq", "--batch-rows", "100", "--parallel", "2"}
			check := func(when string, want int) {
				t.Helper()
				db := filepath.Join(t.TempDir(), "back.db")
				mustFerry(t, "sync", dst, "sqlite://"+db, "--mode", "snapshot", "--state-dir", t.TempDir(), "--progress", "none")
				s := openSQLite(t, db)
				defer s.Close()
				var n, distinct int
				if err := s.QueryRow(`SELECT count(*), count(DISTINCT id) FROM log`).Scan(&n, &distinct); err != nil {
					t.Fatal(err)
				}
				if n != want || distinct != want {
					t.Fatalf("%s: the file holds %d rows of %d ids, want %d once each", when, n, distinct, want)
				}
				var wrong int
				if err := s.QueryRow(`SELECT count(*) FROM log WHERE kind <> 'info' OR seq <> id / 3 + CASE WHEN id > 4000 THEN 1 ELSE 0 END`).Scan(&wrong); err != nil {
					t.Fatal(err)
				}
				if wrong != 0 {
					t.Fatalf("%s: %d rows differ from the source's", when, wrong)
				}
			}
			mustFerry(t, args...)
			check("after the first run", 2250)
			srv.Exec(t, src, `INSERT INTO events SELECT g, CASE WHEN g % 4 = 0 THEN 'debug' ELSE 'info' END, g / 3 FROM generate_series(3001, 4000) g`)
			r := mustFerry(t, args...)
			if runs := queryRuns(r.stderr); len(runs) != 1 || runs[0] != "750" {
				t.Fatalf("second run: rows %v, want the 750 new rows", runs)
			}
			check("after the second run", 3000)

			srv.Exec(t, src, `INSERT INTO events SELECT g, 'info', g / 3 + 1 FROM generate_series(4001, 6000) g`)
			killedAt(t, faultpoint.QueryBatchWritten, args...)
			mustFerry(t, args...)
			check("after the killed run resumed", 5000)
			if r := mustFerry(t, args...); fmt.Sprint(queryRuns(r.stderr)) != "[0]" {
				t.Fatalf("a run with nothing new: rows %v", queryRuns(r.stderr))
			}
			check("after a run with nothing new", 5000)
		})
	}
}

// TestQueryDashboardInABrowser: the page of a scheduled query flow (ferry
// sync --query --every --ui) shows the phase, the runs, the watermark and
// the last run's rows, and reports no script error.
func TestQueryDashboardInABrowser(t *testing.T) {
	if !browserAvailable(t) {
		t.Skipf("%s is missing (Debian package chromium)", chromiumPath)
	}
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "qsrc"), srv.CreateDatabase(t, "qdst")
	queryShop(t, srv, src)
	bg := startFerry(t, "sync", srv.URL(src), srv.URL(dst), "--name", "qpage", "--state-dir", t.TempDir(), "--log-format", "json", "--progress", "none",
		"--query", "rep.orders="+queryOrders, "--watermark", "updated_at", "--key", "id", "--every", "1s", "--ui", "127.0.0.1:0")
	url := dashboardURL(t, bg)
	b := startBrowser(t)
	b.navigate(t, url)
	const read = `(() => {
  const txt = (id) => (document.getElementById(id) || {}).textContent || '';
  const card = document.getElementById('query-card');
  return {hidden: !card || card.hidden, phase: txt('phase'), summary: txt('query-summary'),
    marks: txt('query-marks'), runs: txt('query-runs'), headline: txt('headline')};
})()`
	var page struct {
		Hidden                                bool
		Phase, Summary, Marks, Runs, Headline string
	}
	if !waitUntil(context.Background(), time.Minute, func() bool {
		b.eval(t, read, &page)
		return !page.Hidden && strings.HasPrefix(page.Summary, "2 runs") && page.Phase == "WAITING FOR THE NEXT RUN"
	}) {
		t.Fatalf("the page never showed two runs, waiting for the next: %+v\n%s", page, bg.stderr.String())
	}
	if !strings.Contains(page.Marks, "watermark rep.orders2026-01-01") || !strings.Contains(page.Runs, "last run #2") ||
		!strings.Contains(page.Headline, "Waiting for the next query run") {
		t.Fatalf("the query card: %+v", page)
	}
	b.screenshot(t, filepath.Join(artifacts(t), "dashboard-query.png"))
	problems, _ := b.report()
	for _, p := range problems {
		t.Errorf("the page reported: %s", p)
	}
	if code := bg.signal(t, syscall.SIGINT); code != 0 {
		t.Fatalf("SIGINT: exit %d:\n%s", code, bg.stderr.String())
	}
}
