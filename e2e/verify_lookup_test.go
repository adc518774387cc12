package e2e

import (
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// TestPostgresVerifyOnlineRechecksReadOnlyTheKeys: ferry verify --online
// reading rows through ferry (--no-pushdown) re-checks a differing row of
// a table with a two-column key by reading that key at both sides: the
// rows it reads are the tables twice (bucket sums, then the differing
// bucket) and one row per side per re-check, not the table again.
func TestPostgresVerifyOnlineRechecksReadOnlyTheKeys(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "vksrc"), srv.CreateDatabase(t, "vkdst")
	pgShop(t, srv, src, 2000) // lines: key (order_id, line)
	w := startPGWriter(t, srv.URL(src), 2001)
	bg := startFerry(t, "sync", srv.URL(src), srv.URL(dst), "--name", "vk", "--state-dir", t.TempDir(),
		"--log-format", "json", "--progress", "none")
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("ferry did not reach CDC:\n%s", bg.stderr.String())
	}
	for w.ops.Load() < 100 {
		time.Sleep(10 * time.Millisecond) // waits for writes, asserts nothing on time
	}
	w.halt(t)
	// The flow applies the writer's last changes first: the counts and
	// the rows read below assume both sides hold the same rows but one.
	awaitEqual(t, srv, src, dst, "lines", "order_id, line")
	srv.Exec(t, dst, `UPDATE lines SET qty = 99 WHERE order_id = 3 AND line = 2`)
	r := ferry(t, "verify", "--online", "--no-pushdown", "--name", "vk", "--tables", "public.lines", srv.URL(src), srv.URL(dst), "--json")
	tables := rangeVerifiedTables(t, r)
	v := parseVerified(t, r)
	if r.code != 1 || len(tables) != 1 || len(v.Tables) != 1 {
		t.Fatalf("a row changed at the destination: %s", r)
	}
	lines, online := tables[0], v.Tables[0]
	if online.DifferentKeys != 1 || online.Rechecks != 3 || len(online.Diffs) != 1 || online.Diffs[0].Key != "order_id=3, line=2" ||
		lines.SourceRows != lines.DestinationRows {
		t.Fatalf("lines: %s", r)
	}
	if want := 2*2*lines.SourceRows + 3*2; lines.RowsRead != want {
		t.Fatalf("read %d rows, want %d (each table twice, then the key at both sides per re-check): %s", lines.RowsRead, want, r)
	}
}
