package e2e

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/scaleout"
)

// The way back in scale-out mode (ferry flow cutover NAME --reverse, ferry
// run DESTINATION SOURCE --reverse), PostgreSQL to PostgreSQL, on two
// workers that hold the connections by name. With FERRY_RECORD_HISTORY=DIR
// both flows' histories are written there (scaleout/testdata records them).

// awaitFlow waits until the flow's status satisfies ok.
func (ts *temporalServer) awaitFlow(t *testing.T, flow string, what string, ok func(*scaleout.Status) bool) *scaleout.Status {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st := ts.flowStatus(t, flow)
		if st != nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("flow %s: %s never came: %+v", flow, what, st)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// streamOne waits until flow streams, then makes it carry one change of
// write and waits until it did.
func (ts *temporalServer) streamOne(t *testing.T, flow string, run *background, write func()) {
	t.Helper()
	ts.awaitFlow(t, flow, "change data capture", func(st *scaleout.Status) bool { return st.State.Phase == scaleout.PhaseCDC })
	write()
	ts.awaitStreaming(t, flow, run)
}

// The forward flow is cut over with --reverse: its slot at the old database
// stays, the report gives the reverse flow's command. The reverse flow
// checks the old database, releases the forward slot, carries the
// application's writes at the new database back while the worker
// streaming them is SIGKILLed, and its own cutover sets the old side's
// sequences: old == new.
func TestScaleOutReverseFlowPostgres(t *testing.T) {
	ts := startTemporal(t)
	srv := pgtest.Shared(t)
	old, nu := srv.CreateDatabase(t, "sorevold"), srv.CreateDatabase(t, "sorevnew")
	reverseShop(t, srv, old)
	oldURL, newURL := srv.URL(old)+"&heartbeat=1s", srv.URL(nu)+"&heartbeat=1s"
	conns := []string{"old=" + oldURL, "new=" + newURL}
	workers := map[int]*background{}
	addWorker := func() {
		w := ts.worker(t, conns...)
		workers[w.cmd.Process.Pid] = w
	}
	addWorker()
	addWorker()
	run := startFerry(t, "run", "--temporal", ts.addr, "--source", "old", "--destination", "new", "--name", "srv", "--progress", "none")
	ts.streamOne(t, "srv", run, func() { srv.Exec(t, old, `UPDATE items SET qty = qty + 1 WHERE id <= 20`) })
	// Drained by the cutover: applied at the new database before the
	// reverse start, so it does not come back.
	srv.Exec(t, old, `UPDATE items SET qty = qty + 1 WHERE id <= 50; INSERT INTO items (name, qty) VALUES ('late', 1)`)
	out := mustFerry(t, "flow", "cutover", "srv", "--reverse", "--temporal", ts.addr).stdout
	for _, want := range []string{"  reverse    ", `flow "srv-reverse" starts there`, "  way back   ferry run new old --reverse --name srv --temporal "} {
		if !strings.Contains(out, want) {
			t.Fatalf("the cutover report lacks %q:\n%s", want, out)
		}
	}
	if code := run.waitExit(t, time.Minute); code != 0 {
		t.Fatalf("the forward ferry run exited %d:\n%s", code, tail(run.stderr.String(), 20))
	}
	sameRowsPG(t, srv, old, nu, `SELECT * FROM items ORDER BY id`)
	if n := scalar(t, srv, old, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'ferry_srv'`); n != 1 {
		t.Fatal("the cutover --reverse did not keep the forward flow's slot at the old database")
	}
	if n := scalar(t, srv, nu, `SELECT count(*) FROM _ferry.checkpoints WHERE flow = 'srv-reverse' AND key = 'reverse/start'`); n != 1 {
		t.Fatal("the cutover --reverse did not record the reverse start at the new database")
	}
	record(t, ts, "srv", "history-cutover-reverse.json")

	// The application now writes at the new database.
	rev := startFerry(t, "run", "new", "old", "--reverse", "--name", "srv", "--temporal", ts.addr, "--progress", "none")
	ts.streamOne(t, "srv-reverse", rev, func() { appWritesNew(t, srv, nu, 1) })
	if n := scalar(t, srv, old, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'ferry_srv'`); n != 0 {
		t.Fatal("the forward flow's slot at the old database was kept after the reverse flow checked it")
	}
	if st := mustFerry(t, "flow", "status", "srv-reverse", "--temporal", ts.addr).stdout; !strings.Contains(st, "way back of flow srv: streams from ") {
		t.Fatalf("ferry flow status of the reverse flow:\n%s", st)
	}
	// The worker streaming the reverse flow's changes is killed; another
	// takes the stream over.
	var cdc *background
	ts.awaitFlow(t, "srv-reverse", "a worker streaming", func(st *scaleout.Status) bool {
		for _, w := range st.Workers {
			for _, a := range w.Activities {
				if a == "cdc" {
					_, pid, _ := strings.Cut(w.Identity, ":")
					for p, b := range workers {
						if pid == strconv.Itoa(p) {
							cdc = b
						}
					}
				}
			}
		}
		return cdc != nil
	})
	appWritesNew(t, srv, nu, 2)
	if !cdc.kill(t) {
		t.Fatalf("the worker had exited before the kill:\n%s", tail(cdc.stderr.String(), 20))
	}
	addWorker()
	appWritesNew(t, srv, nu, 3)
	// The team goes back: the reverse flow's cutover drains and sets the
	// old side's sequences.
	back := mustFerry(t, "flow", "cutover", "srv-reverse", "--temporal", ts.addr).stdout
	if !strings.Contains(back, `cutover of flow "srv-reverse" done`) || !strings.Contains(back, "sequences") {
		t.Fatalf("the reverse flow's cutover report:\n%s", back)
	}
	if code := rev.waitExit(t, time.Minute); code != 0 {
		t.Fatalf("the reverse ferry run exited %d:\n%s", code, tail(rev.stderr.String(), 20))
	}
	sameRowsPG(t, srv, old, nu, `SELECT * FROM items ORDER BY id`)
	sameRowsPG(t, srv, old, nu, `SELECT * FROM notes ORDER BY id`)
	sameRowsPG(t, srv, old, nu, `SELECT * FROM audit ORDER BY id`)
	mustFerry(t, "verify", newURL, oldURL)
	srv.Exec(t, old, `INSERT INTO items (name) VALUES ('back')`)
	if got, max := scalar(t, srv, old, `SELECT id FROM items WHERE name = 'back'`), scalar(t, srv, nu, `SELECT max(id) FROM items`); got <= max {
		t.Fatalf("the old database numbered a new item %d, not past the new database's %d", got, max)
	}
	if n := scalar(t, srv, nu, `SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'ferry\_srv\_reverse%'`); n != 0 {
		t.Fatal("the reverse flow's slot at the new database outlived its cutover")
	}
	// Nothing of either flow is left in ferry's checkpoint tables: the
	// forward flow's went with the check, the recorded start and the
	// reverse flow's with its release.
	if n := scalar(t, srv, nu, `SELECT count(*) FROM _ferry.checkpoints`); n != 0 {
		t.Fatalf("the new database keeps %d checkpoints after the way back ended", n)
	}
	if n := scalar(t, srv, old, `SELECT count(*) FROM _ferry.checkpoints WHERE flow = 'srv-reverse'`); n != 0 {
		t.Fatalf("the old database keeps %d checkpoints of the reverse flow after its cutover", n)
	}
	record(t, ts, "srv-reverse", "history-reverse-flow.json")
}

// Refusals, each exit 2: cutover --reverse to a destination that cannot be
// a change source, before anything is drained (the flow keeps streaming);
// a reverse flow of a flow never cut over with --reverse; a reverse flow
// whose old database was written after the cutover.
func TestScaleOutReverseRefusals(t *testing.T) {
	ts := startTemporal(t)
	srv := pgtest.Shared(t)
	old, nu := srv.CreateDatabase(t, "sorefold"), srv.CreateDatabase(t, "sorefnew")
	reverseShop(t, srv, old)
	ts.worker(t, "old="+srv.URL(old)+"&heartbeat=1s", "new="+srv.URL(nu)+"&heartbeat=1s", "lite=sqlite://"+filepath.Join(t.TempDir(), "lite.db"))

	lite := startFerry(t, "run", "--temporal", ts.addr, "--source", "old", "--destination", "lite", "--name", "tolite", "--tables", "public.items", "--progress", "none")
	ts.streamOne(t, "tolite", lite, func() { srv.Exec(t, old, `UPDATE items SET qty = qty + 1 WHERE id <= 20`) })
	r := ferry(t, "flow", "cutover", "tolite", "--reverse", "--temporal", ts.addr)
	if r.code != 2 || !strings.Contains(r.stderr, "cannot be the source of a reverse flow") {
		t.Fatalf("cutover --reverse to SQLite: %s\nwant exit 2", r)
	}
	if st := ts.flowStatus(t, "tolite"); st == nil || st.State.Phase != scaleout.PhaseCDC || st.State.Cut != nil {
		t.Fatalf("the refused cutover --reverse drained the flow: %+v", st)
	}
	mustFerry(t, "flow", "cancel", "tolite", "--temporal", ts.addr)
	lite.waitExit(t, time.Minute)

	// Temporal has the forward flow: the runner refuses, no worker asked.
	r = ferry(t, "run", "lite", "old", "--reverse", "--name", "tolite", "--temporal", ts.addr, "--progress", "none")
	if r.code != 2 || !strings.Contains(r.stderr, `flow "tolite" was not cut over with --reverse`) {
		t.Fatalf("a reverse flow of a flow cancelled without its cutover: %s\nwant exit 2", r)
	}
	// Temporal does not know the flow: the worker finds no recorded start.
	r = ferry(t, "run", "new", "old", "--reverse", "--name", "never", "--temporal", ts.addr, "--progress", "none")
	if r.code != 2 || !strings.Contains(r.stderr, `flow "never" was not cut over with --reverse`) {
		t.Fatalf("a reverse flow without its cutover: %s\nwant exit 2", r)
	}

	run := startFerry(t, "run", "--temporal", ts.addr, "--source", "old", "--destination", "new", "--name", "rw", "--progress", "none")
	ts.streamOne(t, "rw", run, func() { srv.Exec(t, old, `UPDATE items SET qty = qty + 1 WHERE id <= 20`) })
	mustFerry(t, "flow", "cutover", "rw", "--reverse", "--temporal", ts.addr)
	run.waitExit(t, time.Minute)
	srv.Exec(t, old, `UPDATE items SET qty = 0 WHERE id = 3`)
	r = ferry(t, "run", "new", "old", "--reverse", "--name", "rw", "--temporal", ts.addr, "--progress", "none")
	if r.code != 2 || !strings.Contains(r.stderr, "was written after the cutover") || !strings.Contains(r.stderr, "public.items (1 change(s))") {
		t.Fatalf("a reverse flow after a write at the old database: %s\nwant exit 2", r)
	}
}

// MySQL to PostgreSQL in scale-out mode, cut over with --reverse: the
// reverse flow's worker checks MySQL's binlog since the cutover, carries the
// application's writes at PostgreSQL back into MySQL, and its cutover sets
// MySQL's AUTO_INCREMENT counters.
func TestScaleOutReverseFlowMySQLToPostgres(t *testing.T) {
	requireMariaDB(t)
	ts := startTemporal(t)
	my := mysqltest.Shared(t)
	pg := pgtest.Shared(t)
	old := mysqlDatabase(t, my, "soxrev")
	nu := pg.CreateDatabase(t, "soxrev")
	my.Exec(t, "USE `"+old+"`; "+`CREATE TABLE items (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) NOT NULL, qty INT);
		INSERT INTO items (name, qty) SELECT concat('item ', seq), seq FROM seq_1_to_200;`)
	ts.worker(t, "old="+my.URL(old), "new="+pg.URL(nu)+"&heartbeat=1s")
	run := startFerry(t, "run", "--temporal", ts.addr, "--source", "old", "--destination", "new", "--name", "xs", "--progress", "none")
	ts.streamOne(t, "xs", run, func() { my.Exec(t, "USE `"+old+"`; UPDATE items SET qty = qty + 1 WHERE id <= 20") })
	out := mustFerry(t, "flow", "cutover", "xs", "--reverse", "--temporal", ts.addr).stdout
	if !strings.Contains(out, "  way back   ferry run new old --reverse --name xs") {
		t.Fatalf("the cutover report lacks the way back:\n%s", out)
	}
	if code := run.waitExit(t, time.Minute); code != 0 {
		t.Fatalf("the forward ferry run exited %d:\n%s", code, tail(run.stderr.String(), 20))
	}
	items := `"` + old + `".items`
	pg.Exec(t, nu, `INSERT INTO `+items+` (name, qty) SELECT 'new ' || g, g FROM generate_series(1, 20) g;
		UPDATE `+items+` SET qty = qty + 1000 WHERE id % 7 = 1; DELETE FROM `+items+` WHERE id % 13 = 1`)
	rev := startFerry(t, "run", "new", "old", "--reverse", "--name", "xs", "--temporal", ts.addr, "--progress", "none")
	ts.awaitFlow(t, "xs-reverse", "the changes carried back", func(st *scaleout.Status) bool { return st.State.CDC.Applied > 0 })
	mustFerry(t, "flow", "cutover", "xs-reverse", "--temporal", ts.addr)
	if code := rev.waitExit(t, time.Minute); code != 0 {
		t.Fatalf("the reverse ferry run exited %d:\n%s", code, tail(rev.stderr.String(), 20))
	}
	want := pgRowsOf(t, pg, nu, `SELECT id::text || '|' || name || '|' || coalesce(qty::text, '<nil>') FROM `+items+` ORDER BY id`)
	got := mysqlRows(t, my, old, `SELECT id, name, qty FROM items ORDER BY id`)
	if strings.Join(got, "\n") != strings.Join(want, "\n") || len(got) < 200 {
		t.Fatalf("items: MySQL has %d rows, PostgreSQL %d; first MySQL %v, PostgreSQL %v", len(got), len(want), first(got), first(want))
	}
	maxID := scalar(t, pg, nu, `SELECT max(id) FROM `+items)
	db := my.Connect(t, old)
	if _, err := db.Exec(`INSERT INTO items (name) VALUES ('back')`); err != nil {
		t.Fatal(err)
	}
	var next int64
	if err := db.QueryRow(`SELECT id FROM items WHERE name = 'back'`).Scan(&next); err != nil || next <= maxID {
		t.Fatalf("MySQL numbered a new item %d (%v), not past PostgreSQL's %d", next, err, maxID)
	}
}
