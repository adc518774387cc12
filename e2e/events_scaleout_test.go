package e2e

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// TestScaleOutPostgresToNATS runs a flow into NATS JetStream on workers
// (ferry worker, ferry run) under writes: the copy's partitions are sent
// as read events by the workers, the CDC activity streams every change as
// an event, and a consumer rebuilds the source's state, each change once.
func TestScaleOutPostgresToNATS(t *testing.T) {
	ts := startTemporal(t)
	srv := pgtest.Shared(t)
	ns := startNATS(t)
	src := srv.CreateDatabase(t, "sonats")
	pgShop(t, srv, src, 2000)
	w := startPGWriter(t, srv.URL(src), 2001)
	worker := ts.worker(t, "src="+srv.URL(src), "dst="+ns.ClientURL()+"/?stream=soshop&subject=soshop")
	mustFerry(t, "run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--name", "sonats",
		"--parallel", "2", "--partition-rows", "500", "--detach")
	ts.awaitStreaming(t, "sonats", worker)
	n0 := w.ops.Load()
	for deadline := time.Now().Add(60 * time.Second); w.ops.Load() < n0+100 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	w.halt(t)

	// The stream catches up with the writes: wait until the state rebuilt
	// from it is the source's, then check it the way a failure shows.
	wantOrders, wantLines := sourceRows(t, srv, src, ordersQuery), sourceRows(t, srv, src, linesQuery)
	var msgs []busMsg
	for deadline := time.Now().Add(2 * time.Minute); ; {
		msgs = readNATS(t, ns.ClientURL(), "soshop")
		st := rebuildOverlapping(t, msgs)
		if sameRebuilt(st["soshop.public.orders"], wantOrders) && sameRebuilt(st["soshop.public.lines"], wantLines) || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	mustFerry(t, "flow", "cancel", "sonats", "--temporal", ts.addr)
	uniqueIDs(t, msgs)
	checkSources(t, msgs, "postgresql", src, map[string]bool{"lsn": true, "txId": true})
	// Workers copy partitions at their own snapshots, so the stream from t0
	// overlaps them, as a MySQL source's does.
	st := rebuildOverlapping(t, msgs)
	t.Logf("%d messages; writer made %d changes", len(msgs), w.ops.Load())
	sameState(t, "orders", st["soshop.public.orders"], wantOrders)
	sameState(t, "lines", st["soshop.public.lines"], wantLines)
}

// sameRebuilt tells whether rows rebuilt from events equal the source's on
// the columns the source query selected, without failing the test.
func sameRebuilt(got, want map[string]map[string]any) bool {
	if len(got) != len(want) {
		return false
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			return false
		}
		for c, wv := range w {
			if !reflect.DeepEqual(g[c], wv) {
				return false
			}
		}
	}
	return true
}

// TestScaleOutKafkaRefused: a worker given a kafka destination stops
// before it polls, with exit 2 and what to do instead.
func TestScaleOutKafkaRefused(t *testing.T) {
	r := ferry(t, "worker", "--temporal", "127.0.0.1:1", "--connection", "src=postgres://127.0.0.1:1/shop",
		"--connection", "dst=kafka://127.0.0.1:9092/?topic=shop.{schema}.{table}")
	if r.code != 2 || !strings.Contains(r.stderr, `connection "dst" is a kafka destination, which ferry worker cannot run`) || !strings.Contains(r.stderr, "ferry sync") {
		t.Fatalf("a worker with a kafka destination: want exit 2 saying it cannot run it and to use ferry sync:\n%s", r)
	}
}
