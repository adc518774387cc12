package e2e

import (
	"context"
	"database/sql"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// A table created at a PostgreSQL source while the flow streams, matching
// its --tables pattern, joins the flow: created at the destination, its
// rows (those of its CREATE's own transaction too) copied while changes of
// every table stream, then followed; one the pattern excludes does not. A
// table of the flow dropped at the source stops being followed and stays at
// the destination. After a SIGKILL past all that, the flow resumes with the
// new table and without the dropped one, and the tables end equal.
func TestTablesCreatedAndDroppedDuringCDC(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "newtsrc"), srv.CreateDatabase(t, "newtdst")
	pgShop(t, srv, src, 5000)
	srv.Exec(t, src, `CREATE TABLE olds (id int PRIMARY KEY, v text); INSERT INTO olds SELECT g, 'v' || g FROM generate_series(1, 100) g`)
	args := []string{"sync", srv.URL(src), srv.URL(dst), "--name", "newt", "--state-dir", t.TempDir(),
		"--tables", "public.*,!public.skip*", "--batch-rows", "500", "--log-format", "json", "--progress", "none"}
	bg := startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("ferry did not reach CDC:\n%s", bg.stderr.String())
	}
	w := startPGWriter(t, srv.URL(src), 5001)

	srv.Exec(t, src, `
		CREATE TABLE events (id bigint PRIMARY KEY, kind text NOT NULL, at timestamptz DEFAULT now(), n numeric(10,2), tags text[]);
		INSERT INTO events SELECT g, 'k' || (g % 7), '2026-01-01'::timestamptz + g * interval '1 second', g * 0.5, ARRAY['a' || g] FROM generate_series(1, 3000) g;
		CREATE TABLE skipped (id int PRIMARY KEY);
		INSERT INTO skipped VALUES (1)`)
	if !bg.waitFor(t, "table created at the source joined the flow", 60*time.Second) {
		t.Fatalf("the created table did not join the flow:\n%s", tail(bg.stderr.String(), 30))
	}
	// Changes while it is copied, and after.
	srv.Exec(t, src, `UPDATE events SET kind = 'upd' WHERE id % 10 = 0; DELETE FROM events WHERE id % 13 = 0;
		INSERT INTO events SELECT g, 'late', now(), 1, NULL FROM generate_series(3001, 3500) g`)
	if !bg.waitFor(t, "incremental snapshot done", 120*time.Second) {
		t.Fatalf("the created table was not copied:\n%s", tail(bg.stderr.String(), 30))
	}
	srv.Exec(t, src, `DROP TABLE olds`)
	if !bg.waitFor(t, "table dropped at the source: no longer followed; its destination table stays", 60*time.Second) {
		t.Fatalf("the dropped table was not seen:\n%s", tail(bg.stderr.String(), 30))
	}
	srv.Exec(t, src, `UPDATE events SET n = -1 WHERE id < 100`)
	time.Sleep(300 * time.Millisecond)
	if code := bg.signal(t, syscall.SIGKILL); code == 0 {
		t.Fatalf("ferry exited 0 after SIGKILL")
	}
	srv.Exec(t, src, `INSERT INTO events VALUES (9999, 'while down', now(), 2, '{}'); CREATE TABLE olds (id int PRIMARY KEY, v text)`)
	w.halt(t)
	r := mustFerry(t, append(args, "--until", "caught-up")...)
	if strings.Contains(r.stderr, "planned flow") {
		t.Fatalf("the flow was planned again instead of resumed:\n%s", r)
	}
	samePG(t, srv, src, dst)
	a, na := pgDigest(t, srv, src, "events", "id")
	b, nb := pgDigest(t, srv, dst, "events", "id")
	if a != b || na != nb || na < 3000 {
		t.Fatalf("events differs: source %d rows (%s), destination %d rows (%s)", na, a, nb, b)
	}
	c := srv.Connect(t, dst)
	var n int
	// olds was dropped, and created again (empty) while ferry was down: the
	// new one joined at the resumed start, and its destination table was
	// emptied of the old one's rows.
	if err := c.QueryRow(context.Background(), `SELECT count(*) FROM olds`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("olds at the destination: %d rows (%v), want the new, empty table's 0", n, err)
	}
	if err := c.QueryRow(context.Background(), `SELECT count(*) FROM pg_tables WHERE tablename = 'skipped'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("skipped, which --tables excludes, is at the destination (%d, %v)", n, err)
	}
}

// A dropped table's destination table stays with its rows; a flow started
// over with the DDL log's drop seen keeps it.
func TestDroppedTableStaysAtTheDestination(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "dropsrc"), srv.CreateDatabase(t, "dropdst")
	pgShop(t, srv, src, 1000)
	args := []string{"sync", srv.URL(src), srv.URL(dst), "--name", "dropt", "--state-dir", t.TempDir(),
		"--log-format", "json", "--progress", "none"}
	bg := startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("ferry did not reach CDC:\n%s", bg.stderr.String())
	}
	srv.Exec(t, src, `INSERT INTO lines VALUES (1, 77, 'last', 1); DROP TABLE lines; UPDATE orders SET note = 'after drop' WHERE id = 1`)
	if !bg.waitFor(t, "table dropped at the source: no longer followed; its destination table stays", 60*time.Second) {
		t.Fatalf("the drop was not seen:\n%s", tail(bg.stderr.String(), 30))
	}
	if code := bg.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("ferry exited %d after SIGTERM:\n%s", code, bg.stderr.String())
	}
	mustFerry(t, append(args, "--until", "caught-up")...)
	c := srv.Connect(t, dst)
	var n int
	if err := c.QueryRow(context.Background(), `SELECT count(*) FROM lines`).Scan(&n); err != nil || n != 1001 {
		t.Fatalf("lines at the destination: %d rows (%v), want the 1000 copied and the one inserted before the drop", n, err)
	}
	var note string
	if err := c.QueryRow(context.Background(), `SELECT note FROM orders WHERE id = 1`).Scan(&note); err != nil || note != "after drop" {
		t.Fatalf("orders after the drop: %q (%v)", note, err)
	}
}

// The MySQL/MariaDB variant: a table created in the binlog (with rows in
// its own statement, CREATE ... SELECT, and after) joins a flow of every
// table under a write load and ends equal; an online schema change tool's
// work table does not join; a dropped table stops being followed, and the
// flow never stops.
func TestMySQLTablesCreatedAndDroppedDuringCDC(t *testing.T) {
	s := mysqltest.Shared(t)
	src, dst, _, bg := ddlFlow(t, s, "mynewt", 3000)
	w := startOrderWriter(t, s, src, 3000)
	db := s.Connect(t, src)
	for _, q := range []string{
		"CREATE TABLE events (id BIGINT PRIMARY KEY, kind VARCHAR(20) NOT NULL, n DECIMAL(10,2), at DATETIME(6))",
		"INSERT INTO events SELECT id, 'copied', amount, created FROM orders WHERE id <= 2000",
		"CREATE TABLE picked (id INT PRIMARY KEY, v VARCHAR(10)) SELECT id, 'p' AS v FROM orders WHERE id <= 300",
		"CREATE TABLE _orders_gho LIKE orders",
		"INSERT INTO _orders_gho SELECT * FROM orders WHERE id <= 10",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if !bg.waitFor(t, "table created at the source joined the flow", 60*time.Second) {
		t.Fatalf("the created table did not join the flow:\n%s", tail(bg.stderr.String(), 30))
	}
	for _, q := range []string{
		"UPDATE events SET kind = 'upd' WHERE id % 10 = 0",
		"DELETE FROM events WHERE id % 13 = 0",
		"INSERT INTO events VALUES (5001, 'late', 1.5, NOW(6))",
		"DROP TABLE _orders_gho",
		"DROP TABLE items",
		"UPDATE picked SET v = 'q' WHERE id < 50",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if !bg.waitFor(t, "table dropped at the source: no longer followed; its destination table stays", 60*time.Second) {
		t.Fatalf("the dropped table was not seen:\n%s", tail(bg.stderr.String(), 30))
	}
	w.halt()
	a, b := s.Connect(t, src), s.Connect(t, dst)
	deadline := time.Now().Add(90 * time.Second)
	for _, tbl := range []struct{ name, order string }{{"orders", "id"}, {"events", "id"}, {"picked", "id"}} {
		for {
			ha, na := tableDigest(t, a, tbl.name, tbl.order)
			hb, nb := -1, 0
			var hbs string
			if tableExists(t, b, tbl.name) {
				hbs, nb = tableDigest(t, b, tbl.name, tbl.order)
				hb = 1
			}
			if hb == 1 && ha == hbs && na == nb {
				break
			}
			if bg.hasExited() || time.Now().After(deadline) {
				t.Fatalf("%s: source %d rows, destination %d rows (exists %v); the flow:\n%s", tbl.name, na, nb, hb == 1, tail(bg.stderr.String(), 30))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if tableExists(t, b, "_orders_gho") {
		t.Fatalf("gh-ost's work table joined the flow")
	}
	if !tableExists(t, b, "items") {
		t.Fatalf("the dropped table's destination table is gone")
	}
	if code := bg.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("ferry exited %d after SIGTERM:\n%s", code, bg.stderr.String())
	}
}

func tableExists(t *testing.T, db *sql.DB, name string) bool {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// In scale-out mode a table created at the source during CDC joins the
// flow as in one process; the worker streaming it killed, the CDC activity
// another worker runs follows the table too: the checkpoints, not the
// killed activity's result (it has none), say the flow has it.
func TestScaleOutFollowsATableCreatedDuringCDC(t *testing.T) {
	ts := startTemporal(t)
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "socrsrc"), srv.CreateDatabase(t, "socrdst")
	pgShop(t, srv, src, 3000)
	conns := []string{"src=" + srv.URL(src) + "&heartbeat=1s", "dst=" + srv.URL(dst)}
	wk := ts.worker(t, conns...)
	const name = "socr"
	run := startFerry(t, "run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--name", name,
		"--tables", "public.*", "--batch-rows", "500", "--log-format", "json", "--progress", "none")
	w := startPGWriter(t, srv.URL(src), 3001)
	ts.awaitStreaming(t, name, run)
	srv.Exec(t, src, `
		CREATE TABLE events (id bigint PRIMARY KEY, kind text NOT NULL, n numeric(10,2));
		INSERT INTO events SELECT g, 'k' || (g % 7), g * 0.5 FROM generate_series(1, 2000) g`)
	srv.Exec(t, src, `UPDATE events SET kind = 'upd' WHERE id % 10 = 0; DELETE FROM events WHERE id % 13 = 0`)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		var n int
		if err := srv.Connect(t, dst).QueryRow(context.Background(), `SELECT count(*) FROM pg_tables WHERE tablename = 'events'`).Scan(&n); err == nil && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events was not created at the destination: %+v\nworker:\n%s", ts.flowStatus(t, name), tail(wk.stderr.String(), 30))
		}
	}
	awaitEqual(t, srv, src, dst, "events", "id")

	if code := wk.signal(t, syscall.SIGKILL); code == 0 {
		t.Fatalf("the worker exited 0 after SIGKILL")
	}
	srv.Exec(t, src, `INSERT INTO events VALUES (5000, 'worker down', 1); UPDATE events SET n = -1 WHERE id < 50`)
	ts.worker(t, conns...)
	w.halt(t)
	awaitEqual(t, srv, src, dst, "events", "id")
	awaitEqual(t, srv, src, dst, "orders", "id")
	awaitEqual(t, srv, src, dst, "lines", "order_id, line")
	mustFerry(t, "flow", "cutover", name, "--temporal", ts.addr)
	awaitEqual(t, srv, src, dst, "events", "id")
}
