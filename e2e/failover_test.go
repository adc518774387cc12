package e2e

import (
	"database/sql"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
)

// counterWriter increments counters until stopped: each write adds 1 to one
// row (inserting it at 1), so the sum of the column is the number of writes
// and a change applied twice, or lost, shows in it.
type counterWriter struct {
	stop, done chan struct{}
	writes     atomic.Int64
}

func startCounterWriter(t *testing.T, db *sql.DB, seed uint64) *counterWriter {
	t.Helper()
	w := &counterWriter{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		r := rand.New(rand.NewPCG(seed, 1))
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			if _, err := db.Exec("INSERT INTO counters (id, n) VALUES (?, 1) ON DUPLICATE KEY UPDATE n = n + 1", 1+r.IntN(300)); err == nil {
				w.writes.Add(1)
			}
			time.Sleep(500 * time.Microsecond)
		}
	}()
	t.Cleanup(w.halt)
	return w
}

func (w *counterWriter) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func counterSum(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	var n sql.NullInt64
	if err := db.QueryRow("SELECT SUM(n) FROM counters").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n.Int64
}

// TestMySQLSourceFailoverToReplica follows a MariaDB primary under writes,
// then the primary goes away and its replica is promoted: the flow, pointed
// at the replica, resumes from the same logical point by GTID and, after
// more writes on the replica, ends equal to it with every change applied
// exactly once. A server of another history is refused first.
func TestMySQLSourceFailoverToReplica(t *testing.T) {
	requireMariaDB(t)
	primary := mysqltest.Start(t)
	replica := mysqltest.StartReplica(t, primary, 2)
	dstSrv := mysqltest.Shared(t)
	db := primary.CreateDatabase(t, "failover")
	dst := dstSrv.CreateDatabase(t, "failover_dst")
	createShop(t, primary, db, 2000)
	primary.Exec(t, "CREATE TABLE `"+db+"`.counters (id int PRIMARY KEY, n bigint NOT NULL)")
	dir := t.TempDir()
	flowArgs := func(src *mysqltest.Server) []string {
		return []string{"sync", src.URL(db), dstSrv.URL(dst), "--name", "failover", "--state-dir", dir, "--log-format", "json"}
	}

	bg := startFerry(t, flowArgs(primary)...)
	if !bg.waitFor(t, "change data capture starting", 120*time.Second) {
		t.Fatalf("CDC never started:\n%s", bg.stderr.String())
	}
	shopW := startWriter(t, primary, db, 2000)
	cw := startCounterWriter(t, primary.Connect(t, db), 1)
	time.Sleep(1500 * time.Millisecond)
	shopW.halt()
	cw.halt()
	replica.WaitCaughtUp(t, primary, 60*time.Second)
	if code := bg.signal(t, syscall.SIGINT); code != 0 {
		t.Fatalf("exit code %d after SIGINT:\n%s", code, bg.stderr.String())
	}
	before := cw.writes.Load()

	// The primary fails; its replica takes over.
	primary.Down(t, "fast")
	replica.Promote(t)

	// A server of another history (a fresh one, with the same database)
	// does not hold the flow's position: refused, exit 2.
	other := mysqltest.Start(t)
	other.Exec(t, "CREATE DATABASE `"+db+"`")
	r := ferry(t, append(flowArgs(other), "--until", "caught-up")...)
	if r.code != 2 || !strings.Contains(r.stderr, "does not hold the flow's position") {
		t.Fatalf("a flow resumed on an unrelated server: want exit 2 naming the position, got %s", r)
	}

	replicaDB := replica.Connect(t, db)
	shopW = startWriter(t, replica, db, 2000)
	cw2 := startCounterWriter(t, replicaDB, 2)
	time.Sleep(time.Second)
	shopW.halt()
	cw2.halt()

	r = mustFerry(t, append(flowArgs(replica), "--until", "caught-up")...)
	if r.logLine("source moved: the flow resumes on another server of its replication topology, whose history holds the flow's position") == nil {
		t.Fatalf("no log line about the moved source:\n%s", r)
	}
	want := before + cw2.writes.Load()
	if before == 0 || cw2.writes.Load() == 0 {
		t.Fatalf("writes before the failover %d, after %d: both are needed", before, cw2.writes.Load())
	}
	dstDB := dstSrv.Connect(t, dst)
	if got := counterSum(t, replicaDB); got != want {
		t.Fatalf("replica: counters sum to %d, the writers made %d writes", got, want)
	}
	if got := counterSum(t, dstDB); got != want {
		t.Fatalf("destination: counters sum to %d, the writers made %d writes (before the failover %d)", got, want, before)
	}
	for _, tbl := range []struct{ name, order string }{{"orders", "id"}, {"items", "order_id, line"}, {"counters", "id"}} {
		ha, na := tableDigest(t, replicaDB, tbl.name, tbl.order)
		hb, nb := tableDigest(t, dstDB, tbl.name, tbl.order)
		if ha != hb || na != nb {
			t.Fatalf("%s: the promoted replica has %d rows (digest %s), the destination %d (digest %s)", tbl.name, na, ha[:12], nb, hb[:12])
		}
	}
	t.Logf("%d counter writes (%d before the failover), shop writes %d", want, before, shopW.ops.Load())
}
