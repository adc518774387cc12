package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/state"
)

// A table without a primary key but with REPLICA IDENTITY FULL replicates:
// duplicate rows stay duplicates (a delete or update of one of two equal
// rows touches one), TOAST values survive updates that leave them
// unchanged, a transaction bigger than one stream batch applies whole, and
// a replay from an earlier position (a crash after only writer 0 committed)
// duplicates nothing.
func TestTableWithoutKeyReplicatesByFullRow(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	dst := p.srv.Connect(t, p.dst)
	mustExec(t, src, `CREATE TABLE bag (a int, b text, big text, n numeric);
		ALTER TABLE bag REPLICA IDENTITY FULL;
		INSERT INTO bag VALUES (1, 'x', NULL, 1), (1, 'x', NULL, 1), (2, 'y', NULL, NULL), (2, 'y', NULL, NULL), (2, 'y', NULL, NULL);
		INSERT INTO bag SELECT 3, 'toast', (SELECT string_agg(md5((g * i)::text), '') FROM generate_series(1, 400) i), g FROM generate_series(1, 3) g;
		INSERT INTO bag SELECT 3, 'toast', (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) i), 9 FROM generate_series(1, 2) g`)
	cfg := flow.Config{Name: "fullrow", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Until: "caught-up", Writers: 3}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	const order = "a, b, n, md5(big)"
	sameTable(t, src, dst, "bag", order)
	mustExec(t, src, `DELETE FROM bag WHERE ctid = (SELECT ctid FROM bag WHERE a = 1 LIMIT 1);
		UPDATE bag SET b = 'z' WHERE ctid = (SELECT ctid FROM bag WHERE a = 2 LIMIT 1);
		INSERT INTO bag VALUES (4, 'dup', NULL, 4), (4, 'dup', NULL, 4);
		UPDATE bag SET n = -n WHERE ctid = (SELECT ctid FROM bag WHERE a = 3 AND n = 9 LIMIT 1);
		UPDATE bag SET b = 'toast2' WHERE a = 3 AND n = 1;
		BEGIN;
		INSERT INTO bag SELECT 1000 + g % 50, 'big', NULL, g % 3 FROM generate_series(1, 12000) g;
		UPDATE bag SET b = 'bigger' WHERE a >= 1000 AND n = 1;
		DELETE FROM bag WHERE ctid IN (SELECT ctid FROM bag WHERE a >= 1000 AND n = 2 LIMIT 1500);
		COMMIT;
		DELETE FROM bag WHERE ctid = (SELECT ctid FROM bag WHERE a = 4 LIMIT 1);
		UPDATE bag SET big = 'small now' WHERE ctid = (SELECT ctid FROM bag WHERE a = 3 AND n = 9 LIMIT 1)`)
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	sameTable(t, src, dst, "bag", order)

	// A crash after writer 0 (which applies every whole-row change)
	// committed, but before writer 1 did: the next run resumes from writer
	// 1's earlier position and must not apply the changes again.
	mustExec(t, src, `INSERT INTO bag VALUES (5, 'once', NULL, 5); UPDATE bag SET n = 6 WHERE ctid = (SELECT ctid FROM bag WHERE a = 2 AND b = 'y' LIMIT 1)`)
	var before string
	if err := dst.QueryRow(context.Background(), `SELECT value FROM _ferry.checkpoints WHERE flow = 'fullrow' AND key = 'cdc/1'`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	mustExec(t, dst, `UPDATE _ferry.checkpoints SET value = $1 WHERE flow = 'fullrow' AND key = 'cdc/1'`, before)
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	sameTable(t, src, dst, "bag", order)
	if n := count(t, dst, `SELECT count(*) FROM bag WHERE a = 5`); n != 1 {
		t.Fatalf("the replayed insert is there %d times, want once", n)
	}
}

// A table without a primary key and without a full replica identity is
// refused before anything is written: no destination table, no slot.
func TestTableWithoutKeyOrFullIdentityIsRefused(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	dst := p.srv.Connect(t, p.dst)
	mustExec(t, src, `CREATE TABLE loose (a int, b text); INSERT INTO loose VALUES (1, 'x'), (1, 'x');
		CREATE TABLE keyed (id int PRIMARY KEY)`)
	cfg := flow.Config{Name: "loose", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Until: "caught-up"}
	err := runFlow(t, cfg)
	if !errs.IsConfigError(err) {
		t.Fatalf("want a configuration error (exit 2), got %v", err)
	}
	for _, want := range []string{"public.loose", "primary key", "REPLICA IDENTITY FULL"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("the error does not say %q: %v", want, err)
		}
	}
	if n := count(t, dst, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`); n != 0 {
		t.Fatalf("%d destination tables were created", n)
	}
	if n := count(t, src, `SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'ferry%loose%'`); n != 0 {
		t.Fatal("a replication slot was created")
	}
}

// A flow whose copy of a table without a primary key was interrupted cannot
// finish it in a new process (the rest would be read after T0 and its
// changes applied twice): it is refused with the fix, --restart.
func TestInterruptedCopyOfTableWithoutKeyIsRefused(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	dst := p.srv.Connect(t, p.dst)
	mustExec(t, src, `CREATE TABLE bag (a int, b text); ALTER TABLE bag REPLICA IDENTITY FULL; INSERT INTO bag SELECT g % 10, 'x' FROM generate_series(1, 100) g`)
	cfg := flow.Config{Name: "cut", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Until: "caught-up"}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	// As if the process had died during the copy.
	ctx := context.Background()
	store, err := state.Open(ctx, cfg.StateDir, cfg.FlowName())
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SetMeta(ctx, "copy_done", ""); err != nil {
		t.Fatal(err)
	}
	store.Close()
	mustExec(t, dst, `DELETE FROM _ferry.checkpoints WHERE flow = 'cut' AND key LIKE 'partition/%'`)
	err = runFlow(t, cfg)
	if !errs.IsConfigError(err) || !strings.Contains(err.Error(), "public.bag") || !strings.Contains(err.Error(), "--restart") {
		t.Fatalf("want a configuration error naming public.bag and --restart, got %v", err)
	}
}

// An empty string in a table without a primary key stays an empty string:
// the row changes sent it as a NULL parameter, so an update found no row
// equal to the old one (the flow stopped, calling the destination
// different from the source) and set it to NULL.
func TestTableWithoutKeyKeepsEmptyStrings(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	dst := p.srv.Connect(t, p.dst)
	mustExec(t, src, `CREATE TABLE bag (a int, b text);
		ALTER TABLE bag REPLICA IDENTITY FULL;
		INSERT INTO bag VALUES (1, ''), (2, 'x'), (3, ''), (4, NULL)`)
	cfg := flow.Config{Name: "empty", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Until: "caught-up"}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	mustExec(t, src, `UPDATE bag SET a = 10 WHERE a = 1;
		UPDATE bag SET b = '' WHERE a = 2;
		DELETE FROM bag WHERE a = 3;
		UPDATE bag SET b = '' WHERE a = 4;
		INSERT INTO bag VALUES (5, '')`)
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	sameTable(t, src, dst, "bag", "a")
}
