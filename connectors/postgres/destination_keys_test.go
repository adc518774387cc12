package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/connectors/postgres"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// primaryKey describes a table's primary key at the destination:
// "name (col, col)", or "" without one.
func primaryKey(t *testing.T, conn *pgx.Conn, table string) string {
	t.Helper()
	var s *string
	if err := conn.QueryRow(context.Background(), `SELECT c.conname || ' (' || (SELECT string_agg(a.attname, ', ' ORDER BY k.ord)
			FROM unnest(c.conkey) WITH ORDINALITY k(attnum, ord) JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum) || ')'
		FROM pg_constraint c WHERE c.conrelid = $1::regclass AND c.contype = 'p'`, table).Scan(&s); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	if s == nil {
		return ""
	}
	return *s
}

// keyWatch is a destination that notes each table's primary key when the
// engine asks to finish it, and can fail a finish as a killed process would
// (before the finish, or after it).
type keyWatch struct {
	*postgres.Conn
	t           *testing.T
	conn        *pgx.Conn
	atFinish    map[string]string // table: its primary key when FinishTable was called
	failBefore  bool
	failAfter   bool
	finishCalls int
}

var errKilled = errors.New("killed")

func (k *keyWatch) FinishTable(ctx context.Context, tb *model.Table) error {
	k.finishCalls++
	k.atFinish[tb.Namespace.String()] = primaryKey(k.t, k.conn, tb.Namespace.String())
	if k.failBefore {
		return errKilled
	}
	if err := k.Conn.FinishTable(ctx, tb); err != nil {
		return err
	}
	if k.failAfter {
		return errKilled
	}
	return nil
}

// TestDeferredKeyIsBuiltWhenTheCopyEnds: a table ferry creates for the copy
// has no primary key while it is loaded and gets the source's (its name,
// its columns in order) when the copy ends, before change data capture,
// which then applies updates and deletes by it.
func TestDeferredKeyIsBuiltWhenTheCopyEnds(t *testing.T) {
	p := newPair(t)
	srcDB := p.srv.Connect(t, p.src)
	dstDB := p.srv.Connect(t, p.dst)
	mustExec(t, srcDB, `
		CREATE TABLE orders (region int, id bigint, note text, CONSTRAINT orders_by_region PRIMARY KEY (region, id));
		CREATE INDEX orders_note ON orders (note);
		INSERT INTO orders SELECT g % 5, g, 'note ' || g FROM generate_series(1, 5000) g;`)
	cfg := flow.Config{Name: "deferred", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Until: "caught-up", PartitionRows: 1000}
	dst := &keyWatch{Conn: open(t, p.dstURL()), t: t, conn: dstDB, atFinish: map[string]string{}}
	if err := runEngine(t, cfg, open(t, p.srcURL()), dst); err != nil {
		t.Fatal(err)
	}
	if got, ok := dst.atFinish["public.orders"]; !ok || got != "" {
		t.Fatalf("primary key while the copy loaded the table: %q (finished: %v), want none", got, ok)
	}
	if got, want := primaryKey(t, dstDB, "orders"), "orders_by_region (region, id)"; got != want {
		t.Fatalf("primary key after the copy: %q, want %q", got, want)
	}
	if n := count(t, dstDB, `SELECT count(*) FROM _ferry.deferred_keys`); n != 0 {
		t.Fatalf("%d tables still recorded as waiting for their key", n)
	}
	sameTable(t, srcDB, dstDB, "orders", "region, id")

	mustExec(t, srcDB, `UPDATE orders SET note = 'changed' WHERE id % 7 = 0; DELETE FROM orders WHERE id % 11 = 0;
		INSERT INTO orders VALUES (9, 9000, 'new'); UPDATE orders SET region = 8 WHERE id = 1`)
	if err := runEngine(t, cfg, open(t, p.srcURL()), open(t, p.dstURL())); err != nil {
		t.Fatal(err)
	}
	sameTable(t, srcDB, dstDB, "orders", "region, id")
}

// copiedTwice copies table "dup" of the pair into a destination table
// created for the copy, then writes part of it again under another
// partition and checkpoint, as a partition read again outside the plan's
// snapshot does: raw batches first, then decoded rows read after some of
// them changed at the source. It returns the destination and the table.
func copiedTwice(t *testing.T, p *pair) (*postgres.Conn, *model.Table) {
	t.Helper()
	srcDB := p.srv.Connect(t, p.src)
	mustExec(t, srcDB, `
		CREATE TABLE dup (id int PRIMARY KEY, v text);
		INSERT INTO dup SELECT g, 'v' || g FROM generate_series(1, 3000) g;`)
	src, dst, tb, f, plan := rawCopySetup(t, p, true)
	ctx := context.Background()
	read := func(raw bool) []*model.RowBatch {
		var batches []*model.RowBatch
		emit := func(b *model.RowBatch) error {
			b.Table = tb
			batches = append(batches, b)
			return nil
		}
		for _, part := range plan.Partitions {
			var err error
			if raw {
				err = src.ReadPartitionRaw(ctx, tb, part, "", f, emit)
			} else {
				err = src.ReadPartition(ctx, tb, part, "", emit)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		return batches
	}
	w, err := dst.OpenWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	write := func(b *model.RowBatch, partition string, n int) {
		b.Partition = partition
		b.Checkpoint = &model.Checkpoint{Flow: "dup", Key: "partition/" + partition, Value: fmt.Sprintf("%s #%d", b.Cursor, n)}
		if err := w.WriteRows(ctx, b); err != nil {
			t.Fatalf("write to partition %s: %v", partition, err)
		}
	}
	batches := read(true)
	if len(batches) != 3 {
		t.Fatalf("read %d batches, want 3 of 1000 rows", len(batches))
	}
	for i, b := range batches {
		write(b, "p1", i)
	}
	write(batches[1], "p2", 0)
	mustExec(t, srcDB, `UPDATE dup SET v = 'newer' WHERE id > 2900`)
	decoded := read(false)
	write(decoded[2], "p3", 0)
	return dst, tb
}

// TestRowsCopiedTwiceAreReducedToOnePerKey: rows written twice while the
// key is deferred are kept until the copy ends; finishing the table leaves
// one row per key, adds the key and logs a warning saying how many rows it
// removed and why.
func TestRowsCopiedTwiceAreReducedToOnePerKey(t *testing.T) {
	p := newPair(t)
	dstDB := p.srv.Connect(t, p.dst)
	dst, tb := copiedTwice(t, p)
	if n := count(t, dstDB, `SELECT count(*) FROM dup`); n != 5000 {
		t.Fatalf("before the key, the destination has %d rows, want the 3000 and 2000 written again", n)
	}
	var logs bytes.Buffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	if err := dst.FinishTable(context.Background(), tb); err != nil {
		t.Fatal(err)
	}
	if n := count(t, dstDB, `SELECT count(*) FROM dup`); n != 3000 {
		t.Fatalf("after finishing, %d rows, want 3000", n)
	}
	if n := count(t, dstDB, `SELECT count(DISTINCT id) FROM dup`); n != 3000 {
		t.Fatalf("after finishing, %d keys, want 3000", n)
	}
	// Each kept row is one of the versions the copy read.
	if n := count(t, dstDB, `SELECT count(*) FROM dup WHERE v <> 'v' || id AND NOT (id > 2900 AND v = 'newer')`); n != 0 {
		t.Fatalf("%d rows hold a value the copy never read", n)
	}
	if got := primaryKey(t, dstDB, "dup"); got != "dup_pkey (id)" {
		t.Fatalf("primary key: %q", got)
	}
	out := logs.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "table=public.dup") || !strings.Contains(out, "rows_removed=2000") || !strings.Contains(out, "moved ahead of its cursor") {
		t.Fatalf("want a warning naming the table, the 2000 rows removed and why; logged:\n%s", out)
	}
	// Finishing again (a run resumed after it) changes nothing.
	logs.Reset()
	if err := dst.FinishTable(context.Background(), tb); err != nil {
		t.Fatal(err)
	}
	if n := count(t, dstDB, `SELECT count(*) FROM dup`); n != 3000 || logs.Len() != 0 {
		t.Fatalf("finishing again: %d rows, logged %q", n, logs.String())
	}
}

// TestDeferredKeyRefusesChanges: changes are never applied to a table
// whose key is still deferred (its upserts need the key), and a flow that
// only streams changes cannot start on such a table: both say why.
func TestDeferredKeyRefusesChanges(t *testing.T) {
	p := newPair(t)
	dst, tb := copiedTwice(t, p)
	ctx := context.Background()
	a, err := dst.OpenApplier(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	err = a.ApplyChanges(ctx, &model.ApplyBatch{Tables: []*model.TableChanges{{Table: tb, Upserts: []model.Row{{int64(1), "x"}}}}})
	if err == nil || !strings.Contains(err.Error(), "public.dup") || !strings.Contains(err.Error(), "copy that has not finished") {
		t.Fatalf("applying a change to a table whose key is deferred: %v", err)
	}
	err = open(t, p.dstURL()).CreateTables(ctx, []*model.Table{tb})
	if !errs.IsConfigError(err) || !strings.Contains(err.Error(), "public.dup") || !strings.Contains(err.Error(), "has not finished") {
		t.Fatalf("creating the tables of a flow without copy: %v", err)
	}
	// A flow that copies takes the table as it is.
	if err := open(t, p.dstURL()).CreateTablesForCopy(ctx, []*model.Table{tb}); err != nil {
		t.Fatal(err)
	}
}

// TestExistingTableKeepsItsKeyDuringTheCopy: a table that was at the
// destination before the flow keeps its primary key, and a batch written
// twice is upserted as before.
func TestExistingTableKeepsItsKeyDuringTheCopy(t *testing.T) {
	p := newPair(t)
	srcDB := p.srv.Connect(t, p.src)
	dstDB := p.srv.Connect(t, p.dst)
	mustExec(t, srcDB, `CREATE TABLE kept (id int PRIMARY KEY, v text); INSERT INTO kept SELECT g, 'v' || g FROM generate_series(1, 2000) g`)
	mustExec(t, dstDB, `CREATE TABLE kept (id int, v text, CONSTRAINT mine PRIMARY KEY (id)); INSERT INTO kept VALUES (1, 'stale'), (2, 'stale')`)
	cfg := flow.Config{Name: "kept", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Mode: flow.ModeSnapshot}
	dst := &keyWatch{Conn: open(t, p.dstURL()), t: t, conn: dstDB, atFinish: map[string]string{}}
	if err := runEngine(t, cfg, open(t, p.srcURL()), dst); err != nil {
		t.Fatal(err)
	}
	if got := dst.atFinish["public.kept"]; got != "mine (id)" {
		t.Fatalf("primary key during the copy: %q, want the table's own", got)
	}
	if got := primaryKey(t, dstDB, "kept"); got != "mine (id)" {
		t.Fatalf("primary key after the copy: %q", got)
	}
	if n := count(t, dstDB, `SELECT count(*) FROM _ferry.deferred_keys`); n != 0 {
		t.Fatal("an existing table was recorded as waiting for its key")
	}
	sameTable(t, srcDB, dstDB, "kept", "id")
}

// TestFinishInterruptedIsCompletedOnTheNextRun: a run that dies before a
// table's key is added leaves the table without key and recorded, with no
// change applied; the next run adds the key before it applies changes. A
// run that dies after the key was added but before it noted the copy done
// finishes again harmlessly. A finisher killed while it waits for the
// table leaves it as it was.
func TestFinishInterruptedIsCompletedOnTheNextRun(t *testing.T) {
	p := newPair(t)
	srcDB := p.srv.Connect(t, p.src)
	dstDB := p.srv.Connect(t, p.dst)
	mustExec(t, srcDB, `CREATE TABLE r (id int PRIMARY KEY, v text); INSERT INTO r SELECT g, 'v' || g FROM generate_series(1, 3000) g`)
	cfg := flow.Config{Name: "interrupted", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Until: "caught-up", PartitionRows: 500}
	watch := func() *keyWatch {
		return &keyWatch{Conn: open(t, p.dstURL()), t: t, conn: dstDB, atFinish: map[string]string{}}
	}

	dst := watch()
	dst.failBefore = true
	if err := runEngine(t, cfg, open(t, p.srcURL()), dst); !errors.Is(err, errKilled) {
		t.Fatalf("first run: %v, want the kill", err)
	}
	mustExec(t, srcDB, `UPDATE r SET v = 'changed' WHERE id <= 10; DELETE FROM r WHERE id > 2990`)
	if got := primaryKey(t, dstDB, "r"); got != "" {
		t.Fatalf("primary key after the kill: %q, want none yet", got)
	}
	if n := count(t, dstDB, `SELECT count(*) FROM r WHERE v = 'changed'`) + count(t, dstDB, `SELECT count(*) FROM r WHERE id > 2990`); n != 10 {
		t.Fatal("changes were applied before the table was finished")
	}
	// A finisher that dies while it waits for the table (ferry killed; its
	// session ends) leaves it waiting for its key.
	ctx, cancel := context.WithCancel(context.Background())
	locker, err := dstDB.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := locker.Exec(context.Background(), `LOCK TABLE r IN ACCESS SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	tables, err := open(t, p.srcURL()).Tables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	finisher := open(t, p.dstURL())
	done := make(chan error, 1)
	go func() { done <- finisher.FinishTable(ctx, tables[0]) }()
	observer := p.srv.Connect(t, p.dst)
	for deadline := time.Now().Add(30 * time.Second); count(t, observer, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE%'`) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the finisher never waited for the table")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the cancelled finisher returned no error")
	}
	if err := locker.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := primaryKey(t, dstDB, "r"); got != "" {
		t.Fatalf("primary key after a killed finisher: %q, want none yet", got)
	}

	dst = watch()
	dst.failAfter = true
	if err := runEngine(t, cfg, open(t, p.srcURL()), dst); !errors.Is(err, errKilled) {
		t.Fatalf("second run: %v, want the kill", err)
	}
	if got := dst.atFinish["public.r"]; got != "" {
		t.Fatalf("primary key when the second run finished the table: %q, want none (the first run did not add it)", got)
	}
	if got := primaryKey(t, dstDB, "r"); got != "r_pkey (id)" {
		t.Fatalf("primary key after the second run: %q", got)
	}

	dst = watch()
	if err := runEngine(t, cfg, open(t, p.srcURL()), dst); err != nil {
		t.Fatal(err)
	}
	if dst.finishCalls != 1 {
		t.Fatalf("the third run finished %d tables, want the one the second run did not note as done", dst.finishCalls)
	}
	if got := primaryKey(t, dstDB, "r"); got != "r_pkey (id)" {
		t.Fatalf("primary key after the third run: %q", got)
	}
	sameTable(t, srcDB, dstDB, "r", "id")
}
