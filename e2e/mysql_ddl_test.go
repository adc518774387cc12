package e2e

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
)

// The MySQL source's schema changes whose rows no binlog event carries (a
// table swapped in by an online schema change tool, a column added with a
// default evaluated per row) are followed by copying the table again while
// the flow keeps streaming: the destination ends equal to the source, and
// the flow never stops.

// ddlFlow starts a flow from a shop of n orders in src into dst, with small
// chunks for the incremental snapshots, and waits for CDC.
func ddlFlow(t *testing.T, s *mysqltest.Server, prefix string, n int) (src, dst string, args []string, bg *background) {
	t.Helper()
	requireMariaDB(t)
	src, dst = mysqlDatabase(t, s, prefix+"_src"), mysqlDatabase(t, s, prefix+"_dst")
	createShop(t, s, src, n)
	args = []string{"sync", s.URL(src), s.URL(dst), "--state-dir", t.TempDir(), "--batch-rows", "500",
		"--log-format", "json", "--progress", "none"}
	bg = startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("CDC never started:\n%s", bg.stderr.String())
	}
	return src, dst, args, bg
}

// shopsEqual compares both shops' rows, as compareShops does, without
// failing: the flow may still be catching up.
func shopsEqual(t *testing.T, a, b *sql.DB) (bool, string) {
	t.Helper()
	var diff []string
	for _, tbl := range []struct{ name, order string }{{"orders", "id"}, {"items", "order_id, line"}} {
		ha, na := tableDigest(t, a, tbl.name, tbl.order)
		hb, nb := tableDigest(t, b, tbl.name, tbl.order)
		if ha != hb || na != nb {
			diff = append(diff, fmt.Sprintf("%s: source %d rows (%s), destination %d rows (%s)", tbl.name, na, ha[:12], nb, hb[:12]))
		}
	}
	return len(diff) == 0, strings.Join(diff, "; ")
}

// endsEqual waits, with the flow still running, for the destination to
// equal the source, then stops the flow: it must exit 0 (it never stopped
// on its own).
func endsEqual(t *testing.T, s *mysqltest.Server, src, dst string, bg *background) {
	t.Helper()
	a, b := s.Connect(t, src), s.Connect(t, dst)
	deadline := time.Now().Add(90 * time.Second)
	for {
		ok, diff := shopsEqual(t, a, b)
		if ok {
			break
		}
		if bg.hasExited() {
			t.Fatalf("the flow stopped: %s\n%s", diff, tail(bg.stderr.String(), 30))
		}
		if time.Now().After(deadline) {
			t.Fatalf("the destination did not become equal to the source: %s\n%s", diff, tail(bg.stderr.String(), 30))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code := bg.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("ferry exited %d after SIGTERM:\n%s", code, bg.stderr.String())
	}
	if strings.Contains(bg.stderr.String(), `"level":"ERROR"`) {
		t.Fatalf("the flow logged an error:\n%s", bg.stderr.String())
	}
}

// orderWriter changes orders until halted; hold pauses it, as gh-ost's
// cut-over lock blocks the table's writers.
type orderWriter struct {
	db   *sql.DB
	gate sync.Mutex
	stop chan struct{}
	done chan struct{}
	ops  int
	errs []error
}

func startOrderWriter(t *testing.T, s *mysqltest.Server, db string, maxID int64) *orderWriter {
	t.Helper()
	w := &orderWriter{db: s.Connect(t, db), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		r := rand.New(rand.NewPCG(uint64(maxID), 17))
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			id := 1 + r.Int64N(maxID)
			var q string
			switch r.IntN(4) {
			case 0:
				q = fmt.Sprintf("INSERT INTO orders (customer, amount, status, created) VALUES ('w %d', %d.5, 'new', NOW(6))", id, id)
			case 1, 2:
				q = fmt.Sprintf("UPDATE orders SET amount = amount + 1, note = CONCAT(COALESCE(note, ''), 'u') WHERE id = %d", id)
			case 3:
				q = fmt.Sprintf("DELETE FROM orders WHERE id = %d", id)
			}
			w.gate.Lock()
			if _, err := w.db.Exec(q); err != nil && len(w.errs) < 5 {
				w.errs = append(w.errs, err)
			}
			w.ops++
			w.gate.Unlock()
			time.Sleep(time.Millisecond)
		}
	}()
	t.Cleanup(w.halt)
	return w
}

func (w *orderWriter) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// TestMySQLFollowsGhostTableSwap replays gh-ost's statements on orders
// (gh-ost itself is not installable here) under a write load: a shadow
// table created like it, altered (a column added, one widened), filled in
// chunks outside the flow, brought up to date while writes are held, and
// swapped in with one RENAME TABLE.
func TestMySQLFollowsGhostTableSwap(t *testing.T) {
	s := mysqltest.Shared(t)
	src, dst, _, bg := ddlFlow(t, s, "ghost", 3000)
	w := startOrderWriter(t, s, src, 3000)
	ghostSwap(t, s, src, w)
	if !bg.waitFor(t, "incremental snapshot done", 90*time.Second) {
		t.Fatalf("orders was not copied again after the swap:\n%s", tail(bg.stderr.String(), 30))
	}
	time.Sleep(300 * time.Millisecond) // writes after the copy
	w.halt()
	s.Exec(t, "USE `"+src+"`; DROP TABLE `_orders_del`")
	t.Logf("writer: %d writes, errors %v", w.ops, w.errs)
	endsEqual(t, s, src, dst, bg)
	var region sql.NullString
	if err := s.Connect(t, dst).QueryRow("SELECT region FROM orders WHERE id = 1").Scan(&region); err != nil || region.String != "eu" {
		t.Fatalf("the swapped-in column at the destination: %v, %v", region, err)
	}
}

// ghostSwap runs gh-ost's statements on orders: the shadow table gets a
// column region (NOT NULL DEFAULT 'eu') and a wider customer.
func ghostSwap(t *testing.T, s *mysqltest.Server, src string, w *orderWriter) {
	t.Helper()
	use := "USE `" + src + "`; "
	s.Exec(t, use+"CREATE TABLE `_orders_gho` LIKE orders",
		use+"ALTER TABLE `_orders_gho` ADD COLUMN region varchar(10) NOT NULL DEFAULT 'eu', MODIFY customer varchar(80) NOT NULL")
	cols := "id, customer, amount, ratio, status, flags, note, data, created, updated, ship_day, raw"
	for lo := 0; lo < 3200; lo += 500 {
		s.Exec(t, fmt.Sprintf(use+"INSERT IGNORE INTO `_orders_gho` (%s) SELECT %s FROM orders WHERE id > %d AND id <= %d", cols, cols, lo, lo+500))
	}
	// The cut-over: writers wait; what changed since the copy goes over;
	// then the swap.
	w.gate.Lock()
	s.Exec(t, use+"REPLACE INTO `_orders_gho` ("+cols+") SELECT "+cols+" FROM orders",
		use+"DELETE FROM `_orders_gho` WHERE id NOT IN (SELECT id FROM orders)",
		use+"RENAME TABLE orders TO `_orders_del`, `_orders_gho` TO orders")
	w.gate.Unlock()
}

// TestMySQLSwapCopyResumesAfterAKill: a flow killed while it copies a
// swapped-in table again goes on when it runs again (no --restart), and
// the table ends equal.
func TestMySQLSwapCopyResumesAfterAKill(t *testing.T) {
	s := mysqltest.Shared(t)
	src, dst, args, bg := ddlFlow(t, s, "ghostkill", 3000)
	w := startOrderWriter(t, s, src, 3000)
	ghostSwap(t, s, src, w)
	if !bg.waitFor(t, "incremental snapshot requested", 60*time.Second) {
		t.Fatalf("no copy was requested after the swap:\n%s", tail(bg.stderr.String(), 30))
	}
	if !bg.kill(t) {
		t.Fatalf("ferry ended before the kill:\n%s", bg.stderr.String())
	}
	killed := bg.stderr.String()
	if strings.Contains(killed, `"msg":"incremental snapshot done"`) {
		t.Log("the copy finished before the kill")
	}
	bg = startFerry(t, args...)
	if !strings.Contains(killed, `"msg":"incremental snapshot done"`) && !bg.waitFor(t, "incremental snapshot done", 90*time.Second) {
		t.Fatalf("the copy did not finish after the restart:\n%s\n--- before the kill:\n%s", tail(bg.stderr.String(), 30), tail(killed, 10))
	}
	time.Sleep(300 * time.Millisecond)
	w.halt()
	endsEqual(t, s, src, dst, bg)
}

// TestMySQLFollowsPtOnlineSchemaChange runs Percona's
// pt-online-schema-change on orders under a write load (its triggers keep
// the shadow table up to date, and RENAME TABLE swaps it in).
func TestMySQLFollowsPtOnlineSchemaChange(t *testing.T) {
	pt, err := exec.LookPath("pt-online-schema-change")
	if err != nil {
		t.Skip("pt-online-schema-change is not installed (Debian package percona-toolkit)")
	}
	s := mysqltest.Shared(t)
	src, dst, _, bg := ddlFlow(t, s, "ptosc", 3000)
	w := startWriter(t, s, src, 3000)
	out, err := exec.Command(pt, "--execute", "--alter", "ADD COLUMN region varchar(10) NOT NULL DEFAULT 'eu', MODIFY customer varchar(80) NOT NULL",
		"--recursion-method", "none", "--chunk-size", "400", "--no-check-replication-filters",
		fmt.Sprintf("h=127.0.0.1,P=%d,u=root,D=%s,t=orders", s.Port, src)).CombinedOutput()
	if err != nil {
		t.Fatalf("pt-online-schema-change: %v\n%s", err, out)
	}
	if !bg.waitFor(t, "incremental snapshot done", 90*time.Second) {
		t.Fatalf("orders was not copied again after the swap:\n%s\n%s", out, tail(bg.stderr.String(), 30))
	}
	time.Sleep(300 * time.Millisecond)
	w.halt()
	t.Logf("writer: %d writes, %d errors", w.ops.Load(), w.errs.Load())
	endsEqual(t, s, src, dst, bg)
}

// TestMySQLFollowsExpressionDefaults adds columns whose defaults the
// server evaluates per row (UUID(), CURRENT_TIMESTAMP, RAND(),
// AUTO_INCREMENT) under a write load: the rows that existed get their values from a new copy of
// the table.
func TestMySQLFollowsExpressionDefaults(t *testing.T) {
	s := mysqltest.Shared(t)
	src, dst, _, bg := ddlFlow(t, s, "exprdef", 3000)
	w := startWriter(t, s, src, 3000)
	time.Sleep(200 * time.Millisecond)
	s.Exec(t, "USE `"+src+"`; ALTER TABLE orders ADD COLUMN token char(36) NOT NULL DEFAULT (UUID()), ADD COLUMN seen timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), ADD COLUMN r double DEFAULT (RAND())",
		"USE `"+src+"`; ALTER TABLE items ADD COLUMN n bigint NOT NULL AUTO_INCREMENT UNIQUE")
	// (The writer's inserts into items name no columns: they fail from now
	// on, and its other writes go on.)
	waitCopies(t, bg, 2)
	time.Sleep(300 * time.Millisecond)
	w.halt()
	t.Logf("writer: %d writes, %d errors", w.ops.Load(), w.errs.Load())

	// With no write at all, the copy's chunks still pass their watermarks:
	// the idle stream reports its position at every heartbeat (1 s).
	started := time.Now()
	s.Exec(t, "USE `"+src+"`; ALTER TABLE orders ADD COLUMN r2 double DEFAULT (RAND())")
	waitCopies(t, bg, 3)
	took := time.Since(started).Round(time.Millisecond)
	var rows int
	if err := s.Connect(t, src).QueryRow("SELECT count(*) FROM orders").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	t.Logf("an idle source's table of %d rows (%d chunks) copied again in %s", rows, (rows+499)/500, took)
	endsEqual(t, s, src, dst, bg)
	var nulls int
	if err := s.Connect(t, dst).QueryRow("SELECT count(*) FROM orders WHERE token IS NULL OR seen IS NULL OR r IS NULL OR r2 IS NULL").Scan(&nulls); err != nil || nulls != 0 {
		t.Fatalf("destination rows without the added columns' values: %d, %v", nulls, err)
	}
}

// waitCopies waits until the flow has finished n incremental snapshots.
func waitCopies(t *testing.T, bg *background, n int) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for strings.Count(bg.stderr.String(), `"msg":"incremental snapshot done"`) < n {
		if time.Now().After(deadline) || bg.hasExited() {
			t.Fatalf("the flow did not finish %d incremental snapshot(s):\n%s", n, tail(bg.stderr.String(), 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
