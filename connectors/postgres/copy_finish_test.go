package postgres_test

import (
	"testing"
	"time"

	"github.com/ferrydb/ferry/flow"
)

// TestCopyFinishesATableWhileOthersCopy: the copy takes the largest table
// first and builds its primary key as soon as its last partition is
// written, while the lane goes on with the smaller table, instead of after
// every table. The smaller table's writes are held by a lock at the
// destination (the table exists there already); the larger table's key
// must appear meanwhile. Both arrive whole once the lock is released.
func TestCopyFinishesATableWhileOthersCopy(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `CREATE TABLE small (id int PRIMARY KEY, v text); INSERT INTO small SELECT g, 'v' || g FROM generate_series(1, 50) g;
		CREATE TABLE big (id int PRIMARY KEY, v text); INSERT INTO big SELECT g, repeat('x', 100) || g FROM generate_series(1, 30000) g;
		ANALYZE`)
	dst := p.srv.Connect(t, p.dst)
	mustExec(t, dst, `CREATE TABLE small (id int PRIMARY KEY, v text)`)
	holder := p.srv.Connect(t, p.dst)
	mustExec(t, holder, `BEGIN; LOCK TABLE small IN SHARE MODE`)
	cfg := flow.Config{Name: "finish", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Mode: flow.ModeSnapshot,
		Parallel: 1, PartitionRows: 10000}
	done := make(chan error, 1)
	go func() { done <- runFlow(t, cfg) }()
	deadline := time.Now().Add(time.Minute)
	for count(t, dst, `SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND conrelid = to_regclass('big')`) == 0 {
		select {
		case err := <-done:
			t.Fatalf("the copy ended while small's writes were held: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("big has no primary key while small's copy is held: its key waits for every table")
		}
		time.Sleep(50 * time.Millisecond)
	}
	mustExec(t, holder, `COMMIT`)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sameTable(t, src, dst, "big", "id")
	sameTable(t, src, dst, "small", "id")
}
