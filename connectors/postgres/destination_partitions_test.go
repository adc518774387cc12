package postgres_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// partitionedSchema is a range-partitioned table with a DEFAULT partition,
// a partition in another schema, a commented one, one attached with a
// primary key of its own name, and a partition that is list-partitioned itself (with a DEFAULT sub-partition), a unique
// constraint, a unique and a plain index, a plain and a unique index and a
// check of one partition's own, and rows in every partition.
const partitionedSchema = `CREATE SCHEMA app; CREATE SCHEMA arch;
	CREATE TABLE app.ev (id bigint NOT NULL, at date NOT NULL, kind text NOT NULL, code text, note text,
		CONSTRAINT ev_pkey PRIMARY KEY (id, at, kind), CONSTRAINT ev_code_key UNIQUE (code, at, kind)) PARTITION BY RANGE (at);
	CREATE TABLE arch.ev_old PARTITION OF app.ev FOR VALUES FROM (MINVALUE) TO ('2024-01-01');
	CREATE TABLE app.ev_2024 PARTITION OF app.ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
	CREATE TABLE app.ev_2025 PARTITION OF app.ev FOR VALUES FROM ('2025-01-01') TO ('2026-01-01') PARTITION BY LIST (kind);
	CREATE TABLE app.ev_2025_ab PARTITION OF app.ev_2025 FOR VALUES IN ('a', 'b');
	CREATE TABLE app.ev_2025_rest PARTITION OF app.ev_2025 DEFAULT;
	CREATE TABLE app.ev_other PARTITION OF app.ev DEFAULT;
	CREATE TABLE app.ev_2026 (id bigint NOT NULL, at date NOT NULL, kind text NOT NULL, code text, note text, CONSTRAINT ev_2026_pk PRIMARY KEY (id, at, kind));
	ALTER TABLE app.ev ATTACH PARTITION app.ev_2026 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
	COMMENT ON TABLE app.ev_2024 IS 'last year';
	CREATE INDEX ev_note ON app.ev (note);
	CREATE UNIQUE INDEX ev_kind_u ON app.ev (kind, id, at);
	CREATE INDEX ev_2024_hot ON app.ev_2024 (code) WHERE note IS NULL;
	CREATE UNIQUE INDEX ev_2024_note_u ON app.ev_2024 (note);
	ALTER TABLE app.ev_2024 ADD CONSTRAINT ev_2024_note_len CHECK (length(note) < 100);
	INSERT INTO app.ev SELECT g, d, k, 'c' || g, 'n' || g
		FROM generate_series(1, 400) g,
		LATERAL (SELECT (ARRAY['2023-06-01', '2024-06-01', '2025-06-01', '2025-07-01', '2030-01-01'])[1 + g % 5]::date AS d,
			(ARRAY['a', 'b', 'z'])[1 + g % 3] AS k) x;`

// The source reads a partitioned table's key, its partitions (in another
// schema, DEFAULT, sub-partitioned) with their bounds and comments, and
// the names its indexes and unique constraints have on each partition.
func TestPartitionedTableDefinitionsRead(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	p.srv.Exec(t, p.src, partitionedSchema)
	src := open(t, p.srcURL())
	tables, err := src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) != 1 || tables[0].Namespace.String() != "app.ev" {
		t.Fatalf("tables: %v, want app.ev alone (partitions are not tables of their own)", tables)
	}
	ev := tables[0]
	want := &model.Partitioning{Key: "RANGE (at)", Partitions: []model.TablePartition{
		{Name: model.Namespace{Table: "ev_2024"}, Bound: "FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')", Comment: "last year",
			Indexes: []model.Index{{Name: "ev_2024_hot", Native: "btree (code) WHERE (note IS NULL)"}}},
		{Name: model.Namespace{Table: "ev_2025"}, Bound: "FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')",
			Partitioning: &model.Partitioning{Key: "LIST (kind)", Partitions: []model.TablePartition{
				{Name: model.Namespace{Table: "ev_2025_ab"}, Bound: "FOR VALUES IN ('a', 'b')"},
				{Name: model.Namespace{Table: "ev_2025_rest"}, Bound: "DEFAULT"},
			}}},
		{Name: model.Namespace{Table: "ev_2026"}, Bound: "FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')"},
		{Name: model.Namespace{Table: "ev_other"}, Bound: "DEFAULT"},
		{Name: model.Namespace{Schema: "arch", Table: "ev_old"}, Bound: "FOR VALUES FROM (MINVALUE) TO ('2024-01-01')"},
	}}
	if got, exp := asJSON(t, ev.Partitioning), asJSON(t, want); got != exp {
		t.Fatalf("partitioning:\n%s\nwant:\n%s", got, exp)
	}
	var note *model.Index
	for i := range ev.Indexes {
		if ev.Indexes[i].Name == "ev_note" {
			note = &ev.Indexes[i]
		}
	}
	if note == nil {
		t.Fatalf("indexes: %+v, want ev_note", ev.Indexes)
	}
	wantNote := []model.PartitionIndex{
		{Partition: model.Namespace{Table: "ev_2024"}, Name: "ev_2024_note_idx"},
		{Partition: model.Namespace{Table: "ev_2025"}, Name: "ev_2025_note_idx"},
		{Partition: model.Namespace{Table: "ev_2026"}, Name: "ev_2026_note_idx"},
		{Partition: model.Namespace{Table: "ev_other"}, Name: "ev_other_note_idx"},
		{Partition: model.Namespace{Schema: "arch", Table: "ev_old"}, Name: "ev_old_note_idx"},
		{Partition: model.Namespace{Table: "ev_2025_ab"}, Name: "ev_2025_ab_note_idx"},
		{Partition: model.Namespace{Table: "ev_2025_rest"}, Name: "ev_2025_rest_note_idx"},
	}
	if got, exp := asJSON(t, note.Partitions), asJSON(t, wantNote); got != exp {
		t.Fatalf("ev_note on the partitions:\n%s\nwant:\n%s", got, exp)
	}
	cons, err := src.Constraints(ctx, []model.Namespace{ev.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.PrimaryKeyPartitions) != 7 || ev.PrimaryKeyPartitions[2] != (model.PartitionIndex{Partition: model.Namespace{Table: "ev_2026"}, Name: "ev_2026_pk"}) {
		t.Fatalf("the primary key on the partitions: %+v", ev.PrimaryKeyPartitions)
	}
	var names []string
	for _, k := range cons {
		names = append(names, k.String())
		if k.Name == "ev_code_key" && (len(k.Partitions) != 7 || k.Partitions[0] != (model.PartitionIndex{Partition: model.Namespace{Table: "ev_2024"}, Name: "ev_2024_code_at_kind_key"})) {
			t.Fatalf("ev_code_key on the partitions: %+v", k.Partitions)
		}
	}
	// The partition's own constraints come with their table, on their
	// partition; the table's are not listed again for each partition.
	if got, want := strings.Join(names, ", "), "app.ev.ev_code_key, app.ev.ev_kind_u, app.ev (partition app.ev_2024).ev_2024_note_len, app.ev (partition app.ev_2024).ev_2024_note_u"; got != want {
		t.Fatalf("constraints: %s\nwant %s", got, want)
	}
}

func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A flow into PostgreSQL keeps the table partitioned: copied and changed
// (rows moved between partitions, deleted), every row is in the
// partition it is in at the source; with its unique constraint and index
// built per partition (the cutover's BuildConstraints), pg_dump -s prints
// the same on both sides, a second build finds everything there, and the
// destination refuses a duplicate and routes a new row.
func TestPartitionedTableStaysPartitioned(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	p.srv.Exec(t, p.src, partitionedSchema)
	cfg := flow.Config{Name: "parts", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Until: "caught-up"}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	src, dst := p.srv.Connect(t, p.src), p.srv.Connect(t, p.dst)
	mustExec(t, src, `UPDATE app.ev SET at = '2024-02-02' WHERE id = 3;
		UPDATE app.ev SET kind = 'z', note = 'moved' WHERE id = 7;
		UPDATE app.ev SET at = '2025-03-03', kind = 'b' WHERE id = 4;
		DELETE FROM app.ev WHERE id IN (5, 10);
		INSERT INTO app.ev VALUES (1000, '2022-01-01', 'a', 'new', 'old'), (1001, '2025-05-05', 'q', 'new', 'rest');`)
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	if got, want := byPartition(t, dst), byPartition(t, src); got != want {
		t.Fatalf("rows by partition at the destination:\n%s\nat the source:\n%s", got, want)
	}
	sameTable(t, src, dst, "app.ev", "id")
	cons, err := open(t, p.srcURL()).Constraints(ctx, []model.Namespace{{Schema: "app", Table: "ev"}})
	if err != nil {
		t.Fatal(err)
	}
	built := open(t, p.dstURL())
	if done, err := built.BuildConstraints(ctx, cons); err != nil || done.Built != 4 {
		t.Fatalf("BuildConstraints: %+v, %v; want 4 built", done, err)
	}
	if got, want := p.srv.SchemaDump(t, p.dst, "app", "arch"), p.srv.SchemaDump(t, p.src, "app", "arch"); got != want {
		t.Fatalf("the destination's schema differs from the source's:\n--- source\n%s\n--- destination\n%s", want, got)
	}
	if done, err := built.BuildConstraints(ctx, cons); err != nil || done.Built != 0 || done.Present != 4 {
		t.Fatalf("second BuildConstraints: %+v, %v; want all 4 present", done, err)
	}
	if _, err := dst.Exec(ctx, `INSERT INTO app.ev VALUES (2000, '2025-01-09', 'b', 'c1', 'x')`); err != nil {
		t.Fatalf("a new row at the destination: %v", err)
	}
	var part string
	if err := dst.QueryRow(ctx, `SELECT tableoid::regclass::text FROM app.ev WHERE id = 2000`).Scan(&part); err != nil || part != "app.ev_2025_ab" {
		t.Fatalf("the new row is in %q (%v), want app.ev_2025_ab", part, err)
	}
	if _, err := dst.Exec(ctx, `INSERT INTO app.ev VALUES (2001, '2025-01-09', 'b', 'c1', 'x')`); err == nil {
		t.Fatal("a duplicate (code, at, kind) was accepted at the destination")
	}
}

// byPartition lists app.ev's rows with the partition each is in.
func byPartition(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	var out string
	if err := conn.QueryRow(context.Background(), `SELECT string_agg(tableoid::regclass::text || ' ' || id, E'\n' ORDER BY id) FROM app.ev`).Scan(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// With --rename of the table's schema, its partitions in that schema go
// to the new schema with it; a partition in another schema stays there.
func TestPartitionedTableRenamed(t *testing.T) {
	p := newPair(t)
	p.srv.Exec(t, p.src, partitionedSchema)
	cfg := flow.Config{Name: "partsmoved", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Until: "caught-up",
		Rename: []string{"app.*=moved.*"}}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	var parts string
	if err := p.srv.Connect(t, p.dst).QueryRow(context.Background(), `SELECT string_agg(relid::text || ' ' || COALESCE(parentrelid::text, '-'), ', ' ORDER BY level, relid::text)
		FROM pg_partition_tree('moved.ev')`).Scan(&parts); err != nil {
		t.Fatal(err)
	}
	if want := "moved.ev -, arch.ev_old moved.ev, moved.ev_2024 moved.ev, moved.ev_2025 moved.ev, moved.ev_2026 moved.ev, moved.ev_other moved.ev, moved.ev_2025_ab moved.ev_2025, moved.ev_2025_rest moved.ev_2025"; parts != want {
		t.Fatalf("partitions at the destination: %s\nwant %s", parts, want)
	}
	if strings.Contains(p.srv.SchemaDump(t, p.dst), "app.") {
		t.Fatal("the destination has something in schema app")
	}
	a, b := textRows(t, p.srv.Connect(t, p.src), "app.ev", "id"), textRows(t, p.srv.Connect(t, p.dst), "moved.ev", "id")
	if len(a) != 400 || asJSON(t, a) != asJSON(t, b) {
		t.Fatalf("moved.ev has %d rows, app.ev %d, or they differ", len(b), len(a))
	}
}

// A unique constraint on a partitioned table that fails half-way (here:
// a name it gives a partition's index is taken at the destination) fails
// with the statement that failed, and leaves the destination as it was:
// the indexes built on the partitions are dropped again.
func TestPartitionedUniqueBuildFailureLeavesNothing(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	p.srv.Exec(t, p.src, partitionedSchema)
	cfg := flow.Config{Name: "partsbad", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Until: "caught-up"}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	dst := p.srv.Connect(t, p.dst)
	mustExec(t, dst, `ALTER INDEX app.ev_other_code_at_kind_key RENAME TO ev_other_code_idx; CREATE TABLE app.ev_other_code_at_kind_key (x int)`)
	before := partitionCatalog(t, dst)
	cons, err := open(t, p.srcURL()).Constraints(ctx, []model.Namespace{{Schema: "app", Table: "ev"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = open(t, p.dstURL()).BuildConstraints(ctx, cons)
	if err == nil || !strings.Contains(err.Error(), `ALTER TABLE "app"."ev_other" ADD CONSTRAINT "ev_other_code_at_kind_key" UNIQUE USING INDEX`) {
		t.Fatalf("BuildConstraints: %v, want the failed ADD CONSTRAINT named", err)
	}
	if after := partitionCatalog(t, dst); after != before {
		t.Fatalf("indexes and constraints after the failed build:\n%s\nbefore:\n%s", after, before)
	}
	mustExec(t, dst, `DROP TABLE app.ev_other_code_at_kind_key`)
	if done, err := open(t, p.dstURL()).BuildConstraints(ctx, cons); err != nil || done.Built != 4 {
		t.Fatalf("BuildConstraints once the name is free: %+v, %v", done, err)
	}
}

// partitionCatalog lists the indexes (valid or not, unique or not) and
// constraints of schemas app and arch.
func partitionCatalog(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	var out string
	err := conn.QueryRow(context.Background(), `SELECT string_agg(x, E'\n' ORDER BY x) FROM (
		SELECT 'index ' || c.relname || ' valid=' || i.indisvalid || ' unique=' || i.indisunique AS x
			FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace IN ('app'::regnamespace, 'arch'::regnamespace)
		UNION ALL SELECT 'constraint ' || conname FROM pg_constraint WHERE connamespace IN ('app'::regnamespace, 'arch'::regnamespace)) s`).Scan(&out)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A partition the source gains while the flow runs is created at the
// destination when a change's row needs it. One the source no longer has
// (detached since) cannot be: the change stops the flow with an error
// naming the table, the row's partition key and what to create; once the
// user creates it, the flow resumes with that change.
func TestPartitionAddedDuringTheFlowIsCreatedOrAskedFor(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `CREATE SCHEMA app;
		CREATE TABLE app.m (id bigint, at date, v text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
		CREATE TABLE app.m_2025 PARTITION OF app.m FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
		INSERT INTO app.m VALUES (1, '2025-05-05', 'old');`)
	cfg := flow.Config{Name: "partnew", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Until: "caught-up"}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	mustExec(t, src, `CREATE TABLE app.m_2026 PARTITION OF app.m FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
		INSERT INTO app.m VALUES (2, '2026-02-02', 'new');`)
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	dst := p.srv.Connect(t, p.dst)
	if got, want := byPartitionOf(t, dst, "app.m"), byPartitionOf(t, src, "app.m"); got != want {
		t.Fatalf("rows by partition at the destination:\n%s\nat the source:\n%s", got, want)
	}
	mustExec(t, src, `CREATE TABLE app.m_2027 PARTITION OF app.m FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
		INSERT INTO app.m VALUES (3, '2027-02-02', 'gone');
		ALTER TABLE app.m DETACH PARTITION app.m_2027;`)
	err := runFlow(t, cfg)
	want := "table app.m: a change's row has no partition at the destination (Partition key of the failing row contains (at) = (2027-02-02).)"
	if !errs.IsConfigError(err) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "PARTITION OF app.m FOR VALUES") {
		t.Fatalf("runFlow: %v\nwant a configuration error containing %q", err, want)
	}
	// The detached partition is a table of its own at the source now,
	// which the flow (every table) took when it ran again: the partition
	// the user makes at the destination needs another name.
	var n int
	if err := dst.QueryRow(context.Background(), `SELECT count(*) FROM pg_tables WHERE schemaname = 'app' AND tablename = 'm_2027'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the detached partition, a table of the source, is not at the destination: %d (%v)", n, err)
	}
	mustExec(t, dst, `CREATE TABLE app.m_y2027 PARTITION OF app.m FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')`)
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	if got := byPartitionOf(t, dst, "app.m"); got != "app.m_2025 1\napp.m_2026 2\napp.m_y2027 3" {
		t.Fatalf("rows by partition at the destination:\n%s", got)
	}
	if got, want := byPartitionOf(t, dst, "app.m_2027"), byPartitionOf(t, src, "app.m_2027"); got != want {
		t.Fatalf("the detached partition's table at the destination:\n%s\nat the source:\n%s", got, want)
	}
}

func byPartitionOf(t *testing.T, conn *pgx.Conn, table string) string {
	t.Helper()
	var out string
	if err := conn.QueryRow(context.Background(), `SELECT string_agg(tableoid::regclass::text || ' ' || id, E'\n' ORDER BY id) FROM `+table).Scan(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// A flow without a copy creates the table with its primary key at once
// (CreateTables): partitioned too, and once its indexes and constraints
// are built pg_dump -s prints the same on both sides.
func TestPartitionedTableCreatedWithItsKey(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	p.srv.Exec(t, p.src, partitionedSchema)
	src, dst := open(t, p.srcURL()), open(t, p.dstURL())
	tables, err := src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.CreateTables(ctx, tables); err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if err := dst.FinishTable(ctx, tb); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := src.Constraints(ctx, []model.Namespace{tables[0].Namespace})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dst.BuildConstraints(ctx, cons); err != nil {
		t.Fatal(err)
	}
	if got, want := p.srv.SchemaDump(t, p.dst, "app", "arch"), p.srv.SchemaDump(t, p.src, "app", "arch"); got != want {
		t.Fatalf("the destination's schema differs from the source's:\n--- source\n%s\n--- destination\n%s", want, got)
	}
}
