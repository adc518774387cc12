package e2e

// Scenario 6 of the fault-injection suite: the scale-out mode. Workers are
// killed with SIGKILL (one during the copy, the one streaming changes during
// CDC) and the Temporal dev server itself is killed and started again, under
// the same steady write load as the other scenarios, with the same report.

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/faults"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/scaleout"
)

// chaosWorkers are the ferry worker processes of a scale-out scenario, each
// watched for its memory, started and killed like a supervisor would.
type chaosWorkers struct {
	t     *testing.T
	ts    *temporalServer
	conns []string
	rep   *chaosReport
	live  map[int]*background
	mem   map[int]*faults.MemWatch
}

func (ws *chaosWorkers) start() *background {
	ws.t.Helper()
	w := ws.ts.worker(ws.t, ws.conns...)
	pid := w.cmd.Process.Pid
	ws.live[pid], ws.mem[pid] = w, faults.WatchMemory(pid, 50*time.Millisecond)
	ws.rep.FerryRuns++
	return w
}

// byIdentity returns the live worker a Temporal identity (host:pid) names.
func (ws *chaosWorkers) byIdentity(id string) *background {
	_, pid, _ := strings.Cut(id, ":")
	n, _ := strconv.Atoi(pid)
	return ws.live[n]
}

func (ws *chaosWorkers) kill(w *background) {
	ws.t.Helper()
	pid := w.cmd.Process.Pid
	if !w.kill(ws.t) {
		ws.t.Fatalf("worker %d had exited before the kill:\n%s", pid, tail(w.stderr.String(), 30))
	}
	ws.rep.Kills++
	delete(ws.live, pid)
}

// peaks records the workers' peak memory: the highest in the report, each
// in its notes.
func (ws *chaosWorkers) peaks() {
	var each []string
	for pid, m := range ws.mem {
		m.Stop()
		ws.rep.PeakRSS = max(ws.rep.PeakRSS, m.Peak())
		each = append(each, fmt.Sprintf("%d: %d MB", pid, m.Peak()>>20))
	}
	ws.rep.note("workers' peak memory (pid: VmHWM): %s", strings.Join(each, ", "))
}

// partsDone counts the partitions the workflow knows finished (-1 when
// Temporal does not answer).
func partsDone(st *scaleout.Status) int {
	if st == nil {
		return -1
	}
	n := 0
	for _, p := range st.State.Parts {
		if p.State == scaleout.PartDone {
			n++
		}
	}
	return n
}

// TestChaosScaleOut is scenario 6: PostgreSQL to PostgreSQL in scale-out
// mode with two workers under the write load. A worker is killed half-way
// through a partition and a new one joins; the Temporal dev server is
// killed during the copy and started again on its database; the worker
// streaming changes is killed during CDC. The flow must finish the copy,
// catch up and cut over with no row lost or duplicated.
func TestChaosScaleOut(t *testing.T) {
	ts := startTemporal(t)
	src, dst := pgtest.Shared(t), pgtest.Shared(t)
	rows := chaosPick(60000, 300000)
	down := chaosPick(5*time.Second, 10*time.Second)
	const name = "chaos-scaleout"
	srcDB, dstDB := pgShopFlow(t, src, dst, "so", rows)
	rep := newReport(t, "6 scale-out", "postgres->postgres",
		fmt.Sprintf("a worker SIGKILLed during the copy, the Temporal dev server SIGKILLed and down %s during the copy, the CDC worker SIGKILLed", down))
	rep.Seed = chaosSeed(t)

	// The source is read through a narrow link until the Temporal restart
	// is over, so the copy is surely still running then.
	px := faults.NewProxy(t, "so-source", fmt.Sprintf("127.0.0.1:%d", src.Port))
	px.Bandwidth(t, chaosPick(100, 300), "downstream")
	ws := &chaosWorkers{t: t, ts: ts, rep: rep, live: map[int]*background{}, mem: map[int]*faults.MemWatch{},
		conns: []string{"src=" + px.Rewrite(src.URL(srcDB)) + "&heartbeat=1s", "dst=" + dst.URL(dstDB)}}
	ws.start()
	ws.start()
	load := startPGLoad(t, src.URL(srcDB), int64(rows)+1, rep.Seed)

	run := startFerry(t, "run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--name", name,
		"--parallel", "3", "--partition-rows", strconv.Itoa(rows/6), "--batch-rows", "500", "--heartbeat-timeout", "3s",
		"--log-format", "json", "--progress", "log")
	rep.FerryRuns++
	if !run.waitFor(t, "flow started", 30*time.Second) {
		t.Fatalf("ferry run did not start the flow:\n%s", run.stderr.String())
	}
	status := func() *scaleout.Status { return ts.flowStatus(t, name) }

	// 1. A worker killed half-way through a partition; a new one joins.
	var victim *background
	var part string
	if !chaosWait(2*time.Minute, func() bool {
		st := status()
		if st == nil {
			return false
		}
		for _, p := range st.State.Parts {
			if p.State == scaleout.PartRunning && p.Rows >= 500 && p.Rows < p.EstimatedRows*3/4 {
				if w := ws.byIdentity(p.Worker); w != nil {
					victim, part = w, p.ID
					return true
				}
			}
		}
		return false
	}) {
		t.Fatalf("no partition was seen half-way on a worker:\nrun:\n%s", tail(run.stderr.String(), 30))
	}
	before := partsDone(status())
	ws.kill(victim)
	killed := time.Now()
	t.Logf("killed worker %d during partition %s", victim.cmd.Process.Pid, part)
	ws.start()
	if !chaosWait(3*time.Minute, func() bool {
		st := status()
		if st == nil {
			return false
		}
		for _, p := range st.State.Parts {
			if p.ID == part && p.State == scaleout.PartDone {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("partition %s was never finished after its worker was killed:\n%s", part, tail(run.stderr.String(), 30))
	}
	rep.recovered(time.Since(killed))
	if partsDone(status()) <= before {
		t.Fatalf("no partition finished after the kill")
	}

	// 2. The Temporal dev server killed and started again on its database,
	// while partitions are being copied.
	st := status()
	if st == nil || st.State.Phase != scaleout.PhaseCopy || partsDone(st) == len(st.State.Parts) {
		t.Fatalf("the copy ended before the Temporal restart; make the tables larger: %+v", st)
	}
	before = partsDone(st)
	ts.stop(syscall.SIGKILL)
	time.Sleep(down)
	ts.launch(t)
	restarted := time.Now()
	if !chaosWait(3*time.Minute, func() bool {
		st := status()
		return st != nil && (partsDone(st) > before || st.State.Phase != scaleout.PhaseCopy)
	}) {
		t.Fatalf("the flow made no progress after Temporal came back: %+v\nrun:\n%s", status(), tail(run.stderr.String(), 30))
	}
	rep.recovered(time.Since(restarted))
	for pid, w := range ws.live {
		if w.hasExited() {
			t.Fatalf("worker %d exited while Temporal was down:\n%s", pid, tail(w.stderr.String(), 30))
		}
	}
	if run.hasExited() {
		t.Fatalf("ferry run exited while Temporal was down:\n%s", tail(run.stderr.String(), 30))
	}
	// Both sides say when Temporal went away and when it came back (each
	// notices the return at its next try, so wait for it a little).
	reported := func(b *background, msgs ...string) bool {
		return chaosWait(30*time.Second, func() bool {
			for _, m := range msgs {
				if !strings.Contains(b.stderr.String(), `"msg":"`+m) {
					return false
				}
			}
			return true
		})
	}
	if !reported(run, "Temporal does not answer", "Temporal answers again") {
		t.Errorf("ferry run did not report the Temporal outage and its end:\n%s", tail(run.stderr.String(), 20))
	}
	for pid, w := range ws.live {
		if !reported(w, "Temporal unreachable", "Temporal reachable again") {
			t.Errorf("worker %d did not report the Temporal outage and its end:\n%s", pid, tail(w.stderr.String(), 20))
		}
	}
	px.Clear() // the link at full speed for the rest of the copy

	// 3. During CDC, the worker streaming changes killed; another takes the
	// stream over from its last position.
	var cdcWorker *background
	if !chaosWait(5*time.Minute, func() bool {
		st := status()
		if st == nil || st.State.Phase != scaleout.PhaseCDC || st.State.CDC.Received == 0 {
			return false
		}
		for _, w := range st.Workers {
			for _, a := range w.Activities {
				if a == "cdc" {
					cdcWorker = ws.byIdentity(w.Identity)
				}
			}
		}
		return cdcWorker != nil
	}) {
		t.Fatalf("no worker was seen streaming changes: %+v\nrun:\n%s", status(), tail(run.stderr.String(), 30))
	}
	time.Sleep(1500 * time.Millisecond) // a heartbeat with a position
	ws.kill(cdcWorker)
	killed = time.Now()
	ws.start()
	d, ok := pgRecovery(t, src, srcDB, dst, dstDB, killed, 3*time.Minute)
	if !ok {
		t.Fatalf("a change written after the CDC worker was killed never reached the destination: %+v", status())
	}
	rep.recovered(d)

	// The end: the load stops, the destination catches up, cutover; then
	// verify and the direct comparison.
	time.Sleep(time.Second)
	load.report(t, rep)
	if !chaosWait(3*time.Minute, func() bool {
		for _, tk := range [][2]string{{"orders", "id"}, {"lines", "order_id, line"}} {
			a, na := pgDigest(t, src, srcDB, tk[0], tk[1])
			b, nb := pgDigest(t, dst, dstDB, tk[0], tk[1])
			if a != b || na != nb {
				return false
			}
		}
		return true
	}) {
		t.Logf("the destination did not catch up within 3 minutes; the comparison below says how far")
	}
	mustFerry(t, "flow", "cutover", name, "--temporal", ts.addr)
	select {
	case <-run.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("ferry run did not end after the cutover:\n%s", tail(run.stderr.String(), 30))
	}
	if code := run.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("ferry run exited %d after the cutover:\n%s", code, tail(run.stderr.String(), 30))
	}
	if st := status(); st != nil {
		rep.FerryChanges = st.State.CDC.Applied
		for _, p := range st.State.Parts {
			if p.Attempts > 1 {
				rep.note("partition %s finished by attempt %d, resumed at row %d of %d", p.ID, p.Attempts, p.ResumedRows, p.Rows)
			}
		}
	}
	ws.peaks()
	verifyFlow(t, rep, src.URL(srcDB), dst.URL(dstDB), 2)
	comparePGShop(t, rep, src, srcDB, dst, dstDB)
	rep.finish(t)
}
