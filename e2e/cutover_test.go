package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/faults"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// reportPosition is the position a cutover report names.
var reportPosition = regexp.MustCompile(`(?m)^  position   (\S+) \(the source's position at the request`)

// walPosition reads the source's current WAL insert position.
func walPosition(t *testing.T, srv *pgtest.Server, db string) string {
	t.Helper()
	var lsn string
	if err := srv.Connect(t, db).QueryRow(context.Background(), `SELECT pg_current_wal_insert_lsn()::text`).Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	return lsn
}

// lsnBetween tells whether lo <= lsn <= hi, compared by the server.
func lsnBetween(t *testing.T, srv *pgtest.Server, db, lo, lsn, hi string) bool {
	t.Helper()
	var ok bool
	if err := srv.Connect(t, db).QueryRow(context.Background(), `SELECT $1::pg_lsn <= $2::pg_lsn AND $2::pg_lsn <= $3::pg_lsn`, lo, lsn, hi).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// waitExit waits for a background ferry to exit and returns its code.
func (b *background) waitExit(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(timeout):
		t.Fatalf("ferry did not exit within %s:\n%s", timeout, tail(b.stderr.String(), 40))
	}
	return b.cmd.ProcessState.ExitCode()
}

// A ferry sync streams a writer's changes; the writer stops; ferry cutover
// hands the running sync the request: both exit 0, the destination equals the
// source, and the report names the source's position at the request. A
// second ferry cutover started while the first waits gets the same report.
func TestCutoverOfARunningSyncPostgres(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "cutsrc"), srv.CreateDatabase(t, "cutdst")
	pgShop(t, srv, src, 6000)
	// A sequence the application numbers orders with; the destination's
	// schema has it (the cutover sets sequences, it does not create them).
	srv.Exec(t, src, `CREATE SEQUENCE order_no; SELECT setval('order_no', 4242)`)
	srv.Exec(t, dst, `CREATE SEQUENCE order_no`)
	dir := t.TempDir()
	srcURL := srv.URL(src) + "&heartbeat=1s"
	flowArgs := []string{srcURL, srv.URL(dst), "--name", "cut", "--state-dir", dir}
	w := startPGWriter(t, srv.URL(src), 6001)
	sync := startFerry(t, append([]string{"sync", "--parallel", "3", "--partition-rows", "1500", "--log-format", "json", "--progress", "none"}, flowArgs...)...)
	if !sync.waitFor(t, "change data capture starting", time.Minute) {
		t.Fatalf("ferry sync did not reach CDC:\n%s", sync.stderr.String())
	}
	time.Sleep(1500 * time.Millisecond) // changes during CDC
	w.halt(t)
	if w.ops.Load() < 50 {
		t.Fatalf("the writer made only %d changes", w.ops.Load())
	}
	before := walPosition(t, srv, src)

	first := startFerry(t, append([]string{"cutover", "--verify", "--log-format", "json"}, flowArgs...)...)
	if !first.waitFor(t, "a ferry sync runs the flow: handed it the cutover request; waiting for its report", time.Minute) {
		t.Fatalf("ferry cutover did not hand the request to the sync:\n%s", first.stderr.String())
	}
	second := startFerry(t, append([]string{"cutover", "--log-format", "json"}, flowArgs...)...)
	if code := first.waitExit(t, 2*time.Minute); code != 0 {
		t.Fatalf("ferry cutover exited %d:\n%s", code, first.stderr.String())
	}
	if code := sync.waitExit(t, time.Minute); code != 0 {
		t.Fatalf("ferry sync exited %d after the cutover:\n%s", code, tail(sync.stderr.String(), 30))
	}
	if code := second.waitExit(t, time.Minute); code != 0 {
		t.Fatalf("the second ferry cutover exited %d:\n%s", code, second.stderr.String())
	}
	after := walPosition(t, srv, src)
	samePG(t, srv, src, dst)

	out := first.stderr.String()
	for _, want := range []string{`cutover of flow "cut" done`, "drain", "verify", "all 2 table(s) equal",
		"1 sequence(s) set", "steps run  drain, sequences, schema, objects, verify"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the report lacks %q:\n%s", want, out)
		}
	}
	m := reportPosition.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the report names no position:\n%s", out)
	}
	if !lsnBetween(t, srv, src, before, m[1], after) {
		t.Fatalf("the report's position %s is not the source's at the request (between %s and %s)", m[1], before, after)
	}
	t.Logf("first report:\n%s", tail(out, 9))
	// The second waited for the first's cutover, or, when the sync had
	// already answered and exited, cut over again itself: harmless either way.
	if m2 := reportPosition.FindStringSubmatch(second.stderr.String()); m2 == nil || !lsnBetween(t, srv, src, m[1], m2[1], walPosition(t, srv, src)) {
		t.Fatalf("the second cutover's report (%v, want a position from %s on):\n%s", m2, m[1], second.stderr.String())
	}
	// The application's next number at the destination follows the source's.
	var next int64
	if err := srv.Connect(t, dst).QueryRow(context.Background(), `SELECT nextval('order_no')`).Scan(&next); err != nil || next != 4243 {
		t.Fatalf("nextval('order_no') at the destination: %d, %v; want 4243", next, err)
	}
	if !strings.Contains(sync.stderr.String(), `"msg":"cutover done"`) {
		t.Fatalf("the sync did not log the cutover:\n%s", tail(sync.stderr.String(), 20))
	}
}

// No ferry sync runs: ferry cutover resumes the flow, applies the changes
// made since it stopped, and finishes.
func TestCutoverResumesAFlowNoSyncRuns(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "cutresrc"), srv.CreateDatabase(t, "cutredst")
	pgShop(t, srv, src, 3000)
	dir := t.TempDir()
	flowArgs := []string{srv.URL(src) + "&heartbeat=1s", srv.URL(dst), "--name", "cutre", "--state-dir", dir}
	mustFerry(t, append([]string{"sync", "--until", "caught-up", "--progress", "none"}, flowArgs...)...)
	// Changes while no ferry runs: the cutover carries them.
	srv.Exec(t, src, `INSERT INTO orders (id, customer, amount, note) SELECT g, 1, 1, 'late' FROM generate_series(3001, 3500) g;
		UPDATE orders SET amount = amount + 1 WHERE id <= 100; DELETE FROM lines WHERE order_id <= 50`)
	r := mustFerry(t, append([]string{"cutover", "--verify"}, flowArgs...)...)
	if !reportPosition.MatchString(r.stdout) || !strings.Contains(r.stdout, "all 2 table(s) equal") {
		t.Fatalf("report:\n%s", r)
	}
	if strings.Contains(r.stdout, " 0 change(s) drained") {
		t.Fatalf("the cutover drained nothing; 500 inserts, 100 updates and 100 deletes were waiting:\n%s", r)
	}
	samePG(t, srv, src, dst)
}

// A cutover before the copy finished is refused with the copy's progress
// (exit 2), and the sync goes on. The copy is held by a narrow link to the
// destination, so it is still running when the request comes.
func TestCutoverRefusedBeforeTheCopyFinished(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "cutearlysrc"), srv.CreateDatabase(t, "cutearlydst")
	pgShop(t, srv, src, 8000)
	px := faults.NewProxy(t, "pg-cutover-early", fmt.Sprintf("127.0.0.1:%d", srv.Port))
	dir := t.TempDir()
	flowArgs := []string{srv.URL(src), px.Rewrite(srv.URL(dst)), "--name", "cutearly", "--state-dir", dir}
	px.Bandwidth(t, 2, "upstream")
	sync := startFerry(t, append([]string{"sync", "--parallel", "2", "--partition-rows", "2000", "--batch-rows", "500", "--log-format", "json", "--progress", "none"}, flowArgs...)...)
	if !sync.waitFor(t, "copy starting", time.Minute) {
		t.Fatalf("ferry sync did not start its copy:\n%s", sync.stderr.String())
	}
	progress := regexp.MustCompile(`has not finished its copy \(\d+ of [1-9]\d* partitions copied\)`)
	for i := 0; i < 2; i++ {
		r := ferry(t, append([]string{"cutover"}, flowArgs...)...)
		if r.code != 2 || !progress.MatchString(r.stderr) ||
			!strings.Contains(r.stderr, "wait for the copy to finish") {
			t.Fatalf("cutover %d during the copy: %s\nwant exit 2 with the copy's progress", i+1, r)
		}
	}
	if sync.hasExited() {
		t.Fatalf("the refused cutover ended the sync:\n%s", sync.stderr.String())
	}
	// Killed, so its copy stays unfinished (a graceful stop would flush
	// batches through the narrow link).
	if !sync.kill(t) {
		t.Fatalf("ferry sync had ended:\n%s", sync.stderr.String())
	}
	// No sync runs now: ferry cutover resumes the flow, and refuses the same
	// way without copying anything.
	r := ferry(t, append([]string{"cutover"}, flowArgs...)...)
	if r.code != 2 || !progress.MatchString(r.stderr) || strings.Contains(r.stderr, "copy starting") {
		t.Fatalf("cutover of the stopped flow: %s\nwant exit 2 with the copy's progress and no copy", r)
	}
}

// A flow that does not exist is refused with how to start it.
func TestCutoverOfAFlowThatDoesNotExist(t *testing.T) {
	dir := t.TempDir()
	r := ferry(t, "cutover", "fake://?tables=1&rows=10", "sqlite://"+dir+"/dst.db", "--state-dir", dir)
	if r.code != 2 || !strings.Contains(r.stderr, "does not exist") || !strings.Contains(r.stderr, "start it with ferry sync") {
		t.Fatalf("%s\nwant exit 2 saying how to start the flow", r)
	}
}

// The ferry sync that took the request is killed during the drain (held by
// a lock at the destination): the waiting ferry cutover notices, resumes the
// flow itself and finishes the cutover.
func TestCutoverTakesOverWhenTheSyncDiesDuringTheDrain(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "cutdiesrc"), srv.CreateDatabase(t, "cutdiedst")
	pgShop(t, srv, src, 2000)
	dir := t.TempDir()
	flowArgs := []string{srv.URL(src) + "&heartbeat=1s", srv.URL(dst), "--name", "cutdie", "--state-dir", dir, "--log-format", "json"}
	sync := startFerry(t, append([]string{"sync", "--progress", "none"}, flowArgs...)...)
	if !sync.waitFor(t, "change data capture starting", time.Minute) {
		t.Fatalf("ferry sync did not reach CDC:\n%s", sync.stderr.String())
	}
	ctx := context.Background()
	lock := srv.Connect(t, dst)
	tx, err := lock.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE orders IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	srv.Exec(t, src, `INSERT INTO orders (id, customer, amount, note) SELECT g, 1, 1, 'late' FROM generate_series(2001, 2300) g`)
	cut := startFerry(t, append([]string{"cutover"}, flowArgs...)...)
	if !sync.waitFor(t, "cutover: draining to the source's position at the request", time.Minute) {
		t.Fatalf("ferry sync did not take the request:\n%s\ncutover:\n%s", tail(sync.stderr.String(), 20), cut.stderr.String())
	}
	if !sync.kill(t) {
		t.Fatalf("ferry sync ended during a held drain:\n%s", tail(sync.stderr.String(), 20))
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if code := cut.waitExit(t, 2*time.Minute); code != 0 {
		t.Fatalf("ferry cutover exited %d:\n%s", code, cut.stderr.String())
	}
	out := cut.stderr.String()
	if !strings.Contains(out, "the ferry sync ended without cutting over; cutting over here") || !reportPosition.MatchString(out) {
		t.Fatalf("ferry cutover did not take over:\n%s", out)
	}
	samePG(t, srv, src, dst)
}

// On the day the application has stopped writing, so the source is idle:
// the cutover's drain must not wait for the stream's next heartbeat (an
// hour here) to see that it has reached the source's position.
func TestCutoverOfAnIdleSourceDoesNotWaitForAHeartbeat(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "cutidlesrc"), srv.CreateDatabase(t, "cutidledst")
	pgShop(t, srv, src, 1000)
	flowArgs := []string{srv.URL(src) + "&heartbeat=1h", srv.URL(dst), "--name", "cutidle", "--state-dir", t.TempDir()}
	sync := startFerry(t, append([]string{"sync", "--log-format", "json", "--progress", "none"}, flowArgs...)...)
	if !sync.waitFor(t, "change data capture starting", time.Minute) {
		t.Fatalf("ferry sync did not reach CDC:\n%s", sync.stderr.String())
	}
	// The application's last write, streamed; then nothing more.
	srv.Exec(t, src, `UPDATE orders SET note = 'last write' WHERE id = 1`)
	ctx := context.Background()
	deadline := time.Now().Add(time.Minute)
	for {
		var note string
		if err := srv.Connect(t, dst).QueryRow(ctx, `SELECT note FROM orders WHERE id = 1`).Scan(&note); err == nil && note == "last write" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the last write did not reach the destination:\n%s", tail(sync.stderr.String(), 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
	cut := startFerry(t, append([]string{"cutover"}, flowArgs...)...)
	if code := cut.waitExit(t, 2*time.Minute); code != 0 {
		t.Fatalf("ferry cutover exited %d:\n%s", code, cut.stderr.String())
	}
	if code := sync.waitExit(t, time.Minute); code != 0 {
		t.Fatalf("ferry sync exited %d after the cutover:\n%s", code, tail(sync.stderr.String(), 30))
	}
	samePG(t, srv, src, dst)
}
