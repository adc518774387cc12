package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// newPartitionsApp is a range-partitioned table with a DEFAULT partition
// and a list-partitioned partition with a DEFAULT of its own, a unique
// constraint and a plain index; no row the partitions the source gains
// later would take.
const newPartitionsApp = `CREATE SCHEMA app;
	CREATE TABLE app.ev (id bigint GENERATED ALWAYS AS IDENTITY, at date NOT NULL, kind text NOT NULL, code text,
		note text, len int GENERATED ALWAYS AS (length(note)) STORED,
		CONSTRAINT ev_pkey PRIMARY KEY (id, at, kind), CONSTRAINT ev_code_key UNIQUE (code, at, kind)) PARTITION BY RANGE (at);
	CREATE TABLE app.ev_2024 PARTITION OF app.ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
	CREATE TABLE app.ev_2025 PARTITION OF app.ev FOR VALUES FROM ('2025-01-01') TO ('2026-01-01') PARTITION BY LIST (kind);
	CREATE TABLE app.ev_2025_ab PARTITION OF app.ev_2025 FOR VALUES IN ('a', 'b');
	CREATE TABLE app.ev_2025_rest PARTITION OF app.ev_2025 DEFAULT;
	CREATE TABLE app.ev_other PARTITION OF app.ev DEFAULT;
	CREATE INDEX ev_note ON app.ev (note);
	INSERT INTO app.ev (at, kind, code, note) SELECT d, k, 'c' || g, 'n' || g
		FROM generate_series(1, 600) g,
		LATERAL (SELECT (ARRAY['2024-06-01', '2025-06-01', '2030-01-01'])[1 + g % 3]::date AS d,
			(ARRAY['a', 'b', 'z'])[1 + g % 3] AS k) x;`

// Partitions the source gains while the flow runs (one, one partitioned
// with its own partitions, one under a partitioned partition) take their
// rows into the destination's DEFAULT partitions meanwhile; ferry cutover
// creates them and moves those rows into them: pg_dump -s prints the same
// on both sides, every row is in the same partition on both sides, and a
// second cutover creates nothing.
func TestCutoverCreatesThePartitionsTheSourceGained(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "newpartsrc"), srv.CreateDatabase(t, "newpartdst")
	srv.Exec(t, src, newPartitionsApp)
	ctx := context.Background()
	flowArgs := []string{srv.URL(src) + "&heartbeat=1s", srv.URL(dst), "--name", "newparts", "--state-dir", t.TempDir()}
	sync := startFerry(t, append([]string{"sync", "--log-format", "json", "--progress", "none"}, flowArgs...)...)
	if !sync.waitFor(t, "change data capture starting", time.Minute) {
		t.Fatalf("ferry sync did not reach CDC:\n%s", sync.stderr.String())
	}
	srv.Exec(t, src, `CREATE TABLE app.ev_2026 PARTITION OF app.ev FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
		COMMENT ON TABLE app.ev_2026 IS 'this year';
		CREATE INDEX ev_2026_code ON app.ev_2026 (code);
		CREATE TABLE app.ev_2027 PARTITION OF app.ev FOR VALUES FROM ('2027-01-01') TO ('2028-01-01') PARTITION BY LIST (kind);
		CREATE TABLE app.ev_2027_a PARTITION OF app.ev_2027 FOR VALUES IN ('a');
		CREATE TABLE app.ev_2027_rest PARTITION OF app.ev_2027 DEFAULT;
		CREATE TABLE app.ev_2025_q PARTITION OF app.ev_2025 FOR VALUES IN ('q');
		INSERT INTO app.ev (at, kind, code, note) SELECT '2026-03-03', 'a', 'n' || g, 'new' FROM generate_series(1, 40) g;
		INSERT INTO app.ev (at, kind, code, note) SELECT '2027-04-04', (ARRAY['a', 'z'])[1 + g % 2], 'n' || g, 'next' FROM generate_series(1, 30) g;
		INSERT INTO app.ev (at, kind, code, note) SELECT '2025-05-05', 'q', 'q' || g, 'q' FROM generate_series(1, 20) g;
		INSERT INTO app.ev (at, kind, code, note) VALUES ('2031-01-01', 'z', 'later', 'stays in default');
		UPDATE app.ev SET at = '2026-06-06' WHERE code = 'c3';`)
	// Meanwhile the destination's DEFAULT partitions took those rows.
	dconn := srv.Connect(t, dst)
	if !waitUntil(ctx, time.Minute, func() bool {
		var n int
		err := dconn.QueryRow(ctx, `SELECT count(*) FROM app.ev_other WHERE at IN ('2026-03-03', '2031-01-01')`).Scan(&n)
		return err == nil && n == 41
	}) {
		t.Fatalf("the changes did not reach the destination's DEFAULT partition:\n%s", tail(sync.stderr.String(), 30))
	}
	r := mustFerry(t, append([]string{"cutover"}, flowArgs...)...)
	if code := sync.waitExit(t, time.Minute); code != 0 {
		t.Fatalf("ferry sync exited %d after the cutover:\n%s", code, tail(sync.stderr.String(), 30))
	}
	for _, want := range []string{"5 partition(s) created (app.ev_2025_q, app.ev_2026, app.ev_2027, app.ev_2027_a, app.ev_2027_rest), 91 row(s) moved out of DEFAULT partitions",
		"steps run  drain, sequences, partitions, schema"} {
		if !strings.Contains(r.stdout+r.stderr, want) {
			t.Fatalf("the report does not say %q:\n%s", want, r)
		}
	}
	sameSchema(t, srv, src, dst, "app")
	rows := func(db string) string {
		var s string
		if err := srv.Connect(t, db).QueryRow(ctx, `SELECT string_agg(tableoid::regclass::text || ' ' || e::text, E'\n' ORDER BY id) FROM app.ev e`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if a, b := rows(src), rows(dst); a != b {
		t.Fatalf("rows (with their partitions) differ:\n--- source\n%s\n--- destination\n%s", a, b)
	}
	var inDefault string
	if err := dconn.QueryRow(ctx, `SELECT string_agg(DISTINCT at::text, ',') FROM app.ev_other`).Scan(&inDefault); err != nil || inDefault != "2030-01-01,2031-01-01" {
		t.Fatalf("the destination's DEFAULT partition holds rows of %q (%v), want those of 2030-01-01,2031-01-01 alone", inDefault, err)
	}
	// The unique constraint reaches the new partitions.
	if _, err := dconn.Exec(ctx, `INSERT INTO app.ev (at, kind, code, note) VALUES ('2026-03-03', 'a', 'n1', 'dup')`); pgState(err) != "23505" {
		t.Fatalf("a duplicate code in a new partition at the destination: %v, want SQLSTATE 23505", err)
	}
	r = mustFerry(t, append([]string{"cutover"}, flowArgs...)...)
	if !strings.Contains(r.stdout+r.stderr, "0 partition(s) created, 0 row(s) moved out of DEFAULT partitions") {
		t.Fatalf("a second cutover:\n%s", r)
	}
}

// A partition the source detaches while the flow runs is not dropped at
// the destination: the cutover lists it with the statements to run; a
// partition the source gained is created, empty, after a snapshot flow.
func TestCutoverListsAPartitionTheSourceDetached(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "detpartsrc"), srv.CreateDatabase(t, "detpartdst")
	srv.Exec(t, src, `CREATE TABLE m (id bigint, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
		CREATE TABLE m_2024 PARTITION OF m FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
		CREATE TABLE m_2025 PARTITION OF m FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
		INSERT INTO m VALUES (1, '2024-05-05'), (2, '2025-05-05');`)
	flowArgs := []string{srv.URL(src), srv.URL(dst), "--name", "detparts", "--state-dir", t.TempDir(), "--mode", "snapshot"}
	mustFerry(t, append([]string{"sync", "--progress", "none"}, flowArgs...)...)
	srv.Exec(t, src, `ALTER TABLE m DETACH PARTITION m_2024; CREATE TABLE m_2026 PARTITION OF m FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');`)
	r := mustFerry(t, append([]string{"cutover"}, flowArgs...)...)
	for _, want := range []string{"1 partition(s) created (public.m_2026)",
		`partition public.m_2024 (FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') of public.m) is not a partition at the source`,
		`to fix: ALTER TABLE "public"."m" DETACH PARTITION "public"."m_2024", then DROP TABLE "public"."m_2024" if the source dropped it`} {
		if !strings.Contains(r.stdout+r.stderr, want) {
			t.Fatalf("the cutover's report does not say %q:\n%s", want, r)
		}
	}
	var n int
	if err := srv.Connect(t, dst).QueryRow(context.Background(), `SELECT count(*) FROM m_2024`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the detached partition at the destination holds %d rows (%v), want its 1 kept", n, err)
	}
	var parts string
	if err := srv.Connect(t, dst).QueryRow(context.Background(), `SELECT string_agg(relid::text, ',' ORDER BY relid::text) FROM pg_partition_tree('m') WHERE level = 1`).Scan(&parts); err != nil || parts != "m_2024,m_2025,m_2026" {
		t.Fatalf("the destination's partitions of m: %q, %v", parts, err)
	}
}
