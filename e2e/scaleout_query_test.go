package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/ferrydb/ferry/internal/faultpoint"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/scaleout"
)

// TestScaleOutQueryFlow: a scheduled query flow (--every 2s) in scale-out
// mode, PostgreSQL into PostgreSQL, with two queries: an append-only log
// (no key) and the orders join upserted by key. Rows are inserted and
// updated between runs (the flow paused meanwhile, so each run's rows are
// known); the third run's worker holds after the first batch of a range
// of the log and is SIGKILLed there, and another worker resumes the
// ranges from their cursors at the destination. After each run the
// destination is the queries' result, the log without a row twice;
// ferry flow status shows the runs, the rows of the last one and the
// watermarks. The flow then continues as new and goes on counting. With
// FERRY_RECORD_HISTORY=DIR the history of its first run is written there.
func TestScaleOutQueryFlow(t *testing.T) {
	ts := startTemporal(t)
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "soqsrc"), srv.CreateDatabase(t, "soqdst")
	queryShop(t, srv, src)
	srv.Exec(t, src, `CREATE TABLE events (id bigint PRIMARY KEY, seq bigint NOT NULL);
		INSERT INTO events SELECT g, g FROM generate_series(1, 3000) g`)
	conns := []string{"src=" + srv.URL(src), "dst=" + srv.URL(dst)}
	const name = "qso"
	w1 := ts.worker(t, conns...)
	mustFerry(t, "run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--name", name,
		"--query", "rep.log=SELECT id, seq FROM events", "--watermark", "rep.log=seq",
		"--query", "rep.orders="+queryOrders, "--watermark", "rep.orders=updated_at", "--key", "rep.orders=id",
		"--every", "2s", "--parallel", "3", "--batch-rows", "50", "--heartbeat-timeout", "2s", "--history-limit", "200",
		"--detach", "--progress", "none")

	// awaitRuns waits for n finished runs, then pauses the flow and waits
	// until it is paused between runs (so the test's changes wait for the
	// next run, and that run reads all of them).
	awaitRuns := func(n int) *scaleout.Status {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for {
			st := ts.flowStatus(t, name)
			if st != nil && st.Query != nil && st.Query.Runs >= n {
				break
			}
			if st != nil && st.Failure != "" || time.Now().After(deadline) {
				t.Fatalf("no run %d: %+v", n, st)
			}
			time.Sleep(200 * time.Millisecond)
		}
		mustFerry(t, "flow", "pause", name, "--temporal", ts.addr)
		for {
			st := ts.flowStatus(t, name)
			if st != nil && st.Query.Phase == scaleout.PhasePaused {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("the flow did not pause: %+v", st)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// runRows is the rows each query's part of the last run wrote.
	runRows := func(st *scaleout.Status) map[string]int64 {
		out := map[string]int64{}
		for _, tr := range st.Query.Last.Tables {
			out[tr.Table] = tr.Rows
		}
		return out
	}
	logOnce := func(when string) {
		t.Helper()
		want := pgRows(t, srv, src, `SELECT count(*) FROM events`)[0]
		if got := pgRows(t, srv, dst, `SELECT count(*) || '|' || count(DISTINCT id) FROM rep.log`)[0]; got != want+"|"+want {
			t.Fatalf("%s: rep.log holds (rows|distinct ids) %s, want %s once each", when, got, want)
		}
		if a, b := pgRows(t, srv, src, `SELECT id, seq FROM events ORDER BY id`), pgRows(t, srv, dst, `SELECT id, seq FROM rep.log ORDER BY id`); strings.Join(a, "\n") != strings.Join(b, "\n") {
			t.Fatalf("%s: rep.log's rows are not the query's", when)
		}
	}

	st := awaitRuns(1)
	if rows := runRows(st); rows["rep.log"] != 3000 || rows["rep.orders"] != 1800 {
		t.Fatalf("first run: rows %v, want 3000 and 1800", rows)
	}
	logOnce("after the first run")
	sameQueryResult(t, srv, src, dst, "after the first run")

	// Second run: rows inserted and updated while the flow is paused.
	srv.Exec(t, src, `INSERT INTO events SELECT g, g FROM generate_series(3001, 3500) g;
		INSERT INTO orders SELECT g, 1 + g % 20, g, 'open', '2026-02-01T00:00:00Z' FROM generate_series(2001, 2100) g;
		UPDATE orders SET total = total + 1000, updated_at = '2026-02-01T00:00:01Z' WHERE id % 7 = 0 AND status <> 'void'`)
	changed, _ := strconv.ParseInt(pgRows(t, srv, src, `SELECT count(*) FROM (`+queryOrders+`) q WHERE updated_at >= '2026-02-01'`)[0], 10, 64)
	mustFerry(t, "flow", "resume", name, "--temporal", ts.addr)
	st = awaitRuns(2)
	if rows := runRows(st); rows["rep.log"] != 500 || rows["rep.orders"] != changed {
		t.Fatalf("second run: rows %v, want 500 and %d", rows, changed)
	}
	logOnce("after the second run")
	sameQueryResult(t, srv, src, dst, "after the second run")

	// Third run on a worker that holds after the first batch of a range,
	// killed there; another worker resumes the run.
	w1.kill(t)
	held := startFerryEnv(t, []string{faultpoint.Env + "=" + faultpoint.QueryBatchWritten}, "worker", "--temporal", ts.addr, "--log-format", "json",
		"--concurrency", "4", "--connection", conns[0], "--connection", conns[1])
	t.Setenv(faultpoint.Env, "")
	srv.Exec(t, src, `INSERT INTO events SELECT g, g FROM generate_series(3501, 6500) g;
		UPDATE orders SET status = 'paid', updated_at = '2026-03-01T00:00:00Z'::timestamptz + (id / 3) * interval '1 ms' WHERE id % 2 = 1`)
	mustFerry(t, "flow", "resume", name, "--temporal", ts.addr)
	if !held.waitFor(t, faultpoint.Message, 2*time.Minute) {
		t.Fatalf("the worker never held after a range's first batch:\n%s", held.stderr.String())
	}
	if !held.kill(t) {
		t.Fatalf("the worker had exited before the kill:\n%s", held.stderr.String())
	}
	if n, _ := strconv.Atoi(pgRows(t, srv, dst, `SELECT count(*) FROM rep.log`)[0]); n <= 3500 || n >= 6500 {
		t.Fatalf("killed after a range's first batch the destination holds %d log rows, want some of the 3000 new ones", n)
	}
	ts.worker(t, conns...)
	st = awaitRuns(3)
	logOnce("after the third run, resumed by another worker")
	sameQueryResult(t, srv, src, dst, "after the third run, resumed by another worker")
	var logRun scaleout.QueryTableRun
	for _, tr := range st.Query.Last.Tables {
		if tr.Table == "rep.log" {
			logRun = tr
		}
	}
	if st.Query.Last.Number != 3 || logRun.RetriedRanges == 0 || logRun.RangesDone != logRun.Ranges {
		t.Fatalf("the third run's log ranges were not finished by a retried attempt: run %d, %+v", st.Query.Last.Number, logRun)
	}
	text := mustFerry(t, "flow", "status", name, "--temporal", ts.addr).stdout
	for _, want := range []string{
		"phase paused (query replication)", fmt.Sprintf("runs: %d\n", st.Query.Runs), "last run: #3",
		"rep.log: 6500", "rep.orders: " + pgRows(t, srv, src, `SELECT max(updated_at) FROM orders`)[0][:10],
	} {
		if !strings.Contains(text, want) {
			t.Fatalf("ferry flow status lacks %q:\n%s", want, text)
		}
	}
	if !regexp.MustCompile(`(?m)^\s+rep\.log\s+\d[\d,]*\s+3500\s+6500\s+3/3\s+false\s+[1-3]$`).MatchString(text) {
		t.Fatalf("ferry flow status does not show the log's third run (from 3500 to 6500, 3 ranges, some retried):\n%s", text)
	}
	record(t, ts, name, "history-query-flow.json")
	// The flow's dashboard (ferry run attached with --ui) shows the same.
	watch := startFerry(t, "run", "--temporal", ts.addr, "--name", name, "--ui", "127.0.0.1:0", "--log-format", "json", "--progress", "log")
	if !watch.waitFor(t, "dashboard listening", 30*time.Second) {
		t.Fatalf("no dashboard:\n%s", watch.stderr.String())
	}
	ui := result{stderr: watch.stderr.String()}.logLine("dashboard listening")["url"].(string)
	var doc queryFlowDoc
	deadline := time.Now().Add(30 * time.Second)
	for doc.Query == nil || doc.Query.Runs != st.Query.Runs {
		if time.Now().After(deadline) {
			t.Fatalf("the dashboard does not show the query flow's runs: %+v", doc)
		}
		time.Sleep(300 * time.Millisecond)
		code, body := httpGet(ui + "api/flow")
		if code != 200 || json.Unmarshal([]byte(body), &doc) != nil {
			t.Fatalf("/api/flow: %d %s", code, body)
		}
	}
	if doc.Phase != scaleout.PhasePaused || doc.Query.Marks["rep.log"] != "6500" || doc.Query.Last == nil || doc.Query.Last.Number != 3 ||
		len(doc.Query.Last.Tables) != 2 || doc.Query.Last.Tables[0].Table != "rep.log" || doc.Query.Last.Tables[0].Rows != logRun.Rows {
		t.Fatalf("the dashboard's query flow: phase %s, %+v, last run %+v", doc.Phase, doc.Query, doc.Query.Last)
	}
	// So does the fleet dashboard's page of the flow.
	fleet := startFerry(t, "dashboard", "--ui", "127.0.0.1:0", "--temporal", ts.addr, "--log-format", "json")
	fleetURL := dashboardURL(t, fleet)
	var view queryFlowDoc
	if code, body := request(t, "GET", fleetURL+"flows/"+name+"/api/flow", ""); code != 200 || json.Unmarshal([]byte(body), &view) != nil ||
		view.Query == nil || view.Query.Runs != st.Query.Runs || view.Query.Marks["rep.log"] != "6500" || view.Query.Last == nil || view.Query.Last.Number != 3 {
		t.Fatalf("the fleet dashboard's page of the query flow: %d %s", code, body)
	}
	fleet.signal(t, syscall.SIGINT)
	// Its progress lines (every 5 s) say the same.
	if !watch.waitFor(t, "query runs", 15*time.Second) {
		t.Fatalf("ferry run attached logged no query progress:\n%s", watch.stderr.String())
	}
	if line := (result{stderr: watch.stderr.String()}).logLine("query runs"); line["runs"] != float64(st.Query.Runs) || line["last_run_rows"] != float64(st.Query.Last.Rows) {
		t.Fatalf("the progress line %v does not say %d runs, the last of %d rows", line, st.Query.Runs, st.Query.Last.Rows)
	}
	watch.signal(t, syscall.SIGINT)
	list := mustFerry(t, "flow", "list", "--temporal", ts.addr).stdout
	var listed string
	for _, l := range strings.Split(list, "\n") {
		if strings.HasPrefix(l, name+" ") {
			listed = l
		}
	}
	// Its ROWS are the last run's.
	if !strings.Contains(listed, " "+humanize.Comma(st.Query.Last.Rows)+" ") || st.Query.Last.Rows == 0 {
		t.Fatalf("ferry flow list does not show the query flow with its last run's %d rows:\n%s", st.Query.Last.Rows, list)
	}

	// The flow goes on: it continues as new (history limit 200) and keeps
	// counting its runs; nothing changed, so runs read nothing.
	mustFerry(t, "flow", "resume", name, "--temporal", ts.addr)
	st = awaitRuns(st.Query.Runs + 2)
	if st.Query.Continued == 0 || st.Query.Last.Rows != 0 {
		t.Fatalf("after more runs: continued %d times (want some), last run %d rows (want 0)", st.Query.Continued, st.Query.Last.Rows)
	}
	logOnce("at the end")
	if r := ferry(t, "flow", "cutover", name, "--temporal", ts.addr); r.code != 2 || !strings.Contains(r.stderr, "is a query flow") {
		t.Fatalf("ferry flow cutover of a query flow: %s\nwant exit 2 saying why", r)
	}
	if r := ferry(t, "flow", "cutover", name, "--reverse", "--temporal", ts.addr); r.code != 2 || !strings.Contains(r.stderr, "is a query flow") || strings.Contains(r.stderr, "predate") {
		t.Fatalf("ferry flow cutover --reverse of a query flow: %s\nwant exit 2 saying it is a query flow", r)
	}
	mustFerry(t, "flow", "cancel", name, "--temporal", ts.addr)
}

// TestScaleOutQueryFlowFile: a query flow from a flow file (its name,
// connection names and queries), run once without --every by an attached
// ferry run, which exits 0 when the run is done; run again, it starts
// the flow again from the marks at the destination and reads only what
// changed.
func TestScaleOutQueryFlowFile(t *testing.T) {
	ts := startTemporal(t)
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "soqfsrc"), srv.CreateDatabase(t, "soqfdst")
	queryShop(t, srv, src)
	ts.worker(t, "src="+srv.URL(src), "dst="+srv.URL(dst), "files=file://"+filepath.Join(t.TempDir(), "out")+"?format=jsonl")
	file := filepath.Join(t.TempDir(), "flow.yaml")
	yaml := fmt.Sprintf(`name: qfile
source: src
destination: dst
parallel: 2
queries:
  - name: rep.orders
    query: %q
    watermark: updated_at
    key: [id]
`, strings.ReplaceAll(queryOrders, "\n", " "))
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func() *scaleout.Status {
		t.Helper()
		r := mustFerry(t, "run", "-f", file, "--temporal", ts.addr, "--log-format", "json", "--progress", "none")
		if !strings.Contains(r.stderr, `"msg":"flow finished"`) {
			t.Fatalf("ferry run did not say the flow finished:\n%s", r.stderr)
		}
		st := ts.flowStatus(t, "qfile")
		if st == nil || st.Query == nil || st.Status != "Completed" || st.Query.Phase != scaleout.PhaseDone {
			t.Fatalf("status after the run: %+v", st)
		}
		return st
	}
	st := run()
	if st.Query.Runs != 1 || st.Query.Last.Rows != 1800 || st.Query.Last.Tables[0].Ranges != 2 {
		t.Fatalf("first run: %d runs, last %+v; want one of 1800 rows in 2 ranges", st.Query.Runs, st.Query.Last)
	}
	sameQueryResult(t, srv, src, dst, "after the first run")
	srv.Exec(t, src, `UPDATE orders SET total = 1, updated_at = '2026-04-01' WHERE id <= 30`)
	st = run()
	if st.Query.Runs != 2 || st.Query.Last.Rows != 27 { // 3 of the 30 are void
		t.Fatalf("second run: %d runs, last %+v; want the second, of 27 rows", st.Query.Runs, st.Query.Last)
	}
	sameQueryResult(t, srv, src, dst, "after the second run")

	// Into files the workers would each write their ranges on their own
	// disk: refused, exit 2.
	r := ferry(t, "run", "--temporal", ts.addr, "--source", "src", "--destination", "files", "--name", "qfiles",
		"--query", "rep.orders="+queryOrders, "--watermark", "updated_at", "--progress", "none")
	if r.code != 2 || !strings.Contains(r.stderr, "each worker would write on its own disk") {
		t.Fatalf("a scale-out query flow into files: %s\nwant exit 2 saying why", r)
	}
}
