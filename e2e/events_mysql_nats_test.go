package e2e

import (
	"database/sql"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/faultpoint"
	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
)

// TestMySQLToNATSKilledAndResumed copies a MariaDB shop to NATS JetStream
// under writes (inserts, updates, deletes, keys moved, transactions of
// several rows), kills ferry (SIGKILL) after a batch of events was stored
// and before its checkpoint, resumes, and checks what a consumer sees:
// every change once, the state rebuilt from the events equal to the
// source, and Debezium's MySQL source block (db, file, pos).
func TestMySQLToNATSKilledAndResumed(t *testing.T) {
	requireMariaDB(t)
	s := mysqltest.Shared(t)
	ns := startNATS(t)
	src := mysqlDatabase(t, s, "evnats_my")
	createShop(t, s, src, 3000)
	dir := t.TempDir()
	args := []string{"sync", s.URL(src), ns.ClientURL() + "/?stream=myshop&subject=myshop", "--name", "evnats-my", "--state-dir", dir,
		"--parallel", "2", "--partition-rows", "1000", "--batch-rows", "250", "--log-format", "json", "--progress", "none"}
	w := startWriter(t, s, src, 3000)

	bg := startFerryHeld(t, args...)
	if !bg.waitFor(t, faultpoint.Message, 90*time.Second) {
		t.Fatalf("ferry never held after sending events:\n%s", bg.stderr.String())
	}
	if !bg.kill(t) {
		t.Fatalf("ferry ended before the kill:\n%s", bg.stderr.String())
	}
	bg = startFerry(t, args...)
	if !bg.waitFor(t, "nats: messages sent again were dropped as duplicates by their ID", 60*time.Second) {
		t.Fatalf("run 2 sent nothing again after the kill (which came after the events and before their checkpoint):\n%s", bg.stderr.String())
	}
	n0 := w.ops.Load()
	deadline := time.Now().Add(60 * time.Second)
	for w.ops.Load() < n0+200 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	w.halt()
	select {
	case <-bg.done:
		t.Fatalf("run 2 ended under writes, before it was stopped:\n%s", bg.stderr.String())
	default:
	}
	if code := bg.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("run 2 exited %d after SIGTERM:\n%s", code, bg.stderr.String())
	}
	r := mustFerry(t, append(args, "--until", "caught-up")...)
	if r.logLine("flow finished") == nil {
		t.Fatalf("no final log line:\n%s", r)
	}

	msgs := readNATS(t, ns.ClientURL(), "myshop")
	uniqueIDs(t, msgs)
	st := rebuildOverlapping(t, msgs)
	subj := "myshop." + src
	t.Logf("%d messages; writer made %d changes (%d failed)", len(msgs), w.ops.Load(), w.errs.Load())
	checkSources(t, msgs, "mysql", src, map[string]bool{"file": true, "pos": true})
	db := s.Connect(t, src)
	sameState(t, "orders", st[subj+".orders"], mysqlKeyedRows(t, db,
		`SELECT CONCAT('{"id":', id, '}'), JSON_OBJECT('id', id, 'customer', customer, 'amount', CAST(amount AS CHAR), 'status', status, 'note', note) FROM orders`))
	sameState(t, "items", st[subj+".items"], mysqlKeyedRows(t, db,
		`SELECT CONCAT('{"order_id":', order_id, ',"line":', line, '}'), JSON_OBJECT('order_id', order_id, 'line', line, 'sku', sku, 'qty', qty, 'price', CAST(price AS CHAR)) FROM items`))
}

// mysqlKeyedRows reads a MySQL query of (key JSON, row JSON) as sourceRows does.
func mysqlKeyedRows(t *testing.T, db *sql.DB, query string) map[string]map[string]any {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	return keyedRows(t, rows)
}
