package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferrydb/ferry/flow"
)

// TestIdleApplyDoesNotLinger: a change that comes while every writer is
// idle and nothing else is queued is applied at once, not after
// --apply-linger (here ten minutes): lingering only delays it. Before,
// every batch waited for the linger to fill, adding 50 ms (the default) to
// every change's lag at a steady load.
func TestIdleApplyDoesNotLinger(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	dst := p.srv.Connect(t, p.dst)
	mustExec(t, src, `CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items VALUES (1, 'one')`)
	cfg := flow.Config{Name: "linger", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), ApplyLinger: 10 * time.Minute}
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
	mustExec(t, src, `INSERT INTO items VALUES (2, 'two')`)
	for count(t, dst, `SELECT count(*) FROM items WHERE id = 2`) == 0 {
		select {
		case err := <-done:
			done <- err // for the deferred wait
			t.Fatalf("the flow ended: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("a change made while the writers were idle waited for --apply-linger")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
