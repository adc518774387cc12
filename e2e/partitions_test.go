package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// partitionedApp is a range-partitioned table with a DEFAULT partition, a
// partition in another schema and one list-partitioned itself (with a
// DEFAULT sub-partition), a unique constraint, a unique and a plain
// index, a check and a foreign key, a plain and a unique index and a check
// of one partition's own; rows in every partition.
const partitionedApp = `CREATE SCHEMA app; CREATE SCHEMA arch;
	CREATE TABLE app.kinds (kind text PRIMARY KEY);
	INSERT INTO app.kinds VALUES ('a'), ('b'), ('q'), ('z');
	CREATE TABLE app.ev (id bigint NOT NULL, at date NOT NULL, kind text NOT NULL, code text, note text,
		CONSTRAINT ev_pkey PRIMARY KEY (id, at, kind), CONSTRAINT ev_code_key UNIQUE (code, at, kind),
		CONSTRAINT ev_kind_fkey FOREIGN KEY (kind) REFERENCES app.kinds (kind)) PARTITION BY RANGE (at);
	CREATE TABLE arch.ev_old PARTITION OF app.ev FOR VALUES FROM (MINVALUE) TO ('2024-01-01');
	CREATE TABLE app.ev_2024 PARTITION OF app.ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
	CREATE TABLE app.ev_2025 PARTITION OF app.ev FOR VALUES FROM ('2025-01-01') TO ('2026-01-01') PARTITION BY LIST (kind);
	CREATE TABLE app.ev_2025_ab PARTITION OF app.ev_2025 FOR VALUES IN ('a', 'b');
	CREATE TABLE app.ev_2025_rest PARTITION OF app.ev_2025 DEFAULT;
	CREATE TABLE app.ev_other PARTITION OF app.ev DEFAULT;
	COMMENT ON TABLE app.ev_2024 IS 'last year';
	CREATE INDEX ev_note ON app.ev (note);
	CREATE UNIQUE INDEX ev_kind_u ON app.ev (kind, id, at);
	CREATE INDEX ev_2024_hot ON app.ev_2024 (code) WHERE note IS NULL;
	CREATE UNIQUE INDEX ev_2024_note_u ON app.ev_2024 (note);
	ALTER TABLE app.ev_2024 ADD CONSTRAINT ev_2024_note_len CHECK (length(note) < 100);
	ALTER TABLE app.ev ADD CONSTRAINT ev_note_check CHECK (note <> '');
	INSERT INTO app.ev SELECT g, d, k, 'c' || g, 'n' || g
		FROM generate_series(1, 3000) g,
		LATERAL (SELECT (ARRAY['2023-06-01', '2024-06-01', '2025-06-01', '2025-07-01', '2030-01-01'])[1 + g % 5]::date AS d,
			(ARRAY['a', 'b', 'z'])[1 + g % 3] AS k) x;`

// A partitioned table stays partitioned through ferry sync and ferry
// cutover into PostgreSQL: changes during CDC move rows between
// partitions and sub-partitions, delete and insert; after the cutover
// pg_dump -s of both sides prints the same (partitions, bounds, the
// unique constraint and indexes on every partition with the source's
// names, the foreign key), every row is in the partition it is in at the
// source, and the application's insert at the destination lands in its
// partition while a duplicate on a unique key (the table's, a
// partition's own), an unknown kind and a row failing the check are
// refused.
func TestPartitionedTableStaysPartitionedThroughCutover(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "partsrc"), srv.CreateDatabase(t, "partdst")
	srv.Exec(t, src, partitionedApp)
	ctx := context.Background()
	flowArgs := []string{srv.URL(src) + "&heartbeat=1s", srv.URL(dst), "--name", "parts", "--state-dir", t.TempDir()}
	sync := startFerry(t, append([]string{"sync", "--log-format", "json", "--progress", "none"}, flowArgs...)...)
	if !sync.waitFor(t, "change data capture starting", time.Minute) {
		t.Fatalf("ferry sync did not reach CDC:\n%s", sync.stderr.String())
	}
	srv.Exec(t, src, `UPDATE app.ev SET at = '2024-02-02', note = 'to 2024' WHERE id = 3;
		UPDATE app.ev SET kind = 'z', note = 'to rest' WHERE id = 7;
		UPDATE app.ev SET at = '2025-03-03', kind = 'b' WHERE id IN (4, 9);
		BEGIN; UPDATE app.ev SET code = 'tmp' WHERE id = 1; UPDATE app.ev SET code = 'c1' WHERE id = 6 AND at = (SELECT at FROM app.ev WHERE id = 1); COMMIT;
		DELETE FROM app.ev WHERE id IN (5, 10, 15);
		INSERT INTO app.ev VALUES (5000, '2022-01-01', 'a', 'new', 'old'), (5001, '2025-05-05', 'q', 'new', 'rest'), (5002, '2031-01-01', 'b', 'new', 'later');
		INSERT INTO app.ev SELECT g, '2025-02-02', 'a', 'm' || g, 'more' FROM generate_series(6000, 6200) g;`)
	r := mustFerry(t, append([]string{"cutover"}, flowArgs...)...)
	if code := sync.waitExit(t, time.Minute); code != 0 {
		t.Fatalf("ferry sync exited %d after the cutover:\n%s", code, tail(sync.stderr.String(), 30))
	}
	if !strings.Contains(r.stdout+r.stderr, "6 constraint(s) built, 0 already there") {
		t.Fatalf("the report does not say the schema step built 4 constraints:\n%s", r)
	}
	sameSchema(t, srv, src, dst, "app", "arch")
	rows := func(db string) string {
		var s string
		if err := srv.Connect(t, db).QueryRow(ctx, `SELECT string_agg(tableoid::regclass::text || ' ' || e::text, E'\n' ORDER BY id) FROM app.ev e`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if a, b := rows(src), rows(dst); a != b || !strings.Contains(b, "app.ev_2025_rest (5001,2025-05-05,q,new,rest)") {
		t.Fatalf("rows (with their partitions) differ:\n--- source\n%s\n--- destination\n%s", a, b)
	}
	dconn := srv.Connect(t, dst)
	var part string
	if err := dconn.QueryRow(ctx, `INSERT INTO app.ev VALUES (7000, '2024-12-31', 'b', 'fresh', 'app') RETURNING tableoid::regclass::text`).Scan(&part); err != nil || part != "app.ev_2024" {
		t.Fatalf("the application's insert at the destination: %q, %v; want it in app.ev_2024", part, err)
	}
	for _, c := range []struct{ q, state string }{
		{"INSERT INTO app.ev VALUES (7001, '2024-12-31', 'b', 'fresh', 'dup')", "23505"},
		{"INSERT INTO app.ev VALUES (7002, '2025-01-02', 'x', 'x', 'unknown kind')", "23503"},
		{"INSERT INTO app.ev VALUES (7003, '2024-03-03', 'a', 'other', 'app')", "23505"},
		{"INSERT INTO app.ev VALUES (7004, '2025-03-03', 'a', 'other', '')", "23514"},
	} {
		if _, err := dconn.Exec(ctx, c.q); pgState(err) != c.state {
			t.Errorf("%s at the destination: %v, want SQLSTATE %s", c.q, err, c.state)
		}
	}
}

// Into MySQL a partitioned PostgreSQL table is one plain table holding
// every partition's rows: the partitioning is PostgreSQL's own.
func TestPartitionedTableIntoMySQLIsOnePlainTable(t *testing.T) {
	requireMariaDB(t)
	my, pg := mysqltest.Shared(t), pgtest.Shared(t)
	src, dst := pg.CreateDatabase(t, "part_pg2my"), mysqlDatabase(t, my, "part_pg2my")
	pg.Exec(t, src, `CREATE TABLE ev (id bigint, at date, v text, n int, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
		CREATE TABLE ev_2024 PARTITION OF ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
		CREATE TABLE ev_rest PARTITION OF ev DEFAULT;
		CREATE UNIQUE INDEX ev_2024_n ON ev_2024 (n);
		INSERT INTO ev SELECT g, CASE WHEN g % 2 = 0 THEN date '2024-03-01' ELSE date '2030-01-01' END, 'v' || g, g / 2 FROM generate_series(1, 500) g;`)
	flowArgs := []string{pg.URL(src), my.URL(dst), "--name", "part-pg2my", "--state-dir", t.TempDir(), "--tables", "public.ev", "--mode", "snapshot"}
	mustFerry(t, append([]string{"sync", "--progress", "none"}, flowArgs...)...)
	// One partition's own unique index holds in that partition alone: the
	// cutover lists it, it does not build it over every partition's rows
	// (where the values repeat).
	if r := mustFerry(t, append([]string{"cutover"}, flowArgs...)...); !strings.Contains(r.stdout+r.stderr, "belongs to the source's partition ev_2024 alone") {
		t.Fatalf("the cutover does not list the partition's own index:\n%s", r)
	}
	var name, create string
	if err := my.Connect(t, dst).QueryRow("SHOW CREATE TABLE ev").Scan(&name, &create); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToUpper(create), "PARTITION") {
		t.Fatalf("the MySQL table is partitioned:\n%s", create)
	}
	if v := mustFerry(t, "verify", pg.URL(src), my.URL(dst), "--tables", "public.ev"); !strings.Contains(v.stdout, "all 1 table(s) equal") {
		t.Fatalf("verify: %s", v)
	}
}

// A partition the source gains while the flow runs, under a parent
// without a DEFAULT partition: the first change for it has ferry sync
// create it as the source has it, and the change lands in it. When the
// source no longer has it (detached since), ferry sync stops with exit 2,
// the row's partition key and the statement to run; once the partition is
// created at the destination, the same command resumes and carries the
// change into it.
func TestPartitionAddedDuringTheFlowIsCreatedOrStopsTheSyncWithTheFix(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "partnewsrc"), srv.CreateDatabase(t, "partnewdst")
	srv.Exec(t, src, `CREATE TABLE m (id bigint, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
		CREATE TABLE m_2025 PARTITION OF m FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
		INSERT INTO m VALUES (1, '2025-05-05');`)
	args := []string{"sync", srv.URL(src) + "&heartbeat=1s", srv.URL(dst), "--name", "partnew", "--state-dir", t.TempDir(),
		"--until", "caught-up", "--progress", "none"}
	mustFerry(t, args...)
	ctx := context.Background()
	partOf := func(id int) string {
		var part string
		if err := srv.Connect(t, dst).QueryRow(ctx, `SELECT tableoid::regclass::text FROM m WHERE id = $1`, id).Scan(&part); err != nil {
			t.Fatalf("row %d at the destination: %v", id, err)
		}
		return part
	}
	srv.Exec(t, src, `CREATE TABLE m_2026 PARTITION OF m FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') PARTITION BY RANGE (id);
		CREATE TABLE m_2026_low PARTITION OF m_2026 FOR VALUES FROM (0) TO (100);
		INSERT INTO m VALUES (2, '2026-02-02');`)
	if r := mustFerry(t, args...); !strings.Contains(r.stderr, "created the source's partitions") || !strings.Contains(r.stderr, "public.m_2026_low") {
		t.Fatalf("ferry sync does not say it created the partitions:\n%s", r)
	}
	if part := partOf(2); part != "m_2026_low" {
		t.Fatalf("the row at the destination is in %q, want m_2026_low", part)
	}
	srv.Exec(t, src, `CREATE TABLE m_2027 PARTITION OF m FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
		INSERT INTO m VALUES (3, '2027-02-02'); ALTER TABLE m DETACH PARTITION m_2027;`)
	r := ferry(t, args...)
	for _, want := range []string{"table public.m: a change's row has no partition at the destination", "(at) = (2027-02-02)", "PARTITION OF public.m FOR VALUES"} {
		if r.code != 2 || !strings.Contains(r.stderr, want) {
			t.Fatalf("ferry sync: exit %d, want 2 with %q:\n%s", r.code, want, r)
		}
	}
	// The detached m_2027 is a table of its own at the source now, which
	// the flow (every table) took when it ran again: the partition made at
	// the destination needs another name.
	srv.Exec(t, dst, `CREATE TABLE m_y2027 PARTITION OF m FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')`)
	mustFerry(t, args...)
	if part := partOf(3); part != "m_y2027" {
		t.Fatalf("the row at the destination is in %q, want m_y2027", part)
	}
}
