package e2e

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// A PostgreSQL flow run again with a wider --tables copies the added table
// while the changes of both stream under a write load, and both end equal;
// run with a narrower one, it no longer follows the table it dropped, and
// goes on.
func TestAddTablesToARunningFlow(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "addtsrc"), srv.CreateDatabase(t, "addtdst")
	pgShop(t, srv, src, 20000)
	dir := t.TempDir()
	base := []string{"sync", srv.URL(src), srv.URL(dst), "--name", "addt", "--state-dir", dir,
		"--batch-rows", "500", "--log-format", "json", "--progress", "none"}
	with := func(tables string, more ...string) []string {
		return append(append(append([]string{}, base...), "--tables", tables), more...)
	}

	bg := startFerry(t, with("public.orders")...)
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("ferry did not reach CDC:\n%s", bg.stderr.String())
	}
	w := startPGWriter(t, srv.URL(src), 20001)
	time.Sleep(500 * time.Millisecond)
	if code := bg.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("ferry exited %d after SIGTERM:\n%s", code, bg.stderr.String())
	}
	var n int
	if err := srv.Connect(t, dst).QueryRow(context.Background(), `SELECT count(*) FROM pg_tables WHERE tablename = 'lines'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("lines at the destination before it was selected: %d (%v)", n, err)
	}

	// Wider: lines is added, copied while the writer goes on.
	bg = startFerry(t, with("public.orders,public.lines")...)
	if !bg.waitFor(t, "incremental snapshot done", 120*time.Second) {
		t.Fatalf("lines was not copied:\n%s", bg.stderr.String())
	}
	if !strings.Contains(bg.stderr.String(), "tables added to the flow") {
		t.Fatalf("no log of the added table:\n%s", bg.stderr.String())
	}
	for _, l := range strings.Split(bg.stderr.String(), "\n") {
		if strings.Contains(l, "incremental snapshot done") {
			t.Logf("%s", l)
		}
	}
	time.Sleep(500 * time.Millisecond) // changes of both after the copy
	w.halt(t)
	if w.ops.Load() < 50 {
		t.Fatalf("the writer made only %d changes", w.ops.Load())
	}
	if code := bg.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("ferry exited %d after SIGTERM:\n%s", code, bg.stderr.String())
	}
	mustFerry(t, with("public.orders,public.lines", "--until", "caught-up")...)
	samePG(t, srv, src, dst)

	// Narrower: orders leaves the flow; its changes no longer reach the
	// destination, and the flow goes on with lines.
	r := mustFerry(t, with("public.lines", "--until", "caught-up")...)
	if !strings.Contains(r.stderr, "tables left the selection") {
		t.Fatalf("no log of the dropped table:\n%s", r)
	}
	srv.Exec(t, src, `UPDATE orders SET amount = -5 WHERE id = 1; INSERT INTO lines VALUES (1, 99, 'after', 1)`)
	mustFerry(t, with("public.lines", "--until", "caught-up")...)
	c := srv.Connect(t, dst)
	var amount float64
	if err := c.QueryRow(context.Background(), `SELECT amount FROM orders WHERE id = 1`).Scan(&amount); err != nil || amount == -5 {
		t.Fatalf("orders is still followed after it left --tables: amount %v (%v)", amount, err)
	}
	if err := c.QueryRow(context.Background(), `SELECT count(*) FROM lines WHERE order_id = 1 AND line = 99`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("lines is no longer followed: %d rows (%v)", n, err)
	}
}

// A flow without --name (its name derived from source and destination) run
// again with a wider --tables finds its state: it adds the table instead of
// starting another flow.
func TestDerivedNameFlowAddsTables(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "addtnsrc"), srv.CreateDatabase(t, "addtndst")
	pgShop(t, srv, src, 3000)
	dir := t.TempDir()
	args := []string{"sync", srv.URL(src), srv.URL(dst), "--state-dir", dir, "--until", "caught-up", "--log-format", "json", "--progress", "none"}
	mustFerry(t, append(args, "--tables", "public.orders")...)
	r := mustFerry(t, append(args, "--tables", "public.orders,public.lines")...)
	if !strings.Contains(r.stderr, "tables added to the flow") || strings.Contains(r.stderr, "planned flow") {
		t.Fatalf("the wider --tables did not resume the flow:\n%s", r)
	}
	samePG(t, srv, src, dst)
	mustFerry(t, "drop", srv.URL(src), srv.URL(dst), "--state-dir", dir)
}

// A flow streaming through the user's publication (publication=) that lacks
// an added table is refused with the fix, and nothing is added.
func TestAddTablesRefusesAUserPublicationWithoutThem(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "addtpsrc"), srv.CreateDatabase(t, "addtpdst")
	pgShop(t, srv, src, 100)
	srv.Exec(t, src, `CREATE PUBLICATION mine FOR TABLE orders WITH (publish_via_partition_root = true)`)
	dir := t.TempDir()
	args := []string{"sync", srv.URL(src) + "&publication=mine", srv.URL(dst), "--name", "addtp", "--state-dir", dir, "--until", "caught-up", "--progress", "none"}
	mustFerry(t, append(args, "--tables", "public.orders")...)
	r := ferry(t, append(args, "--tables", "public.orders,public.lines")...)
	if r.code != 2 || !strings.Contains(r.stderr, "publication mine does not publish public.lines") || !strings.Contains(r.stderr, "ALTER PUBLICATION mine ADD TABLE") {
		t.Fatalf("want exit 2 naming the publication and the fix, got %s", r)
	}
	var n int
	if err := srv.Connect(t, dst).QueryRow(context.Background(), `SELECT count(*) FROM pg_tables WHERE tablename = 'lines'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("lines was created at the destination of a refused add: %d (%v)", n, err)
	}
	// The fix: the publication publishes lines, and the flow adds it.
	srv.Exec(t, src, `ALTER PUBLICATION mine ADD TABLE lines`)
	mustFerry(t, append(args, "--tables", "public.orders,public.lines")...)
	samePG(t, srv, src, dst)
	mustFerry(t, "drop", srv.URL(src)+"&publication=mine", srv.URL(dst), "--name", "addtp", "--state-dir", dir)
}

// The MySQL variant: the binlog carries every table, so an added table
// needs nothing at the source; it is copied while a writer changes both.
func TestAddTablesToARunningMySQLFlow(t *testing.T) {
	requireMariaDB(t)
	s := mysqltest.Shared(t)
	src, dst := mysqlDatabase(t, s, "addt_src"), mysqlDatabase(t, s, "addt_dst")
	createShop(t, s, src, 4000)
	dir := t.TempDir()
	args := func(tables string, more ...string) []string {
		return append([]string{"sync", s.URL(src), s.URL(dst), "--name", "addtmy", "--state-dir", dir, "--batch-rows", "400",
			"--log-format", "json", "--progress", "none", "--tables", tables}, more...)
	}
	bg := startFerry(t, args(src+".orders")...)
	if !bg.waitFor(t, "change data capture starting", 120*time.Second) {
		t.Fatalf("CDC never started:\n%s", bg.stderr.String())
	}
	w := startWriter(t, s, src, 4000)
	time.Sleep(500 * time.Millisecond)
	if code := bg.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, bg.stderr.String())
	}
	bg = startFerry(t, args(src+".orders,"+src+".items")...)
	if !bg.waitFor(t, "incremental snapshot done", 120*time.Second) {
		t.Fatalf("items was not copied:\n%s", bg.stderr.String())
	}
	time.Sleep(500 * time.Millisecond)
	w.halt()
	if code := bg.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, bg.stderr.String())
	}
	mustFerry(t, args(src+".orders,"+src+".items", "--until", "caught-up")...)
	compareShops(t, s, src, dst)
}
