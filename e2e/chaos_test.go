package e2e

// The fault-injection suite (issue 8). Each scenario runs a flow under a
// steady write load at the source, injects a fault, and ends with ferry
// --until caught-up, ferry verify and a row-by-row comparison of both sides;
// it reports the changes written at the source and applied by ferry, the
// rows that differ and the duplicates (both must be 0), the time to recover
// and ferry's peak memory (chaos_harness_test.go writes the reports).
//
// go test runs the short version (shorter faults, smaller tables); make
// chaos runs the full one (FERRY_CHAOS=full): 10 s network cuts, a 30 s
// destination outage, larger tables. FERRY_CHAOS_SEED replays a run's
// random choices; FERRY_CHAOS_OUT says where the reports go.
//
//  1. the source connection cut during the copy and again during CDC
//     (PostgreSQL and MySQL sources);
//  2. the destination down during CDC (PostgreSQL, and MariaDB);
//  3. the source database restarted during CDC (fast and immediate
//     shutdown; MariaDB: clean shutdown and SIGKILL);
//  4. ferry killed with SIGKILL at random points, ten times in one flow;
//  5. a slow destination (latency and limited bandwidth) against the same
//     flow without them: memory stays flat;
//  6. scale-out mode: a worker killed during the copy and the one streaming
//     changes during CDC, the Temporal dev server killed and started again
//     (chaos_scaleout_test.go).

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/internal/testsupport/faults"
	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// errorLine is the error a failed run logged, for the report.
func errorLine(out string) string {
	r := result{stderr: out}
	if l := r.logLine("flow failed"); l != nil {
		return fmt.Sprint(l["error"])
	}
	return tail(out, 3)
}

// pgShopFlow creates a pgShop source and an empty destination database.
func pgShopFlow(t *testing.T, src, dst *pgtest.Server, prefix string, rows int) (srcDB, dstDB string) {
	t.Helper()
	srcDB, dstDB = src.CreateDatabase(t, prefix+"src"), dst.CreateDatabase(t, prefix+"dst")
	pgShop(t, src, srcDB, rows)
	return srcDB, dstDB
}

// finishPGFlow ends a PostgreSQL-to-PostgreSQL scenario: the load stops,
// ferry is stopped and run again until caught up, then verify and the
// direct comparison.
func finishPGFlow(t *testing.T, rep *chaosReport, f *chaosFlow, load *pgLoad, src *pgtest.Server, srcDB string, dst *pgtest.Server, dstDB string) {
	t.Helper()
	time.Sleep(time.Second) // load after the recovery, too
	load.report(t, rep)
	f.stop()
	f.catchUp()
	verifyFlow(t, rep, src.URL(srcDB), dst.URL(dstDB), 2)
	comparePGShop(t, rep, src, srcDB, dst, dstDB)
	rep.finish(t)
}

// TestChaosSourceCutPostgres is scenario 1 for PostgreSQL: the source
// connection is cut (every connection reset, new ones refused) during the
// copy, and again during CDC.
func TestChaosSourceCutPostgres(t *testing.T) {
	src, dst := pgtest.Shared(t), pgtest.Shared(t)
	rows := chaosPick(30000, 200000)
	cut := chaosPick(5*time.Second, 10*time.Second)
	srcDB, dstDB := pgShopFlow(t, src, dst, "cut", rows)
	rep := newReport(t, "1 source cut", "postgres->postgres", fmt.Sprintf("source link cut %s during the copy and %s during CDC", cut, cut))
	rep.Seed = chaosSeed(t)
	px := faults.NewProxy(t, "pg-source", fmt.Sprintf("127.0.0.1:%d", src.Port))
	srcURL := px.Rewrite(src.URL(srcDB)) + "&heartbeat=1s"
	load := startPGLoad(t, src.URL(srcDB), int64(rows)+1, rep.Seed)
	f := newChaosFlow(t, rep, "sync", srcURL, dst.URL(dstDB), "--name", "chaos-cut-pg", "--state-dir", t.TempDir(),
		"--parallel", "2", "--partition-rows", "2000", "--batch-rows", "500")
	sourceCut(t, rep, f, px, cut, 1000, func() int { return partitionsDone(t, dst, dstDB, "chaos-cut-pg") },
		func(since time.Time) (time.Duration, bool) {
			return pgRecovery(t, src, srcDB, dst, dstDB, since, 3*time.Minute)
		})
	finishPGFlow(t, rep, f, load, src, srcDB, dst, dstDB)
}

// sourceCut runs scenario 1's two cuts on a running flow. done counts the
// finished partitions at the destination; recover times a recovery in CDC.
func sourceCut(t *testing.T, rep *chaosReport, f *chaosFlow, px *faults.Proxy, cut time.Duration, kbps int, done func() int, recover func(time.Time) (time.Duration, bool)) {
	t.Helper()
	// A narrow link while copying, so the cut surely lands in the copy
	// whatever the machine's speed; it is widened when the link comes back.
	px.Bandwidth(t, kbps, "downstream")
	f.start()
	// During the copy: once a partition is done and others are not.
	if !chaosWait(2*time.Minute, func() bool { return done() >= 1 || f.exited() }) || f.exited() {
		t.Fatalf("no partition finished:\n%s", tail(f.cur.stderr.String(), 30))
	}
	px.Cut(t)
	before := done()
	if strings.Contains(f.cur.stderr.String(), "copy done") {
		t.Fatalf("the copy ended before the cut; make the table larger")
	}
	time.Sleep(cut)
	px.Clear()
	px.Restore(t)
	restored := time.Now()
	if f.exited() {
		t.Fatalf("ferry ended when the source link was cut during the copy instead of reading again:\n%s", tail(f.cur.stderr.String(), 30))
	}
	if !chaosWait(5*time.Minute, func() bool { return done() > before || f.exited() }) || f.exited() {
		t.Fatalf("no partition finished after the link came back:\n%s", tail(f.cur.stderr.String(), 30))
	}
	rep.recovered(time.Since(restored))
	if !strings.Contains(f.cur.stderr.String(), "source unavailable; reading the partition again") {
		t.Errorf("the lost partition reads were not reported:\n%s", tail(f.cur.stderr.String(), 30))
	}

	// During CDC: the change stream reconnects by itself.
	if !f.waitLog("change data capture starting", 5*time.Minute) {
		t.Fatalf("CDC never started:\n%s", tail(f.cur.stderr.String(), 30))
	}
	time.Sleep(time.Second)
	px.Cut(t)
	time.Sleep(cut)
	px.Restore(t)
	restored = time.Now()
	if f.exited() {
		t.Fatalf("ferry ended when the source link was cut during CDC instead of reconnecting:\n%s", tail(f.cur.stderr.String(), 30))
	}
	d, ok := recover(restored)
	if !ok {
		t.Fatalf("a change written after the link came back never reached the destination:\n%s", tail(f.cur.stderr.String(), 30))
	}
	rep.recovered(d)
	if !strings.Contains(f.cur.stderr.String(), "reconnecting") {
		t.Errorf("the lost change stream was not reported:\n%s", tail(f.cur.stderr.String(), 30))
	}
}

// TestChaosSourceCutMySQL is scenario 1 for a MariaDB source into
// PostgreSQL.
func TestChaosSourceCutMySQL(t *testing.T) {
	requireMariaDB(t)
	my, pg := mysqltest.Shared(t), pgtest.Shared(t)
	// At most 5000 rows: beyond, myAllTypes generates TIME values past
	// 24:00:00, which ferry refuses by design.
	rows := 5000
	cut := chaosPick(5*time.Second, 10*time.Second)
	src, dst := mysqlDatabase(t, my, "chaos_cut"), pg.CreateDatabase(t, "chaos_cut")
	my.Exec(t, "USE `"+src+"`; "+fmt.Sprintf(myAllTypes, rows))
	rep := newReport(t, "1 source cut", "mariadb->postgres", fmt.Sprintf("source link cut %s during the copy and %s during CDC", cut, cut))
	px := faults.NewProxy(t, "mysql-source", fmt.Sprintf("127.0.0.1:%d", my.Port))
	w := startMyTypesWriter(t, my, src, rows+3)
	f := newChaosFlow(t, rep, "sync", px.Rewrite(my.URL(src)), pg.URL(dst), "--name", "chaos-cut-my", "--state-dir", t.TempDir(),
		"--parallel", "2", "--partition-rows", "500", "--batch-rows", "100")
	sourceCut(t, rep, f, px, cut, 500, func() int { return partitionsDone(t, pg, dst, "chaos-cut-my") },
		func(since time.Time) (time.Duration, bool) {
			return myRecovery(t, my, src, pg, dst, since, 3*time.Minute)
		})
	finishMyFlow(t, rep, f, w, my, src, pg, dst)
}

// myRecovery writes a marker row at MariaDB and waits until PostgreSQL has it.
func myRecovery(t *testing.T, my *mysqltest.Server, src string, pg *pgtest.Server, dst string, since time.Time, timeout time.Duration) (time.Duration, bool) {
	t.Helper()
	db := my.Connect(t, src)
	deadline := time.Now().Add(timeout)
	var id int64
	for {
		res, err := db.Exec(`INSERT INTO alltypes (c, vc) VALUES ('marker', 'recovery marker')`)
		if err == nil {
			id, err = res.LastInsertId()
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cannot write the recovery marker at the source: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	q := fmt.Sprintf(`SELECT count(*) FROM %s WHERE id = $1`, pgx.Identifier{src, "alltypes"}.Sanitize())
	for time.Now().Before(deadline) {
		c, err := pgx.Connect(context.Background(), pg.AdminURL(dst))
		if err == nil {
			var n int
			err = c.QueryRow(context.Background(), q, id).Scan(&n)
			c.Close(context.Background())
			if err == nil && n == 1 {
				return time.Since(since), true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, false
}

// finishMyFlow ends a MariaDB-to-PostgreSQL scenario like finishPGFlow.
func finishMyFlow(t *testing.T, rep *chaosReport, f *chaosFlow, w *xWriter, my *mysqltest.Server, src string, pg *pgtest.Server, dst string) {
	t.Helper()
	time.Sleep(time.Second)
	w.halt()
	rep.SourceChanges = w.ops.Load() - w.errs.Load()
	rep.SourceByKind = map[string]int64{"statements": w.ops.Load(), "refused_or_failed": w.errs.Load()}
	last, _ := w.last.Load().(string)
	t.Logf("load: %d statements, %d refused or failed (last: %s)", w.ops.Load(), w.errs.Load(), last)
	if rep.SourceChanges < 200 {
		t.Fatalf("the load committed only %d statements; the scenario proves little", rep.SourceChanges)
	}
	f.stop()
	f.catchUp()
	verifyFlow(t, rep, my.URL(src), pg.URL(dst), 1)
	table := pgx.Identifier{src, "alltypes"}.Sanitize()
	a := readMySQLX(t, my.Connect(t, src), "alltypes", myCols)
	b := readPGX(t, pg, dst, table, myCols)
	rep.RowsCompared = int64(len(a))
	for k, ra := range a {
		if rb, ok := b[k]; !ok || strings.Join(ra, "\x01") != strings.Join(rb, "\x01") {
			rep.RowsDiffer++
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			rep.RowsDiffer++
		}
	}
	if rep.RowsDiffer > 0 {
		compareX(t, myCols, a, b, "MariaDB", "PostgreSQL") // names the rows and columns
	}
	if err := pg.Connect(t, dst).QueryRow(context.Background(), `SELECT count(*) - count(DISTINCT id) FROM `+table).Scan(&rep.Duplicates); err != nil {
		t.Fatal(err)
	}
	rep.finish(t)
}

// TestChaosDestinationDownPostgres is scenario 2: the destination server
// stops during the copy, while it finishes a table (the primary key built
// after the load, indexes, ANALYZE) and twice during CDC, and comes back
// after a while each time. ferry keeps its place, retries with backoff, says
// so, and catches up. Each outage is made to land on its step: the copy
// writes through a narrow link, and the finish waits for a lock the test
// holds on the destination table.
func TestChaosDestinationDownPostgres(t *testing.T) {
	src, dst := pgtest.Shared(t), pgtest.Start(t)
	down := chaosPick(5*time.Second, 30*time.Second)
	modes := []string{"fast", "immediate"}
	rows := chaosPick(30000, 100000)
	srcDB, dstDB := pgShopFlow(t, src, dst, "down", rows)
	rep := newReport(t, "2 destination down", "postgres->postgres", fmt.Sprintf("destination stopped fast for %s during the copy and while a table was finished, then (%s) for %s each during CDC", down, strings.Join(modes, ", then "), down))
	rep.Seed = chaosSeed(t)
	px := faults.NewProxy(t, "pg-destination", fmt.Sprintf("127.0.0.1:%d", dst.Port))
	load := startPGLoad(t, src.URL(srcDB), int64(rows)+1, rep.Seed)
	f := newChaosFlow(t, rep, "sync", src.URL(srcDB)+"&heartbeat=1s", px.Rewrite(dst.URL(dstDB)), "--name", "chaos-down-pg", "--state-dir", t.TempDir(),
		"--parallel", "2", "--partition-rows", "2000", "--batch-rows", "500")
	// The rows go to the destination through a narrow link, so the copy is
	// still running when the server stops, however fast the machine.
	px.Bandwidth(t, 300, "upstream")
	f.start()
	// During the copy: once a partition is done; the lanes' writers keep
	// their batch and retry.
	done := func() int { return partitionsDone(t, dst, dstDB, "chaos-down-pg") }
	if !chaosWait(5*time.Minute, func() bool { return done() >= 1 || f.exited() }) || f.exited() {
		t.Fatalf("no partition finished:\n%s", tail(f.cur.stderr.String(), 30))
	}
	dst.Down(t, "fast")
	time.Sleep(down)
	if f.exited() {
		t.Fatalf("ferry ended while the destination was down during the copy:\n%s", tail(f.cur.stderr.String(), 30))
	}
	if strings.Contains(f.cur.stderr.String(), "copy done") || !strings.Contains(f.cur.stderr.String(), "destination unavailable; keeping the batch") {
		t.Fatalf("the outage did not land in the copy, or was not reported:\n%s", tail(f.cur.stderr.String(), 30))
	}
	dst.Up(t)
	up := time.Now()
	// The finish of orders waits behind this lock, which the copy's writes
	// do not conflict with; the link is still narrow, so the copy cannot
	// end before the lock is held.
	hold := dst.Connect(t, dstDB)
	ctx := context.Background()
	tx, err := hold.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE orders IN SHARE UPDATE EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	px.Clear()
	if !chaosWait(5*time.Minute, func() bool {
		return strings.Contains(f.cur.stderr.String(), "destination available again; copying") || f.exited()
	}) || f.exited() {
		t.Fatalf("the copy did not go on after the destination came back:\n%s", tail(f.cur.stderr.String(), 30))
	}
	rep.recovered(time.Since(up))
	// While a table is finished: once ferry waits for the lock on orders.
	waiting := func() bool {
		var n int
		err := tx.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'relation'
			AND relation = 'orders'::regclass AND NOT granted`).Scan(&n)
		return err == nil && n > 0
	}
	if !chaosWait(5*time.Minute, func() bool { return waiting() || f.exited() }) || f.exited() {
		t.Fatalf("ferry never came to finishing orders:\n%s", tail(f.cur.stderr.String(), 30))
	}
	if !strings.Contains(f.cur.stderr.String(), "copy starting") || strings.Contains(f.cur.stderr.String(), "copy done") {
		t.Fatalf("the finish of the tables is not where the flow is:\n%s", tail(f.cur.stderr.String(), 30))
	}
	dst.Down(t, "fast") // ends the test's lock too
	time.Sleep(down)
	if f.exited() {
		t.Fatalf("ferry ended while the destination was down as it finished a table, instead of retrying:\n%s", tail(f.cur.stderr.String(), 30))
	}
	if !strings.Contains(f.cur.stderr.String(), "destination unavailable; retrying finish table public.orders") {
		t.Fatalf("the outage did not land on finishing orders, or was not reported:\n%s", tail(f.cur.stderr.String(), 30))
	}
	dst.Up(t)
	up = time.Now()
	if !chaosWait(5*time.Minute, func() bool {
		return strings.Contains(f.cur.stderr.String(), "destination available again; finish table public.orders") || f.exited()
	}) || f.exited() {
		t.Fatalf("the table was not finished after the destination came back:\n%s", tail(f.cur.stderr.String(), 30))
	}
	rep.recovered(time.Since(up))
	if !f.waitLog("change data capture starting", 5*time.Minute) {
		t.Fatalf("CDC never started:\n%s", tail(f.cur.stderr.String(), 30))
	}
	for _, mode := range modes {
		time.Sleep(time.Second)
		outages := strings.Count(f.cur.stderr.String(), "destination unavailable")
		dst.Down(t, mode)
		stopped := time.Now()
		if !chaosWait(down, func() bool { return strings.Count(f.cur.stderr.String(), "destination unavailable") > outages }) {
			t.Fatalf("ferry did not report the destination's outage:\n%s", tail(f.cur.stderr.String(), 30))
		}
		time.Sleep(time.Until(stopped.Add(down)))
		if f.exited() {
			t.Fatalf("ferry ended while the destination was down instead of retrying:\n%s", tail(f.cur.stderr.String(), 30))
		}
		recovered := strings.Count(f.cur.stderr.String(), "destination available again")
		dst.Up(t)
		up := time.Now()
		d, ok := pgRecovery(t, src, srcDB, dst, dstDB, up, 3*time.Minute)
		if !ok {
			t.Fatalf("a change written after the destination came back never reached it:\n%s", tail(f.cur.stderr.String(), 30))
		}
		rep.recovered(d)
		if strings.Count(f.cur.stderr.String(), "destination available again") <= recovered {
			t.Errorf("the recovery was not reported:\n%s", tail(f.cur.stderr.String(), 30))
		}
	}
	out := f.cur.stderr.String()
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "destination unavailable") {
			rep.note("first outage line: %s", l)
			break
		}
	}
	finishPGFlow(t, rep, f, load, src, srcDB, dst, dstDB)
}

// TestChaosDestinationDownMySQL is scenario 2 into MariaDB: PostgreSQL's
// types into a MariaDB destination that shuts down during CDC.
func TestChaosDestinationDownMySQL(t *testing.T) {
	requireMariaDB(t)
	pg, my := pgtest.Shared(t), mysqltest.Start(t)
	down := chaosPick(5*time.Second, 30*time.Second)
	const rows = 2000
	src, dst := pg.CreateDatabase(t, "chaos_down_my"), mysqlDatabase(t, my, "chaos_down")
	pg.Exec(t, src, fmt.Sprintf(pgAllTypes, rows))
	rep := newReport(t, "2 destination down", "postgres->mariadb", fmt.Sprintf("destination shut down cleanly for %s during CDC", down))
	w := startPGTypesWriter(t, pg, src, rows+1)
	f := newChaosFlow(t, rep, "sync", pg.URL(src)+"&heartbeat=1s", my.URL(dst), "--name", "chaos-down-my", "--state-dir", t.TempDir(),
		"--tables", "public.alltypes")
	f.start()
	if !f.waitLog("change data capture starting", 5*time.Minute) {
		t.Fatalf("CDC never started:\n%s", tail(f.cur.stderr.String(), 30))
	}
	time.Sleep(time.Second)
	my.Down(t, "fast")
	stopped := time.Now()
	if !chaosWait(down, func() bool { return strings.Contains(f.cur.stderr.String(), "destination unavailable") }) {
		t.Fatalf("ferry did not report the destination's outage:\n%s", tail(f.cur.stderr.String(), 30))
	}
	time.Sleep(time.Until(stopped.Add(down)))
	if f.exited() {
		t.Fatalf("ferry ended while the destination was down instead of retrying:\n%s", tail(f.cur.stderr.String(), 30))
	}
	my.Up(t)
	up := time.Now()
	id := int64(900_000_000) + markerSeq.Add(1)
	pg.Exec(t, src, `INSERT INTO alltypes (id, tx) VALUES ($1, 'recovery marker')`, id)
	if !chaosWait(3*time.Minute, func() bool {
		return mysqlCount(my.Connect(t, dst), "SELECT count(*) FROM alltypes WHERE id = ?", id) == 1
	}) {
		t.Fatalf("a change written after the destination came back never reached it:\n%s", tail(f.cur.stderr.String(), 30))
	}
	rep.recovered(time.Since(up))
	if !strings.Contains(f.cur.stderr.String(), "destination available again") {
		t.Errorf("the recovery was not reported:\n%s", tail(f.cur.stderr.String(), 30))
	}
	time.Sleep(time.Second)
	w.halt()
	rep.SourceChanges = w.ops.Load() - w.errs.Load()
	rep.SourceByKind = map[string]int64{"statements": w.ops.Load(), "refused_or_failed": w.errs.Load()}
	f.stop()
	f.catchUp()
	verifyFlow(t, rep, pg.URL(src), my.URL(dst), 1)
	a := readPGX(t, pg, src, "alltypes", pgCols)
	b := readMySQLX(t, my.Connect(t, dst), "alltypes", pgCols)
	rep.RowsCompared = int64(len(a))
	for k, ra := range a {
		if rb, ok := b[k]; !ok || strings.Join(ra, "\x01") != strings.Join(rb, "\x01") {
			rep.RowsDiffer++
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			rep.RowsDiffer++
		}
	}
	if rep.RowsDiffer > 0 {
		compareX(t, pgCols, a, b, "PostgreSQL", "MariaDB")
	}
	rep.Duplicates = mysqlCount(my.Connect(t, dst), "SELECT count(*) - count(DISTINCT id) FROM alltypes")
	rep.finish(t)
}

// TestChaosSourceRestartPostgres is scenario 3: the source server restarts
// during CDC, with a fast and then an immediate shutdown (crash recovery).
func TestChaosSourceRestartPostgres(t *testing.T) {
	src, dst := pgtest.Start(t), pgtest.Shared(t)
	down := chaosPick(time.Second, 5*time.Second)
	srcDB, dstDB := pgShopFlow(t, src, dst, "restart", chaosPick(5000, 50000))
	rep := newReport(t, "3 source restart", "postgres->postgres", fmt.Sprintf("source stopped fast, then immediate, %s each, during CDC", down))
	rep.Seed = chaosSeed(t)
	load := startPGLoad(t, src.URL(srcDB), int64(chaosPick(5000, 50000))+1, rep.Seed)
	f := newChaosFlow(t, rep, "sync", src.URL(srcDB)+"&heartbeat=1s&reconnect_timeout=2m", dst.URL(dstDB), "--name", "chaos-restart-pg", "--state-dir", t.TempDir())
	f.start()
	if !f.waitLog("change data capture starting", 5*time.Minute) {
		t.Fatalf("CDC never started:\n%s", tail(f.cur.stderr.String(), 30))
	}
	for _, mode := range []string{"fast", "immediate"} {
		time.Sleep(time.Second)
		src.Down(t, mode)
		time.Sleep(down)
		src.Up(t)
		up := time.Now()
		if f.exited() {
			t.Fatalf("ferry ended when the source restarted (%s) instead of reconnecting:\n%s", mode, tail(f.cur.stderr.String(), 30))
		}
		d, ok := pgRecovery(t, src, srcDB, dst, dstDB, up, 3*time.Minute)
		if !ok {
			t.Fatalf("after the %s restart, a new change never reached the destination:\n%s", mode, tail(f.cur.stderr.String(), 30))
		}
		rep.recovered(d)
	}
	finishPGFlow(t, rep, f, load, src, srcDB, dst, dstDB)
}

// TestChaosSourceRestartMySQL is scenario 3 for MariaDB into PostgreSQL: a
// clean shutdown, then a SIGKILL (crash recovery).
func TestChaosSourceRestartMySQL(t *testing.T) {
	requireMariaDB(t)
	my, pg := mysqltest.Start(t), pgtest.Shared(t)
	rows := chaosPick(3000, 5000)
	down := chaosPick(time.Second, 5*time.Second)
	src, dst := mysqlDatabase(t, my, "chaos_restart"), pg.CreateDatabase(t, "chaos_restart")
	my.Exec(t, "USE `"+src+"`; "+fmt.Sprintf(myAllTypes, rows))
	rep := newReport(t, "3 source restart", "mariadb->postgres", fmt.Sprintf("source shut down cleanly, then killed, %s each, during CDC", down))
	w := startMyTypesWriter(t, my, src, rows+3)
	f := newChaosFlow(t, rep, "sync", my.URL(src), pg.URL(dst), "--name", "chaos-restart-my", "--state-dir", t.TempDir())
	f.start()
	if !f.waitLog("change data capture starting", 5*time.Minute) {
		t.Fatalf("CDC never started:\n%s", tail(f.cur.stderr.String(), 30))
	}
	for _, mode := range []string{"shutdown", "kill"} {
		time.Sleep(time.Second)
		if mode == "shutdown" {
			my.Down(t, "fast")
		} else {
			my.Down(t, "immediate")
		}
		time.Sleep(down)
		my.Up(t)
		up := time.Now()
		if f.exited() {
			t.Fatalf("ferry ended when the source restarted (%s) instead of reconnecting:\n%s", mode, tail(f.cur.stderr.String(), 30))
		}
		d, ok := myRecovery(t, my, src, pg, dst, up, 3*time.Minute)
		if !ok {
			t.Fatalf("after the %s restart, a new change never reached the destination:\n%s", mode, tail(f.cur.stderr.String(), 30))
		}
		rep.recovered(d)
	}
	finishMyFlow(t, rep, f, w, my, src, pg, dst)
}

// TestChaosKillTenTimes is scenario 4: ferry is killed with SIGKILL at
// random points of one flow, ten times in a row (during the plan, the copy
// and CDC), each time started again with the same command.
func TestChaosKillTenTimes(t *testing.T) {
	src, dst := pgtest.Shared(t), pgtest.Shared(t)
	rows := chaosPick(60000, 300000)
	srcDB, dstDB := pgShopFlow(t, src, dst, "kill", rows)
	rep := newReport(t, "4 ferry SIGKILL x10", "postgres->postgres", "ferry killed with SIGKILL at random points, 10 times in one flow")
	rep.Seed = chaosSeed(t)
	r := rand.New(rand.NewPCG(rep.Seed, 4))
	load := startPGLoad(t, src.URL(srcDB), int64(rows)+1, rep.Seed)
	px := faults.NewProxy(t, "pg-kill-destination", fmt.Sprintf("127.0.0.1:%d", dst.Port))
	f := newChaosFlow(t, rep, "sync", src.URL(srcDB), px.Rewrite(dst.URL(dstDB)), "--name", "chaos-kill", "--state-dir", t.TempDir(),
		"--parallel", "2", "--partition-rows", "3000", "--batch-rows", "500", "--apply-batch", "300")
	// The first four runs write through a narrow link, so their copy is
	// still running when the kill comes, however fast the machine (a fast
	// one finished the whole copy before the first kill); the link is wide
	// again from the fifth run on.
	px.Bandwidth(t, 300, "upstream")
	phases := map[string]int{}
	for i := 0; i < 10; i++ {
		if i == 4 {
			px.Clear()
		}
		started := time.Now()
		bg := f.start()
		// Random points: the first kills land in the copy (a random time
		// after it starts), one anywhere from the process start, the rest in
		// CDC; once the copy is over, every kill lands in CDC.
		var delay time.Duration
		switch {
		case i < 4:
			// A run whose copy is over logs no "copy starting": either will do.
			if !chaosWait(time.Minute, func() bool {
				out := bg.stderr.String()
				return strings.Contains(out, "copy starting") || strings.Contains(out, "change data capture starting") || f.exited()
			}) || f.exited() {
				t.Fatalf("run %d: nothing started:\n%s", i, tail(bg.stderr.String(), 30))
			}
			delay = time.Duration(r.Int64N(int64(700 * time.Millisecond)))
		case i == 4:
			delay = time.Duration(r.Int64N(int64(time.Second)))
		default:
			if !f.waitLog("change data capture starting", 5*time.Minute) {
				t.Fatalf("run %d: CDC never started:\n%s", i, tail(bg.stderr.String(), 30))
			}
			delay = time.Duration(r.Int64N(int64(2 * time.Second)))
		}
		time.Sleep(delay)
		out := bg.stderr.String()
		phase := "start-up"
		switch {
		case strings.Contains(out, "change data capture starting"):
			phase = "cdc"
		case strings.Contains(out, "copy starting"):
			phase = "copy"
		case strings.Contains(out, "planned flow") || strings.Contains(out, "resuming flow"):
			phase = "plan"
		}
		if !f.kill() {
			t.Fatalf("run %d ended by itself before the kill:\n%s", i, tail(out, 30))
		}
		phases[phase]++
		t.Logf("kill %d: %s, %s after the phase began; the run lived %s", i+1, phase, delay.Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
	}
	rep.note("kills by phase: %v", phases)
	if phases["cdc"] == 0 || phases["copy"] == 0 {
		t.Errorf("the kills missed a phase (%v): the scenario proves less than it claims", phases)
	}
	// The eleventh run lives: time until it applies a new change.
	started := time.Now()
	f.start()
	d, ok := pgRecovery(t, src, srcDB, dst, dstDB, started, 5*time.Minute)
	if !ok {
		t.Fatalf("the run after the kills never applied a new change:\n%s", tail(f.cur.stderr.String(), 30))
	}
	rep.recovered(d)
	finishPGFlow(t, rep, f, load, src, srcDB, dst, dstDB)
}

// TestChaosSlowDestination is scenario 5: the same flow twice, once
// directly and once through a proxy that adds latency to every round trip
// and limits the bandwidth towards the destination. The bounded lanes and
// change queues hold ferry's memory flat: the slow run's peak stays within a
// generous bound of the fast one's.
func TestChaosSlowDestination(t *testing.T) {
	src, dst := pgtest.Shared(t), pgtest.Shared(t)
	rows := chaosPick(10000, 100000)
	latency, kbps := 10, chaosPick(4000, 4000)
	rep := newReport(t, "5 slow destination", "postgres->postgres", fmt.Sprintf("destination behind %d ms latency and %d KB/s", latency, kbps))
	rep.Seed = chaosSeed(t)
	run := func(name string, slow bool) *chaosReport {
		sub := newReport(t, rep.Scenario, rep.Pair, name)
		srcDB, dstDB := pgShopFlow(t, src, dst, "slow", rows)
		// Wide rows: 2 KB notes, so the copy moves tens of megabytes.
		src.Exec(t, srcDB, `UPDATE orders SET note = repeat(md5(id::text), 64)`)
		src.Exec(t, srcDB, `VACUUM ANALYZE orders`)
		dstURL := dst.URL(dstDB)
		if slow {
			px := faults.NewProxy(t, "pg-destination", fmt.Sprintf("127.0.0.1:%d", dst.Port))
			px.Latency(t, latency, 0)
			px.Bandwidth(t, kbps, "upstream")
			dstURL = px.Rewrite(dstURL)
		}
		load := startPGLoad(t, src.URL(srcDB), int64(rows)+1, rep.Seed)
		f := newChaosFlow(t, sub, "sync", src.URL(srcDB), dstURL, "--name", "chaos-slow-"+name, "--state-dir", t.TempDir(),
			"--parallel", "4", "--partition-rows", "2000", "--batch-rows", "1000")
		started := time.Now()
		f.start()
		if !f.waitLog("change data capture starting", 10*time.Minute) {
			t.Fatalf("%s: CDC never started:\n%s", name, tail(f.cur.stderr.String(), 30))
		}
		sub.note("copy took %s", time.Since(started).Round(100*time.Millisecond))
		time.Sleep(3 * time.Second) // CDC under the load
		d, ok := pgRecovery(t, src, srcDB, dst, dstDB, time.Now(), 5*time.Minute)
		if !ok {
			t.Fatalf("%s: a new change never reached the destination", name)
		}
		sub.recovered(d)
		load.report(t, sub)
		f.stop()
		f.catchUp()
		verifyFlow(t, sub, src.URL(srcDB), dst.URL(dstDB), 2)
		comparePGShop(t, sub, src, srcDB, dst, dstDB)
		t.Logf("%s: peak RSS %d MB; %s", name, sub.PeakRSS>>20, strings.Join(sub.Notes, "; "))
		return sub
	}
	base := run("direct", false)
	slow := run("slow", true)
	seed := rep.Seed
	*rep = *slow
	rep.Seed, rep.Fault = seed, fmt.Sprintf("destination behind %d ms latency and %d KB/s towards it", latency, kbps)
	rep.BaselinePeakRSS = base.PeakRSS
	rep.note("direct run (no proxy): %s, peak RSS %d MB, verify: %s", strings.Join(base.Notes, "; "), base.PeakRSS>>20, base.Verify)
	// Generous: the slow run may hold fuller queues, never unbounded ones.
	if limit := 2*base.PeakRSS + 64<<20; slow.PeakRSS > limit {
		t.Errorf("peak RSS behind a slow destination is %d MB, the direct run's %d MB: memory is not held flat (limit %d MB)",
			slow.PeakRSS>>20, base.PeakRSS>>20, limit>>20)
	}
	if base.RowsDiffer != 0 || base.Duplicates != 0 {
		t.Errorf("the direct run differs: %d rows, %d duplicates", base.RowsDiffer, base.Duplicates)
	}
	rep.finish(t)
}
