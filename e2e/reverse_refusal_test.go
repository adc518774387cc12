package e2e

import (
	"os"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/state"
)

// A reverse flow is refused (exit 2, with what to do) for a flow not cut
// over with --reverse, and when someone wrote to the flow's tables at the
// old database after the cutover. Writes there to another table, or in
// another database, are no reason to refuse.
func TestReverseFlowRefusals(t *testing.T) {
	srv := pgtest.Shared(t)
	dir := t.TempDir()

	// Cut over without --reverse: no way back was prepared.
	old, nu := srv.CreateDatabase(t, "rrold"), srv.CreateDatabase(t, "rrnew")
	reverseShop(t, srv, old)
	oldURL, newURL := srv.URL(old)+"&heartbeat=1s", srv.URL(nu)+"&heartbeat=1s"
	mustFerry(t, "sync", oldURL, newURL, "--name", "plain", "--state-dir", dir, "--until", "caught-up", "--progress", "none")
	mustFerry(t, "cutover", oldURL, newURL, "--name", "plain", "--state-dir", dir)
	res := ferry(t, "sync", newURL, oldURL, "--name", "plain", "--state-dir", dir, "--reverse", "--until", "caught-up")
	if res.code != 2 || !strings.Contains(res.stderr, `flow "plain" was not cut over with --reverse`) {
		t.Fatalf("a reverse flow of a flow cut over without --reverse: want exit 2 saying so, got\n%s", res)
	}

	// Cut over with --reverse, then the old database is written to.
	old2, nu2 := srv.CreateDatabase(t, "rrold"), srv.CreateDatabase(t, "rrnew")
	reverseShop(t, srv, old2)
	srv.Exec(t, old2, `CREATE TABLE scratch (id int PRIMARY KEY)`)
	other := srv.CreateDatabase(t, "rrother")
	old2URL, nu2URL := srv.URL(old2)+"&heartbeat=1s", srv.URL(nu2)+"&heartbeat=1s"
	mustFerry(t, "sync", old2URL, nu2URL, "--name", "back", "--state-dir", dir, "--tables", "public.items,public.notes", "--until", "caught-up", "--progress", "none")
	mustFerry(t, "cutover", old2URL, nu2URL, "--name", "back", "--state-dir", dir, "--tables", "public.items,public.notes", "--reverse")
	// Not the flow's tables, not its database: not named below (the
	// reverse flow's test has them alone, and passes).
	srv.Exec(t, old2, `INSERT INTO scratch VALUES (1), (2)`)
	srv.Exec(t, other, `CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)`)
	srv.Exec(t, old2, `UPDATE items SET qty = 0 WHERE id = 5; INSERT INTO notes (item_id, body) VALUES (6, 'late')`)
	// Named without --reverse, the reverse flow would replace its start.
	res = ferry(t, "sync", nu2URL, old2URL, "--name", "back-reverse", "--state-dir", dir, "--until", "caught-up")
	if res.code != 2 || !strings.Contains(res.stderr, "start it with ferry sync DESTINATION SOURCE --name back --reverse") {
		t.Fatalf("the reverse flow started without --reverse: want exit 2, got\n%s", res)
	}
	revArgs := []string{"sync", nu2URL, old2URL, "--name", "back", "--state-dir", dir, "--reverse", "--until", "caught-up", "--progress", "none"}
	res = ferry(t, revArgs...)
	if res.code != 2 || !strings.Contains(res.stderr, "was written after the cutover") ||
		!strings.Contains(res.stderr, "public.items (1 change(s))") || !strings.Contains(res.stderr, "public.notes (1 change(s))") || strings.Contains(res.stderr, "scratch") {
		t.Fatalf("a reverse flow after writes at the old database: want exit 2 naming items and notes, got\n%s", res)
	}
	if rec, ok, err := state.ReadReverse(dir, "back"); err != nil || !ok || rec.Checked {
		t.Fatalf("the refused check was recorded as passed: %+v %v %v", rec, ok, err)
	}
	if ok, err := state.Exists(dir, "back-reverse"); err != nil || ok {
		t.Fatalf("the refused reverse flow left state behind (%v)", err)
	}
}

// A cutover --reverse to a destination that cannot be a change source
// (wal_level replica) is refused before anything is drained.
func TestReverseCutoverNeedsLogicalWAL(t *testing.T) {
	srv := pgtest.Shared(t)
	replica := pgtest.Start(t, pgtest.WALLevel("replica"))
	old, nu := srv.CreateDatabase(t, "rwold"), replica.CreateDatabase(t, "rwnew")
	reverseShop(t, srv, old)
	dir := t.TempDir()
	oldURL := srv.URL(old) + "&heartbeat=1s"
	mustFerry(t, "sync", oldURL, replica.URL(nu), "--name", "wal", "--state-dir", dir, "--until", "caught-up", "--progress", "none")
	res := ferry(t, "cutover", oldURL, replica.URL(nu), "--name", "wal", "--state-dir", dir, "--reverse")
	if res.code != 2 || !strings.Contains(res.stderr, "--reverse needs the destination to be a change source") || !strings.Contains(res.stderr, "wal_level") {
		t.Fatalf("cutover --reverse to a wal_level=replica destination: want exit 2 naming wal_level, got\n%s", res)
	}
	if _, err := os.Stat(state.CutoverReportPath(dir, "wal")); !os.IsNotExist(err) {
		t.Fatalf("the refused cutover --reverse ran a cutover (its report is there: %v)", err)
	}
}
