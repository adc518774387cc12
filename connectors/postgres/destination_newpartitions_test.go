package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/model"
)

// BuildPartitions creates the partitions the destination lacks, moving
// into each the rows its parent's DEFAULT partition holds for it, in one
// transaction per table (no foreign key's action fires for a moved row):
// when one partition cannot be created (its bound
// overlaps another), nothing is created and no row moves; with KeepDefaults
// nothing under a DEFAULT partition is created; a second call creates
// nothing; a partition the source has not is listed, not dropped, and one
// renamed there is listed with the rename.
func TestBuildPartitionsMovesRowsOutOfTheDefaultInOneTransaction(t *testing.T) {
	p := newPair(t)
	conn := p.srv.Connect(t, p.dst)
	mustExec(t, conn, `CREATE TABLE m (id bigint, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
		CREATE TABLE m_2025 PARTITION OF m FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
		CREATE TABLE m_old PARTITION OF m FOR VALUES FROM ('2000-01-01') TO ('2001-01-01');
		CREATE TABLE m_other PARTITION OF m DEFAULT;
		INSERT INTO m VALUES (1, '2025-05-05'), (2, '2026-02-02'), (3, '2026-03-03'), (4, '2028-01-01');
		CREATE TABLE kid (id bigint, at date, FOREIGN KEY (id, at) REFERENCES m ON DELETE CASCADE);
		INSERT INTO kid VALUES (2, '2026-02-02');`)
	dst := open(t, p.dstURL())
	ctx := context.Background()
	part := func(name, bound string) model.TablePartition {
		return model.TablePartition{Name: model.Namespace{Table: name}, Bound: bound}
	}
	table := func(parts ...model.TablePartition) []*model.Table {
		return []*model.Table{{Namespace: model.Namespace{Schema: "public", Table: "m"},
			Partitioning: &model.Partitioning{Key: "RANGE (at)", Partitions: parts}}}
	}
	y2025 := part("m_2025", "FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')")
	y2026 := part("m_2026", "FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')")
	def := part("m_other", "DEFAULT")
	// In a schema the destination does not have yet.
	y2028 := model.TablePartition{Name: model.Namespace{Schema: "arch", Table: "m_2028"}, Bound: "FOR VALUES FROM ('2028-01-01') TO ('2029-01-01')"}
	where := func() string { return byPartitionOf(t, conn, "m") }
	before := where()

	_, err := dst.BuildPartitions(ctx, table(y2025, y2026, part("m_bad", "FOR VALUES FROM ('2025-06-01') TO ('2025-07-01')"), def), connector.PartitionOptions{})
	if err == nil || !strings.Contains(err.Error(), `would overlap partition "m_2025"`) || !strings.Contains(err.Error(), "nothing of this table's partitions was changed") {
		t.Fatalf("BuildPartitions with an overlapping bound: %v", err)
	}
	if got := where(); got != before {
		t.Fatalf("a failed BuildPartitions changed the rows' partitions:\n%s\nwas:\n%s", got, before)
	}

	done, err := dst.BuildPartitions(ctx, table(y2025, y2026, def), connector.PartitionOptions{KeepDefaults: true})
	if err != nil || len(done.Created) != 0 || where() != before {
		t.Fatalf("BuildPartitions keeping DEFAULT partitions: %+v, %v; rows:\n%s", done, err, where())
	}

	done, err = dst.BuildPartitions(ctx, table(y2025, y2026, y2028, def), connector.PartitionOptions{})
	if err != nil || strings.Join(done.Created, ",") != "public.m_2026,arch.m_2028" || done.Moved != 3 {
		t.Fatalf("BuildPartitions: %+v, %v; want public.m_2026 and arch.m_2028 created and 3 rows moved", done, err)
	}
	if got, want := where(), "m_2025 1\nm_2026 2\nm_2026 3\narch.m_2028 4"; got != want {
		t.Fatalf("rows by partition:\n%s\nwant:\n%s", got, want)
	}
	var kids int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM kid`).Scan(&kids); err != nil || kids != 1 {
		t.Fatalf("a moved row's child (ON DELETE CASCADE): %d rows, %v; want it kept", kids, err)
	}
	if len(done.Issues) != 1 || !strings.Contains(done.Issues[0], "partition public.m_old (FOR VALUES FROM ('2000-01-01') TO ('2001-01-01') of public.m) is not a partition at the source") {
		t.Fatalf("the partition the source has not is not listed: %q", done.Issues)
	}
	again, err := dst.BuildPartitions(ctx, table(y2025, y2026, y2028, def), connector.PartitionOptions{})
	if err != nil || len(again.Created) != 0 || again.Moved != 0 {
		t.Fatalf("a second BuildPartitions: %+v, %v; want nothing created", again, err)
	}
	// Renamed at the source: listed with the rename, not created again
	// (its bound would overlap).
	renamed, err := dst.BuildPartitions(ctx, table(y2025, part("m_y2026", y2026.Bound), y2028, def), connector.PartitionOptions{})
	if err != nil || len(renamed.Created) != 0 || !strings.Contains(strings.Join(renamed.Issues, "\n"), `partition public.m_y2026 (FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') of public.m) is named public.m_2026 here: renamed at the source while the flow ran; to fix: ALTER TABLE "public"."m_2026" RENAME TO "m_y2026"`) {
		t.Fatalf("BuildPartitions of a partition renamed at the source: %+v, %v", renamed, err)
	}
}

// A role that may not set session_replication_role cannot keep a foreign
// key's action from firing for the rows a new partition takes out of the
// DEFAULT partition: BuildPartitions refuses, naming the key and the
// GRANT to run, and moves nothing.
func TestBuildPartitionsRefusesToFireForeignKeysWithoutReplicaRole(t *testing.T) {
	p := newPair(t)
	role := "ferry_part_" + p.dst
	p.srv.Exec(t, p.dst, `CREATE ROLE `+role+` LOGIN PASSWORD '`+pgtest.Password+`'; GRANT ALL ON SCHEMA public TO `+role)
	t.Cleanup(func() {
		p.srv.Exec(t, "postgres", "DROP DATABASE IF EXISTS "+p.dst+" WITH (FORCE)")
		p.srv.Exec(t, "postgres", "DROP ROLE IF EXISTS "+role)
	})
	url := p.srv.UserURL(role, pgtest.Password, p.dst)
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	mustExec(t, conn, `CREATE TABLE m (id bigint, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
		CREATE TABLE m_other PARTITION OF m DEFAULT;
		INSERT INTO m VALUES (1, '2026-02-02');
		CREATE TABLE kid (id bigint, at date, CONSTRAINT kid_m FOREIGN KEY (id, at) REFERENCES m ON DELETE CASCADE);
		INSERT INTO kid VALUES (1, '2026-02-02');`)
	tables := []*model.Table{{Namespace: model.Namespace{Schema: "public", Table: "m"}, Partitioning: &model.Partitioning{Key: "RANGE (at)", Partitions: []model.TablePartition{
		{Name: model.Namespace{Table: "m_2026"}, Bound: "FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')"},
		{Name: model.Namespace{Table: "m_other"}, Bound: "DEFAULT"}}}}}
	_, err = open(t, url).BuildPartitions(context.Background(), tables, connector.PartitionOptions{})
	if !errs.IsConfigError(err) || !strings.Contains(err.Error(), "foreign key kid_m of public.kid would fire") || !strings.Contains(err.Error(), "GRANT SET ON PARAMETER session_replication_role") {
		t.Fatalf("BuildPartitions as a role without session_replication_role: %v", err)
	}
	if got := byPartitionOf(t, conn, "m"); got != "m_other 1" {
		t.Fatalf("rows by partition after the refusal:\n%s", got)
	}
}
