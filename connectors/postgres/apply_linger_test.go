package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ferrydb/ferry/flow"
)

// TestIdleApplyDoesNotLinger: a change that comes while every writer is
// idle and nothing else is queued is applied at once, not after
// --apply-linger (here ten minutes): lingering only delays it. Before,
// every batch waited for the linger to fill, adding 50 ms (the default) to
// every change's lag at a steady load. A change that comes while a writer
// is busy waits only until the writers are idle again.
func TestIdleApplyDoesNotLinger(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	dst := p.srv.Connect(t, p.dst)
	mustExec(t, src, `CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items VALUES (1, 'one')`)
	// No heartbeat for an hour: its batch would end a linger too.
	cfg := flow.Config{Name: "linger", Source: p.srcURL() + "&heartbeat=1h", Destination: p.dstURL(), StateDir: t.TempDir(), ApplyLinger: 10 * time.Minute}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runFlowUntil(ctx, t, cfg) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(2 * time.Minute)
	for count(t, dst, `SELECT count(*) FROM pg_tables WHERE tablename = 'items'`) == 0 || count(t, dst, `SELECT count(*) FROM items`) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the copy did not arrive")
		}
		time.Sleep(50 * time.Millisecond)
	}
	await := func(id int, what string) {
		t.Helper()
		for count(t, dst, fmt.Sprintf(`SELECT count(*) FROM items WHERE id = %d`, id)) == 0 {
			select {
			case err := <-done:
				done <- err // for the deferred wait
				t.Fatalf("the flow ended: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatal(what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	mustExec(t, src, `INSERT INTO items VALUES (2, 'two')`)
	await(2, "a change made while the writers were idle waited for --apply-linger")

	// A change that comes while a writer is busy (its apply held by a lock
	// at the destination) lingers, and goes once the writers are idle
	// again, not at the linger's end.
	holder := p.srv.Connect(t, p.dst)
	mustExec(t, holder, `BEGIN; LOCK TABLE items IN SHARE MODE`)
	mustExec(t, src, `INSERT INTO items VALUES (3, 'three')`)
	for count(t, dst, `SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'items' AND NOT l.granted`) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the apply of row 3 never waited for the lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	mustExec(t, src, `INSERT INTO items VALUES (4, 'four')`)
	time.Sleep(200 * time.Millisecond) // row 4 reaches the batcher while the writer waits; asserts nothing on time
	mustExec(t, holder, `COMMIT`)
	await(4, "a change that came while a writer was busy waited for --apply-linger after the writers were idle again")
}
