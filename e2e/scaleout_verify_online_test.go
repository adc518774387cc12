package e2e

import (
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// TestScaleoutVerifyOnline: ferry flow verify --online compares a
// scale-out flow's tables on the workers while the flow streams a steady
// write load: nothing differs; a row changed at the destination behind the
// flow's back is a difference after every re-check; --online on a flow
// that does not stream is a usage error.
func TestScaleoutVerifyOnline(t *testing.T) {
	ts := startTemporal(t)
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "sovsrc"), srv.CreateDatabase(t, "sovdst")
	pgShop(t, srv, src, 6000)
	srv.Exec(t, src, `CREATE TABLE settings (id int PRIMARY KEY, v text); INSERT INTO settings SELECT g, 'v' || g FROM generate_series(1, 100) g`)
	conns := []string{"src=" + srv.URL(src), "dst=" + srv.URL(dst)}
	ts.worker(t, conns...)
	ts.worker(t, conns...)
	w := startPGWriter(t, srv.URL(src), 6001)
	run := startFerry(t, "run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--name", "sovo",
		"--parallel", "2", "--partition-rows", "1500", "--log-format", "json", "--progress", "none")
	ts.awaitStreaming(t, "sovo", run)
	for w.ops.Load() < 300 {
		time.Sleep(10 * time.Millisecond) // waits for writes, asserts nothing on time
	}
	args := []string{"flow", "verify", "sovo", "--online", "--temporal", ts.addr, "--json"}

	// Under a steady write load: equal.
	r := ferry(t, args...)
	v := parseVerified(t, r)
	if r.code != 0 || !v.Equal || len(v.Tables) != 3 || !v.Tables[0].Online {
		t.Fatalf("flow verify --online under load: %s", r)
	}
	t.Logf("under load (%d writes): %s", w.ops.Load(), r.stdout)
	w.halt(t)

	// Changed behind the flow's back: a persistent difference.
	srv.Exec(t, dst, `UPDATE settings SET v = 'tampered' WHERE id = 7`)
	r = ferry(t, args...)
	v = parseVerified(t, r)
	if r.code != 1 || v.Equal {
		t.Fatalf("a row changed at the destination: %s", r)
	}
	for _, tb := range v.Tables {
		want := 0
		if tb.Table == "public.settings" {
			want = 1
			if len(tb.Diffs) != 1 || tb.Diffs[0].Key != "id=7" || tb.Diffs[0].Kind != "different" || tb.Rechecks != 3 {
				t.Fatalf("settings: %+v\n%s", tb, r)
			}
		}
		if tb.DifferentKeys != want || tb.PendingKeys != 0 {
			t.Fatalf("%s: %d different, %d pending keys\n%s", tb.Table, tb.DifferentKeys, tb.PendingKeys, r)
		}
	}

	// A flow that does not stream: refused before any worker reads.
	mustFerry(t, "run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--name", "sovsnap",
		"--mode", "snapshot", "--tables", "public.settings", "--progress", "none")
	r = ferry(t, "flow", "verify", "sovsnap", "--online", "--temporal", ts.addr)
	if r.code != 2 {
		t.Fatalf("flow verify --online of an ended flow: want exit 2: %s", r)
	}
}
