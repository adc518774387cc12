package postgres_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connectors/postgres"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

func TestCopyReadsTheSlotSnapshotAtT0(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'before' FROM generate_series(1, 100) g`)
	c := open(t, p.srcURL())
	ctx := context.Background()
	tables, err := c.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := c.Plan(ctx, tables, connector.PlanOptions{CDC: true, Flow: "snap"})
	if err != nil {
		t.Fatal(err)
	}
	if !plan.SnapshotConsistent || plan.T0 == "" {
		t.Fatalf("plan: T0 %q, snapshot consistent %v", plan.T0, plan.SnapshotConsistent)
	}
	// Written after T0: the copy must not see it, the stream must.
	mustExec(t, src, `UPDATE t SET v = 'after' WHERE id <= 10; DELETE FROM t WHERE id > 90; INSERT INTO t VALUES (101, 'after')`)
	var rows []model.Row
	for _, part := range plan.Partitions {
		if err := c.ReadPartition(ctx, tables[0], part, "", func(b *model.RowBatch) error { rows = append(rows, b.Rows...); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if len(rows) != 100 {
		t.Fatalf("the copy read %d rows, want the 100 of T0", len(rows))
	}
	for _, r := range rows {
		if r[1] != "before" {
			t.Fatalf("the copy read %v, a row written after T0", r)
		}
	}
	// The stream from T0 carries the three statements' changes.
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var got []model.Change
	err = c.StreamChanges(sctx, tables, plan.T0, connector.StreamOptions{Flow: "snap"}, func(_ context.Context, b *model.ChangeBatch) error {
		got = append(got, b.Changes...)
		if len(got) >= 21 {
			cancel()
		}
		return nil
	})
	if sctx.Err() == nil {
		t.Fatalf("stream ended: %v", err)
	}
	ops := map[model.Op]int{}
	for _, ch := range got {
		ops[ch.Op]++
	}
	if ops[model.OpUpdate] != 10 || ops[model.OpDelete] != 10 || ops[model.OpInsert] != 1 {
		t.Fatalf("stream: %v", ops)
	}
	// The flow's resources go away with the flow.
	if err := c.DropFlow(ctx, "snap"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, src, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'ferry_snap'`) + count(t, src, `SELECT count(*) FROM pg_publication WHERE pubname = 'ferry_snap'`); n != 0 {
		t.Fatal("DropFlow left the slot or the publication")
	}
}

func TestSchemaChangesDuringCDC(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	dst := p.srv.Connect(t, p.dst)
	mustExec(t, src, `CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'one');
		CREATE TABLE other (id int PRIMARY KEY)`)
	cfg := flow.Config{Name: "schema", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Until: "caught-up"}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	// An added nullable column is added at the destination.
	mustExec(t, src, `ALTER TABLE items ADD COLUMN color text; INSERT INTO items VALUES (2, 'two', 'red'); UPDATE items SET color = 'blue' WHERE id = 1`)
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	sameTable(t, src, dst, "items", "id")

	// With ferry's DDL log (a superuser source): a rename keeps the
	// column's values, a column added with a default gives the rows
	// already copied the source's value, a truncate empties the table in
	// stream order.
	mustExec(t, src, `ALTER TABLE items RENAME name TO title; ALTER TABLE items ADD COLUMN size int NOT NULL DEFAULT 3;
		INSERT INTO items VALUES (3, 'three', NULL, 4); UPDATE items SET title = 'uno' WHERE id = 1`)
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	// New connections: the old ones cached SELECT * FROM items as it was.
	sameTable(t, p.srv.Connect(t, p.src), p.srv.Connect(t, p.dst), "items", "id")
	if n := count(t, p.srv.Connect(t, p.dst), `SELECT count(*) FROM items WHERE size = 3 AND id IN (1, 2) AND title IN ('uno', 'two')`); n != 2 {
		t.Fatal("the copied rows lost their renamed values or did not get the added column's value")
	}
}

// TestTruncateReachesTheDestination: a TRUNCATE empties the destination
// table in stream order: what the transaction inserted after it stays.
func TestTruncateReachesTheDestination(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	dst := p.srv.Connect(t, p.dst)
	mustExec(t, src, `CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items VALUES (1, 'one'), (2, 'two')`)
	cfg := flow.Config{Name: "truncate", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Until: "caught-up"}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	mustExec(t, src, `BEGIN; INSERT INTO items VALUES (3, 'three'); TRUNCATE items; INSERT INTO items VALUES (4, 'four'); COMMIT;
		INSERT INTO items VALUES (5, 'five')`)
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	sameTable(t, src, dst, "items", "id")
	if n := count(t, dst, `SELECT count(*) FROM items`); n != 2 {
		t.Fatalf("the destination holds %d rows, want the 2 written after the truncate", n)
	}
}

func TestPartitionedTableReplicatesThroughItsRoot(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	dst := p.srv.Connect(t, p.dst)
	mustExec(t, src, `CREATE TABLE m (id int, region text, v int, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
		CREATE TABLE m_eu PARTITION OF m FOR VALUES IN ('eu');
		CREATE TABLE m_us PARTITION OF m FOR VALUES IN ('us');
		INSERT INTO m SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g FROM generate_series(1, 1000) g`)
	cfg := flow.Config{Name: "parted", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Until: "caught-up", PartitionRows: 200}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	mustExec(t, src, `UPDATE m SET v = -v WHERE id <= 100; DELETE FROM m WHERE id > 900; INSERT INTO m VALUES (5000, 'eu', 1), (5001, 'us', 2);
		UPDATE m SET region = 'us' WHERE id = 2`)
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	sameTable(t, src, dst, "m", "id, region")
}

// TestKeyMoveKeepsUnchangedTOASTValues: an update that changes a row's key
// sends its unchanged TOAST values as "unchanged", yet the destination has no
// row under the new key to keep them from; they are read from the source,
// also for a row moved and then deleted, or moved and then changed.
func TestKeyMoveKeepsUnchangedTOASTValues(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	dst := p.srv.Connect(t, p.dst)
	mustExec(t, src, `CREATE TABLE docs (id int PRIMARY KEY, big text, n int, len int GENERATED ALWAYS AS (length(big)) STORED);
		INSERT INTO docs (id, big, n) SELECT g, (SELECT string_agg(md5((g * i)::text), '') FROM generate_series(1, 300) i), g FROM generate_series(1, 6) g`)
	cfg := flow.Config{Name: "moved", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Until: "caught-up"}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	mustExec(t, src, `UPDATE docs SET id = id + 100 WHERE id IN (1, 2);
		UPDATE docs SET id = 300, n = -3 WHERE id = 3;
		DELETE FROM docs WHERE id = 300;
		UPDATE docs SET id = 400 WHERE id = 4;
		UPDATE docs SET big = 'short now' WHERE id = 400;
		BEGIN; UPDATE docs SET id = 500 WHERE id = 5; UPDATE docs SET id = 501 WHERE id = 500; COMMIT`)
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	sameTable(t, src, dst, "docs", "id")
}

// TestTransactionOfLargeValuesGoesInParts: a transaction whose changes hold
// more than the stream keeps of one (16 MB) is emitted in parts at the
// last commit before it, like one of too many changes, and arrives whole
// and exact: inserts, updates of large and small columns, and a delete,
// with a row changed in two parts.
func TestTransactionOfLargeValuesGoesInParts(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	dst := p.srv.Connect(t, p.dst)
	mustExec(t, src, `CREATE TABLE docs (id int PRIMARY KEY, n int, body text);
		ALTER TABLE docs ALTER body SET STORAGE EXTERNAL;
		INSERT INTO docs VALUES (0, 0, 'before')`)
	cfg := flow.Config{Name: "parts", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Until: "caught-up"}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	// 48 values of 1 MiB, so three parts or more.
	mustExec(t, src, `BEGIN;
		INSERT INTO docs SELECT g, g, (SELECT string_agg(md5((g * 100000 + i)::text), '') FROM generate_series(1, 32768) i) FROM generate_series(1, 40) g;
		UPDATE docs SET n = -1 WHERE id = 3;
		UPDATE docs SET body = 'x' || body WHERE id BETWEEN 5 AND 12;
		DELETE FROM docs WHERE id = 7;
		UPDATE docs SET n = -2, body = 'short' WHERE id = 5;
		UPDATE docs SET n = n + 1 WHERE id = 0;
		COMMIT`)
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	sameTable(t, src, dst, "docs", "id")
}

// A backlog (changes committed over PaceLag before the stream reads them)
// is read paced and arrives whole and in order (through the small
// receive buffer of a connection to a server on this machine); once the stream follows
// the server again, its reads are not paced: a change is read the moment
// it comes.
func TestBacklogIsReadPacedAndALiveStreamIsNot(t *testing.T) {
	on, _, rcvBuf, restore := postgres.WatchPacing()
	defer restore()
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `CREATE TABLE t (id int PRIMARY KEY, v text)`)
	c := open(t, p.srcURL())
	ctx := context.Background()
	tables, err := c.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := c.Plan(ctx, tables, connector.PlanOptions{CDC: true, Flow: "pace"})
	if err != nil {
		t.Fatal(err)
	}
	const backlog = 500
	mustExec(t, src, fmt.Sprintf(`DO $$ BEGIN FOR i IN 1..%d LOOP INSERT INTO t VALUES (i, 'backlog'); COMMIT; END LOOP; END $$`, backlog))
	time.Sleep(postgres.PaceLag + 500*time.Millisecond) // the backlog is older than PaceLag when read

	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	received := make(chan model.Change, backlog+10)
	done := make(chan error, 1)
	var pacedBacklog atomic.Bool
	go func() {
		done <- c.StreamChanges(sctx, tables, plan.T0, connector.StreamOptions{Flow: "pace"}, func(_ context.Context, b *model.ChangeBatch) error {
			for _, ch := range b.Changes {
				if ch.Row[1] == "backlog" && on() {
					pacedBacklog.Store(true)
				}
				received <- ch
			}
			return nil
		})
	}()
	next := func() model.Change {
		t.Helper()
		select {
		case ch := <-received:
			return ch
		case err := <-done:
			t.Fatalf("the stream ended: %v", err)
		case <-sctx.Done():
			t.Fatal("no change came")
		}
		return model.Change{}
	}
	for i := 1; i <= backlog; i++ {
		ch := next()
		if ch.Op != model.OpInsert || fmt.Sprint(ch.Row[0]) != fmt.Sprint(i) || ch.Row[1] != "backlog" {
			t.Fatalf("change %d of the backlog: %v %v", i, ch.Op, ch.Row)
		}
	}
	if !pacedBacklog.Load() {
		t.Error("the backlog was read without pacing")
	}
	if got := rcvBuf(); got != postgres.NearRcvBuf {
		t.Errorf("the replication connection to a server on this machine asked for a receive buffer of %d bytes, want %d", got, postgres.NearRcvBuf)
	}
	// Live changes, one at a time: the first one read turns pacing off
	// (a few tries, for a walsender that a busy machine held a second).
	for i := backlog + 1; i <= backlog+5 && on(); i++ {
		mustExec(t, src, fmt.Sprintf(`INSERT INTO t VALUES (%d, 'live')`, i))
		if ch := next(); fmt.Sprint(ch.Row[0]) != fmt.Sprint(i) || ch.Row[1] != "live" {
			t.Fatalf("live change %d: %v %v", i, ch.Op, ch.Row)
		}
	}
	if on() {
		t.Error("a stream following the server is still paced")
	}
	cancel()
	<-done
	if err := c.DropFlow(ctx, "pace"); err != nil {
		t.Fatal(err)
	}
}
