package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// resnapshotProgress reads a table's incremental snapshot as the
// destination's checkpoints keep it: rows copied again so far, and done.
func resnapshotProgress(t *testing.T, conn *pgx.Conn, flow, table string) (rows int64, done, ok bool) {
	t.Helper()
	err := conn.QueryRow(context.Background(), `SELECT (value::jsonb->>'rows')::int8, coalesce((value::jsonb->>'done')::bool, false)
		FROM _ferry.checkpoints WHERE flow = $1 AND key = 'snapshot/' || $2`, flow, table).Scan(&rows, &done)
	return rows, done, err == nil
}

// A destination table damaged behind the flow's back (rows deleted, values
// changed) is copied again with ferry snapshot while the flow keeps
// streaming a write load; it ends equal to the source's, and the stream
// never stopped.
func TestSnapshotRepairsADamagedTableWhileChangesStream(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "resnapsrc"), srv.CreateDatabase(t, "resnapdst")
	pgShop(t, srv, src, 20000)
	dir := t.TempDir()
	args := []string{"sync", srv.URL(src), srv.URL(dst), "--name", "resnap", "--state-dir", dir, "--parallel", "2",
		"--batch-rows", "500", "--log-format", "json", "--progress", "none"}
	bg := startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("ferry did not reach CDC:\n%s", bg.stderr.String())
	}
	w := startPGWriter(t, srv.URL(src), 20001)
	// The damage: rows gone and values changed at the destination only
	// (none of the rows with a TOAST-sized note, whose updates carry no
	// note: an update of a row the destination lost cannot restore it).
	srv.Exec(t, dst, `DELETE FROM orders WHERE id % 7 = 0 AND id % 500 <> 0;
		UPDATE orders SET amount = -1, note = 'damaged' WHERE id % 11 = 0 AND id % 500 <> 0`)

	r := mustFerry(t, "snapshot", srv.URL(src), srv.URL(dst), "public.orders", "--name", "resnap", "--state-dir", dir)
	if !strings.Contains(r.stdout, "copying public.orders again") {
		t.Fatalf("ferry snapshot: %s", r)
	}
	if !bg.waitFor(t, "incremental snapshot done", 120*time.Second) {
		t.Fatalf("the snapshot did not finish:\n%s", bg.stderr.String())
	}
	rows, done, ok := resnapshotProgress(t, srv.Connect(t, dst), "resnap", `"public"."orders"`)
	if !ok || !done || rows < 15000 {
		t.Fatalf("snapshot progress at the destination: %d rows, done %v (found %v)", rows, done, ok)
	}
	time.Sleep(500 * time.Millisecond) // changes after the snapshot
	w.halt(t)
	if code := bg.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("ferry exited %d after SIGTERM (the stream stopped?):\n%s", code, bg.stderr.String())
	}
	mustFerry(t, append(args, "--until", "caught-up")...)
	samePG(t, srv, src, dst)

	// A table the flow does not take is refused, with exit code 2.
	r = ferry(t, "snapshot", srv.URL(src), srv.URL(dst), "public.nothere", "--name", "resnap", "--state-dir", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "no ferry sync has taken the request") {
		t.Fatalf("snapshot with no sync running: %s", r)
	}
	bg = startFerry(t, args...)
	if !bg.waitFor(t, "snapshot refused", 60*time.Second) || !strings.Contains(bg.stderr.String(), "does not take public.nothere") {
		t.Fatalf("the left request was not refused:\n%s", bg.stderr.String())
	}
	bg.signal(t, syscall.SIGTERM)
}

// A flow killed in the middle of an incremental snapshot goes on from the
// last chunk applied when it runs again, and the table ends equal.
func TestSnapshotResumesAfterAKill(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "resnapkillsrc"), srv.CreateDatabase(t, "resnapkilldst")
	pgShop(t, srv, src, 20000)
	dir := t.TempDir()
	args := []string{"sync", srv.URL(src), srv.URL(dst), "--name", "resnapkill", "--state-dir", dir, "--parallel", "2",
		"--batch-rows", "300", "--log-format", "json", "--progress", "none"}
	bg := startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("ferry did not reach CDC:\n%s", bg.stderr.String())
	}
	srv.Exec(t, dst, `DELETE FROM orders WHERE id % 3 = 0 AND id % 500 <> 0`)
	// The snapshot is held mid-table: once some chunks are applied, a lock
	// on the source table blocks the next chunk's read, and the kill comes
	// then.
	mustFerry(t, "snapshot", srv.URL(src), srv.URL(dst), "public.orders", "--name", "resnapkill", "--state-dir", dir)
	dconn := srv.Connect(t, dst)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if rows, _, ok := resnapshotProgress(t, dconn, "resnapkill", `"public"."orders"`); ok && rows > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no chunk was applied:\n%s", bg.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	lock := srv.Connect(t, src)
	tx, err := lock.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(context.Background(), `LOCK TABLE orders IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the chunk in flight lands; the next read waits
	rowsAtKill, done, _ := resnapshotProgress(t, dconn, "resnapkill", `"public"."orders"`)
	if done {
		t.Fatalf("the snapshot finished before the kill (%d rows)", rowsAtKill)
	}
	if !bg.kill(t) {
		t.Fatalf("ferry ended before the kill:\n%s", bg.stderr.String())
	}
	tx.Rollback(context.Background()) //nolint:errcheck // releases the lock

	// The next run goes on from the last chunk; --until caught-up waits for
	// the copy to finish before it ends.
	w := startPGWriter(t, srv.URL(src), 20001)
	r := mustFerry(t, append(args, "--until", "caught-up")...)
	resumed := r.logLine("incremental snapshot")
	if resumed == nil || resumed["from"] == "" || resumed["rows"].(float64) < float64(rowsAtKill) {
		t.Fatalf("the resumed snapshot did not go on from the last chunk (%d rows at the kill): %v", rowsAtKill, resumed)
	}
	if r.logLine("incremental snapshot done") == nil {
		t.Fatalf("--until caught-up ended before the snapshot was done:\n%s", r.stderr)
	}
	w.halt(t)
	mustFerry(t, append(args, "--until", "caught-up")...)
	samePG(t, srv, src, dst)
}

// In scale-out mode, ferry flow snapshot has a worker record the request
// with the flow's checkpoints; the worker streaming the flow copies the
// damaged table again while a write load goes on, and after the cutover
// both sides are equal. A table the flow does not take is refused.
func TestSnapshotRepairsADamagedTableScaleOut(t *testing.T) {
	ts := startTemporal(t)
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "soresnapsrc"), srv.CreateDatabase(t, "soresnapdst")
	pgShop(t, srv, src, 10000)
	ts.worker(t, "src="+srv.URL(src)+"&heartbeat=1s", "dst="+srv.URL(dst))
	run := startFerry(t, "run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--name", "soresnap",
		"--parallel", "2", "--batch-rows", "500", "--log-format", "json", "--progress", "none")
	w := startPGWriter(t, srv.URL(src), 10001)
	ts.awaitStreaming(t, "soresnap", run)
	srv.Exec(t, dst, `DELETE FROM orders WHERE id % 5 = 0 AND id % 500 <> 0; UPDATE orders SET note = 'damaged' WHERE id % 13 = 0 AND id % 500 <> 0`)

	if r := ferry(t, "flow", "snapshot", "soresnap", "public.nothere", "--temporal", ts.addr); r.code != 2 || !strings.Contains(r.stderr, "does not take public.nothere") {
		t.Fatalf("ferry flow snapshot of a table the flow does not take: %s\nwant exit 2", r)
	}
	r := mustFerry(t, "flow", "snapshot", "soresnap", "public.orders", "--temporal", ts.addr)
	if !strings.Contains(r.stdout, "copying public.orders again") {
		t.Fatalf("ferry flow snapshot: %s", r)
	}
	dconn := srv.Connect(t, dst)
	deadline := time.Now().Add(120 * time.Second)
	for {
		if rows, done, ok := resnapshotProgress(t, dconn, "soresnap", `"public"."orders"`); ok && done && rows >= 8000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the snapshot did not finish:\n%s", tail(run.stderr.String(), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
	w.halt(t)
	if r := ferry(t, "flow", "cutover", "soresnap", "--temporal", ts.addr); r.code != 0 {
		t.Fatalf("ferry flow cutover: %s", r)
	}
	if code := run.waitExit(t, time.Minute); code != 0 {
		t.Fatalf("ferry run exited %d after the cutover:\n%s", code, tail(run.stderr.String(), 30))
	}
	samePG(t, srv, src, dst)
}

// ferry snapshot of a table on an idle source: each chunk's watermark is
// in the stream before the chunk reaches the batcher as often as not, and
// the chunk is then applied at once, not with the next batch, which on an
// idle source is a heartbeat (10 s) away. Read from the chunks' debug log:
// the time from the watermark to the chunk handed back.
func TestSnapshotOfAnIdleTableWaitsForNoHeartbeat(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "resnapidlesrc"), srv.CreateDatabase(t, "resnapidledst")
	pgShop(t, srv, src, 3000)
	dir := t.TempDir()
	args := []string{"sync", srv.URL(src), srv.URL(dst), "--name", "resnapidle", "--state-dir", dir,
		"--batch-rows", "100", "--log-format", "json", "--log-level", "debug", "--progress", "none"}
	bg := startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("ferry did not reach CDC:\n%s", bg.stderr.String())
	}
	srv.Exec(t, dst, `DELETE FROM orders WHERE id % 7 = 0`)
	mustFerry(t, "snapshot", srv.URL(src), srv.URL(dst), "public.orders", "--name", "resnapidle", "--state-dir", dir)
	if !bg.waitFor(t, "incremental snapshot done", 120*time.Second) {
		t.Fatalf("the snapshot did not finish:\n%s", tail(bg.stderr.String(), 30))
	}
	if code := bg.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("ferry exited %d:\n%s", code, bg.stderr.String())
	}
	chunks, held := 0, 0
	for _, line := range strings.Split(bg.stderr.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil || m["msg"] != "incremental snapshot chunk" {
			continue
		}
		chunks++
		if w, _ := m["watermark"].(float64); time.Duration(w) > 5*time.Second {
			held++
		}
	}
	if chunks < 30 {
		t.Fatalf("%d chunks logged, want the 30 of 3000 rows", chunks)
	}
	if held > 0 {
		t.Errorf("%d of %d chunks waited more than 5 s after their watermark (for a heartbeat)", held, chunks)
	}
	samePG(t, srv, src, dst)
}
