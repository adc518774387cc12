package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// TestMaxRateHoldsIncrementalSnapshotChunks: an incremental snapshot's
// chunk reads go through the same --max-rate bucket as the copy: the
// bucket let through exactly the snapshot's rows (the log line that ends
// it says so), where before it let none of them through.
func TestMaxRateHoldsIncrementalSnapshotChunks(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "ratesnapsrc"), srv.CreateDatabase(t, "ratesnapdst")
	srv.Exec(t, src, `CREATE TABLE items (id int PRIMARY KEY, note text NOT NULL);
		INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 3000) g`)
	dir := t.TempDir()
	bg := startFerry(t, "sync", srv.URL(src), srv.URL(dst), "--name", "ratesnap", "--state-dir", dir,
		"--batch-rows", "400", "--max-rate", "200000", "--log-format", "json", "--progress", "none")
	if !bg.waitFor(t, "change data capture starting", time.Minute) {
		t.Fatalf("ferry did not reach CDC:\n%s", tail(bg.stderr.String(), 40))
	}
	r := mustFerry(t, "snapshot", srv.URL(src), srv.URL(dst), "public.items", "--name", "ratesnap", "--state-dir", dir)
	if !strings.Contains(r.stdout, "copying public.items again") {
		t.Fatalf("ferry snapshot: %s", r)
	}
	if !bg.waitFor(t, "incremental snapshot done", 2*time.Minute) {
		t.Fatalf("the snapshot did not finish:\n%s", tail(bg.stderr.String(), 40))
	}
	bg.kill(t)
	done := result{stderr: bg.stderr.String()}.logLine("incremental snapshot done")
	if done["max_rate_unit"] != "rows" || done["max_rate_passed"] != float64(3000) || done["rows"] != float64(3000) {
		t.Fatalf("the incremental snapshot of 3000 rows did not read through --max-rate's bucket: %v", done)
	}
}
