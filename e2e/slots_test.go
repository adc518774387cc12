package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// A flow left behind keeps its replication slot, which retains WAL at the
// source: the next flow on that server warns about it with the retained
// size and how to drop it, and ferry drop releases the slot and the
// publication (and nothing of the other flow).
func TestInactiveSlotIsReportedAndDropped(t *testing.T) {
	srv := pgtest.Start(t)
	src := srv.CreateDatabase(t, "slotsrc")
	dst1, dst2 := srv.CreateDatabase(t, "slotdst1"), srv.CreateDatabase(t, "slotdst2")
	srv.Exec(t, src, `CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, 'x' FROM generate_series(1, 1000) g`)
	dir := t.TempDir()
	mustFerry(t, "sync", srv.URL(src), srv.URL(dst1), "--name", "leftover", "--state-dir", dir, "--until", "caught-up", "--progress", "none")
	srv.Exec(t, src, `INSERT INTO items SELECT g, repeat('y', 500) FROM generate_series(1001, 20000) g`)

	r := mustFerry(t, "sync", srv.URL(src), srv.URL(dst2), "--name", "other", "--state-dir", dir, "--until", "caught-up",
		"--progress", "none", "--log-format", "json")
	var warned map[string]any
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["slot"] == "ferry_leftover" && m["level"] == "WARN" {
			warned = m
		}
	}
	if warned == nil {
		t.Fatalf("no warning about the inactive slot ferry_leftover:\n%s", r.stderr)
	}
	if b, _ := warned["retained_bytes"].(float64); b < 1e6 {
		t.Fatalf("the warning says the slot retains %v bytes; 19000 rows were written since", warned["retained_bytes"])
	}
	msg, _ := warned["msg"].(string)
	for _, want := range []string{"ferry drop", "pg_drop_replication_slot('ferry_leftover')", "MB of WAL"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("the warning does not say %q: %s", want, msg)
		}
	}

	mustFerry(t, "drop", srv.URL(src), srv.URL(dst1), "--name", "leftover", "--state-dir", dir)
	conn := srv.Connect(t, src)
	var slots, pubs string
	if err := conn.QueryRow(context.Background(), `SELECT coalesce(string_agg(slot_name, ',' ORDER BY slot_name), '') FROM pg_replication_slots`).Scan(&slots); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(context.Background(), `SELECT coalesce(string_agg(pubname, ',' ORDER BY pubname), '') FROM pg_publication`).Scan(&pubs); err != nil {
		t.Fatal(err)
	}
	if slots != "ferry_other" || pubs != "ferry_other" {
		t.Fatalf("after ferry drop: slots %q, publications %q; want only the other flow's", slots, pubs)
	}
}
