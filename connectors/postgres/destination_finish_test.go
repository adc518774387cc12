package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/flow"
)

// TestSecondaryIndexesAreBuiltAfterTheCopy: the destination table is
// created with its primary key only; once copied it gets the source's
// secondary indexes (expressions, partial, INCLUDE, other methods), unique
// ones without UNIQUE, and a second run builds none twice.
func TestSecondaryIndexesAreBuiltAfterTheCopy(t *testing.T) {
	p := newPair(t)
	srcDB := p.srv.Connect(t, p.src)
	dstDB := p.srv.Connect(t, p.dst)
	mustExec(t, srcDB, `
		CREATE TABLE people (id int PRIMARY KEY, email text, name text, born date, tags text[], deleted bool);
		CREATE UNIQUE INDEX people_email ON people (lower(email)) WHERE NOT deleted;
		CREATE INDEX people_name_born ON people (name, born DESC) INCLUDE (email);
		CREATE INDEX people_tags ON people USING gin (tags);
		CREATE UNIQUE INDEX people_name_nnd ON people (name) NULLS NOT DISTINCT;
		CREATE TABLE ident (a int NOT NULL, b int);
		CREATE UNIQUE INDEX ident_a ON ident (a);
		ALTER TABLE ident REPLICA IDENTITY USING INDEX ident_a;
		CREATE INDEX ident_b ON ident (b);
		INSERT INTO people SELECT g, 'P' || g || '@x', 'name ' || g, '2000-01-01'::date + g, ARRAY['t' || g % 5], g % 10 = 0 FROM generate_series(1, 2000) g;
		INSERT INTO ident SELECT g, g % 7 FROM generate_series(1, 100) g;`)
	cfg := flow.Config{Name: "indexes", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Mode: flow.ModeSnapshot}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	defs := func() string {
		t.Helper()
		var s string
		if err := dstDB.QueryRow(context.Background(), `SELECT string_agg(indexname || ': ' || substr(indexdef, strpos(indexdef, ' USING ') + 7), E'\n' ORDER BY indexname)
			FROM pg_indexes WHERE schemaname = 'public'`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	want := strings.Join([]string{
		"ident_b: btree (b)",
		"ident_pkey: btree (a)",
		"people_email: btree (lower(email)) WHERE (NOT deleted)",
		"people_name_born: btree (name, born DESC) INCLUDE (email)",
		"people_name_nnd: btree (name)",
		"people_pkey: btree (id)",
		"people_tags: gin (tags)",
	}, "\n")
	if got := defs(); got != want {
		t.Fatalf("destination indexes:\n%s\nwant:\n%s", got, want)
	}
	if n := count(t, dstDB, `SELECT count(*) FROM pg_index WHERE indisunique AND NOT indisprimary AND indrelid IN ('people'::regclass, 'ident'::regclass)`); n != 0 {
		t.Fatalf("%d secondary indexes are unique at the destination", n)
	}
	if n := count(t, dstDB, `SELECT count(*) FROM people WHERE lower(email) = 'p7@x'`); n != 1 {
		t.Fatalf("rows: %d", n)
	}
	// Finishing again (a run resumed after the copy) builds nothing twice.
	cfg.Name = "indexes-again"
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	if got := defs(); got != want {
		t.Fatalf("after a second run, destination indexes:\n%s\nwant:\n%s", got, want)
	}
}
