package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/model"
)

// TestPostgresKeyRangePartitions: a PostgreSQL server without TID range
// scans (before 14) is copied in ranges of the primary key, read through its
// index, instead of block ranges that would each scan the whole table. The
// installed server is 15, so the test forces that path (the variable ferry
// reads for it): the plan has several key-range partitions per table (fewer
// when the key's first column has few values), and the copy ends equal.
func TestPostgresKeyRangePartitions(t *testing.T) {
	t.Setenv("FERRY_POSTGRES_KEY_PARTITIONS", "1")
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "keyrange_src"), srv.CreateDatabase(t, "keyrange_dst")
	srv.Exec(t, src, `CREATE TABLE plain (id bigint PRIMARY KEY, v text);
		INSERT INTO plain SELECT g, repeat('p', g % 40) FROM generate_series(1, 20000) g;
		CREATE TABLE regional (region text, id int, v text, PRIMARY KEY (region, id));
		INSERT INTO regional SELECT (ARRAY['north', 'it''s south', 'east', 'west'])[1 + g % 4], g, 'r' || g FROM generate_series(1, 20000) g;
		CREATE TABLE nokey (v text); ALTER TABLE nokey REPLICA IDENTITY FULL;
		INSERT INTO nokey SELECT 'n' || g FROM generate_series(1, 20000) g;
		ANALYZE`)
	p := mustFerry(t, "plan", srv.URL(src), "--partition-rows", "3000", "--json")
	var plan model.Plan
	if err := json.Unmarshal([]byte(p.stdout), &plan); err != nil {
		t.Fatalf("ferry plan --json: %v\n%s", err, p)
	}
	parts := map[string]int{}
	for _, part := range plan.Partitions {
		parts[part.Table.Table]++
		if part.Table.Table != "nokey" && !strings.HasPrefix(part.Lower+part.Upper, "key=") {
			t.Fatalf("partition %s is not a key range: lower %q, upper %q", part.ID, part.Lower, part.Upper)
		}
	}
	if parts["plain"] < 5 || parts["regional"] < 2 || parts["regional"] > 5 {
		t.Fatalf("partitions per table %v: want several for plain, 2 to 5 for regional (4 regions: at most one range each, and one below the first)", parts)
	}
	mustFerry(t, "sync", srv.URL(src), srv.URL(dst), "--partition-rows", "3000", "--batch-rows", "700", "--state-dir", t.TempDir(), "--until", "caught-up", "--progress", "none")
	v := mustFerry(t, "verify", srv.URL(src), srv.URL(dst))
	if !strings.Contains(v.stdout, "all 3 table(s) equal") {
		t.Fatalf("verify: %s", v)
	}
}
