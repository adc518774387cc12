package conformance

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// DestinationHarness tells the suite how to reach the destination under
// test.
type DestinationHarness struct {
	// Open returns a new connection to the destination under test; every
	// call reaches the same database (or directory), fresh for the suite
	// (each check uses tables and flows of its own), so a second connection
	// sees what the first made durable. The suite closes it.
	Open func(t *testing.T) connector.Destination
	// Schema is the schema the suite's tables are created in.
	Schema string
	// ReadBack returns the rows of a table the suite created, each value
	// as fmt.Sprint renders it ("<nil>" for NULL) in the table's column
	// order. When nil, the suite reads through the connector's own Source
	// on a new connection; a destination that is no source and keeps
	// nothing (null) leaves it nil and is checked by its counts
	// (connector.Counter).
	ReadBack func(t *testing.T, ns model.Namespace) [][]string
	// OpenSource, for a RawWriter that is also a RawReader, opens a source
	// of the same kind as SourceHarness.Open does, in another database:
	// the suite copies its table raw into the destination. Nil when the
	// harness has none, and the raw copy is skipped.
	OpenSource func(t *testing.T, rows int) (connector.Source, model.Namespace)
	// CreateUnique, for a UniqueReporter, creates at the destination the
	// table ns (id bigint primary key, v text) with a unique constraint on
	// v, as a user's migration would. Nil skips that half of the check.
	CreateUnique func(t *testing.T, ns model.Namespace)
}

// Destination runs the destination checks: a batch written twice leaves
// the same rows, a checkpoint is stored with its batch and only then,
// changes of one key are applied in order, and every declared ability
// (TableFinisher, KeyDeferrer, Emptier, SchemaChanger, RawWriter,
// SequenceWriter, and the declared FullRows and SpanApply) does what it promises.
func Destination(t *testing.T, h DestinationHarness) {
	t.Run("WriteTwiceSameRows", func(t *testing.T) { checkWriteTwice(t, h) })
	t.Run("CheckpointNotAheadOfData", func(t *testing.T) { checkCheckpoints(t, h) })
	t.Run("ChangesOfOneKeyInOrder", func(t *testing.T) { checkApply(t, h) })
	t.Run("Abilities", func(t *testing.T) { checkAbilities(t, h) })
}

func openDest(t *testing.T, h DestinationHarness) connector.Destination {
	t.Helper()
	d := h.Open(t)
	closeAtEnd(t, d)
	return d
}

// seed creates the suite's table name at d holding rows 1..n, v = a<id>,
// its copy finished.
func seed(t *testing.T, h DestinationHarness, d connector.Destination, name string, n int64) (*model.Table, []model.Row) {
	t.Helper()
	tbl := destTable(h, name)
	create(t, d, tbl)
	rows := rowsFrom(1, n, "a")
	write(t, d, &model.RowBatch{Table: tbl, Partition: "p0", Rows: rows, Cursor: "c"})
	finish(t, d, tbl)
	return tbl, rows
}

// openApplier opens a change writer, closed when the test ends.
func openApplier(t *testing.T, a connector.ChangeApplier) connector.ChangeWriter {
	t.Helper()
	cw, err := a.OpenApplier(ctxFor(t))
	if err != nil {
		t.Fatalf("OpenApplier: %v", err)
	}
	t.Cleanup(func() {
		if err := cw.Close(); err != nil {
			t.Errorf("close change writer: %v", err)
		}
	})
	return cw
}

// destTable is the suite's destination table: a key and one nullable text.
func destTable(h DestinationHarness, name string) *model.Table {
	return &model.Table{
		Namespace:  model.Namespace{Schema: h.Schema, Table: name},
		PrimaryKey: []string{"id"},
		Columns: []model.Column{
			{Name: "id", Type: model.Type{Kind: model.KindInt64}},
			{Name: "v", Type: model.Type{Kind: model.KindText}, Nullable: true},
		},
	}
}

// rowsFrom makes rows lo..hi with v = prefix<id>.
func rowsFrom(lo, hi int64, prefix string) []model.Row {
	var out []model.Row
	for i := lo; i <= hi; i++ {
		out = append(out, model.Row{i, fmt.Sprintf("%s%d", prefix, i)})
	}
	return out
}

func expect(rows ...[]model.Row) map[string]string {
	m := make(map[string]string)
	for _, rs := range rows {
		for _, r := range rs {
			m[fmt.Sprint(r[0])] = fmt.Sprint(r[1])
		}
	}
	return m
}

func create(t *testing.T, d connector.Destination, tbl *model.Table) {
	t.Helper()
	if c, ok := d.(connector.TableChecker); ok {
		if _, err := c.CheckTables(ctxFor(t), []*model.Table{tbl}); err != nil {
			t.Fatalf("CheckTables refuses the suite's table %s: %v", tbl.Namespace, err)
		}
	}
	if err := d.CreateTables(ctxFor(t), []*model.Table{tbl}); err != nil {
		t.Fatalf("CreateTables %s: %v", tbl.Namespace, err)
	}
}

func write(t *testing.T, d connector.Destination, bs ...*model.RowBatch) {
	t.Helper()
	w, err := d.OpenWriter(ctxFor(t))
	if err != nil {
		t.Fatalf("OpenWriter: %v", err)
	}
	for _, b := range bs {
		if err := w.WriteRows(ctxFor(t), b); err != nil {
			t.Fatalf("WriteRows %s (%d rows): %v", b.Table.Namespace, b.Len(), err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close writer: %v", err)
	}
}

func finish(t *testing.T, d connector.Destination, tbl *model.Table) {
	t.Helper()
	if f, ok := d.(connector.TableFinisher); ok {
		if err := f.FinishTable(ctxFor(t), tbl); err != nil {
			t.Fatalf("FinishTable %s: %v", tbl.Namespace, err)
		}
	}
}

// readRows returns every row of the table from a new connection, each
// value rendered by fmt.Sprint, or ok false when the destination cannot be
// read (null).
func readRows(t *testing.T, h DestinationHarness, ns model.Namespace) (rows [][]string, ok bool) {
	t.Helper()
	if h.ReadBack != nil {
		return h.ReadBack(t, ns), true
	}
	src, ok := openDest(t, h).(connector.Source)
	if !ok {
		return nil, false
	}
	return readSource(t, src, lookupTable(t, src, ns)), true
}

// readSource reads every row of tbl through a plan of src.
func readSource(t *testing.T, src connector.Source, tbl *model.Table) [][]string {
	t.Helper()
	p := plan(t, src, tbl, connector.PlanOptions{PartitionRows: 1 << 20, BatchRows: 1000})
	var out [][]string
	for _, part := range p.Partitions {
		err := src.ReadPartition(ctxFor(t), tbl, part, "", func(b *model.RowBatch) error {
			for _, r := range b.Rows {
				vs := make([]string, len(r))
				for i, v := range r {
					vs[i] = fmt.Sprint(v)
				}
				out = append(out, vs)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("read back %s: %v", tbl.Namespace, err)
		}
	}
	return out
}

// readBack returns the rows of a table keyed by its first column (id),
// each the rest of the row, its values joined by "|"; ok false when the
// destination cannot be read (null).
func readBack(t *testing.T, h DestinationHarness, ns model.Namespace) (map[string]string, bool) {
	t.Helper()
	rows, ok := readRows(t, h, ns)
	if !ok {
		return nil, false
	}
	got := make(map[string]string, len(rows))
	for _, r := range rows {
		if _, dup := got[r[0]]; dup {
			t.Fatalf("key %s twice in %s", r[0], ns)
		}
		got[r[0]] = strings.Join(r[1:], "|")
	}
	return got, true
}

// checkRows compares a table's rows with want; for a destination that
// cannot be read back, its counts with counted.
func checkRows(t *testing.T, h DestinationHarness, d connector.Destination, ns model.Namespace, want map[string]string) {
	t.Helper()
	got, ok := readBack(t, h, ns)
	if !ok {
		if _, counts := d.(connector.Counter); !counts {
			t.Fatalf("destination is neither a Source nor a Counter and the harness has no ReadBack: nothing to check")
		}
		return
	}
	if !maps.Equal(got, want) {
		t.Fatalf("%s holds %d rows %s, want %d rows %s", ns, len(got), sample(got, want), len(want), sample(want, got))
	}
}

// sample shows a few entries of a that differ from b, for a message.
func sample(a, b map[string]string) string {
	out := "{"
	n := 0
	for k, v := range a {
		if bv, ok := b[k]; ok && bv == v {
			continue
		}
		if n == 5 {
			out += " ..."
			break
		}
		out += fmt.Sprintf(" %s:%s", k, v)
		n++
	}
	return out + " }"
}

func checkWriteTwice(t *testing.T, h DestinationHarness) {
	d := openDest(t, h)
	tbl := destTable(h, "conf_write")
	create(t, d, tbl)
	b1 := &model.RowBatch{Table: tbl, Partition: "p0", Rows: rowsFrom(1, 1000, "a"), Cursor: "c1"}
	b2 := &model.RowBatch{Table: tbl, Partition: "p0", Rows: rowsFrom(1001, 2000, "a"), Cursor: "c2"}
	// Then the partition is resumed from b1's cursor and retried from its
	// start, as the engine does after a failure: it sends every batch after
	// the point it resumes from, in order.
	write(t, d, b1, b2)
	write(t, d, b2)
	write(t, d, b1, b2)
	if c, ok := d.(connector.Counter); ok {
		if rows, _ := c.Counts(); rows != 5000 {
			t.Fatalf("counted %d rows, want 5000", rows)
		}
	}
	finish(t, d, tbl)
	checkRows(t, h, d, tbl.Namespace, expect(b1.Rows, b2.Rows))
}

func checkCheckpoints(t *testing.T, h DestinationHarness) {
	d := openDest(t, h)
	k, ok := d.(connector.CheckpointKeeper)
	if !ok {
		t.Skip("not a CheckpointKeeper")
	}
	tbl := destTable(h, "conf_checkpoint")
	create(t, d, tbl)
	const flow, key = "conf_flow", "partition/p0"
	load := func() map[string]string {
		t.Helper()
		// A new connection sees only what is durable.
		kk := openDest(t, h).(connector.CheckpointKeeper)
		m, err := kk.LoadCheckpoints(ctxFor(t), flow)
		if err != nil {
			t.Fatalf("LoadCheckpoints: %v", err)
		}
		return m
	}
	if m := load(); len(m) != 0 {
		t.Fatalf("a new flow has checkpoints %v", m)
	}
	w, err := d.OpenWriter(ctxFor(t))
	if err != nil {
		t.Fatalf("OpenWriter: %v", err)
	}
	defer w.Close()
	b1 := &model.RowBatch{Table: tbl, Partition: "p0", Rows: rowsFrom(1, 100, "a"), Cursor: "c1",
		Checkpoint: &model.Checkpoint{Flow: flow, Key: key, Value: "one"}}
	if err := w.WriteRows(ctxFor(t), b1); err != nil {
		t.Fatalf("WriteRows: %v", err)
	}
	if m := load(); m[key] != "one" {
		t.Fatalf("after a written batch, checkpoints are %v, want %s=one", m, key)
	}
	// A batch the destination refuses (a text where the key is an integer)
	// must not move the checkpoint.
	bad := rowsFrom(101, 200, "a")
	bad[50] = model.Row{"not a number", "x"}
	b2 := &model.RowBatch{Table: tbl, Partition: "p0", Rows: bad, Cursor: "c2",
		Checkpoint: &model.Checkpoint{Flow: flow, Key: key, Value: "two"}}
	if err := w.WriteRows(ctxFor(t), b2); err == nil {
		t.Fatalf("WriteRows took a text value for an int64 key")
	}
	if m := load(); m[key] != "one" {
		t.Fatalf("after a refused batch, checkpoints are %v, want %s=one still", m, key)
	}
	// What the checkpoint covers is there, and nothing of the refused
	// batch: it failed as a whole.
	finish(t, d, tbl)
	if got, readable := readBack(t, h, tbl.Namespace); readable && !maps.Equal(got, expect(b1.Rows)) {
		t.Fatalf("with checkpoint %s=one, %s holds %d rows %s, want the %d rows of the batch it came with %s",
			key, tbl.Namespace, len(got), sample(got, expect(b1.Rows)), len(b1.Rows), sample(expect(b1.Rows), got))
	}

	// ReplaceCheckpoints and DropCheckpoints round-trip.
	if err := k.ReplaceCheckpoints(ctxFor(t), flow, "partition/", map[string]string{"partition/p1": "x", "cdc/0": "y"}); err != nil {
		t.Fatalf("ReplaceCheckpoints: %v", err)
	}
	if m := load(); !maps.Equal(m, map[string]string{"partition/p1": "x", "cdc/0": "y"}) {
		t.Fatalf("after ReplaceCheckpoints of prefix partition/, checkpoints are %v", m)
	}
	if err := k.DropCheckpoints(ctxFor(t), flow); err != nil {
		t.Fatalf("DropCheckpoints: %v", err)
	}
	if m := load(); len(m) != 0 {
		t.Fatalf("after DropCheckpoints, checkpoints are %v", m)
	}
}

func checkApply(t *testing.T, h DestinationHarness) {
	d := openDest(t, h)
	a, ok := d.(connector.ChangeApplier)
	if !ok {
		t.Skip("not a ChangeApplier")
	}
	tbl, rows := seed(t, h, d, "conf_apply", 10)
	cw := openApplier(t, a)
	const flow = "conf_apply_flow"
	ups := func(rows ...model.Row) *model.TableChanges { return &model.TableChanges{Table: tbl, Upserts: rows} }
	batches := []*model.TableChanges{
		ups(model.Row{int64(1), "b"}, model.Row{int64(11), "new"}),
		{Table: tbl, Deletes: []model.Row{{int64(2)}}, Upserts: []model.Row{{int64(1), "c"}}},
		{Table: tbl, Deletes: []model.Row{{int64(1)}, {int64(99)}}}, // 99 is not there: ignored
		ups(model.Row{int64(1), "d"}, model.Row{int64(3), nil}),
		ups(model.Row{int64(3), "e"}, model.Row{int64(4), model.Unchanged}),
	}
	for i, tc := range batches {
		b := &model.ApplyBatch{Tables: []*model.TableChanges{tc},
			Checkpoint: &model.Checkpoint{Flow: flow, Key: "cdc/0", Value: fmt.Sprint(i)}}
		if err := cw.ApplyChanges(ctxFor(t), b); err != nil {
			t.Fatalf("ApplyChanges batch %d: %v", i, err)
		}
	}
	if c, ok := d.(connector.Counter); ok {
		if _, changes := c.Counts(); changes != 10 {
			t.Fatalf("counted %d changes, want 10", changes)
		}
	}
	want := expect(rows)
	want["1"], want["3"], want["11"] = "d", "e", "new"
	delete(want, "2")
	checkRows(t, h, d, tbl.Namespace, want)
	if _, ok := d.(connector.CheckpointKeeper); ok {
		m, err := openDest(t, h).(connector.CheckpointKeeper).LoadCheckpoints(ctxFor(t), flow)
		if err != nil {
			t.Fatalf("LoadCheckpoints: %v", err)
		}
		if m["cdc/0"] != fmt.Sprint(len(batches)-1) {
			t.Fatalf("after %d applied batches the checkpoint is %v, want cdc/0=%d", len(batches), m, len(batches)-1)
		}
		checkMoreCheckpoints(t, h, a, tbl, flow)
	}
}

// checkMoreCheckpoints: a batch holding all of an apply batch's changes
// stores the other writers' checkpoints (ApplyBatch.More) with its own, in
// its transaction: none of them when the destination refuses a change,
// all of them when it applies the batch.
func checkMoreCheckpoints(t *testing.T, h DestinationHarness, a connector.ChangeApplier, tbl *model.Table, flow string) {
	t.Helper()
	batch := func(v string, rows ...model.Row) *model.ApplyBatch {
		return &model.ApplyBatch{Tables: []*model.TableChanges{{Table: tbl, Upserts: rows}},
			Checkpoint: &model.Checkpoint{Flow: flow, Key: "cdc/0", Value: v},
			More:       []model.Checkpoint{{Flow: flow, Key: "cdc/1", Value: v}, {Flow: flow, Key: "cdc/2", Value: v}}}
	}
	load := func() map[string]string {
		t.Helper()
		m, err := openDest(t, h).(connector.CheckpointKeeper).LoadCheckpoints(ctxFor(t), flow)
		if err != nil {
			t.Fatalf("LoadCheckpoints: %v", err)
		}
		return m
	}
	before := load()
	if err := openApplier(t, a).ApplyChanges(ctxFor(t), batch("refused", model.Row{int64(20), "x"}, model.Row{"not a number", "x"})); err == nil {
		t.Fatalf("ApplyChanges took a text value for an int64 key")
	}
	if m := load(); !maps.Equal(m, before) {
		t.Fatalf("after a refused batch carrying three checkpoints, checkpoints are %v, want %v still", m, before)
	}
	if err := openApplier(t, a).ApplyChanges(ctxFor(t), batch("whole", model.Row{int64(21), "w"})); err != nil {
		t.Fatalf("ApplyChanges: %v", err)
	}
	if m := load(); m["cdc/0"] != "whole" || m["cdc/1"] != "whole" || m["cdc/2"] != "whole" {
		t.Fatalf("after a batch carrying checkpoints cdc/0, cdc/1 and cdc/2, checkpoints are %v, want all three at whole", m)
	}
}

func checkAbilities(t *testing.T, h DestinationHarness) {
	t.Run("TableFinisherTwice", func(t *testing.T) {
		d := openDest(t, h)
		f, ok := d.(connector.TableFinisher)
		if !ok {
			t.Skip("not a TableFinisher")
		}
		tbl := destTable(h, "conf_finish")
		create(t, d, tbl)
		rows := rowsFrom(1, 500, "a")
		write(t, d, &model.RowBatch{Table: tbl, Partition: "p0", Rows: rows, Cursor: "c"})
		for i := range 2 {
			if err := f.FinishTable(ctxFor(t), tbl); err != nil {
				t.Fatalf("FinishTable, time %d: %v", i+1, err)
			}
		}
		checkRows(t, h, d, tbl.Namespace, expect(rows))
	})
	t.Run("KeyDeferrer", func(t *testing.T) {
		d := openDest(t, h)
		k, ok := d.(connector.KeyDeferrer)
		if !ok {
			t.Skip("not a KeyDeferrer")
		}
		tbl := destTable(h, "conf_deferred")
		if err := k.CreateTablesForCopy(ctxFor(t), []*model.Table{tbl}); err != nil {
			t.Fatalf("CreateTablesForCopy: %v", err)
		}
		rows := rowsFrom(1, 500, "a")
		b := &model.RowBatch{Table: tbl, Partition: "p0", Rows: rows, Cursor: "c"}
		write(t, d, b)
		write(t, d, b)
		for i := range 2 {
			if err := k.FinishTable(ctxFor(t), tbl); err != nil {
				t.Fatalf("FinishTable, time %d: %v", i+1, err)
			}
		}
		checkRows(t, h, d, tbl.Namespace, expect(rows))
	})
	t.Run("Emptier", func(t *testing.T) {
		d := openDest(t, h)
		e, ok := d.(connector.Emptier)
		if !ok {
			t.Skip("not an Emptier")
		}
		tbl, _ := seed(t, h, d, "conf_empty", 100)
		if err := e.EmptyTables(ctxFor(t), []*model.Table{tbl}); err != nil {
			t.Fatalf("EmptyTables: %v", err)
		}
		checkRows(t, h, d, tbl.Namespace, map[string]string{})
	})
	t.Run("CreateTablesTwice", func(t *testing.T) {
		d := openDest(t, h)
		tbl, rows := seed(t, h, d, "conf_create", 10)
		// An existing compatible table is left as it is.
		create(t, openDest(t, h), tbl)
		checkRows(t, h, d, tbl.Namespace, expect(rows))
	})
	t.Run("SchemaChanger", func(t *testing.T) { checkAlter(t, h) })
	t.Run("RawWriter", func(t *testing.T) { checkRawWrite(t, h) })
	t.Run("FullRows", func(t *testing.T) { checkFullRows(t, h) })
	t.Run("SpanApply", func(t *testing.T) { checkSpanApply(t, h) })
	t.Run("SequenceWriter", func(t *testing.T) { checkSequences(t, h) })
	t.Run("UniqueReporter", func(t *testing.T) { checkUniqueReporter(t, h) })
	t.Run("Described", func(t *testing.T) { checkDescribed(t, openDest(t, h)) })
}

// checkUniqueReporter: a UniqueReporter names no table it created itself
// (those hold their key only, and naming them would put every change of
// the flow on one writer), and names a table a user made with a unique
// column besides the key.
func checkUniqueReporter(t *testing.T, h DestinationHarness) {
	d := openDest(t, h)
	u, ok := d.(connector.UniqueReporter)
	if !ok {
		t.Skip("not a UniqueReporter")
	}
	own, _ := seed(t, h, d, "conf_unique_own", 10)
	tables := []*model.Table{own}
	want := ""
	if h.CreateUnique != nil {
		uniq := destTable(h, "conf_unique_user")
		h.CreateUnique(t, uniq.Namespace)
		tables = append(tables, uniq)
		want = uniq.Namespace.String()
	}
	got, err := u.UniqueTables(ctxFor(t), tables)
	if err != nil {
		t.Fatalf("UniqueTables: %v", err)
	}
	var names []string
	for _, ns := range got {
		names = append(names, ns.String())
	}
	if strings.Join(names, " ") != want {
		t.Fatalf("UniqueTables named %v, want %q", names, want)
	}
}
