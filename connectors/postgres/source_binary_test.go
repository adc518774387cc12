package postgres_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// captureLog sends what the connector logs (slog's default logger) to a
// buffer until the test ends.
func captureLog(t *testing.T) *lockedBuffer {
	t.Helper()
	buf := &lockedBuffer{}
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(old) })
	return buf
}

// TestBinaryChangeStream: on PostgreSQL 14 and later the change stream
// carries values in binary while every column of the flow decodes from
// binary (an enum too; not "char", whose byte is not its text): every value of each type arrives as it is at the
// source. A column added during the stream with a type ferry reads only as
// text (inet) turns the stream to text at its table's relation message,
// and the changes from there on arrive too; a flow with such a column
// from the start streams text.
func TestBinaryChangeStream(t *testing.T) {
	p := newPair(t)
	log := captureLog(t)
	src := p.srv.Connect(t, p.src)
	dst := p.srv.Connect(t, p.dst)
	mustExec(t, src, `CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
		CREATE TABLE items (id bigint PRIMARY KEY, small smallint, n int, amount numeric(12,2), big numeric, f4 real, f8 float8,
			ok boolean, name text, code varchar(8), pad char(4), feeling mood, doc jsonb, plain json, blob bytea, uid uuid,
			day date, clock time, clocktz timetz, at timestamp, attz timestamptz, span interval);
		INSERT INTO items (id, name) VALUES (1, 'one'), (2, 'two'), (3, 'three')`)
	cfg := flow.Config{Name: "binary", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Until: "caught-up"}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	mustExec(t, src, `INSERT INTO items VALUES
		(10, -32768, -2147483648, -1234567890.12, 'NaN', 'Infinity', -1.5e-300, true, 'ünïcödé ☃', 'abc', 'ab', 'happy',
			'{"a": [1, 2.50, "x"], "b": null}', '{"kept": "as written",  "space": 1}', '\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
			'infinity', '23:59:59.999999', '10:00:00+05:30', '1999-12-31 23:59:59.5', '-infinity', '1 year 2 mons 3 days 04:05:06.7'),
		(11, 32767, 2147483647, 0, '123456789012345678901234567890.000000000000000001', 'NaN', 'Infinity', false, '', '', '', 'sad',
			'[]', '"s"', '', '00000000-0000-0000-0000-000000000000', '4713-01-01 BC', '00:00', '00:00+00', '0001-01-01 00:00:00',
			'2000-01-01 00:00:00+00', '-1 day -00:00:00.000001');
		UPDATE items SET name = 'uno', feeling = 'ok', big = -0.000001 WHERE id = 1;
		DELETE FROM items WHERE id = 2`)
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	sameTable(t, src, dst, "items", "id")
	if !strings.Contains(log.String(), "change stream in binary") {
		t.Fatalf("the change stream was not binary on PostgreSQL 15:\n%s", log.String())
	}

	// A column of a type without a binary decoder, added during the stream.
	mustExec(t, src, `ALTER TABLE items ADD COLUMN addr inet; INSERT INTO items (id, name, addr) VALUES (20, 'twenty', '10.1.2.3/8');
		UPDATE items SET addr = '::1', amount = 7.25 WHERE id = 3; INSERT INTO items (id, attz) VALUES (21, '2024-02-29 12:00:00+01')`)
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	sameTable(t, p.srv.Connect(t, p.src), p.srv.Connect(t, p.dst), "items", "id")
	if !strings.Contains(log.String(), "the change stream goes on in text") {
		t.Fatalf("the stream did not say it turned to text:\n%s", log.String())
	}
	// The next run, with inet in the flow's table from its start, streams
	// text from the start.
	before := strings.Count(log.String(), "change stream in text")
	mustExec(t, src, `UPDATE items SET addr = '192.168.0.1', span = '5 minutes' WHERE id = 20`)
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	sameTable(t, p.srv.Connect(t, p.src), p.srv.Connect(t, p.dst), "items", "id")
	if strings.Count(log.String(), "change stream in text") == before {
		t.Fatalf("the run with an inet column did not stream text:\n%s", log.String())
	}
}

// TestBinaryStreamTurnsToTextForACreatedTable: a table created during a
// binary stream with a column ferry reads only as text (cidr) turns the
// stream to text before the stream takes the table: it is created once,
// and its rows and the other tables' arrive.
func TestBinaryStreamTurnsToTextForACreatedTable(t *testing.T) {
	p := newPair(t)
	log := captureLog(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `CREATE TABLE items (id int PRIMARY KEY, v numeric)`)
	c := open(t, p.srcURL())
	tables, t0 := streamFlow(t, c, "bint")
	mustExec(t, src, `INSERT INTO items VALUES (1, 1.5);
		CREATE TABLE nets (id int PRIMARY KEY, net cidr); INSERT INTO nets VALUES (1, '10.0.0.0/8');
		INSERT INTO items VALUES (2, 2.5)`)
	opts := connector.StreamOptions{Flow: "bint", NewTables: func(model.Namespace) bool { return true }}
	added := false
	got := streamWith(t, c, tables, t0, opts, func(b *model.ChangeBatch) {
		for _, sc := range b.Schemas {
			if sc.Created && sc.Table.Namespace.Table == "nets" && !added {
				if err := c.AddTables(context.Background(), "bint", []*model.Table{sc.Table}); err != nil {
					t.Error(err)
				}
				added = true
				mustExec(t, src, `INSERT INTO nets VALUES (2, '192.168.0.0/16')`)
			}
		}
	}, func(bs []*model.ChangeBatch) bool { return hasEvent(bs, "insert nets") })
	if ev := events(got); !slices.Equal(ev, []string{"insert items", "created nets", "insert items", "insert nets"}) {
		t.Fatalf("stream: %v", ev)
	}
	if r := rowOf(t, got, "nets"); r["id"] != int32(2) && r["id"] != int64(2) || r["net"] != "192.168.0.0/16" {
		t.Fatalf("the created table's row reads %v", r)
	}
	if !strings.Contains(log.String(), "change stream in binary") || !strings.Contains(log.String(), "the change stream goes on in text") {
		t.Fatalf("the stream did not start binary and turn to text:\n%s", log.String())
	}
}
