// Package conformance is test support: one suite of checks that every
// connector runs against a real server from its own tests, so that "a
// connector" means the same thing whichever database is behind it. A new
// connector implements the interfaces of package connector and passes
// Source and/or Destination (docs/architecture.md, "Adding a connector").
//
// It imports testing, so only _test.go files may import it: it is never
// part of the ferry binary.
//
// The suite calls an optional ability only when the connector declares it
// (a type assertion succeeds), as the engine does; it checks what each
// declared ability promises in connector's documentation.
package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// SourceHarness tells the suite how to reach the source under test.
type SourceHarness struct {
	// Open returns the connector under test on a fresh source holding one
	// table of rows rows, and that table's namespace. For sources the test
	// seeds itself (SQL ones, files) the table is (id bigint primary key, v
	// text) with ids 1..rows and v = "v<id>"; a generator (fake) may hold
	// any columns, but its key must be unique. Each call is a new source;
	// the connector is closed by the suite.
	Open func(t *testing.T, rows int) (connector.Source, model.Namespace)
	// Exec runs a statement at the source opened last (a ChangeSource whose
	// changes the test can cause); nil when it cannot, and the change checks
	// that need changes of their own are skipped. The table is named
	// schema.table in the statements.
	Exec func(t *testing.T, stmt string)
	// OpenWithoutCDC opens the source Open made last again, through a
	// connection that cannot serve change data capture (a user without
	// the replication privilege), for a Preflighter's refusal; nil when the
	// harness has none.
	OpenWithoutCDC func(t *testing.T) connector.Source
}

// rows of a source table; enough for several partitions and batches, few
// enough for CI.
const (
	sourceRows    = 3000
	partitionRows = 700
	batchRows     = 200
	flowName      = "conformance"
	timeout       = 2 * time.Minute
)

// Source runs the source checks: the plan covers every row exactly once, a
// partition resumes from any batch's cursor with exactly the rows after it,
// for a ChangeSource the change stream's order and positions, and every
// declared ability (RawReader, Preflighter, LagMeter, KeyReader) does what it
// promises.
func Source(t *testing.T, h SourceHarness) {
	t.Run("PlanCoversEveryRowOnce", func(t *testing.T) {
		src, ns := open(t, h)
		tbl := findTable(t, src, ns)
		plan := plan(t, src, tbl, connector.PlanOptions{PartitionRows: partitionRows, BatchRows: batchRows})
		checkCoverage(t, src, tbl, plan, sourceRows)
	})
	t.Run("PartitionResumesFromCursor", func(t *testing.T) {
		src, ns := open(t, h)
		tbl := findTable(t, src, ns)
		// Large partitions, so that even a source that sizes its batches
		// itself emits several per partition.
		plan := plan(t, src, tbl, connector.PlanOptions{PartitionRows: sourceRows, BatchRows: batchRows})
		checkResume(t, src, tbl, plan)
	})
	t.Run("RawReader", func(t *testing.T) {
		src, ns := open(t, h)
		r, ok := src.(connector.RawReader)
		if !ok {
			t.Skip("not a RawReader")
		}
		tbl := findTable(t, src, ns)
		checkRaw(t, src, r, tbl)
	})
	t.Run("ChangeStream", func(t *testing.T) {
		src, ns := open(t, h)
		cs, ok := src.(connector.ChangeSource)
		if !ok {
			t.Skip("not a ChangeSource")
		}
		checkChanges(t, h, cs, ns)
	})
	t.Run("QueryReader", func(t *testing.T) {
		src, ns := open(t, h)
		qr, ok := src.(connector.QueryReader)
		if !ok {
			t.Skip("not a QueryReader")
		}
		checkQuery(t, qr, ns)
	})
	t.Run("Preflighter", func(t *testing.T) {
		src, ns := open(t, h)
		pf, ok := src.(connector.Preflighter)
		if !ok {
			t.Skip("not a Preflighter")
		}
		checkPreflight(t, h, src, pf, ns)
	})
	t.Run("LagMeter", func(t *testing.T) {
		src, ns := open(t, h)
		cs, isCDC := src.(connector.ChangeSource)
		lm, ok := src.(connector.LagMeter)
		if !ok || !isCDC {
			t.Skip("not a ChangeSource with a LagMeter")
		}
		checkLag(t, h, cs, lm, ns)
	})
	t.Run("KeyReader", func(t *testing.T) {
		src, ns := open(t, h)
		kr, ok := src.(connector.KeyReader)
		if !ok {
			t.Skip("not a KeyReader")
		}
		checkKeyReader(t, src, kr, findTable(t, src, ns))
	})
	t.Run("Described", func(t *testing.T) {
		src, _ := open(t, h)
		checkDescribed(t, src)
	})
}

func open(t *testing.T, h SourceHarness) (connector.Source, model.Namespace) {
	t.Helper()
	src, ns := h.Open(t, sourceRows)
	closeAtEnd(t, src)
	return src, ns
}

// closeAtEnd closes c when the test ends.
func closeAtEnd(t *testing.T, c connector.Connector) {
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close %T: %v", c, err)
		}
	})
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// findTable is the source's table ns, which has a primary key.
func findTable(t *testing.T, src connector.Source, ns model.Namespace) *model.Table {
	t.Helper()
	tb := lookupTable(t, src, ns)
	if len(tb.PrimaryKey) == 0 {
		t.Fatalf("table %s has no primary key; the suite needs one", ns)
	}
	return tb
}

// lookupTable is the source's table ns, with or without a key.
func lookupTable(t *testing.T, src connector.Source, ns model.Namespace) *model.Table {
	t.Helper()
	tables, err := src.Tables(ctxFor(t))
	if err != nil {
		t.Fatalf("Tables: %v", err)
	}
	for _, tb := range tables {
		if tb.Namespace == ns {
			return tb
		}
	}
	t.Fatalf("Tables does not list %s", ns)
	return nil
}

func plan(t *testing.T, src connector.Source, tbl *model.Table, opts connector.PlanOptions) *model.Plan {
	t.Helper()
	p, err := src.Plan(ctxFor(t), []*model.Table{tbl}, opts)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	if len(p.Partitions) == 0 {
		t.Fatalf("plan of %s has no partition", tbl.Namespace)
	}
	if opts.CDC && p.T0 == "" {
		t.Fatalf("plan with CDC has no T0")
	}
	return p
}

// keyOf renders a row's key, to count rows by key.
func keyOf(tbl *model.Table, row model.Row) string {
	var k []any
	for _, i := range tbl.KeyIndexes() {
		k = append(k, row[i])
	}
	return fmt.Sprint(k...)
}

// batch is what one emitted RowBatch held: its keys and cursor.
type batch struct {
	keys   []string
	cursor model.Cursor
}

func readPartition(t *testing.T, src connector.Source, tbl *model.Table, p model.Partition, from model.Cursor) []batch {
	t.Helper()
	var out []batch
	err := src.ReadPartition(ctxFor(t), tbl, p, from, func(b *model.RowBatch) error {
		if b.Raw != nil {
			return fmt.Errorf("ReadPartition emitted a raw batch")
		}
		var keys []string
		for _, r := range b.Rows {
			if len(r) != len(tbl.Columns) {
				return fmt.Errorf("row of %d values in a table of %d columns", len(r), len(tbl.Columns))
			}
			keys = append(keys, keyOf(tbl, r))
		}
		out = append(out, batch{keys: keys, cursor: b.Cursor})
		return nil
	})
	if err != nil {
		t.Fatalf("ReadPartition %s from %q: %v", p.ID, from, err)
	}
	return out
}

func flatten(bs []batch) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.keys...)
	}
	return out
}

func checkCoverage(t *testing.T, src connector.Source, tbl *model.Table, plan *model.Plan, want int) {
	t.Helper()
	t.Logf("plan of %s: %d partitions", tbl.Namespace, len(plan.Partitions))
	seen := make(map[string]string, want)
	ids := make(map[string]bool)
	for _, p := range plan.Partitions {
		if ids[p.ID] {
			t.Errorf("partition ID %s twice in the plan", p.ID)
		}
		ids[p.ID] = true
		for _, k := range flatten(readPartition(t, src, tbl, p, "")) {
			if prev, dup := seen[k]; dup {
				t.Fatalf("key %s read twice: in partition %s and %s", k, prev, p.ID)
			}
			seen[k] = p.ID
		}
	}
	if len(seen) != want {
		t.Fatalf("plan of %d partitions read %d rows, want %d", len(plan.Partitions), len(seen), want)
	}
}

func checkResume(t *testing.T, src connector.Source, tbl *model.Table, plan *model.Plan) {
	t.Helper()
	multi := false
	for _, p := range plan.Partitions {
		full := readPartition(t, src, tbl, p, "")
		if len(full) > 1 {
			multi = true
		}
		// Resume after the first batch, a middle one and the last one.
		for _, i := range slices.Compact([]int{0, len(full) / 2, len(full) - 1}) {
			if i < 0 {
				continue
			}
			got := flatten(readPartition(t, src, tbl, p, full[i].cursor))
			want := flatten(full[i+1:])
			if !slices.Equal(got, want) {
				t.Fatalf("partition %s resumed after batch %d of %d (cursor %q): %d rows %s, want %d rows %s",
					p.ID, i+1, len(full), full[i].cursor, len(got), ends(got), len(want), ends(want))
			}
		}
	}
	if !multi {
		t.Fatalf("no partition of %d rows emitted more than one batch with BatchRows %d: the mid-way resume went unchecked", sourceRows, batchRows)
	}
}

// checkRaw reads every partition raw, whole and resumed after its first
// batch, counting rows: raw payloads are the source engine's own.
func checkRaw(t *testing.T, src connector.Source, r connector.RawReader, tbl *model.Table) {
	f, ok, err := r.RawFormat(ctxFor(t), tbl)
	if err != nil {
		t.Fatalf("RawFormat: %v", err)
	}
	if !ok {
		t.Skipf("%s cannot be read raw", tbl.Namespace)
	}
	p := plan(t, src, tbl, connector.PlanOptions{PartitionRows: partitionRows, BatchRows: batchRows})
	read := func(part model.Partition, from model.Cursor) (counts []int, cursors []model.Cursor) {
		err := r.ReadPartitionRaw(ctxFor(t), tbl, part, from, f, func(b *model.RowBatch) error {
			if b.Raw == nil || len(b.Rows) != 0 {
				return fmt.Errorf("ReadPartitionRaw emitted a batch without Raw, or with decoded rows")
			}
			counts, cursors = append(counts, b.Raw.Rows), append(cursors, b.Cursor)
			return nil
		})
		if err != nil {
			t.Fatalf("ReadPartitionRaw %s from %q: %v", part.ID, from, err)
		}
		return counts, cursors
	}
	sum := func(xs []int) (n int) {
		for _, x := range xs {
			n += x
		}
		return n
	}
	total := 0
	for _, part := range p.Partitions {
		counts, cursors := read(part, "")
		total += sum(counts)
		if len(counts) > 1 {
			again, _ := read(part, cursors[0])
			if sum(again) != sum(counts[1:]) {
				t.Fatalf("partition %s resumed raw after its first batch: %d rows, want %d", part.ID, sum(again), sum(counts[1:]))
			}
		}
	}
	if total != sourceRows {
		t.Fatalf("raw plan read %d rows, want %d", total, sourceRows)
	}
}

// ends shows the first and last keys of a list, for a message.
func ends(keys []string) string {
	if len(keys) == 0 {
		return "[]"
	}
	return fmt.Sprintf("[%s .. %s]", keys[0], keys[len(keys)-1])
}

// streamed is one emitted change batch.
type streamed struct {
	pos     model.Position
	changes []model.Change
}

// errEnough stops a stream the suite has seen enough of.
var errEnough = errors.New("enough")

// stream reads the change stream from pos until done says it has enough.
func stream(t *testing.T, cs connector.ChangeSource, tbl *model.Table, from model.Position, done func([]streamed) bool) []streamed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out []streamed
	err := cs.StreamChanges(ctx, []*model.Table{tbl}, from, connector.StreamOptions{Flow: flowName}, func(_ context.Context, b *model.ChangeBatch) error {
		if b.Partial {
			return fmt.Errorf("unexpected partial batch in a stream of small transactions")
		}
		var mine []model.Change
		for _, c := range b.Changes {
			// Changes of tables not asked for are not emitted.
			if c.Table != tbl.Namespace {
				return fmt.Errorf("a change of %s, in a stream of %s only", c.Table, tbl.Namespace)
			}
			mine = append(mine, c)
		}
		out = append(out, streamed{pos: b.Position, changes: mine})
		if done(out) {
			return errEnough
		}
		return nil
	})
	if !errors.Is(err, errEnough) {
		last := from
		if len(out) > 0 {
			last = out[len(out)-1].pos
		}
		var seen []string
		for _, c := range changes(out) {
			seen = append(seen, describe(tbl, c))
		}
		t.Fatalf("StreamChanges of %s from %q: %v (after %d batches, the last at %q, with changes %q)", tbl.Namespace, from, err, len(out), last, seen)
	}
	return out
}

func changes(bs []streamed) []model.Change {
	var out []model.Change
	for _, b := range bs {
		out = append(out, b.changes...)
	}
	return out
}

// describe renders a change by its op, key and v, for comparisons.
func describe(tbl *model.Table, c model.Change) string {
	switch c.Op {
	case model.OpDelete:
		return fmt.Sprintf("delete %v", fmt.Sprint(c.Key...))
	default:
		v := tbl.ColumnIndex("v")
		if v < 0 {
			return fmt.Sprintf("%s %s", c.Op, keyOf(tbl, c.Row))
		}
		return fmt.Sprintf("%s %s %v", c.Op, keyOf(tbl, c.Row), c.Row[v])
	}
}

// cdcOptions are the plan options of a flow with CDC, as the engine passes
// them to Plan and Preflight.
var cdcOptions = connector.PlanOptions{CDC: true, Flow: flowName, PartitionRows: partitionRows, BatchRows: batchRows}

// planCDC plans tbl with CDC; the flow's resources at the source (a slot)
// are dropped when the test ends.
func planCDC(t *testing.T, cs connector.ChangeSource, tbl *model.Table) *model.Plan {
	t.Helper()
	p := plan(t, cs, tbl, cdcOptions)
	if d, ok := cs.(connector.FlowDropper); ok {
		t.Cleanup(func() {
			if err := d.DropFlow(context.Background(), flowName); err != nil {
				t.Errorf("DropFlow: %v", err)
			}
		})
	}
	return p
}

func checkChanges(t *testing.T, h SourceHarness, cs connector.ChangeSource, ns model.Namespace) {
	tbl := findTable(t, cs, ns)
	p := planCDC(t, cs, tbl)
	// The copy at T0 still covers every row once.
	checkCoverage(t, cs, tbl, p, sourceRows)

	var want []string
	if h.Exec != nil {
		name := ns.Schema + "." + ns.Table
		stmts := []string{
			fmt.Sprintf("UPDATE %s SET v = 'u1' WHERE id = 1", name),
			fmt.Sprintf("UPDATE %s SET v = 'u2' WHERE id = 1", name),
			fmt.Sprintf("DELETE FROM %s WHERE id = 2", name),
			fmt.Sprintf("INSERT INTO %s (id, v) VALUES (%d, 'new')", name, sourceRows+1),
			fmt.Sprintf("UPDATE %s SET v = 'u3' WHERE id = 1", name),
		}
		for _, s := range stmts {
			h.Exec(t, s)
		}
		want = []string{"update 1 u1", "update 1 u2", "delete 2", fmt.Sprintf("insert %d new", sourceRows+1), "update 1 u3"}
	}
	head, err := cs.HeadPosition(ctxFor(t))
	t.Logf("T0 %q, head after the changes %q", p.T0, head)
	if err != nil {
		t.Fatalf("HeadPosition: %v", err)
	}
	cmp := func(a, b model.Position) int {
		t.Helper()
		c, err := cs.ComparePositions(a, b)
		if err != nil {
			t.Fatalf("ComparePositions(%q, %q): %v", a, b, err)
		}
		return c
	}
	if cmp(head, p.T0) < 0 {
		t.Fatalf("head %q is before T0 %q", head, p.T0)
	}
	// Read until the stream reaches the head taken after the changes, and
	// has emitted every change the test made.
	got := stream(t, cs, tbl, p.T0, func(bs []streamed) bool {
		return cmp(bs[len(bs)-1].pos, head) >= 0 && len(changes(bs)) >= len(want)
	})
	prev := p.T0
	for i, b := range got {
		if cmp(b.pos, prev) < 0 {
			t.Fatalf("batch %d ends at %q, before the previous position %q", i, b.pos, prev)
		}
		prev = b.pos
	}
	if cmp(prev, head) > 0 {
		if h2, err := cs.HeadPosition(ctxFor(t)); err != nil || cmp(h2, prev) < 0 {
			t.Fatalf("stream reached %q, past the head %q (%v)", prev, h2, err)
		}
	}
	if want != nil {
		var desc []string
		for _, c := range changes(got) {
			desc = append(desc, describe(tbl, c))
		}
		if !slices.Equal(desc, want) {
			t.Fatalf("changes in stream order:\n%q\nwant\n%q", desc, want)
		}
		// Resuming after a batch gives exactly the changes after it.
		resumed := false
		for i, b := range got {
			if len(b.changes) == 0 || i == len(got)-1 {
				continue
			}
			rest := changes(got[i+1:])
			again := stream(t, cs, tbl, b.pos, func(bs []streamed) bool {
				return cmp(bs[len(bs)-1].pos, head) >= 0 && len(changes(bs)) >= len(rest)
			})
			var g, w []string
			for _, c := range changes(again) {
				g = append(g, describe(tbl, c))
			}
			for _, c := range rest {
				w = append(w, describe(tbl, c))
			}
			if !slices.Equal(g, w) {
				t.Fatalf("stream resumed at %q (after batch %d) gave\n%q\nwant the changes after it\n%q", b.pos, i, g, w)
			}
			t.Logf("resumed after batch %d of %d: %d changes, as before", i+1, len(got), len(g))
			resumed = true
			break
		}
		if !resumed {
			t.Logf("every change came in the last batch: resuming mid-stream went unchecked")
		}
	}
	if err := cs.Ack(ctxFor(t), prev); err != nil {
		t.Fatalf("Ack(%q): %v", prev, err)
	}
	// An older acknowledgement (a slower writer's) is harmless.
	if err := cs.Ack(ctxFor(t), p.T0); err != nil {
		t.Fatalf("Ack of an older position %q after %q: %v", p.T0, prev, err)
	}
}
