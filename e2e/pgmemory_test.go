package e2e

import (
	"context"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// ferryPeak runs ferry to its end, requires exit 0, and returns the process's
// peak resident memory (the kernel's maxrss at wait, exact whenever the peak
// happened).
func ferryPeak(t *testing.T, args ...string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ferryBin, args...)
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("ferry %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Fatalf("no resource usage for ferry's process")
	}
	return ru.Maxrss << 10 // kilobytes on Linux
}

// A change carrying a large value must not cost CDC much more memory than
// copying the same table. CDC used to hold the value many times over at
// once (the replication message, pglogrepl's copy of it, the decoded
// string, the applier's array literal of it, escaped and grown by appends,
// and the driver's message), and the garbage of one step was not collected
// before the next: 699 MiB for a 100 MiB value against 239 MiB for the
// copy, 1.24 GB in the report.
func TestPostgresCDCLargeValueMemory(t *testing.T) {
	const mb = 100 // the large value's size in MiB
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "bigsrc"), srv.CreateDatabase(t, "bigdst")
	// EXTERNAL: out of line without compression, so the value's size is
	// what travels (md5 hex would compress poorly anyway).
	srv.Exec(t, src, `CREATE TABLE docs (id int PRIMARY KEY, version int NOT NULL, body text);
		ALTER TABLE docs ALTER body SET STORAGE EXTERNAL;
		INSERT INTO docs SELECT g, 1, 'small ' || g FROM generate_series(1, 10) g;`)
	srv.Exec(t, src, `UPDATE docs SET body = (SELECT string_agg(md5(g::text), '') FROM generate_series(1, $1::int) g) WHERE id = 1`, mb<<15)
	args := []string{"sync", srv.URL(src), srv.URL(dst), "--name", "bigvalue", "--state-dir", t.TempDir(),
		"--until", "caught-up", "--log-format", "json", "--progress", "none"}

	copyPeak := ferryPeak(t, args...)
	same := func(what string) {
		t.Helper()
		q := `SELECT string_agg(id || ':' || version || ':' || length(body) || ':' || md5(body), ',' ORDER BY id) FROM docs`
		var a, b string
		if err := srv.Connect(t, src).QueryRow(context.Background(), q).Scan(&a); err != nil {
			t.Fatal(err)
		}
		if err := srv.Connect(t, dst).QueryRow(context.Background(), q).Scan(&b); err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Fatalf("%s: the destination differs from the source:\nsource      %.300s\ndestination %.300s", what, a, b)
		}
	}
	same("after the copy")

	// The large value changes, with a small column.
	srv.Exec(t, src, `UPDATE docs SET version = 2, body = 'v2' || substr(body, 3) WHERE id = 1`)
	changedPeak := ferryPeak(t, args...)
	same("after an update of the large value")

	// Only the small column changes: the large value stays in TOAST and
	// PostgreSQL sends it as unchanged.
	srv.Exec(t, src, `UPDATE docs SET version = 3 WHERE id = 1; UPDATE docs SET version = 2 WHERE id = 2`)
	unchangedPeak := ferryPeak(t, args...)
	same("after an update leaving the large value unchanged")

	t.Logf("ferry's peak memory with a %d MiB value: copy %d MiB; CDC changing it %d MiB (%.2fx); CDC leaving it unchanged %d MiB",
		mb, copyPeak>>20, changedPeak>>20, float64(changedPeak)/float64(copyPeak), unchangedPeak>>20)
	for _, p := range []struct {
		what string
		peak int64
	}{{"changing it", changedPeak}, {"leaving it unchanged", unchangedPeak}} {
		if p.peak > copyPeak*3/2 {
			t.Errorf("CDC %s peaked at %d MiB, more than 1.5x the copy's %d MiB", p.what, p.peak>>20, copyPeak>>20)
		}
	}
}
