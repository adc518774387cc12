package e2e

import (
	"strings"
	"testing"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// TestPostgresToNATSRestartSendsSnapshotAgain: ferry sync --restart
// starts the flow over, and its snapshot reaches consumers again (new
// message IDs), instead of being dropped as duplicates of the first.
func TestPostgresToNATSRestartSendsSnapshotAgain(t *testing.T) {
	srv := pgtest.Shared(t)
	ns := startNATS(t)
	src := srv.CreateDatabase(t, "evrestart")
	pgShop(t, srv, src, 100)
	args := []string{"sync", srv.URL(src), ns.ClientURL() + "/?stream=rs&subject=rs", "--name", "evrestart", "--state-dir", t.TempDir(),
		"--log-format", "json", "--progress", "none", "--until", "caught-up"}
	mustFerry(t, args...)
	mustFerry(t, append(args, "--restart")...)
	reads := 0
	for _, m := range readNATS(t, ns.ClientURL(), "rs") {
		if m.Subject == "rs.public.orders" && strings.Contains(string(m.Value), `"op":"r"`) {
			reads++
		}
	}
	if reads != 200 {
		t.Errorf("%d read events of orders after a run and a --restart, want 200 (the snapshot twice)", reads)
	}
}
