package postgres_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connectors/postgres"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/state"
)

// spySource counts which read path the engine took.
type spySource struct {
	*postgres.Conn
	raw, decoded atomic.Int64
}

func (s *spySource) ReadPartition(ctx context.Context, t *model.Table, p model.Partition, from model.Cursor, emit func(*model.RowBatch) error) error {
	s.decoded.Add(1)
	return s.Conn.ReadPartition(ctx, t, p, from, emit)
}

func (s *spySource) ReadPartitionRaw(ctx context.Context, t *model.Table, p model.Partition, from model.Cursor, f *model.RawFormat, emit func(*model.RowBatch) error) error {
	s.raw.Add(1)
	return s.Conn.ReadPartitionRaw(ctx, t, p, from, f, emit)
}

// failingDest fails the copy after a number of batches, as a process
// killed mid-partition would stop: what it wrote before is committed.
type failingDest struct {
	*postgres.Conn
	left atomic.Int64
}

var errInjected = errors.New("injected failure")

func (d *failingDest) OpenWriter(ctx context.Context) (connector.RowWriter, error) {
	w, err := d.Conn.OpenWriter(ctx)
	if err != nil {
		return nil, err
	}
	return &failingWriter{RowWriter: w, d: d}, nil
}

type failingWriter struct {
	connector.RowWriter
	d *failingDest
}

func (w *failingWriter) WriteRows(ctx context.Context, b *model.RowBatch) error {
	if b.Len() > 0 && w.d.left.Add(-1) < 0 {
		return errInjected
	}
	return w.RowWriter.WriteRows(ctx, b)
}

// runEngine runs a flow over already opened connectors.
func runEngine(t *testing.T, cfg flow.Config, src, dst connector.Connector) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store, err := state.Open(ctx, cfg.StateDir, cfg.FlowName())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var logOut io.Writer = io.Discard
	if os.Getenv("FERRY_TEST_LOG") != "" {
		logOut = os.Stderr
	}
	e, err := engine.New(cfg, src, dst, store, slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		return err
	}
	return e.Run(ctx, ctx)
}

// TestPassThroughCopiesEveryTypeExactly: between two PostgreSQL databases
// every table of the round-trip data set (enums, domains, arrays of both,
// ranges, geometric and bit types, TOASTed values, a generated column)
// travels as raw COPY tuples, in many small batches, and arrives value for
// value.
func TestPassThroughCopiesEveryTypeExactly(t *testing.T) {
	p := newPair(t)
	srcDB := p.srv.Connect(t, p.src)
	dstDB := p.srv.Connect(t, p.dst)
	mustExec(t, srcDB, everythingDDL)
	src := &spySource{Conn: open(t, p.srcURL())}
	dst := open(t, p.dstURL())
	cfg := flow.Config{Name: "raw", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Mode: flow.ModeSnapshot, PartitionRows: 2, BatchRows: 2}
	if err := runEngine(t, cfg, src, dst); err != nil {
		t.Fatal(err)
	}
	if src.raw.Load() == 0 || src.decoded.Load() != 0 {
		t.Fatalf("partitions read raw: %d, decoded: %d; want every one raw", src.raw.Load(), src.decoded.Load())
	}
	sameTable(t, srcDB, dstDB, "shop.everything", "id")
	sameTable(t, srcDB, dstDB, "shop.scalars", "id")
}

// TestPassThroughFallsBackWhenTypesDiffer: a destination table whose column
// has another type than the source's is written from decoded rows (and
// converted), while a table of the same flow with equal types goes raw.
func TestPassThroughFallsBackWhenTypesDiffer(t *testing.T) {
	p := newPair(t)
	srcDB := p.srv.Connect(t, p.src)
	dstDB := p.srv.Connect(t, p.dst)
	mustExec(t, srcDB, `
		CREATE TABLE same (id int PRIMARY KEY, v integer, s text);
		CREATE TABLE widened (id int PRIMARY KEY, v integer, s varchar(10));
		INSERT INTO same SELECT g, g * 3, 'row ' || g FROM generate_series(1, 1000) g;
		INSERT INTO widened SELECT g, g * 3, 'row ' || g FROM generate_series(1, 1000) g;`)
	mustExec(t, dstDB, `CREATE TABLE widened (id int PRIMARY KEY, v bigint, s text)`)
	src := &spySource{Conn: open(t, p.srcURL())}
	dst := open(t, p.dstURL())
	ctx := context.Background()
	tables, err := src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		f, ok, err := src.RawFormat(ctx, tb)
		if err != nil || !ok {
			t.Fatalf("%s: no raw format (%v)", tb.Namespace, err)
		}
		if err := dst.CreateTables(ctx, []*model.Table{tb}); err != nil {
			t.Fatal(err)
		}
		accepted, err := dst.AcceptsRaw(ctx, tb, f)
		if err != nil {
			t.Fatal(err)
		}
		if want := tb.Namespace.Table == "same"; accepted != want {
			t.Fatalf("%s: destination accepts raw %v, want %v", tb.Namespace, accepted, want)
		}
	}
	cfg := flow.Config{Name: "mixed", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Mode: flow.ModeSnapshot, PartitionRows: 1_000_000}
	if err := runEngine(t, cfg, src, dst); err != nil {
		t.Fatal(err)
	}
	if src.raw.Load() != 1 || src.decoded.Load() != 1 {
		t.Fatalf("partitions read raw: %d, decoded: %d; want 1 and 1", src.raw.Load(), src.decoded.Load())
	}
	sameTable(t, srcDB, dstDB, "same", "id")
	sameTable(t, srcDB, dstDB, "widened", "id")
}

// TestPassThroughResumesMidPartition: a copy that stops after a few raw
// batches of one partition resumes from the last committed batch's cursor,
// so a table without a primary key gets every row exactly once.
func TestPassThroughResumesMidPartition(t *testing.T) {
	p := newPair(t)
	srcDB := p.srv.Connect(t, p.src)
	dstDB := p.srv.Connect(t, p.dst)
	mustExec(t, srcDB, `
		CREATE TABLE nokey (n bigint, pad text);
		INSERT INTO nokey SELECT g, repeat('x', g % 300) FROM generate_series(1, 20000) g;
		DELETE FROM nokey WHERE n % 13 = 0;`)
	cfg := flow.Config{Name: "resume", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Mode: flow.ModeSnapshot,
		PartitionRows: 1_000_000, BatchRows: 700, Parallel: 1}
	src := &spySource{Conn: open(t, p.srcURL())}
	dst := &failingDest{Conn: open(t, p.dstURL())}
	dst.left.Store(5)
	if err := runEngine(t, cfg, src, dst); !errors.Is(err, errInjected) {
		t.Fatalf("first run: %v, want the injected failure", err)
	}
	if n := count(t, dstDB, "SELECT count(*) FROM nokey"); n != 5*700 {
		t.Fatalf("after the failure the destination has %d rows, want the 5 committed batches (%d)", n, 5*700)
	}
	dst.left.Store(1 << 30)
	if err := runEngine(t, cfg, src, dst); err != nil {
		t.Fatal(err)
	}
	if src.raw.Load() != 2 || src.decoded.Load() != 0 {
		t.Fatalf("partition reads raw: %d, decoded: %d; want 2 raw", src.raw.Load(), src.decoded.Load())
	}
	want := count(t, srcDB, "SELECT count(*) FROM nokey")
	if n := count(t, dstDB, "SELECT count(*) FROM nokey"); n != want {
		t.Fatalf("destination has %d rows, want %d", n, want)
	}
	if n := count(t, dstDB, "SELECT count(DISTINCT n) FROM nokey"); n != want {
		t.Fatalf("destination has %d distinct rows, want %d: some were written twice", n, want)
	}
	sameTable(t, srcDB, dstDB, "nokey", "n")
}

// TestPassThroughBatchWrittenTwiceIsUpserted: a raw batch whose rows are
// already at the destination (a retried batch, a partition resumed from an
// older checkpoint) is upserted by key: one row each, the source's values.
func TestPassThroughBatchWrittenTwiceIsUpserted(t *testing.T) {
	p := newPair(t)
	srcDB := p.srv.Connect(t, p.src)
	dstDB := p.srv.Connect(t, p.dst)
	mustExec(t, srcDB, `
		CREATE TYPE color AS ENUM ('red', 'green');
		CREATE TABLE keyed (id int PRIMARY KEY, v text, c color[], n numeric(10,2));
		INSERT INTO keyed SELECT g, 'v' || g, '{red,green}', g / 7.0 FROM generate_series(1, 3000) g;`)
	src, dst, tb, f, plan := rawCopySetup(t, p, false)
	ctx := context.Background()
	var batches []*model.RowBatch
	for _, part := range plan.Partitions {
		if err := src.ReadPartitionRaw(ctx, tb, part, "", f, func(b *model.RowBatch) error {
			b.Table, b.Partition = tb, part.ID
			batches = append(batches, b)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if len(batches) != 3 {
		t.Fatalf("read %d batches, want 3 of 1000 rows", len(batches))
	}
	w, err := dst.OpenWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, b := range batches[:2] {
		if err := w.WriteRows(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	mustExec(t, dstDB, `UPDATE keyed SET v = 'stale', c = '{green}' WHERE id % 2 = 0`)
	for _, b := range batches {
		if err := w.WriteRows(ctx, b); err != nil {
			t.Fatalf("writing again: %v", err)
		}
	}
	sameTable(t, srcDB, dstDB, "keyed", "id")
}

// rawCopySetup opens both sides of p for a pass-through copy of the
// source's one table: created at the destination (for a copy, without its
// key, when forCopy), its raw format agreed on both sides, and planned as
// one partition read in batches of 1000 rows.
func rawCopySetup(t *testing.T, p *pair, forCopy bool) (src, dst *postgres.Conn, tb *model.Table, f *model.RawFormat, plan *model.Plan) {
	t.Helper()
	src, dst = open(t, p.srcURL()), open(t, p.dstURL())
	ctx := context.Background()
	tables, err := src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tb = tables[0]
	create := dst.CreateTables
	if forCopy {
		create = dst.CreateTablesForCopy
	}
	if err := create(ctx, tables); err != nil {
		t.Fatal(err)
	}
	f, ok, err := src.RawFormat(ctx, tb)
	if err != nil || !ok {
		t.Fatalf("no raw format: %v", err)
	}
	if ok, err := dst.AcceptsRaw(ctx, tb, f); err != nil || !ok {
		t.Fatalf("destination refuses the raw format: %v", err)
	}
	plan, err = src.Plan(ctx, tables, connector.PlanOptions{PartitionRows: 1_000_000, BatchRows: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return src, dst, tb, f, plan
}

// TestPassThroughRefusesATypeChangedSinceNegotiation: the bytes of a
// column retyped at the source after the copy started would mean something
// else at the destination (an integer's bits read as a float); the read
// fails instead.
func TestPassThroughRefusesATypeChangedSinceNegotiation(t *testing.T) {
	p := newPair(t)
	srcDB := p.srv.Connect(t, p.src)
	mustExec(t, srcDB, `
		CREATE TABLE retyped (id int PRIMARY KEY, v integer);
		INSERT INTO retyped SELECT g, g FROM generate_series(1, 100) g;`)
	src := open(t, p.srcURL())
	ctx := context.Background()
	tables, err := src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f, ok, err := src.RawFormat(ctx, tables[0])
	if err != nil || !ok {
		t.Fatalf("raw format: %v", err)
	}
	plan, err := src.Plan(ctx, tables, connector.PlanOptions{PartitionRows: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, srcDB, `ALTER TABLE retyped ALTER COLUMN v TYPE real`)
	err = src.ReadPartitionRaw(ctx, tables[0], plan.Partitions[0], "", f, func(*model.RowBatch) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "column v: its type changed") {
		t.Fatalf("read after the type changed: %v", err)
	}
}
