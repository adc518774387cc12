package postgres_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connectors/postgres"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/model"
)

// streamFlow plans a CDC flow of every table of c's database and returns
// its tables and T0.
func streamFlow(t *testing.T, c *postgres.Conn, flowName string) ([]*model.Table, model.Position) {
	t.Helper()
	ctx := context.Background()
	tables, err := c.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := c.Plan(ctx, tables, connector.PlanOptions{CDC: true, Flow: flowName})
	if err != nil {
		t.Fatal(err)
	}
	return tables, plan.T0
}

// streamUntil streams the flow's changes from from and returns the batches
// emitted until done says enough (or the stream's error, if it stops first).
func streamUntil(t *testing.T, c *postgres.Conn, flowName string, tables []*model.Table, from model.Position, done func([]*model.ChangeBatch) bool) ([]*model.ChangeBatch, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []*model.ChangeBatch
	err := c.StreamChanges(ctx, tables, from, connector.StreamOptions{Flow: flowName}, func(_ context.Context, b *model.ChangeBatch) error {
		if len(b.Changes) > 0 || len(b.Schemas) > 0 {
			got = append(got, b)
		}
		if done(got) {
			cancel()
		}
		return nil
	})
	if ctx.Err() != nil {
		if context.Cause(ctx) == context.DeadlineExceeded {
			t.Fatalf("stream did not emit what was expected within 30s; got %d batches", len(got))
		}
		return got, nil
	}
	return got, err
}

// changesOf flattens the batches' changes.
func changesOf(bs []*model.ChangeBatch) []model.Change {
	var out []model.Change
	for _, b := range bs {
		out = append(out, b.Changes...)
	}
	return out
}

// schemasOf flattens the batches' schema changes.
func schemasOf(bs []*model.ChangeBatch) []model.SchemaChange {
	var out []model.SchemaChange
	for _, b := range bs {
		out = append(out, b.Schemas...)
	}
	return out
}

// TestTruncateComesOutInOrder: a TRUNCATE is a change in stream order among
// its transaction's others, one per flow table it names (CASCADE included).
func TestTruncateComesOutInOrder(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1), (2);
		CREATE TABLE parts (id int PRIMARY KEY, item int REFERENCES items)`)
	c := open(t, p.srcURL())
	tables, t0 := streamFlow(t, c, "trunc")
	mustExec(t, src, `BEGIN; INSERT INTO items VALUES (3); TRUNCATE items CASCADE; INSERT INTO items VALUES (4); COMMIT`)
	got, err := streamUntil(t, c, "trunc", tables, t0, func(bs []*model.ChangeBatch) bool { return len(changesOf(bs)) >= 4 })
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, ch := range changesOf(got) {
		seen = append(seen, ch.Op.String()+" "+ch.Table.Table)
	}
	want := []string{"insert items", "truncate items", "truncate parts", "insert items"}
	if len(seen) != len(want) {
		t.Fatalf("changes %v, want %v", seen, want)
	}
	// TRUNCATE ... CASCADE names the tables in the server's order.
	middle := seen[1] + ", " + seen[2]
	if seen[0] != want[0] || seen[3] != want[3] || middle != "truncate items, truncate parts" && middle != "truncate parts, truncate items" {
		t.Fatalf("changes %v, want %v", seen, want)
	}
}

// schemaOf returns the last schema change emitted for a table, failing the
// test when there is none.
func schemaOf(t *testing.T, bs []*model.ChangeBatch, table string) model.SchemaChange {
	t.Helper()
	var found *model.SchemaChange
	for _, sc := range schemasOf(bs) {
		if sc.Table.Namespace.Table == table {
			found = &sc
		}
	}
	if found == nil {
		t.Fatalf("no schema change of %s emitted", table)
	}
	return *found
}

// rowOf returns the row of the last change of table, as a map by the
// column names the stream knew when it emitted it.
func rowOf(t *testing.T, bs []*model.ChangeBatch, table string) map[string]any {
	t.Helper()
	var cols []model.Column
	var row model.Row
	for _, b := range bs {
		for _, sc := range b.Schemas {
			if sc.Table.Namespace.Table == table {
				cols = sc.Table.Columns
			}
		}
		for _, ch := range b.Changes {
			if ch.Table.Table == table && ch.Row != nil {
				row = ch.Row
			}
		}
	}
	if cols == nil || row == nil {
		t.Fatalf("no schema change or no row of %s emitted", table)
	}
	out := map[string]any{}
	for i, c := range cols {
		out[c.Name] = row[i]
	}
	return out
}

func columnList(tb *model.Table) string {
	var s []string
	for _, c := range tb.Columns {
		s = append(s, c.Name+" "+c.Type.String())
	}
	return strings.Join(s, ", ")
}

// TestDDLLogFollowsSchemaChanges: with ferry's DDL log (a superuser role),
// a rename is a rename (values kept, later rows under the new name), a
// drop a drop, a column added with a constant default carries the value
// the existing rows got, and int to bigint a type change.
func TestDDLLogFollowsSchemaChanges(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `CREATE EXTENSION hstore; CREATE TABLE ref (id int PRIMARY KEY, m hstore);
		CREATE TABLE ren (id int PRIMARY KEY, name text); INSERT INTO ren VALUES (1, 'one');
		CREATE TABLE drp (id int PRIMARY KEY, gone text, kept int);
		CREATE TABLE fil (id int PRIMARY KEY); INSERT INTO fil VALUES (1);
		CREATE TABLE typ (id int PRIMARY KEY, n int);
		CREATE TABLE par (id int, r text, v text, PRIMARY KEY (id, r)) PARTITION BY LIST (r);
		CREATE TABLE par_a PARTITION OF par FOR VALUES IN ('a')`)
	c := open(t, p.srcURL())
	tables, t0 := streamFlow(t, c, "ddl")
	if n := count(t, src, `SELECT count(*) FROM pg_publication_tables WHERE pubname = 'ferry_ddl' AND schemaname = '_ferry' AND tablename = 'ddl_log'`); n != 1 {
		t.Fatal("ferry's publication does not publish its DDL log")
	}
	mustExec(t, src, `ALTER TABLE ren RENAME name TO title; INSERT INTO ren VALUES (2, 'two');
		ALTER TABLE drp DROP COLUMN gone; INSERT INTO drp VALUES (1, 7);
		SET DateStyle = 'SQL, DMY'; SET TimeZone = 'Asia/Tokyo';
		ALTER TABLE fil ADD COLUMN size int NOT NULL DEFAULT 5, ADD COLUMN label text DEFAULT 'a "b", {c}', ADD COLUMN at timestamptz DEFAULT '2026-01-02 03:04:05+00', ADD COLUMN m hstore;
		RESET DateStyle; RESET TimeZone; INSERT INTO fil VALUES (2, 6, 'x')`)
	// Alone, as psql sends it: the server's own cast, so no copy again.
	mustExec(t, src, `ALTER TABLE typ ALTER n TYPE bigint`)
	mustExec(t, src, `INSERT INTO typ VALUES (1, 5000000000);
		ALTER TABLE par RENAME v TO w; INSERT INTO par VALUES (1, 'a', 'x')`)
	got, err := streamUntil(t, c, "ddl", tables, t0, func(bs []*model.ChangeBatch) bool { return len(changesOf(bs)) >= 5 })
	if err != nil {
		t.Fatal(err)
	}
	if len(schemasOf(got)) != 5 {
		t.Fatalf("%d schema changes emitted, want 5", len(schemasOf(got)))
	}

	ren := schemaOf(t, got, "ren")
	if columnList(ren.Table) != "id int32, title text" || ren.Renamed["title"] != "name" || len(ren.Renamed) != 1 {
		t.Fatalf("rename: columns %s, renamed %v; want title renamed from name", columnList(ren.Table), ren.Renamed)
	}
	if r := rowOf(t, got, "ren"); r["title"] != "two" {
		t.Fatalf("the row after the rename reads %v", r)
	}

	drp := schemaOf(t, got, "drp")
	if columnList(drp.Table) != "id int32, kept int32" || len(drp.Renamed) != 0 || len(drp.Filled) != 0 {
		t.Fatalf("drop: columns %s, renamed %v, filled %v", columnList(drp.Table), drp.Renamed, drp.Filled)
	}
	if r := rowOf(t, got, "drp"); r["kept"] != int64(7) {
		t.Fatalf("the row after the drop reads %v", r)
	}

	fil := schemaOf(t, got, "fil")
	// The value is read in ferry's text form, whatever the altering
	// session's DateStyle and TimeZone.
	if at, ok := fil.Filled["at"].(time.Time); !ok || !at.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("add with a timestamp default: filled %#v", fil.Filled["at"])
	}
	// Types read as discovery reads them (the trigger's search_path is not
	// ferry's).
	ref := tables[slices.IndexFunc(tables, func(t *model.Table) bool { return t.Namespace.Table == "ref" })]
	if got, want := fil.Table.Columns[4].Type, ref.Columns[1].Type; got.String() != want.String() || got.Native != want.Native {
		t.Fatalf("an added hstore column is %s (%s), discovery reads %s (%s)", got, got.Native, want, want.Native)
	}
	if columnList(fil.Table) != "id int32, size int32, label text, at timestamptz, m "+ref.Columns[1].Type.String() || fil.Filled["size"] != int64(5) || fil.Filled["label"] != `a "b", {c}` {
		t.Fatalf("add with defaults: columns %s, filled %#v", columnList(fil.Table), fil.Filled)
	}
	if fil.Table.Columns[1].Nullable {
		t.Fatal("a NOT NULL column was added as nullable")
	}

	typ := schemaOf(t, got, "typ")
	if columnList(typ.Table) != "id int32, n int64" || typ.Recopy {
		t.Fatalf("type change: columns %s, recopy %v", columnList(typ.Table), typ.Recopy)
	}
	if r := rowOf(t, got, "typ"); r["n"] != int64(5000000000) {
		t.Fatalf("the row after the type change reads %v", r)
	}

	// A partitioned table, published through its root, is logged by its
	// root.
	par := schemaOf(t, got, "par")
	if columnList(par.Table) != "id int32, r text, w text" || par.Renamed["w"] != "v" {
		t.Fatalf("rename in a partitioned table: columns %s, renamed %v", columnList(par.Table), par.Renamed)
	}
	if r := rowOf(t, got, "par"); r["w"] != "x" {
		t.Fatalf("the row after the rename reads %v", r)
	}

	// A resumed stream that already knows the new definitions reads the
	// log rows again and emits no schema change.
	known := []*model.Table{ren.Table, drp.Table, fil.Table, typ.Table, par.Table}
	again, err := streamUntil(t, c, "ddl", known, t0, func(bs []*model.ChangeBatch) bool { return len(changesOf(bs)) >= 5 })
	if err != nil {
		t.Fatal(err)
	}
	if n := len(schemasOf(again)); n != 0 {
		t.Fatalf("resumed with the new definitions, the stream emitted %d schema changes again", n)
	}

	// Dropping the flow removes what ferry made on the source.
	if err := c.DropFlow(context.Background(), "ddl"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, src, `SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'ferry_ddl%'`) +
		count(t, src, `SELECT count(*) FROM pg_namespace WHERE nspname = '_ferry'`) +
		count(t, src, `SELECT count(*) FROM pg_class WHERE relname = 'ddl_log'`); n != 0 {
		t.Fatal("DropFlow left the DDL log, its schema or its event triggers")
	}
}

// TestSessionLostBeforeTheCommitOfASchemaChange: the replication
// connection is lost after an ALTER TABLE's DDL log row changed the
// stream's definition of the table and before the commit of its
// transaction emitted the schema change. The next session receives the
// transaction again and must emit the change again: before, it found the
// table already altered, emitted no change, and the rows after it reached
// the engine in the new columns under the old definition (a column dropped
// and another added in its place: the new values written into the old
// column).
func TestSessionLostBeforeTheCommitOfASchemaChange(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `CREATE TABLE swp (id int PRIMARY KEY, gone text); INSERT INTO swp VALUES (1, 'one')`)
	c := open(t, p.srcURL())
	tables, t0 := streamFlow(t, c, "lost")
	defer postgres.LoseSessionAfterLogRow(io.ErrUnexpectedEOF)()
	mustExec(t, src, `BEGIN; ALTER TABLE swp DROP COLUMN gone, ADD COLUMN n int; INSERT INTO swp VALUES (2, 42); COMMIT`)
	got, err := streamUntil(t, c, "lost", tables, t0, func(bs []*model.ChangeBatch) bool { return len(changesOf(bs)) >= 1 })
	if err != nil {
		t.Fatal(err)
	}
	if n := len(schemasOf(got)); n != 1 {
		t.Fatalf("%d schema changes emitted after the session was lost, want 1", n)
	}
	if sc := schemaOf(t, got, "swp"); columnList(sc.Table) != "id int32, n int32" {
		t.Fatalf("the schema change has columns %s", columnList(sc.Table))
	}
	if r := rowOf(t, got, "swp"); r["n"] != int64(42) {
		t.Fatalf("the row after the change reads %v", r)
	}
}

// TestDDLLogRewriteAsksForRecopy: a command that rewrote a table's rows
// (a column added with a volatile default, a type change whose USING may
// change the values, even to the same type) reaches the stream as no row
// change at all (pgoutput does not decode a rewrite); the log marks it, and
// the stream emits the schema change with Recopy, the added column
// nullable and without a value for the existing rows. A type change the
// server makes without a rewrite (varchar(10) to varchar(20)) keeps the
// values and asks for no copy.
func TestDDLLogRewriteAsksForRecopy(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1);
		CREATE TABLE conv (id int PRIMARY KEY, n int); INSERT INTO conv VALUES (1, 10), (2, 20);
		CREATE TABLE same (id int PRIMARY KEY, n int); INSERT INTO same VALUES (1, 10);
		CREATE TABLE wide (id int PRIMARY KEY, v varchar(10)); INSERT INTO wide VALUES (1, 'a');
		CREATE TABLE big (id int PRIMARY KEY, n int); INSERT INTO big VALUES (1, 7);
		CREATE TABLE par (id int, r text, v int, PRIMARY KEY (id, r)) PARTITION BY LIST (r);
		CREATE TABLE par_a PARTITION OF par FOR VALUES IN ('a'); INSERT INTO par VALUES (1, 'a', 1)`)
	c := open(t, p.srcURL())
	tables, t0 := streamFlow(t, c, "rewrite")
	// A partitioned table's rewrite is its partitions'; the log marks the
	// root, by which the flow knows the table.
	mustExec(t, src, `ALTER TABLE par ALTER v TYPE bigint USING v * 10`)
	// Alone and without USING, int to bigint is the server's own cast:
	// values kept, no copy; in a string of several statements ferry cannot
	// tell there was no USING, and asks for the copy.
	mustExec(t, src, `ALTER TABLE big ALTER n TYPE bigint`)
	mustExec(t, src, `ALTER TABLE big ALTER n TYPE int; INSERT INTO big VALUES (2, 5); INSERT INTO par VALUES (2, 'a', 2)`)
	// One transaction: a rewrite marks its own command only (conv's
	// SET DEFAULT after it is not marked).
	mustExec(t, src, `ALTER TABLE items ADD COLUMN seen timestamptz NOT NULL DEFAULT clock_timestamp(); INSERT INTO items VALUES (2);
		ALTER TABLE conv ALTER n TYPE text USING 'n=' || n; ALTER TABLE conv ALTER n SET DEFAULT 'd'; INSERT INTO conv VALUES (3, 'x');
		ALTER TABLE same ALTER n TYPE int USING n + 1; INSERT INTO same VALUES (2, 5);
		ALTER TABLE wide ALTER v TYPE varchar(20); INSERT INTO wide VALUES (2, 'b')`)
	got, err := streamUntil(t, c, "rewrite", tables, t0, func(bs []*model.ChangeBatch) bool { return len(changesOf(bs)) >= 6 })
	if err != nil {
		t.Fatal(err)
	}
	// What pgoutput sent for the rewrites: nothing for the rows there.
	for _, ch := range changesOf(got) {
		if ch.Op != model.OpInsert {
			t.Fatalf("the stream carried a %s of %s: a rewrite decoded as row changes", ch.Op, ch.Table)
		}
	}
	if n := len(changesOf(got)); n != 6 {
		t.Fatalf("%d changes, want the 6 inserts after the rewrites", n)
	}
	if par := schemaOf(t, got, "par"); !par.Recopy || columnList(par.Table) != "id int32, r text, v int64" {
		t.Fatalf("a partitioned table's type change with USING: recopy %v, columns %s", par.Recopy, columnList(par.Table))
	}
	var big []string
	for _, sc := range schemasOf(got) {
		if sc.Table.Namespace.Table == "big" {
			big = append(big, fmt.Sprintf("%s recopy %v", columnList(sc.Table), sc.Recopy))
		}
	}
	if strings.Join(big, "; ") != "id int32, n int64 recopy false; id int32, n int32 recopy true" {
		t.Fatalf("int to bigint alone, then back among other statements: %v", big)
	}

	items := schemaOf(t, got, "items")
	if !items.Recopy || columnList(items.Table) != "id int32, seen timestamptz" || len(items.Filled) != 0 {
		t.Fatalf("volatile default: recopy %v, columns %s, filled %v", items.Recopy, columnList(items.Table), items.Filled)
	}
	if !items.Table.Columns[1].Nullable {
		t.Fatal("a column the copy fills was sent NOT NULL: the rows the destination has would refuse it")
	}
	if r := rowOf(t, got, "items"); r["seen"] == nil {
		t.Fatalf("the row after the rewrite reads %v", r)
	}
	conv := schemaOf(t, got, "conv")
	if n := count(t, src, `SELECT count(*) FROM _ferry.ddl_log WHERE table_name = 'conv' AND rewritten`); n != 1 {
		t.Fatalf("%d log entries of conv marked rewritten, want the type change's only", n)
	}
	if !conv.Recopy || columnList(conv.Table) != "id int32, n text" {
		t.Fatalf("int to text USING: recopy %v, columns %s", conv.Recopy, columnList(conv.Table))
	}
	same := schemaOf(t, got, "same")
	if !same.Recopy || columnList(same.Table) != "id int32, n int32" {
		t.Fatalf("int to int USING n + 1: recopy %v, columns %s", same.Recopy, columnList(same.Table))
	}
	wide := schemaOf(t, got, "wide")
	if wide.Recopy || wide.Table.Columns[1].Type.Length != 20 {
		t.Fatalf("varchar(10) to varchar(20): recopy %v, type %+v", wide.Recopy, wide.Table.Columns[1].Type)
	}

	// A resumed stream that knows the new definitions reads the rewrites'
	// log rows again and cannot tell it followed them (the columns are as
	// it knows them either way): each asks for the copy again, which
	// costs a copy and loses nothing; the one without a rewrite asks
	// nothing.
	// (big, changed twice, is left out: a stream handed a definition newer
	// than the log row it replays goes through the changes again.)
	known := []*model.Table{items.Table, conv.Table, same.Table, wide.Table}
	again, err := streamUntil(t, c, "rewrite", known, t0, func(bs []*model.ChangeBatch) bool { return len(changesOf(bs)) >= 4 })
	if err != nil {
		t.Fatal(err)
	}
	var recopied []string
	for _, sc := range schemasOf(again) {
		if !sc.Recopy || !sameTableColumns(sc.Table, known) {
			t.Fatalf("resumed with the new definitions, the stream emitted a change of %s (recopy %v, columns %s)", sc.Table.Namespace, sc.Recopy, columnList(sc.Table))
		}
		recopied = append(recopied, sc.Table.Namespace.Table)
	}
	if strings.Join(recopied, ",") != "items,conv,same" {
		t.Fatalf("resumed, the stream asked to copy %v again, want items, conv, same", recopied)
	}
}

// sameTableColumns reports whether tb's columns are those of the table of
// the same name in known.
func sameTableColumns(tb *model.Table, known []*model.Table) bool {
	for _, k := range known {
		if k.Namespace == tb.Namespace {
			return columnList(k) == columnList(tb)
		}
	}
	return false
}

// TestDDLLogMissingEntryStops: a schema change the log missed (its event
// trigger disabled) leaves the stream and the log disagreeing: the flow
// stops rather than guess.
func TestDDLLogMissingEntryStops(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `CREATE TABLE items (id int PRIMARY KEY, name text)`)
	c := open(t, p.srcURL())
	tables, t0 := streamFlow(t, c, "unlogged")
	mustExec(t, src, `ALTER EVENT TRIGGER ferry_ddl_log DISABLE; ALTER TABLE items RENAME name TO title; ALTER EVENT TRIGGER ferry_ddl_log ENABLE;
		INSERT INTO items VALUES (1, 'one')`)
	_, err := streamUntil(t, c, "unlogged", tables, t0, func(bs []*model.ChangeBatch) bool { return len(changesOf(bs)) >= 1 })
	if err == nil || !strings.Contains(err.Error(), "public.items: the change stream and ferry's DDL log disagree") || !strings.Contains(err.Error(), "title") {
		t.Fatalf("want the disagreement stop, got %v", err)
	}
}

// TestWithoutDDLLogRenameStops: a role that may not create event triggers
// gets no DDL log; a rename (a column gone, another new, in one relation
// message) stops the flow naming both columns and saying how to get the
// log; a column added with a default asks for the table to be copied
// again, the column nullable.
func TestWithoutDDLLogRenameStops(t *testing.T) {
	srv := pgtest.Shared(t)
	db, role := managedSource(t, srv, "", "REPLICATION")
	srv.Exec(t, db, `CREATE TABLE other (id int PRIMARY KEY); ALTER TABLE other OWNER TO `+role)
	logs := &lockedBuffer{}
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(logs, nil)))
	c := open(t, srv.UserURL(role, "pw", db))
	tables, t0 := streamFlow(t, c, "nolog")
	if !strings.Contains(logs.String(), "ferry cannot keep its DDL log on the source (the role may not create event triggers") {
		t.Fatalf("no warning that the flow runs without the DDL log; logged:\n%s", logs.String())
	}
	src := srv.Connect(t, db)
	if n := count(t, src, `SELECT count(*) FROM pg_event_trigger`); n != 0 {
		t.Fatal("an event trigger was made for a role that may not")
	}
	mustExec(t, src, `ALTER TABLE items RENAME v TO w; INSERT INTO items VALUES (1, 'one')`)
	_, err := streamUntil(t, c, "nolog", tables, t0, func(bs []*model.ChangeBatch) bool { return len(changesOf(bs)) >= 1 })
	for _, want := range []string{"public.items: column(s) v vanished and w appeared", "cannot tell a rename", "event triggers", "ADD TABLE _ferry.ddl_log"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("want the ambiguity stop (%q), got %v", want, err)
		}
	}
	mustExec(t, src, `ALTER TABLE other ADD COLUMN size int NOT NULL DEFAULT 3; INSERT INTO other VALUES (1, 4)`)
	got, err := streamUntil(t, c, "nolog", tables[1:], t0, func(bs []*model.ChangeBatch) bool { return len(changesOf(bs)) >= 1 })
	if err != nil {
		t.Fatal(err)
	}
	if sc := schemaOf(t, got, "other"); !sc.Recopy || columnList(sc.Table) != "id int32, size int32" || !sc.Table.Columns[1].Nullable || len(sc.Filled) != 0 {
		t.Fatalf("a column added with a default: recopy %v, columns %s, filled %v", sc.Recopy, columnList(sc.Table), sc.Filled)
	}
}

// TestDDLLogResumeWithOlderDefinition: a stream resumed after a schema
// change's log entry, but handed the definition from before it (a run that
// kept the plan's), finds the way in the log when the table's relation
// message comes, and emits the change relative to what it was handed:
// renamed twice is one rename from the first name.
func TestDDLLogResumeWithOlderDefinition(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `CREATE TABLE items (id int PRIMARY KEY, a text, b text)`)
	c := open(t, p.srcURL())
	tables, t0 := streamFlow(t, c, "older")
	mustExec(t, src, `ALTER TABLE items RENAME a TO a2; ALTER TABLE items RENAME a2 TO a3; ALTER TABLE items ADD COLUMN n int DEFAULT 9; ALTER TABLE items DROP COLUMN b;
		SELECT pg_logical_emit_message(true, 'test', 'mark')`)
	// The position after the schema changes, before any row change.
	first, err := streamUntil(t, c, "older", tables, t0, func(bs []*model.ChangeBatch) bool { return len(schemasOf(bs)) >= 4 })
	if err != nil {
		t.Fatal(err)
	}
	after := first[len(first)-1].Position
	mustExec(t, src, `INSERT INTO items VALUES (1, 'one', 10)`)
	got, err := streamUntil(t, c, "older", tables, after, func(bs []*model.ChangeBatch) bool { return len(changesOf(bs)) >= 1 })
	if err != nil {
		t.Fatal(err)
	}
	sc := schemaOf(t, got, "items")
	if columnList(sc.Table) != "id int32, a3 text, n int32" || len(sc.Renamed) != 1 || sc.Renamed["a3"] != "a" || len(sc.Filled) != 1 || sc.Filled["n"] != int64(9) {
		t.Fatalf("resumed with the old definition: columns %s, renamed %v, filled %v; want a3 renamed from a, n filled with 9", columnList(sc.Table), sc.Renamed, sc.Filled)
	}
	if r := rowOf(t, got, "items"); r["a3"] != "one" || r["n"] != int64(10) {
		t.Fatalf("the row reads %v", r)
	}
}

// TestNoDDLLogBesideAPublicationOfAllTables: a publication FOR ALL TABLES
// would carry the log to its subscribers, which lack the table: ferry
// makes no log there and follows by name.
func TestNoDDLLogBesideAPublicationOfAllTables(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `CREATE TABLE items (id int PRIMARY KEY, v text); CREATE PUBLICATION everything FOR ALL TABLES`)
	c := open(t, p.srcURL())
	tables, t0 := streamFlow(t, c, "alltables")
	if n := count(t, src, `SELECT count(*) FROM pg_event_trigger`) + count(t, src, `SELECT count(*) FROM pg_namespace WHERE nspname = '_ferry'`); n != 0 {
		t.Fatal("ferry made its DDL log beside a publication of all tables")
	}
	mustExec(t, src, `ALTER TABLE items RENAME v TO w; INSERT INTO items VALUES (1, 'one')`)
	_, err := streamUntil(t, c, "alltables", tables, t0, func(bs []*model.ChangeBatch) bool { return len(changesOf(bs)) >= 1 })
	if err == nil || !strings.Contains(err.Error(), "column(s) v vanished and w appeared") {
		t.Fatalf("want the ambiguity stop, got %v", err)
	}
}

// TestDDLLogSharedByFlows: the log logs the DDL of a role that is not a
// superuser (the table's owner), two flows of one database share it, and
// it goes with the last flow dropped.
func TestDDLLogSharedByFlows(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	role := p.srv.CreateUser(t, "owner", "pw")
	mustExec(t, src, `CREATE TABLE items (id int PRIMARY KEY, name text); ALTER TABLE items OWNER TO `+role)
	c := open(t, p.srcURL())
	tables, t0 := streamFlow(t, c, "one")
	streamFlow(t, c, "two")
	app, err := pgx.Connect(context.Background(), p.srv.UserURL(role, "pw", p.src))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close(context.Background())
	mustExec(t, app, `ALTER TABLE items RENAME name TO title; INSERT INTO items VALUES (1, 'one')`)
	got, err := streamUntil(t, c, "one", tables, t0, func(bs []*model.ChangeBatch) bool { return len(changesOf(bs)) >= 1 })
	if err != nil {
		t.Fatal(err)
	}
	if sc := schemaOf(t, got, "items"); sc.Renamed["title"] != "name" {
		t.Fatalf("the owner's rename: renamed %v", sc.Renamed)
	}
	logged := func() int64 {
		return count(t, src, `SELECT count(*) FROM pg_event_trigger WHERE evtname = 'ferry_ddl_log'`) + count(t, src, `SELECT count(*) FROM pg_class WHERE relname = 'ddl_log'`)
	}
	if err := c.DropFlow(context.Background(), "one"); err != nil {
		t.Fatal(err)
	}
	if logged() != 2 {
		t.Fatal("dropping one flow removed the log the other uses")
	}
	if err := c.DropFlow(context.Background(), "two"); err != nil {
		t.Fatal(err)
	}
	if logged() != 0 {
		t.Fatal("dropping the last flow left the log")
	}
}

// TestPublicationWithoutTruncateIsWarnedOf: a publication= of the user's
// that does not publish truncate never sends one; the preflight says so.
func TestPublicationWithoutTruncateIsWarnedOf(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `CREATE TABLE items (id int PRIMARY KEY); CREATE PUBLICATION mine FOR TABLE items WITH (publish = 'insert, update, delete')`)
	logs := &lockedBuffer{}
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(logs, nil)))
	c := open(t, p.srcURL()+"&publication=mine")
	tables, err := c.Tables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Preflight(context.Background(), tables, connector.PlanOptions{CDC: true, Flow: "mine"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "publication mine does not publish TRUNCATE") {
		t.Fatalf("no warning of the publication without truncate; logged:\n%s", logs.String())
	}
}

// TestDDLLogOfAnOlderFerryIsMadeAgain: a log made before rewrites were
// logged (no rewrite triggers, no rewritten column) is made again when a
// flow starts, and then marks a rewrite.
func TestDDLLogOfAnOlderFerryIsMadeAgain(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `CREATE TABLE items (id int PRIMARY KEY, n int); INSERT INTO items VALUES (1, 1)`)
	c := open(t, p.srcURL())
	streamFlow(t, c, "older")
	mustExec(t, src, `DROP EVENT TRIGGER ferry_ddl_rewrite; DROP EVENT TRIGGER ferry_ddl_rewrite_done; DROP FUNCTION _ferry.log_rewrite();
		ALTER TABLE _ferry.ddl_log DROP COLUMN rewritten`)
	tables, t0 := streamFlow(t, c, "newer")
	mustExec(t, src, `ALTER TABLE items ALTER n TYPE bigint USING n * 10`)
	mustExec(t, src, `INSERT INTO items VALUES (2, 2)`)
	got, err := streamUntil(t, c, "newer", tables, t0, func(bs []*model.ChangeBatch) bool { return len(changesOf(bs)) >= 1 })
	if err != nil {
		t.Fatal(err)
	}
	if sc := schemaOf(t, got, "items"); !sc.Recopy || columnList(sc.Table) != "id int32, n int64" {
		t.Fatalf("a type change with USING after the log was made again: recopy %v, columns %s", sc.Recopy, columnList(sc.Table))
	}
}
