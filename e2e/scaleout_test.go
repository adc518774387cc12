package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/faults"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/scaleout"
)

// Scale-out tests run a real Temporal development server (the CLI pinned in
// tools/go.mod), real ferry worker processes and ferry run, against real
// databases.

var (
	temporalOnce sync.Once
	temporalBin  string
	temporalErr  error
)

// temporalCLI builds the pinned Temporal CLI once (cached by Go afterwards),
// or takes $FERRY_TEMPORAL_BIN.
func temporalCLI(t *testing.T) string {
	t.Helper()
	temporalOnce.Do(func() {
		if b := os.Getenv("FERRY_TEMPORAL_BIN"); b != "" {
			temporalBin = b
			return
		}
		dir := filepath.Dir(ferryBin)
		temporalBin = filepath.Join(dir, "temporal")
		build := exec.Command("go", "build", "-modfile=tools/go.mod", "-o", temporalBin, "github.com/temporalio/cli/cmd/temporal")
		build.Dir = ".."
		out, err := build.CombinedOutput()
		if err != nil {
			temporalErr = fmt.Errorf("building the Temporal CLI: %v\n%s", err, out)
		}
	})
	if temporalErr != nil {
		t.Fatal(temporalErr)
	}
	return temporalBin
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// temporalServer is a dev server private to a test. Its state is kept in
// a SQLite file, so it can be stopped and started again on the same port
// with the flows it had (the fault-injection suite restarts it).
type temporalServer struct {
	addr string
	bin  string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
	out  *syncBuffer
}

func startTemporal(t *testing.T) *temporalServer {
	t.Helper()
	bin := temporalCLI(t)
	port := freePort(t)
	db := filepath.Join(t.TempDir(), "temporal.db")
	ts := &temporalServer{addr: "127.0.0.1:" + strconv.Itoa(port), bin: bin,
		args: []string{"server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", strconv.Itoa(port),
			"--http-port", strconv.Itoa(freePort(t)), "--metrics-port", strconv.Itoa(freePort(t)), "--db-filename", db, "--log-level", "error"}}
	ts.launch(t)
	t.Cleanup(func() { ts.stop(syscall.SIGTERM) })
	return ts
}

// launch starts the server and waits until it serves.
func (ts *temporalServer) launch(t *testing.T) {
	t.Helper()
	cmd := exec.Command(ts.bin, ts.args...)
	out := newSyncBuffer()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }() //nolint:errcheck // the test ends it
	ts.cmd, ts.done, ts.out = cmd, done, out
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		c := exec.Command(ts.bin, "operator", "cluster", "health", "--address", ts.addr)
		if o, err := c.CombinedOutput(); err == nil && strings.Contains(string(o), "SERVING") {
			return
		}
		select {
		case <-done:
			t.Fatalf("the Temporal dev server exited:\n%s", out.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatalf("the Temporal dev server did not become ready:\n%s", out.String())
}

// stop ends the server with sig (SIGKILL after 10 s) and waits for it.
func (ts *temporalServer) stop(sig syscall.Signal) {
	select {
	case <-ts.done:
		return
	default:
	}
	ts.cmd.Process.Signal(sig) //nolint:errcheck // best effort
	select {
	case <-ts.done:
	case <-time.After(10 * time.Second):
		ts.cmd.Process.Kill() //nolint:errcheck // best effort
		<-ts.done
	}
}

// history returns the JSON history of a flow's latest run.
func (ts *temporalServer) history(t *testing.T, flow string) string {
	t.Helper()
	out, err := exec.Command(ts.bin, "workflow", "show", "-w", flow, "--address", ts.addr, "--output", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("temporal workflow show: %v\n%s", err, out)
	}
	return string(out)
}

func (ts *temporalServer) worker(t *testing.T, conns ...string) *background {
	t.Helper()
	args := []string{"worker", "--temporal", ts.addr, "--log-format", "json", "--concurrency", "4"}
	for _, c := range conns {
		if strings.HasPrefix(c, "--") {
			args = append(args, c)
			continue
		}
		args = append(args, "--connection", c)
	}
	w := startFerry(t, args...)
	if !w.waitFor(t, "worker polling", 30*time.Second) {
		t.Fatalf("the worker did not start:\n%s", w.stderr.String())
	}
	return w
}

// flowStatus reads a flow's status through ferry flow status --json.
func (ts *temporalServer) flowStatus(t *testing.T, flow string) *scaleout.Status {
	t.Helper()
	r := ferry(t, "flow", "status", flow, "--temporal", ts.addr, "--json")
	if r.code != 0 {
		return nil
	}
	var st scaleout.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("flow status --json: %v\n%s", err, r.stdout)
	}
	return &st
}

// awaitStreaming waits until the flow streams changes: phase CDC with at
// least one change received. run is the ferry run whose log a failure shows.
func (ts *temporalServer) awaitStreaming(t *testing.T, flow string, run *background) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st := ts.flowStatus(t, flow)
		if st != nil && st.State.Phase == scaleout.PhaseCDC && st.State.CDC.Received > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the flow did not stream changes: %+v\nrun:\n%s", st, run.stderr.String())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func TestScaleOutPostgresSurvivesAKilledWorker(t *testing.T) {
	ts := startTemporal(t)
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "sosrc"), srv.CreateDatabase(t, "sodst")
	pgShop(t, srv, src, 300000)
	// The workers read the source through a narrower link, so a partition
	// is surely seen half-way however fast the copy path (with the primary
	// key built after the load, the copy often ended before the test could
	// pick a partition to kill).
	px := faults.NewProxy(t, "killed-worker-source", fmt.Sprintf("127.0.0.1:%d", srv.Port))
	px.Bandwidth(t, 3000, "downstream")
	conns := []string{"src=" + px.Rewrite(srv.URL(src)), "dst=" + srv.URL(dst)}
	w1 := ts.worker(t, conns...)
	w2 := ts.worker(t, conns...)
	writer := startPGWriter(t, srv.URL(src), 300001)

	runArgs := []string{"run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--name", "soshop",
		"--parallel", "3", "--partition-rows", "150000", "--batch-rows", "500", "--heartbeat-timeout", "3s",
		"--log-format", "json", "--progress", "log"}
	run := startFerry(t, runArgs...)
	if !run.waitFor(t, "flow started", 30*time.Second) {
		t.Fatalf("ferry run did not start the flow:\n%s", run.stderr.String())
	}

	// Find a partition some way in on one of the workers, then kill that
	// worker with SIGKILL.
	pids := map[int]*background{w1.cmd.Process.Pid: w1, w2.cmd.Process.Pid: w2}
	var victim *background
	var part string
	var rowsAtKill int64
	deadline := time.Now().Add(90 * time.Second)
	for victim == nil && time.Now().Before(deadline) {
		st := ts.flowStatus(t, "soshop")
		if st != nil {
			for _, p := range st.State.Parts {
				if p.State != scaleout.PartRunning || p.Rows < 1000 || p.Rows > p.EstimatedRows/2 {
					continue
				}
				_, pidText, _ := strings.Cut(p.Worker, ":")
				pid, _ := strconv.Atoi(pidText)
				if b := pids[pid]; b != nil {
					victim, part, rowsAtKill = b, p.ID, p.Rows
					break
				}
			}
		}
		if victim == nil {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if victim == nil {
		t.Fatalf("no partition was seen half-way on a worker:\nrun:\n%s\nworker 1:\n%s", run.stderr.String(), w1.stderr.String())
	}
	if !victim.kill(t) {
		t.Fatalf("the worker had exited before the kill:\n%s", victim.stderr.String())
	}
	t.Logf("killed worker %d during %s at %d rows", victim.cmd.Process.Pid, part, rowsAtKill)

	// Kill the runner as well and attach again: the flow is unaffected.
	run.kill(t)
	run = startFerry(t, runArgs...)
	if !run.waitFor(t, "attached to the flow", 30*time.Second) {
		t.Fatalf("ferry run did not attach again:\n%s", run.stderr.String())
	}

	// CDC after the copy, with the writer still going; then stop writing,
	// let the destination catch up, and cut over.
	ts.awaitStreaming(t, "soshop", run)
	// A third worker joins; the one running change data capture is killed:
	// another takes over from its last heartbeated position.
	w3 := ts.worker(t, conns...)
	pids[w3.cmd.Process.Pid] = w3
	var cdcWorker *background
	deadline = time.Now().Add(60 * time.Second)
	for cdcWorker == nil && time.Now().Before(deadline) {
		if st := ts.flowStatus(t, "soshop"); st != nil {
			for _, w := range st.Workers {
				_, pidText, _ := strings.Cut(w.Identity, ":")
				pid, _ := strconv.Atoi(pidText)
				for _, a := range w.Activities {
					if a == "cdc" && pids[pid] != nil && pids[pid] != victim {
						cdcWorker = pids[pid]
					}
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if cdcWorker == nil {
		t.Fatal("no worker was seen running change data capture")
	}
	time.Sleep(1500 * time.Millisecond) // a heartbeat with a position
	cdcWorker.kill(t)
	killedAt := time.Now()
	deadline = time.Now().Add(60 * time.Second)
	for {
		st := ts.flowStatus(t, "soshop")
		taken := false
		if st != nil {
			for _, w := range st.Workers {
				for _, a := range w.Activities {
					taken = taken || (a == "cdc" && !strings.HasSuffix(w.Identity, ":"+strconv.Itoa(cdcWorker.cmd.Process.Pid)))
				}
			}
		}
		if taken {
			t.Logf("change data capture moved to another worker %s after the kill", time.Since(killedAt).Round(100*time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no worker took change data capture over: %+v", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	writer.halt(t)
	if writer.ops.Load() < 50 {
		t.Fatalf("the writer made only %d changes", writer.ops.Load())
	}
	deadline = time.Now().Add(2 * time.Minute)
	for {
		a, na := pgDigest(t, srv, src, "orders", "id")
		b, nb := pgDigest(t, srv, dst, "orders", "id")
		if a == b && na == nb {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the destination did not catch up (source %d rows, destination %d)", na, nb)
		}
		time.Sleep(300 * time.Millisecond)
	}
	mustFerry(t, "flow", "cutover", "soshop", "--temporal", ts.addr)
	select {
	case <-run.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("ferry run did not end after the cutover:\n%s", run.stderr.String())
	}
	if code := run.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("ferry run exited %d after the cutover:\n%s", code, run.stderr.String())
	}

	v := mustFerry(t, "verify", srv.URL(src), srv.URL(dst))
	if !strings.Contains(v.stdout, "all 2 table(s) equal") {
		t.Fatalf("verify: %s", v)
	}
	samePG(t, srv, src, dst)

	// The interrupted partition was resumed from its cursor, not from the
	// start: the finishing attempt began with the rows seen before the kill.
	st := ts.flowStatus(t, "soshop")
	if st == nil || st.Status != "Completed" {
		t.Fatalf("final status: %+v", st)
	}
	var got *scaleout.PartitionState
	for i := range st.State.Parts {
		if st.State.Parts[i].ID == part {
			got = &st.State.Parts[i]
		}
	}
	if got == nil || got.State != scaleout.PartDone {
		t.Fatalf("partition %s: %+v", part, got)
	}
	if got.Attempts < 2 || got.HeartbeatRows < rowsAtKill || got.ResumedRows < got.HeartbeatRows || got.RowsThisAttempt >= got.Rows || got.ResumedRows+got.RowsThisAttempt != got.Rows {
		t.Fatalf("partition %s was not resumed from its heartbeat: %d rows at the kill; finished by attempt %d which started at %d rows (from the %s; heartbeat %d) and wrote %d of %d",
			part, rowsAtKill, got.Attempts, got.ResumedRows, got.ResumedFrom, got.HeartbeatRows, got.RowsThisAttempt, got.Rows)
	}
	t.Logf("partition %s: killed at %d rows; attempt %d resumed at %d (from the %s, heartbeat %d), wrote %d of %d",
		part, rowsAtKill, got.Attempts, got.ResumedRows, got.ResumedFrom, got.HeartbeatRows, got.RowsThisAttempt, got.Rows)

	// The replication slot was released with the cutover.
	var slots int
	if err := srv.Connect(t, src).QueryRow(context.Background(), `SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'ferry_soshop'`).Scan(&slots); err != nil || slots != 0 {
		t.Errorf("slot ferry_soshop after the cutover: %d (%v)", slots, err)
	}

	// No password in the workflow's history, the runner's or the workers' output.
	h := ts.history(t, "soshop")
	if !strings.Contains(h, "ferry.copy-partition") {
		t.Fatalf("the history looks empty:\n%.2000s", h)
	}
	for what, text := range map[string]string{"history": h, "ferry run": run.stderr.String(), "worker 1": w1.stderr.String(), "worker 2": w2.stderr.String(), "worker 3": w3.stderr.String()} {
		if strings.Contains(text, pgtest.Password) {
			t.Errorf("the password appears in the %s", what)
		}
	}
}

func TestScaleOutBadInput(t *testing.T) {
	// Temporal unreachable: the runner and the worker say so and exit 2.
	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	for _, args := range [][]string{
		{"run", "--temporal", dead, "--source", "src", "--destination", "dst"},
		{"worker", "--temporal", dead, "--connection", "src=null://"},
		{"flow", "list", "--temporal", dead},
	} {
		r := ferry(t, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "cannot reach Temporal at "+dead) {
			t.Errorf("ferry %s: want exit 2 saying Temporal cannot be reached:\n%s", strings.Join(args, " "), r)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--source", "src", "--destination", "dst"}, "no Temporal address"},
		{[]string{"run", "--temporal", dead, "--source", "postgres://u:p@h/db", "--destination", "dst"}, "take connection names, not URLs"},
		{[]string{"run", "--temporal", dead, "--source", "src"}, "needs both --source NAME and --destination NAME"},
		{[]string{"worker", "--temporal", dead, "--connection", "src"}, "has no '='"},
		{[]string{"worker", "--temporal", dead, "--connection", "src=nosuch://x"}, "unknown scheme"},
	} {
		r := ferry(t, c.args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("ferry %s: want exit 2 saying %q:\n%s", strings.Join(c.args, " "), c.want, r)
		}
	}

	ts := startTemporal(t)
	db := filepath.Join(t.TempDir(), "dst.db")
	wk := ts.worker(t, "src=fake://?tables=1&rows=1000&changes_per_sec=50", "dst=sqlite://"+db, "--health-addr=127.0.0.1:0")
	health := "http://" + result{stderr: wk.stderr.String()}.logLine("worker polling")["health"].(string)
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/metrics": "temporal_"} {
		if code, body := httpGet(health + path); code != 200 || !strings.Contains(body, want) {
			t.Errorf("worker %s: %d, want 200 with %q:\n%.500s", path, code, want, body)
		}
	}

	// A connection the workers do not know.
	r := ferry(t, "run", "--temporal", ts.addr, "--source", "nosuch", "--destination", "dst", "--progress", "none")
	if r.code != 2 || !strings.Contains(r.stderr, `source connection "nosuch" is not defined (defined: dst, src)`) {
		t.Errorf("unknown connection: want exit 2 naming it:\n%s", r)
	}

	// A running flow of that name with other options (other than --tables,
	// which a running flow follows: scaleout_tables_test.go).
	mustFerry(t, "run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--name", "busy", "--detach")
	r = ferry(t, "run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--name", "busy", "--batch-rows", "7", "--progress", "none")
	if r.code != 2 || !strings.Contains(r.stderr, `flow "busy" is running with other options`) || !strings.Contains(r.stderr, "BatchRows") {
		t.Errorf("conflicting options: want exit 2 naming the difference:\n%s", r)
	}
	// The same options attach, with the dashboard: it shows the workers and
	// what each does. Cancelling ends the attached run with exit 1.
	att := startFerry(t, "run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--name", "busy", "--log-format", "json", "--progress", "none", "--ui", "127.0.0.1:0")
	if !att.waitFor(t, "attached to the flow", 30*time.Second) || !att.waitFor(t, "dashboard listening", 30*time.Second) {
		t.Fatalf("the same options did not attach:\n%s", att.stderr.String())
	}
	ui := result{stderr: att.stderr.String()}.logLine("dashboard listening")["url"].(string)
	var api struct {
		Coordinator string `json:"coordinator"`
		Phase       string `json:"phase"`
		Workers     []struct {
			ID   string `json:"id"`
			Task string `json:"task"`
		} `json:"workers"`
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body := httpGet(ui + "api/flow")
		if code == 200 && json.Unmarshal([]byte(body), &api) == nil && len(api.Workers) > 0 && strings.Contains(api.Workers[0].Task, "change data capture") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dashboard does not show the worker running change data capture: %d %s", code, body)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if api.Coordinator != "temporal" || api.Phase != scaleout.PhaseCDC {
		t.Errorf("/api/flow: coordinator %q, phase %q", api.Coordinator, api.Phase)
	}
	// The worker that copied the table counts what it read and wrote, per
	// table, beside the Temporal SDK's metrics; its CDC counts changes
	// applied once it applied a batch.
	var metrics string
	for deadline := time.Now().Add(30 * time.Second); ; {
		_, metrics = httpGet(health + "/metrics")
		if strings.Contains(metrics, `ferry_rows_written_total{flow="busy",`) && strings.Contains(metrics, `table="fake.t1"`) &&
			strings.Contains(metrics, `ferry_cdc_changes_applied_total{flow="busy"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the worker's /metrics lacks the flow's copy or CDC counters:\n%.3000s", metrics)
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	// The page in a real browser shows the workers card with the worker and
	// its task, beside the usual cards.
	if browserAvailable(t) {
		b := startBrowser(t)
		b.navigate(t, ui)
		var page struct {
			Hidden  bool     `json:"hidden"`
			Workers []string `json:"workers"`
			Phase   string   `json:"phase"`
		}
		const readWorkers = `(() => ({
		  hidden: (document.getElementById('workers-card') || { hidden: true }).hidden,
		  workers: [...document.querySelectorAll('#workers dd')].map((e) => e.textContent),
		  phase: (document.getElementById('phase') || {}).textContent || '',
		}))()`
		if !waitUntil(context.Background(), 30*time.Second, func() bool {
			b.eval(t, readWorkers, &page)
			return !page.Hidden && len(page.Workers) > 0 && strings.Contains(page.Workers[0], "change data capture")
		}) {
			t.Errorf("the page's workers card does not show the worker running change data capture: %+v", page)
		}
		time.Sleep(time.Second) // the bars' transitions
		b.screenshot(t, filepath.Join(artifacts(t), "dashboard-scaleout.png"))
		for _, p := range func() []string { p, _ := b.report(); return p }() {
			t.Errorf("the page reported: %s", p)
		}
	}
	mustFerry(t, "flow", "cancel", "busy", "--temporal", ts.addr)
	select {
	case <-att.done:
	case <-time.After(time.Minute):
		t.Fatalf("ferry run did not end after the cancel:\n%s", att.stderr.String())
	}
	if code := att.cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(att.stderr.String(), "was cancelled") {
		t.Errorf("after cancel: exit %d, want 1 saying it was cancelled:\n%s", code, att.stderr.String())
	}
	r = ferry(t, "flow", "status", "nosuch", "--temporal", ts.addr)
	if r.code != 2 || !strings.Contains(r.stderr, "no such flow") {
		t.Errorf("status of an unknown flow: want exit 2:\n%s", r)
	}
	r = mustFerry(t, "flow", "list", "--temporal", ts.addr)
	if !strings.Contains(r.stdout, "busy") || !bytes.Contains([]byte(r.stdout), []byte("Failed")) {
		t.Errorf("flow list:\n%s", r.stdout)
	}
}

func TestScaleOutWorkerStopsGracefully(t *testing.T) {
	ts := startTemporal(t)
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "gracesrc"), srv.CreateDatabase(t, "gracedst")
	pgShop(t, srv, src, 300000)
	// The source is read through a slow link, so a partition is still
	// running when the worker is told to stop, however fast the copy path.
	px := faults.NewProxy(t, "grace-source", fmt.Sprintf("127.0.0.1:%d", srv.Port))
	px.Bandwidth(t, 3000, "downstream")
	conns := []string{"src=" + px.Rewrite(srv.URL(src)), "dst=" + srv.URL(dst)}
	w1 := ts.worker(t, conns...)
	// The flow starts on the first worker alone; the second is ready to
	// take over.
	run := startFerry(t, "run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--name", "grace",
		"--mode", "snapshot", "--parallel", "2", "--partition-rows", "300000", "--batch-rows", "500", "--log-format", "json", "--progress", "none")
	if !run.waitFor(t, "flow started", 30*time.Second) {
		t.Fatalf("the flow did not start:\n%s", run.stderr.String())
	}
	w2 := ts.worker(t, conns...)
	var part string
	deadline := time.Now().Add(60 * time.Second)
	for part == "" && time.Now().Before(deadline) {
		if st := ts.flowStatus(t, "grace"); st != nil {
			for _, p := range st.State.Parts {
				if p.State == scaleout.PartRunning && p.Rows > 0 && p.Rows < p.EstimatedRows*3/4 && strings.HasSuffix(p.Worker, ":"+strconv.Itoa(w1.cmd.Process.Pid)) {
					part = p.ID
					break
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if part == "" {
		t.Fatalf("no partition was seen running:\n%s", w1.stderr.String())
	}
	start := time.Now()
	if code := w1.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("the worker exited %d after SIGTERM:\n%s", code, w1.stderr.String())
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("the worker took %s to stop", took)
	}
	if !strings.Contains(w1.stderr.String(), "worker stopping: partition checkpointed") {
		t.Errorf("the stopping worker did not checkpoint a partition:\n%s", w1.stderr.String())
	}
	select {
	case <-run.done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("the flow did not finish on the second worker:\n%s\n%s", run.stderr.String(), w2.stderr.String())
	}
	if code := run.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("ferry run exited %d:\n%s", code, run.stderr.String())
	}
	st := ts.flowStatus(t, "grace")
	resumed := 0
	for _, p := range st.State.Parts {
		if p.ResumedRows > 0 {
			resumed++
			if p.Attempts < 2 || p.ResumedRows+p.RowsThisAttempt != p.Rows {
				t.Errorf("partition %+v", p)
			}
		}
	}
	if resumed == 0 {
		t.Errorf("no partition resumed after the graceful stop: %+v", st.State.Parts)
	}
	samePG(t, srv, src, dst)
}

// httpGet fetches a URL; a failed request is status 0.
func httpGet(url string) (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, string(b)
}

func TestScaleOutCancelReleasesTheSlot(t *testing.T) {
	ts := startTemporal(t)
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "cancelsrc"), srv.CreateDatabase(t, "canceldst")
	pgShop(t, srv, src, 2000)
	ts.worker(t, "src="+srv.URL(src), "dst="+srv.URL(dst))
	mustFerry(t, "run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--name", "socancel", "--detach")
	slots := func() int {
		var n int
		if err := srv.Connect(t, src).QueryRow(context.Background(), `SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'ferry_socancel'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := ts.flowStatus(t, "socancel")
		if st != nil && st.State.Phase == scaleout.PhaseCDC && len(st.Workers) > 0 && len(st.Workers[0].Activities) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the flow did not reach change data capture: %+v", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if slots() != 1 {
		t.Fatal("no replication slot during change data capture")
	}
	mustFerry(t, "flow", "cancel", "socancel", "--temporal", ts.addr)
	r := ferry(t, "run", "--temporal", ts.addr, "--name", "socancel", "--progress", "none")
	if r.code != 1 || !strings.Contains(r.stderr, "was cancelled") {
		t.Fatalf("attaching to the cancelled flow: want exit 1 saying it was cancelled:\n%s", r)
	}
	if n := slots(); n != 0 {
		t.Fatalf("%d replication slot(s) left after the cancel", n)
	}
}

func TestScaleOutTerminatedFlowResumesWhereItStopped(t *testing.T) {
	ts := startTemporal(t)
	db := filepath.Join(t.TempDir(), "dst.db")
	srcURL := "fake://?tables=2&rows=100000&seed=3"
	w := startFerry(t, "worker", "--temporal", ts.addr, "--log-format", "json", "--concurrency", "1",
		"--connection", "src="+srcURL, "--connection", "dst=sqlite://"+db)
	if !w.waitFor(t, "worker polling", 30*time.Second) {
		t.Fatalf("worker:\n%s", w.stderr.String())
	}
	args := []string{"run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--name", "resume",
		"--mode", "snapshot", "--parallel", "1", "--partition-rows", "5000", "--progress", "none"}
	mustFerry(t, append(args, "--detach")...)
	deadline := time.Now().Add(60 * time.Second)
	for countLines(w.stderr.String(), "partition copied") < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("the copy does not progress:\n%s", w.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, err := exec.Command(ts.bin, "workflow", "terminate", "-w", "resume", "--address", ts.addr, "--reason", "test").CombinedOutput(); err != nil {
		t.Fatalf("terminate: %v\n%s", err, out)
	}
	before := countLines(w.stderr.String(), "partition copied")
	mustFerry(t, args...)
	if total := countLines(w.stderr.String(), "partition copied"); total > 40+1 {
		t.Fatalf("%d partition copies for 40 partitions (%d before the terminate): the resumed flow copied finished partitions again", total, before)
	}
	st := ts.flowStatus(t, "resume")
	if st == nil || st.Status != "Completed" || st.State.Runs != 1 {
		t.Fatalf("status after the resume: %+v", st)
	}
	mustFerry(t, "verify", srcURL, "sqlite://"+db)
}
