package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/internal/testsupport/faults"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/scaleout"
)

// ferry flow cutover in scale-out mode: refused with exit 2 and the copy's
// progress while the copy is held by a narrow link; then, once CDC streamed
// a writer's changes and the writer stopped, two requests at once, while a
// lock at the destination holds the drain (ferry flow status and the
// dashboard show the cutover's drain); released, both
// exit 0 with the report, the flow ends, ferry run exits 0 and printed the
// report, the destination equals the source, its sequence continues the
// source's, and the replication slot is gone. With FERRY_RECORD_HISTORY=DIR
// the flow's history is written there (scaleout/testdata records one).
func TestScaleOutCutoverDrainsToThePositionAtTheRequest(t *testing.T) {
	ts := startTemporal(t)
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "socutsrc"), srv.CreateDatabase(t, "socutdst")
	pgShop(t, srv, src, 6000)
	srv.Exec(t, src, `CREATE SEQUENCE order_no; SELECT setval('order_no', 4242)`)
	srv.Exec(t, dst, `CREATE SEQUENCE order_no`)
	px := faults.NewProxy(t, "scaleout-cutover-destination", fmt.Sprintf("127.0.0.1:%d", srv.Port))
	px.Bandwidth(t, 2, "upstream")
	ts.worker(t, "src="+srv.URL(src)+"&heartbeat=1s", "dst="+px.Rewrite(srv.URL(dst)))
	run := startFerry(t, "run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--name", "socut",
		"--parallel", "2", "--partition-rows", "1500", "--batch-rows", "500", "--log-format", "json", "--progress", "none", "--ui", "127.0.0.1:0")
	if !run.waitFor(t, "dashboard listening", 30*time.Second) {
		t.Fatalf("ferry run has no dashboard:\n%s", run.stderr.String())
	}
	ui := result{stderr: run.stderr.String()}.logLine("dashboard listening")["url"].(string)
	deadline := time.Now().Add(time.Minute)
	for {
		st := ts.flowStatus(t, "socut")
		if st != nil && st.State.Phase == scaleout.PhaseCopy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the flow did not start its copy: %+v\n%s", st, run.stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	progress := regexp.MustCompile(`has not finished its copy \(\d+ of [1-9]\d* partitions copied\)`)
	r := ferry(t, "flow", "cutover", "socut", "--temporal", ts.addr)
	if r.code != 2 || !progress.MatchString(r.stderr) || !strings.Contains(r.stderr, "wait for the copy to finish") {
		t.Fatalf("cutover during the copy: %s\nwant exit 2 with the copy's progress", r)
	}
	px.Clear()

	w := startPGWriter(t, srv.URL(src), 6001)
	ts.awaitStreaming(t, "socut", run)
	w.halt(t)
	if w.ops.Load() < 50 {
		t.Fatalf("the writer made only %d changes", w.ops.Load())
	}
	// A change the drain must apply, held by a lock at the destination: the
	// flow shows the cutover's drain while it waits.
	ctx := context.Background()
	lock, err := srv.Connect(t, dst).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx) //nolint:errcheck // committed below
	if _, err := lock.Exec(ctx, `LOCK TABLE orders IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	srv.Exec(t, src, `UPDATE orders SET note = 'held by the lock' WHERE id = 1`)
	before := walPosition(t, srv, src)
	first := startFerry(t, "flow", "cutover", "socut", "--temporal", ts.addr)
	second := startFerry(t, "flow", "cutover", "socut", "--temporal", ts.addr)
	deadline = time.Now().Add(time.Minute)
	for {
		st := ts.flowStatus(t, "socut")
		var api struct {
			Phase   string                `json:"phase"`
			Cutover *engine.CutoverReport `json:"cutover"`
		}
		_, body := httpGet(ui + "api/flow")
		if st != nil && st.State.Phase == scaleout.PhaseCutover && st.State.Cut != nil && st.State.Cut.Position != "" && st.State.Cut.Step == engine.StepDrain &&
			json.Unmarshal([]byte(body), &api) == nil && api.Phase == string(engine.PhaseCutover) && api.Cutover != nil && api.Cutover.Step == engine.StepDrain {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the flow does not show the cutover's drain: %+v\ndashboard: %s", st, body)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if first.hasExited() || run.hasExited() {
		t.Fatalf("ended while the drain is held:\ncutover:\n%s\nrun:\n%s", first.stderr.String(), run.stderr.String())
	}
	if err := lock.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for i, c := range []*background{first, second} {
		if code := c.waitExit(t, 3*time.Minute); code != 0 {
			t.Fatalf("ferry flow cutover %d exited %d:\n%s", i+1, code, c.stderr.String())
		}
	}
	if code := run.waitExit(t, time.Minute); code != 0 {
		t.Fatalf("ferry run exited %d after the cutover:\n%s", code, tail(run.stderr.String(), 30))
	}
	after := walPosition(t, srv, src)
	samePG(t, srv, src, dst)

	out := first.stderr.String()
	m := reportPosition.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, `cutover of flow "socut" done`) || !strings.Contains(out, "steps run  drain, sequences") ||
		!strings.Contains(out, "1 sequence(s) set") {
		t.Fatalf("ferry flow cutover's report:\n%s", out)
	}
	if !lsnBetween(t, srv, src, before, m[1], after) {
		t.Fatalf("the report's position %s is not the source's at the request (between %s and %s)", m[1], before, after)
	}
	if m2 := reportPosition.FindStringSubmatch(second.stderr.String()); m2 == nil || m2[1] != m[1] {
		t.Fatalf("the second request's report (%v, want position %s):\n%s", m2, m[1], second.stderr.String())
	}
	if runOut := run.stderr.String(); !strings.Contains(runOut, `cutover of flow "socut" done`) || !strings.Contains(runOut, m[1]) {
		t.Fatalf("ferry run did not print the report:\n%s", tail(runOut, 20))
	}
	var next int64
	if err := srv.Connect(t, dst).QueryRow(context.Background(), `SELECT nextval('order_no')`).Scan(&next); err != nil || next != 4243 {
		t.Fatalf("nextval('order_no') at the destination: %d, %v; want 4243", next, err)
	}
	var slots int
	if err := srv.Connect(t, src).QueryRow(context.Background(), `SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'ferry_socut'`).Scan(&slots); err != nil || slots != 0 {
		t.Errorf("slot ferry_socut after the cutover: %d (%v)", slots, err)
	}
	st := mustFerry(t, "flow", "status", "socut", "--temporal", ts.addr)
	if !strings.Contains(st.stdout, "phase done") || !strings.Contains(st.stdout, "cutover (requested") || !strings.Contains(st.stdout, "sequences") {
		t.Fatalf("ferry flow status after the cutover:\n%s", st.stdout)
	}
	if dir := os.Getenv("FERRY_RECORD_HISTORY"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, "history-cutover-drain.json"), []byte(ts.history(t, "socut")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
