package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connectors/postgres"
	"github.com/ferrydb/ferry/model"
)

// streamWith streams like streamUntil with the stream options given, and
// calls each with every batch as the engine would get it (before done is
// asked), so a test can act as the engine does on a schema change.
func streamWith(t *testing.T, c *postgres.Conn, tables []*model.Table, from model.Position, opts connector.StreamOptions,
	each func(*model.ChangeBatch), done func([]*model.ChangeBatch) bool) []*model.ChangeBatch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []*model.ChangeBatch
	err := c.StreamChanges(ctx, tables, from, opts, func(_ context.Context, b *model.ChangeBatch) error {
		if len(b.Changes) == 0 && len(b.Schemas) == 0 {
			return nil
		}
		got = append(got, b)
		if each != nil {
			each(b)
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
		return got
	}
	t.Fatalf("the stream stopped: %v", err)
	return nil
}

// events lists the stream's schema changes and changes in stream order, as
// "created t", "dropped t", "schema t", "insert t".
func events(bs []*model.ChangeBatch) []string {
	var out []string
	for _, b := range bs {
		for _, sc := range b.Schemas {
			what := "schema "
			switch {
			case sc.Created:
				what = "created "
			case sc.Dropped:
				what = "dropped "
			}
			out = append(out, what+sc.Table.Namespace.Table)
		}
		for _, ch := range b.Changes {
			out = append(out, ch.Op.String()+" "+ch.Table.Table)
		}
	}
	return out
}

func hasEvent(bs []*model.ChangeBatch, e string) bool { return slices.Contains(events(bs), e) }

// TestCreatedTableIsFollowed: a table created at the source while the flow
// streams, which NewTables selects, comes out as a Created schema change
// with its whole definition, ahead of its changes; once the table is added
// to the publication (what the engine does on Created), its changes
// stream. A table NewTables rejects, a new partition of a partitioned
// table, and a table created and dropped before the stream reads it come
// out as nothing; CREATE TABLE AS is a creation too. Streamed again from
// the start by a stream that knows the table (a resume), the CREATE TABLE
// entry changes nothing.
func TestCreatedTableIsFollowed(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `CREATE TABLE items (id int PRIMARY KEY);
		CREATE TABLE parted (id int, r text, PRIMARY KEY (id, r)) PARTITION BY LIST (r);
		CREATE TABLE parted_a PARTITION OF parted FOR VALUES IN ('a')`)
	c := open(t, p.srcURL())
	tables, t0 := streamFlow(t, c, "newt")
	mustExec(t, src, `CREATE TABLE fresh (id int PRIMARY KEY, name text NOT NULL, note varchar(20));
		CREATE INDEX fresh_name ON fresh (name);
		INSERT INTO fresh VALUES (1, 'before the publication has it');
		CREATE TABLE skipped (id int PRIMARY KEY);
		CREATE TABLE parted_b PARTITION OF parted FOR VALUES IN ('b');
		CREATE TABLE brief (id int PRIMARY KEY); DROP TABLE brief;
		CREATE TABLE copied AS SELECT 1 AS id, 'x'::text AS v;
		INSERT INTO items VALUES (1)`)
	opts := connector.StreamOptions{Flow: "newt", NewTables: func(ns model.Namespace) bool { return ns.Table != "skipped" }}
	added := false
	got := streamWith(t, c, tables, t0, opts, func(b *model.ChangeBatch) {
		for _, sc := range b.Schemas {
			if sc.Created && sc.Table.Namespace.Table == "fresh" && !added {
				// What the engine does with a Created table.
				if err := c.AddTables(context.Background(), "newt", []*model.Table{sc.Table}); err != nil {
					t.Error(err)
				}
				added = true
				mustExec(t, src, `INSERT INTO fresh VALUES (2, 'after')`)
			}
		}
	}, func(bs []*model.ChangeBatch) bool {
		return hasEvent(bs, "insert fresh") && hasEvent(bs, "insert items")
	})

	ev := events(got)
	want := []string{"created fresh", "created copied", "insert items", "insert fresh"}
	if !slices.Equal(ev, want) {
		t.Fatalf("stream: %v, want %v", ev, want)
	}
	fresh := schemaOf(t, got, "fresh")
	if columnList(fresh.Table) != "id int32, name text, note text" || !slices.Equal(fresh.Table.PrimaryKey, []string{"id"}) ||
		fresh.Table.Columns[1].Nullable || fresh.Table.Columns[2].Type.Length != 20 {
		t.Fatalf("created: columns %s, key %v, %+v", columnList(fresh.Table), fresh.Table.PrimaryKey, fresh.Table.Columns)
	}
	if len(fresh.Table.Indexes) != 1 || fresh.Table.Indexes[0].Name != "fresh_name" {
		t.Fatalf("created: indexes %+v, want fresh_name", fresh.Table.Indexes)
	}
	if r := rowOf(t, got, "fresh"); r["id"] != int64(2) || r["name"] != "after" {
		t.Fatalf("the row inserted after the table was published reads %v", r)
	}
	if copied := schemaOf(t, got, "copied"); columnList(copied.Table) != "id int32, v text" {
		t.Fatalf("CREATE TABLE AS: columns %s", columnList(copied.Table))
	}

	// A resumed stream that knows fresh already reads its CREATE TABLE
	// entry again and emits nothing for it.
	known := append(slices.Clone(tables), fresh.Table)
	again := streamWith(t, c, known, t0, opts, nil, func(bs []*model.ChangeBatch) bool { return hasEvent(bs, "insert fresh") })
	if ev := events(again); !slices.Equal(ev, []string{"created copied", "insert items", "insert fresh"}) {
		t.Fatalf("resumed knowing fresh: %v", ev)
	}

	// Without NewTables, a created table is none of the stream's business.
	none := streamWith(t, c, tables, t0, connector.StreamOptions{Flow: "newt"}, nil, func(bs []*model.ChangeBatch) bool { return hasEvent(bs, "insert items") })
	if ev := events(none); !slices.Equal(ev, []string{"insert items"}) {
		t.Fatalf("without NewTables: %v", ev)
	}
}

// TestDroppedTableIsForgotten: a table of the stream dropped at the source
// (DROP TABLE, or DROP SCHEMA ... CASCADE) comes out as a Dropped schema
// change after its last change; a table the stream does not follow
// dropped comes out as nothing.
func TestDroppedTableIsForgotten(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `CREATE TABLE items (id int PRIMARY KEY); CREATE TABLE gone (id int PRIMARY KEY);
		CREATE SCHEMA side; CREATE TABLE side.t (id int PRIMARY KEY)`)
	c := open(t, p.srcURL())
	tables, t0 := streamFlow(t, c, "drops")
	mustExec(t, src, `CREATE TABLE unfollowed (id int PRIMARY KEY)`)
	mustExec(t, src, `BEGIN; INSERT INTO gone VALUES (1); DROP TABLE gone; INSERT INTO items VALUES (1); COMMIT;
		DROP TABLE unfollowed; DROP SCHEMA side CASCADE; INSERT INTO items VALUES (2)`)
	got := streamWith(t, c, tables, t0, connector.StreamOptions{Flow: "drops"}, nil, func(bs []*model.ChangeBatch) bool {
		return len(changesOf(bs)) >= 3
	})
	want := []string{"insert gone", "dropped gone", "insert items", "dropped t", "insert items"}
	if ev := events(got); !slices.Equal(ev, want) {
		t.Fatalf("stream: %v, want %v", ev, want)
	}
	if sc := schemaOf(t, got, "gone"); columnList(sc.Table) != "id int32" {
		t.Fatalf("dropped: the table's definition is %s", columnList(sc.Table))
	}
}

// TestDDLLogWithoutDropTriggerIsMadeAgain: a log made before tables
// created and dropped were followed (no drop trigger, CREATE TABLE AS not
// logged) is made again when a flow planned by that ferry streams (and
// then sees a drop), and when a flow is planned; DropFlow removes the drop
// trigger with the rest.
func TestDDLLogWithoutDropTriggerIsMadeAgain(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `CREATE TABLE items (id int PRIMARY KEY); CREATE TABLE gone (id int PRIMARY KEY)`)
	c := open(t, p.srcURL())
	downgrade := func() {
		mustExec(t, src, `DROP EVENT TRIGGER ferry_ddl_drop; DROP FUNCTION _ferry.log_drop();
		DROP EVENT TRIGGER ferry_ddl_log;
		CREATE EVENT TRIGGER ferry_ddl_log ON ddl_command_end WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE') EXECUTE FUNCTION _ferry.log_ddl()`)
	}
	upgraded := func(when string) {
		t.Helper()
		if n := count(t, src, `SELECT count(*) FROM pg_event_trigger WHERE evtname = 'ferry_ddl_drop' AND evtevent = 'sql_drop'`); n != 1 {
			t.Fatalf("%s: the drop trigger was not made again", when)
		}
		if n := count(t, src, `SELECT count(*) FROM pg_event_trigger WHERE evtname = 'ferry_ddl_log' AND 'CREATE TABLE AS' = ANY (evttags)`); n != 1 {
			t.Fatalf("%s: the log trigger was not made again with CREATE TABLE AS", when)
		}
	}
	tables, t0 := streamFlow(t, c, "older")
	downgrade()
	mustExec(t, src, `INSERT INTO items VALUES (1)`)
	// The first batch comes after the stream started, so after the upgrade.
	dropped := false
	streamWith(t, c, tables, t0, connector.StreamOptions{Flow: "older"}, func(*model.ChangeBatch) {
		if !dropped {
			dropped = true
			mustExec(t, src, `DROP TABLE gone`)
		}
	}, func(bs []*model.ChangeBatch) bool { return hasEvent(bs, "dropped gone") })
	upgraded("streamed")

	downgrade()
	streamFlow(t, c, "newer")
	upgraded("planned")
	for _, flow := range []string{"older", "newer"} {
		if err := c.DropFlow(context.Background(), flow); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, src, `SELECT count(*) FROM pg_event_trigger`) + count(t, src, `SELECT count(*) FROM pg_proc WHERE proname = 'log_drop'`); n != 0 {
		t.Fatal("DropFlow left the drop trigger or its function")
	}
}
