package mysql

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/model"
)

// streamUntil streams from position from until a batch reaches head (or
// stop says so), and returns the batches and the stream's error.
func streamUntil(t *testing.T, c *Conn, tables []*model.Table, from, head model.Position, stop func([]*model.ChangeBatch) bool) ([]*model.ChangeBatch, error) {
	t.Helper()
	return streamWith(t, c, tables, from, head, connector.StreamOptions{}, stop)
}

// streamWith is streamUntil with stream options.
func streamWith(t *testing.T, c *Conn, tables []*model.Table, from, head model.Position, opts connector.StreamOptions, stop func([]*model.ChangeBatch) bool) ([]*model.ChangeBatch, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	var got []*model.ChangeBatch
	err := c.StreamChanges(ctx, tables, from, opts, func(ctx context.Context, b *model.ChangeBatch) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, b)
		if stop != nil && stop(got) {
			cancel()
			return nil
		}
		if head != "" {
			if cmp, err := c.ComparePositions(b.Position, head); err != nil {
				return err
			} else if cmp >= 0 {
				cancel()
			}
		}
		return nil
	})
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the stream did not reach %s within a minute; got %d batches", head, len(got))
	}
	return got, err
}

func changesOf(batches []*model.ChangeBatch) []model.Change {
	var out []model.Change
	for _, b := range batches {
		out = append(out, b.Changes...)
	}
	return out
}

func TestCDCDecodesLikeTheSnapshot(t *testing.T) {
	s := mysqltest.Shared(t)
	ctx := context.Background()
	db := newDB(t, s, "cdc")
	createTypes(t, s, db, false)
	src := openConn(t, s.URL(db))
	tables, err := src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tb := tableNamed(t, tables, "types")
	plan, err := src.Plan(ctx, []*model.Table{tb}, connector.PlanOptions{CDC: true})
	if err != nil {
		t.Fatal(err)
	}
	if plan.T0 == "" || plan.SnapshotConsistent {
		t.Fatalf("plan T0 %q, consistent %v", plan.T0, plan.SnapshotConsistent)
	}
	for _, q := range typesInsert {
		s.Exec(t, "USE `"+db+"`; "+q)
	}
	s.Exec(t, "USE `"+db+"`; UPDATE types SET vc = 'changed', id = 40 WHERE id = 4",
		"USE `"+db+"`; UPDATE types SET vc = 'same key' WHERE id = 1",
		"USE `"+db+"`; DELETE FROM types WHERE id = 3",
		"USE `"+db+"`; BEGIN; INSERT INTO types (id, vc) VALUES (5, 'five'), (6, 'six'); UPDATE types SET vc = 'five!' WHERE id = 5; COMMIT")
	head, err := src.HeadPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	batches, err := streamUntil(t, src, []*model.Table{tb}, plan.T0, head, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch := changesOf(batches)
	if len(ch) != 10 {
		t.Fatalf("%d changes, want 10: %+v", len(ch), ch)
	}
	for i, want := range typesRows {
		if ch[i].Op != model.OpInsert || ch[i].Table != tb.Namespace {
			t.Fatalf("change %d: %s on %s", i, ch[i].Op, ch[i].Table)
		}
		sameRow(t, "binlog insert "+formatValue(tb.Columns[0].Type, want[0]), tb.Columns, ch[i].Row, want)
	}
	moved := append(model.Row(nil), typesRows[3]...)
	moved[0], moved[tb.ColumnIndex("vc")] = int64(40), "changed"
	if ch[4].Op != model.OpUpdate || len(ch[4].Key) != 1 || ch[4].Key[0] != int64(4) {
		t.Fatalf("key-changing update: %+v", ch[4])
	}
	sameRow(t, "binlog update", tb.Columns, ch[4].Row, moved)
	if ch[5].Op != model.OpUpdate || ch[5].Key != nil {
		t.Fatalf("update that keeps its key: %+v", ch[5])
	}
	if ch[6].Op != model.OpDelete || len(ch[6].Key) != 1 || ch[6].Key[0] != int64(3) {
		t.Fatalf("delete: %+v", ch[6])
	}
	// One transaction is one batch, at a position after its commit.
	var last model.Position
	for _, b := range batches {
		if len(b.Changes) == 3 && (b.Changes[0].Row[0] != int64(5) || b.Changes[2].Op != model.OpUpdate) {
			t.Fatalf("the three-statement transaction: %+v", b.Changes)
		}
		if len(b.Changes) > 0 && b.CommitTime.IsZero() {
			t.Error("a batch without a commit time")
		}
		if last != "" {
			if c, _ := src.ComparePositions(b.Position, last); c < 0 {
				t.Fatalf("position went back from %s to %s", last, b.Position)
			}
		}
		last = b.Position
	}

	// An idle server still moves the stream: an empty batch at the head.
	idle, err := streamUntil(t, src, []*model.Table{tb}, head, "", func(got []*model.ChangeBatch) bool { return len(got) > 0 })
	if err != nil {
		t.Fatal(err)
	}
	if len(idle[0].Changes) != 0 || idle[0].Position != head {
		t.Fatalf("idle stream emitted %+v, want an empty batch at %s", idle[0], head)
	}
}

func TestCDCFollowsAddedColumnsAndStopsOnUnknownOnes(t *testing.T) {
	s := mysqltest.Shared(t)
	ctx := context.Background()
	db := newDB(t, s, "ddl")
	s.Exec(t, "USE `"+db+"`; CREATE TABLE t (id int PRIMARY KEY, a varchar(10)); CREATE TABLE d (id int PRIMARY KEY)")
	src := openConn(t, s.URL(db))
	tables, err := src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tb := tableNamed(t, tables, "t")
	plan, err := src.Plan(ctx, tables, connector.PlanOptions{CDC: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Exec(t, "USE `"+db+"`; INSERT INTO t VALUES (1, 'x'); ALTER TABLE t ADD COLUMN c varchar(10) NULL")
	afterAdd, err := src.HeadPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Exec(t, "USE `"+db+"`; INSERT INTO t VALUES (2, 'y', 'z')")
	head, err := src.HeadPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	batches, err := streamUntil(t, src, tables, plan.T0, head, nil)
	if err != nil {
		t.Fatal(err)
	}
	var schema *model.Table
	var rows []model.Row
	for _, b := range batches {
		if len(b.Schemas) > 0 {
			schema = b.Schemas[0].Table
		}
		for _, c := range b.Changes {
			rows = append(rows, c.Row)
		}
	}
	if schema == nil || len(schema.Columns) != 3 || schema.Columns[2].Name != "c" {
		t.Fatalf("no schema change with the added column: %+v", schema)
	}
	if len(rows) != 2 || len(rows[0]) != 2 || len(rows[1]) != 3 || rows[1][2] != "z" {
		t.Fatalf("rows around the added column: %v", rows)
	}

	// A flow resumed after the ALTER (the engine still knows the old
	// definition) learns of the column at the first row.
	batches, _ = streamUntil(t, src, []*model.Table{tb}, afterAdd, "", func(got []*model.ChangeBatch) bool {
		return len(changesOf(got)) > 0
	})
	if len(batches) == 0 || len(batches[len(batches)-1].Schemas) != 1 || len(changesOf(batches)[0].Row) != 3 {
		t.Fatalf("resumed after the ALTER: %+v", batches)
	}

	// Handed a definition older than its position (a flow state that does
	// not know the ALTERs before it), the stream sees rows of other columns
	// than it knows: it follows appended columns only, and stops otherwise.
	s.Exec(t, "USE `"+db+"`; ALTER TABLE t DROP COLUMN a")
	afterDrop, err := src.HeadPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Exec(t, "USE `"+db+"`; INSERT INTO t VALUES (3, 'w')")
	_, err = streamUntil(t, src, []*model.Table{schema}, afterDrop, "", nil)
	if !contains(err, db+".t", "column a was dropped or renamed", "--restart") {
		t.Fatalf("a dropped column: error %v", err)
	}
}

func TestCDCSurvivesServerRestartAndReportsPurgedBinlogs(t *testing.T) {
	s := mysqltest.Start(t)
	ctx := context.Background()
	r := s.CreateDatabase(t, "r")
	s.Exec(t, "CREATE TABLE `"+r+"`.t (id int PRIMARY KEY, v varchar(20))")
	src := openConn(t, s.URL(r))
	tables, err := src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := src.Plan(ctx, tables, connector.PlanOptions{CDC: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Exec(t, "INSERT INTO `"+r+"`.t VALUES (1, 'before')")
	var mu sync.Mutex
	seen := map[int64]int{}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- src.StreamChanges(sctx, tables, plan.T0, connector.StreamOptions{}, func(ctx context.Context, b *model.ChangeBatch) error {
			mu.Lock()
			for _, c := range b.Changes {
				seen[c.Row[0].(int64)]++
			}
			mu.Unlock()
			return nil
		})
	}()
	waitFor := func(id int64) {
		t.Helper()
		deadline := time.Now().Add(45 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			n := seen[id]
			mu.Unlock()
			if n > 0 {
				return
			}
			select {
			case err := <-done:
				t.Fatalf("the stream ended: %v", err)
			case <-time.After(20 * time.Millisecond):
			}
		}
		t.Fatalf("row %d never arrived", id)
	}
	waitFor(1)
	s.Restart(t, "immediate")
	s.Exec(t, "INSERT INTO `"+r+"`.t VALUES (2, 'after restart')")
	waitFor(2)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("stream ended with %v", err)
	}
	if seen[1] != 1 || seen[2] != 1 {
		t.Fatalf("rows seen %v, want each once", seen)
	}

	// A binlog purged past the flow's position is reported with the fix.
	s.Exec(t, "FLUSH BINARY LOGS", "FLUSH BINARY LOGS")
	head, err := src.HeadPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hp, _ := parsePosition(head)
	s.Exec(t, "PURGE BINARY LOGS TO '"+hp.file+"'")
	err = src.StreamChanges(ctx, tables, plan.T0, connector.StreamOptions{}, func(context.Context, *model.ChangeBatch) error { return nil })
	if !errs.IsConfigError(err) || !contains(err, "was purged", "--restart", "binlog_expire_logs_seconds") {
		t.Fatalf("purged binlog: %v", err)
	}
}

// TestCDCIdleStreamReportsItsPosition: with nothing written, the stream
// emits an empty batch at its position at every heartbeat, so an
// incremental snapshot's chunk, whose watermark is the head position,
// passes it within a heartbeat instead of waiting for the next write.
func TestCDCIdleStreamReportsItsPosition(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "idle")
	src, tables, _ := flowStart(t, s, db, "CREATE TABLE t (id int PRIMARY KEY)")
	at := head(t, src)
	started := time.Now()
	batches, err := streamUntil(t, src, tables, at, "", func(got []*model.ChangeBatch) bool {
		return time.Since(started) > 3500*time.Millisecond
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) < 3 {
		t.Fatalf("%d batches in 3.5 s of an idle stream, want one a heartbeat", len(batches))
	}
	for _, b := range batches {
		if len(b.Changes) != 0 || len(b.Schemas) != 0 || b.Position != at {
			t.Fatalf("an idle batch: %d changes, %d schemas at %s (head %s)", len(b.Changes), len(b.Schemas), b.Position, at)
		}
	}
}

// A transaction larger than maxPendingChanges comes in parts marked
// Partial, each at the position before it (so --apply-mode transactional
// keeps them in one destination transaction), and its end does not.
func TestCDCHugeTransactionComesInPartialParts(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "hugetx")
	src, tables, _ := flowStart(t, s, db, "CREATE TABLE t (id int PRIMARY KEY)")
	at := head(t, src)
	const rows = maxPendingChanges*2 + 10
	s.Exec(t, fmt.Sprintf("INSERT INTO `%s`.t SELECT seq FROM `%s`.seq_1_to_%d", db, db, rows)) // one transaction
	end := head(t, src)
	batches, err := streamUntil(t, src, tables, at, end, nil)
	if err != nil {
		t.Fatal(err)
	}
	var parts, total int
	for _, b := range batches {
		total += len(b.Changes)
		if b.Partial {
			parts++
			if b.Position != at {
				t.Errorf("a part at %s, want the position before the transaction %s", b.Position, at)
			}
		} else if len(b.Changes) > 0 && b.Position != end {
			t.Errorf("the transaction's end at %s, want %s", b.Position, end)
		}
	}
	if parts < 1 || total != rows || batches[len(batches)-1].Partial {
		t.Fatalf("%d changes in %d batches, %d of them partial; want %d changes, partial parts and an end", total, len(batches), parts, rows)
	}
}
