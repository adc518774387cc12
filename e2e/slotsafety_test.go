package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// TestSlotNearItsLimitWarnsAndLostSlotStops: a source started with
// max_slot_wal_keep_size keeps at most that much WAL for a slot. A flow
// whose slot retains more than 80% of it is warned with the numbers when it
// resumes; a flow whose slot the server invalidated (wal_status lost, WAL
// written while it was stopped) or dropped stops with exit 2, saying what is
// lost and the way on.
func TestSlotNearItsLimitWarnsAndLostSlotStops(t *testing.T) {
	const limit = 64 << 20
	srv := pgtest.Start(t, pgtest.Setting("max_slot_wal_keep_size=64MB"))
	src := srv.CreateDatabase(t, "slotsafe")
	dstNear, dstLost := srv.CreateDatabase(t, "near_dst"), srv.CreateDatabase(t, "lost_dst")
	srv.Exec(t, src, `CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, 'x' FROM generate_series(1, 1000) g`)
	dir := t.TempDir()
	args := func(name, dst string) []string {
		return []string{"sync", srv.URL(src), srv.URL(dst), "--name", name, "--state-dir", dir, "--until", "caught-up", "--progress", "none", "--log-format", "json"}
	}
	mustFerry(t, args("near", dstNear)...)
	mustFerry(t, args("lost", dstLost)...)

	conn := srv.Connect(t, src)
	ctx := context.Background()
	next := 2000
	// switchWAL writes a row and starts a new WAL segment (16 MB further).
	switchWAL := func(checkpoint bool) {
		t.Helper()
		next++
		srv.Exec(t, src, `INSERT INTO items VALUES ($1, 'w')`, next)
		srv.Exec(t, src, `SELECT pg_switch_wal()`)
		if checkpoint {
			srv.Exec(t, src, `CHECKPOINT`)
		}
	}
	safe := func(slot string) (int64, string) {
		t.Helper()
		var n *int64
		var status string
		if err := conn.QueryRow(ctx, `SELECT safe_wal_size, wal_status FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&n, &status); err != nil {
			t.Fatal(err)
		}
		if n == nil {
			return -1, status
		}
		return *n, status
	}
	for i := 0; ; i++ {
		if n, _ := safe("ferry_near"); n < limit/5 {
			break
		}
		if i == 10 {
			t.Fatal("the slot never neared max_slot_wal_keep_size")
		}
		switchWAL(false)
	}
	if _, status := safe("ferry_near"); status == "lost" {
		t.Fatal("the slot was lost before the flow resumed (no checkpoint ran, so it should not be)")
	}

	r := mustFerry(t, args("near", dstNear)...)
	var warned map[string]any
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["level"] == "WARN" && m["slot"] == "ferry_near" && m["limit_bytes"] != nil {
			warned = m
		}
	}
	if warned == nil {
		t.Fatalf("no warning that slot ferry_near nears max_slot_wal_keep_size:\n%s", r.stderr)
	}
	if b, _ := warned["retained_bytes"].(float64); b < 0.8*limit {
		t.Fatalf("the warning says the slot retains %v bytes, want over 80%% of %d", warned["retained_bytes"], limit)
	}
	if l, _ := warned["limit_bytes"].(float64); l != limit {
		t.Fatalf("the warning says the limit is %v bytes, want %d", warned["limit_bytes"], limit)
	}
	if msg, _ := warned["msg"].(string); !strings.Contains(msg, "max_slot_wal_keep_size 64 MiB") || !strings.Contains(msg, "catch up") {
		t.Fatalf("the warning does not give the numbers and the way on: %s", msg)
	}

	// More WAL and a checkpoint: the server invalidates the other slot.
	for i := 0; ; i++ {
		if _, status := safe("ferry_lost"); status == "lost" {
			break
		}
		if i == 10 {
			t.Fatal("the slot was never invalidated")
		}
		switchWAL(true)
	}
	r = ferry(t, args("lost", dstLost)...)
	if r.code != 2 {
		t.Fatalf("a flow whose slot was invalidated: want exit 2, got %s", r)
	}
	for _, want := range []string{"ferry_lost", "was invalidated", "wal_status lost", "max_slot_wal_keep_size (64 MiB)", "changes since the flow's position", "--restart"} {
		if !strings.Contains(r.stderr, want) {
			t.Fatalf("the error does not say %q:\n%s", want, r.stderr)
		}
	}

	// A slot dropped under a stopped flow: exit 2 too.
	srv.Exec(t, src, `SELECT pg_drop_replication_slot('ferry_near')`)
	r = ferry(t, args("near", dstNear)...)
	if r.code != 2 || !strings.Contains(r.stderr, "replication slot ferry_near does not exist") || !strings.Contains(r.stderr, "--restart") {
		t.Fatalf("a flow whose slot was dropped: want exit 2 naming the slot and --restart, got %s", r)
	}
}

// TestSlotInvalidatedDuringCDCStops: while a flow streams, its destination
// is locked so nothing is applied and the slot's position stays where it
// is; WAL written past max_slot_wal_keep_size and a checkpoint make the
// server invalidate the slot under the running flow (it ends the flow's
// walsender). The flow stops with exit 2 and the clear message instead of
// reconnecting forever.
func TestSlotInvalidatedDuringCDCStops(t *testing.T) {
	srv := pgtest.Start(t, pgtest.Setting("max_slot_wal_keep_size=32MB"))
	src, dst := srv.CreateDatabase(t, "slotlive"), srv.CreateDatabase(t, "slotlive_dst")
	srv.Exec(t, src, `CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, 'x' FROM generate_series(1, 100) g`)
	bg := startFerry(t, "sync", srv.URL(src), srv.URL(dst), "--name", "live", "--state-dir", t.TempDir(), "--progress", "none", "--log-format", "json")
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("CDC never started:\n%s", bg.stderr.String())
	}
	ctx := context.Background()
	lock := srv.Connect(t, dst)
	tx, err := lock.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // the test's end
	if _, err := tx.Exec(ctx, `LOCK TABLE items IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	conn := srv.Connect(t, src)
	for i := 0; ; i++ {
		var status string
		if err := conn.QueryRow(ctx, `SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'ferry_live'`).Scan(&status); err != nil {
			t.Fatal(err)
		}
		if status == "lost" {
			break
		}
		if i == 12 {
			t.Fatalf("the slot was never invalidated (wal_status %s)", status)
		}
		srv.Exec(t, src, `INSERT INTO items VALUES ($1, 'w')`, 1000+i)
		srv.Exec(t, src, `SELECT pg_switch_wal()`)
		srv.Exec(t, src, `CHECKPOINT`)
	}
	select {
	case <-bg.done:
	case <-time.After(90 * time.Second):
		t.Fatalf("ferry still runs 90 s after its slot was invalidated:\n%s", bg.stderr.String())
	}
	out := bg.stderr.String()
	if code := bg.cmd.ProcessState.ExitCode(); code != 2 {
		t.Fatalf("exit code %d, want 2:\n%s", code, out)
	}
	for _, want := range []string{"ferry_live", "was invalidated", "changes since the flow's position", "--restart"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the error does not say %q:\n%s", want, out)
		}
	}
}
