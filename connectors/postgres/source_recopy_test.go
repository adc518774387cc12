package postgres_test

import (
	"context"
	"errors"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// TestRewrittenTableIsCopiedAgainWhileChangesStream: a column added with
// clock_timestamp() as its default, while a writer changes rows and the
// flow streams, gives every row a value at the source that no change
// carries; the flow follows (it does not stop), copies the table again
// while the writer goes on, and ends with every row's value equal to the
// source's.
func TestRewrittenTableIsCopiedAgainWhileChangesStream(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL);
		INSERT INTO items SELECT g, g FROM generate_series(1, 5000) g`)
	cfg := flow.Config{Name: "recopy", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Until: "caught-up"}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}

	// The flow runs on, and a writer with it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	running := cfg
	running.Until = ""
	flowDone := make(chan error, 1)
	go func() { flowDone <- runFlowUntil(ctx, t, running) }()
	stop := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() { writerDone <- writeItems(ctx, p.srcURL(), stop) }()

	time.Sleep(500 * time.Millisecond)
	mustExec(t, src, `ALTER TABLE items ADD COLUMN stamp timestamptz DEFAULT clock_timestamp()`)

	// The incremental snapshot of items ends while the writer writes.
	waitCopiedAgain(ctx, t, p.srv.Connect(t, p.dst), "recopy", flowDone, writerDone)
	time.Sleep(300 * time.Millisecond) // changes after the copy
	close(stop)
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-flowDone; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("the flow: %v", err)
	}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	dst := p.srv.Connect(t, p.dst)
	sameTable(t, p.srv.Connect(t, p.src), dst, "items", "id")
	if n := count(t, dst, `SELECT count(*) FROM items WHERE stamp IS NULL`); n != 0 {
		t.Fatalf("%d rows without the stamp the source gave them", n)
	}
}

// waitCopiedAgain waits until the destination's checkpoints say the flow
// copied public.items again, failing if the flow or the writer stops first.
func waitCopiedAgain(ctx context.Context, t *testing.T, dst *pgx.Conn, flowName string, flowDone, writerDone <-chan error) {
	t.Helper()
	for done := false; !done; {
		select {
		case err := <-flowDone:
			t.Fatalf("the flow stopped: %v", err)
		case err := <-writerDone:
			t.Fatalf("the writer stopped: %v", err)
		case <-ctx.Done():
			t.Fatal("the table was not copied again within 2 minutes")
		case <-time.After(200 * time.Millisecond):
		}
		err := dst.QueryRow(ctx, `SELECT coalesce((value::jsonb->>'done')::bool, false) FROM _ferry.checkpoints WHERE flow = $1 AND key = 'snapshot/"public"."items"'`, flowName).Scan(&done)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
	}
}

// writeItems inserts, updates and deletes rows of items until stop closes.
func writeItems(ctx context.Context, dsn string, stop <-chan struct{}) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	rng := rand.New(rand.NewSource(1))
	next := 5001
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		id := rng.Intn(next-1) + 1
		switch rng.Intn(4) {
		case 0:
			_, err = conn.Exec(ctx, `INSERT INTO items (id, n) VALUES ($1, $1)`, next)
			next++
		case 1:
			_, err = conn.Exec(ctx, `DELETE FROM items WHERE id = $1`, id)
		default:
			_, err = conn.Exec(ctx, `UPDATE items SET n = n + 1 WHERE id = $1`, id)
		}
		if err != nil {
			return err
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestWithoutDDLLogDefaultIsCopiedAgain: without the DDL log (a role that
// may not create event triggers) the stream sees a column added with a
// default only as a new column in a relation message, and the catalog,
// read then, says it has a default but not which value each row got: the
// flow copies the table again rather than stopping (a stop had no way on
// but --restart: a rerun stops at the same message), and ends equal.
func TestWithoutDDLLogDefaultIsCopiedAgain(t *testing.T) {
	srv := pgtest.Shared(t)
	db, role := managedSource(t, srv, "", "REPLICATION")
	dstDB := srv.CreateDatabase(t, "nologdst")
	src := srv.Connect(t, db)
	mustExec(t, src, `INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 1000) g`)
	cfg := flow.Config{Name: "nologdef", Source: srv.UserURL(role, "pw", db), Destination: srv.URL(dstDB), StateDir: t.TempDir(), Until: "caught-up"}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	mustExec(t, src, `ALTER TABLE items ADD COLUMN stamp timestamptz DEFAULT clock_timestamp(); INSERT INTO items (id, v) VALUES (1001, 'new');
		UPDATE items SET v = 'changed' WHERE id = 5`)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	running := cfg
	running.Until = ""
	flowDone := make(chan error, 1)
	go func() { flowDone <- runFlowUntil(ctx, t, running) }()
	waitCopiedAgain(ctx, t, srv.Connect(t, dstDB), "nologdef", flowDone, nil)
	cancel()
	if err := <-flowDone; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("the flow: %v", err)
	}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	dst := srv.Connect(t, dstDB)
	sameTable(t, srv.Connect(t, db), dst, "items", "id")
	if n := count(t, dst, `SELECT count(*) FROM items WHERE stamp IS NULL`); n != 0 {
		t.Fatalf("%d rows without the stamp the source gave them", n)
	}
}

// TestTypeChangeWithUsingIsCopiedAgain: int to text with a USING that
// changes the values. The destination refuses the type change (not a
// widening) and says to change the column by hand; done, the flow goes on,
// copies the table again, and the values are the source's.
func TestTypeChangeWithUsingIsCopiedAgain(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `CREATE TABLE items (id int PRIMARY KEY, n int); INSERT INTO items SELECT g, g FROM generate_series(1, 500) g`)
	cfg := flow.Config{Name: "using", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Until: "caught-up"}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	mustExec(t, src, `ALTER TABLE items ALTER n TYPE text USING 'n=' || n`)
	mustExec(t, src, `INSERT INTO items VALUES (501, 'new')`)
	if err := runFlow(t, cfg); err == nil || !strings.Contains(err.Error(), "change the destination column by hand (to text)") {
		t.Fatalf("want the destination's refusal of int to text, got %v", err)
	}
	mustExec(t, p.srv.Connect(t, p.dst), `ALTER TABLE items ALTER n TYPE text`)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	running := cfg
	running.Until = ""
	flowDone := make(chan error, 1)
	go func() { flowDone <- runFlowUntil(ctx, t, running) }()
	waitCopiedAgain(ctx, t, p.srv.Connect(t, p.dst), "using", flowDone, nil)
	cancel()
	if err := <-flowDone; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("the flow: %v", err)
	}
	dst := p.srv.Connect(t, p.dst)
	sameTable(t, p.srv.Connect(t, p.src), dst, "items", "id")
	if n := count(t, dst, `SELECT count(*) FROM items WHERE n = 'n=7'`); n != 1 {
		t.Fatal("the rows copied before the change do not hold the value USING gave them")
	}
}
