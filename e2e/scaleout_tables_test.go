package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/scaleout"
)

// A scale-out flow run again with a wider --tables while it streams under a
// write load (its name derived, so it no longer depends on --tables) adds
// the table: created and copied while changes flow, ferry flow status shows
// the copy's progress, and both tables end equal, without the flow
// starting over (same run, its partitions copied once). Another option
// changed is still refused. Stopped (terminated), then run with a
// narrower --tables, it resumes and no longer follows the dropped table,
// whose destination table stays; the terminated run's change data capture
// stopped before that (the worker says so). With FERRY_RECORD_HISTORY=DIR the
// histories of both runs are written there (scaleout/testdata records
// them).
func TestScaleOutRunChangesItsTables(t *testing.T) {
	ts := startTemporal(t)
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "sotabsrc"), srv.CreateDatabase(t, "sotabdst")
	pgShop(t, srv, src, 6000)
	wk := ts.worker(t, "src="+srv.URL(src)+"&heartbeat=1s", "dst="+srv.URL(dst))
	const name = "src-to-dst"
	args := func(tables string, more ...string) []string {
		return append([]string{"run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--tables", tables,
			"--parallel", "2", "--partition-rows", "2000", "--batch-rows", "500", "--log-format", "json", "--progress", "none"}, more...)
	}
	run := startFerry(t, args("public.orders", "--ui", "127.0.0.1:0")...)
	w := startPGWriter(t, srv.URL(src), 6001)
	ts.awaitStreaming(t, name, run)
	if !run.waitFor(t, "dashboard listening", 30*time.Second) {
		t.Fatalf("no dashboard:\n%s", run.stderr.String())
	}
	ui := result{stderr: run.stderr.String()}.logLine("dashboard listening")["url"].(string)
	before := ts.flowStatus(t, name)
	if n := len(before.State.Parts); n < 3 {
		t.Fatalf("the flow has %d partitions, want 3 or more", n)
	}

	// Another option than --tables is refused, with the wider --tables too.
	for _, c := range []struct{ tables, flag, value string }{{"public.orders", "--mode", "cdc"}, {"public.orders,public.lines", "--retry-timeout", "1m"}} {
		if r := ferry(t, args(c.tables, "--detach", c.flag, c.value)...); r.code != 2 || !strings.Contains(r.stderr, "is running with other options") {
			t.Fatalf("ferry run with %s %s: %s\nwant exit 2", c.flag, c.value, r)
		}
	}
	var n int
	if err := srv.Connect(t, dst).QueryRow(context.Background(), `SELECT count(*) FROM pg_tables WHERE tablename = 'lines'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("lines at the destination before it was selected: %d (%v)", n, err)
	}

	// Wider: lines is added, copied while the writer goes on.
	r := mustFerry(t, args("public.orders,public.lines", "--detach")...)
	if !strings.Contains(r.stderr, "the flow's tables changed") || !strings.Contains(r.stderr, "public.lines") {
		t.Fatalf("ferry run with a wider --tables: %s", r)
	}
	deadline := time.Now().Add(2 * time.Minute)
	var text string
	for {
		st := ts.flowStatus(t, name)
		if s, ok := st.State.CDC.Snapshots["public.lines"]; ok && s.Done {
			if s.Rows < 6000 {
				t.Fatalf("lines copied with %d rows, want 6000 or more", s.Rows)
			}
			// The status text shows the same (the CDC activity's last
			// heartbeat or its end).
			text = mustFerry(t, "flow", "status", name, "--temporal", ts.addr).stdout
			if strings.Contains(text, "public.lines: ") && strings.Contains(text, "rows copied, done") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("lines was not copied: %+v\n%s\nrun:\n%s", st.State.CDC, text, tail(run.stderr.String(), 30))
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Logf("ferry flow status:\n%s", text)
	// The dashboard of the attached ferry run shows it too.
	deadline = time.Now().Add(30 * time.Second)
	for {
		var api struct {
			Tables []struct {
				Table      string             `json:"table"`
				Resnapshot *engine.Resnapshot `json:"resnapshot"`
			} `json:"tables"`
		}
		code, body := httpGet(ui + "api/flow")
		shown := false
		if code == 200 && json.Unmarshal([]byte(body), &api) == nil {
			for _, tb := range api.Tables {
				shown = shown || tb.Table == "public.lines" && tb.Resnapshot != nil && tb.Resnapshot.Done && tb.Resnapshot.Rows >= 6000
			}
		}
		if shown {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dashboard does not show lines's incremental snapshot: %d %.2000s", code, body)
		}
		time.Sleep(300 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // changes of both after the copy
	w.halt(t)
	if w.ops.Load() < 50 {
		t.Fatalf("the writer made only %d changes", w.ops.Load())
	}
	awaitEqual(t, srv, src, dst, "orders", "id")
	awaitEqual(t, srv, src, dst, "lines", "order_id, line")

	after := ts.flowStatus(t, name)
	if after.RunID != before.RunID {
		t.Fatalf("the flow started another run: %s, then %s", before.RunID, after.RunID)
	}
	if len(after.State.Parts) != len(before.State.Parts) || after.State.Selections != 1 {
		t.Fatalf("partitions %d then %d, selections %d; want the same partitions and one selection", len(before.State.Parts), len(after.State.Parts), after.State.Selections)
	}
	for _, p := range after.State.Parts {
		if p.Runs != 1 || p.Table != "public.orders" {
			t.Fatalf("partition %s of %s copied %d times, want once", p.ID, p.Table, p.Runs)
		}
	}
	if got := strings.Join(after.Options.Tables, ","); got != "public.orders,public.lines" {
		t.Fatalf("the flow's --tables: %q", got)
	}

	// Stopped, then narrower: lines leaves the flow, which resumes.
	if out, err := exec.Command(ts.bin, "workflow", "terminate", "-w", name, "--address", ts.addr, "--reason", "test").CombinedOutput(); err != nil {
		t.Fatalf("temporal workflow terminate: %v\n%s", err, out)
	}
	if code := run.waitExit(t, time.Minute); code != 1 {
		t.Fatalf("ferry run exited %d after the flow was terminated, want 1", code)
	}
	// The terminated run's CDC activity finds out at its next control
	// poll and stops: it must not apply changes the next run, with the
	// narrower --tables, no longer wants.
	if !wk.waitFor(t, "the flow's run has ended: change data capture stops", 30*time.Second) {
		t.Fatalf("the terminated run's change data capture did not stop:\n%s", tail(wk.stderr.String(), 30))
	}
	record(t, ts, name, "history-tables-added.json")
	r = mustFerry(t, args("public.orders", "--detach")...)
	if !strings.Contains(r.stderr, "the flow's tables changed") {
		t.Fatalf("ferry run with a narrower --tables of a stopped flow: %s", r)
	}
	srv.Exec(t, src, `INSERT INTO lines VALUES (1, 99, 'after', 1)`)
	srv.Exec(t, src, `UPDATE orders SET amount = -5 WHERE id = 2`)
	deadline = time.Now().Add(time.Minute)
	for {
		var amount float64
		if err := srv.Connect(t, dst).QueryRow(context.Background(), `SELECT amount FROM orders WHERE id = 2`).Scan(&amount); err == nil && amount == -5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("orders is no longer followed after lines left --tables:\n%+v", ts.flowStatus(t, name))
		}
		time.Sleep(200 * time.Millisecond)
	}
	mustFerry(t, "flow", "cutover", name, "--temporal", ts.addr)
	if err := srv.Connect(t, dst).QueryRow(context.Background(), `SELECT count(*) FROM lines WHERE order_id = 1 AND line = 99`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("lines is still followed after it left --tables: %d rows (%v)", n, err)
	}
	if err := srv.Connect(t, dst).QueryRow(context.Background(), `SELECT count(*) FROM lines`).Scan(&n); err != nil || n < 6000 {
		t.Fatalf("the destination's lines after it left --tables: %d rows (%v), want it kept", n, err)
	}
	awaitEqual(t, srv, src, dst, "orders", "id")
	if st := ts.flowStatus(t, name); st.State.Phase != scaleout.PhaseDone || strings.Join(st.Options.Tables, ",") != "public.orders" {
		t.Fatalf("after the cutover: phase %s, --tables %v", st.State.Phase, st.Options.Tables)
	}
	record(t, ts, name, "history-tables-dropped.json")
}

// awaitEqual waits until table has the same rows at dst as at src.
func awaitEqual(t *testing.T, srv *pgtest.Server, src, dst, table, key string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		a, na := pgDigest(t, srv, src, table, key)
		b, nb := pgDigest(t, srv, dst, table, key)
		if a == b && na == nb {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s differs: source %d rows, destination %d rows", table, na, nb)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// record writes the flow's latest history to $FERRY_RECORD_HISTORY/file.
func record(t *testing.T, ts *temporalServer, flow, file string) {
	t.Helper()
	if dir := os.Getenv("FERRY_RECORD_HISTORY"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(ts.history(t, flow)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// A flow an older ferry run started under the derived name that hashed
// --tables in is found under that name (ferry run attaches to it instead
// of starting a second flow); a new flow's derived name has no hash.
func TestScaleOutRunFindsAFlowUnderItsOlderName(t *testing.T) {
	ts := startTemporal(t)
	ts.worker(t, "src=fake://?tables=2&rows=1000&changes_per_sec=20", "dst=sqlite://"+filepath.Join(t.TempDir(), "dst.db"))
	h := sha256.Sum256([]byte("fake.t1\x00"))
	older := "src-to-dst-" + hex.EncodeToString(h[:])[:8]
	args := []string{"run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--tables", "fake.t1", "--detach", "--progress", "none"}
	mustFerry(t, append(args, "--name", older)...)
	if r := mustFerry(t, args...); !strings.Contains(r.stdout, "flow "+older+" running") {
		t.Fatalf("ferry run did not find the flow under its older name %s: %s", older, r)
	}
	r := mustFerry(t, "flow", "list", "--temporal", ts.addr)
	if strings.Contains(r.stdout, "src-to-dst ") {
		t.Fatalf("a second flow was started under the new name:\n%s", r.stdout)
	}
	// Without a flow under the older name, the new name (without hash).
	if r := mustFerry(t, "run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--tables", "fake.t2", "--detach", "--progress", "none"); !strings.Contains(r.stdout, "flow src-to-dst running") {
		t.Fatalf("a new flow's derived name: %s", r)
	}
}
