package e2e

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// readTableTexts reads each table row's name and its numbers line (where
// the background verification's state is written) from the page.
const readTableTexts = `(() => {
  const out = {};
  for (const r of document.querySelectorAll('#tables .trow')) {
    out[(r.querySelector('.name') || {}).textContent || ''] = (r.querySelector('.tnums') || {}).textContent || '';
  }
  return out;
})()`

var checkedText = regexp.MustCompile(`verified (\d+)x, ([\d,]+) rows checked: (.*)$`)

// TestDashboardShowsVerifyInABrowser: with ferry sync --verify, the
// dashboard, as a browser renders it, shows per table the rows its
// background verification checked and no difference; once a row is
// changed at the destination behind the flow's back, that table's line
// shows the difference, the others still none.
func TestDashboardShowsVerifyInABrowser(t *testing.T) {
	if !browserAvailable(t) {
		t.Skipf("%s is missing (Debian package chromium); scripts/test installs it and requires this test", chromiumPath)
	}
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "vdsrc"), srv.CreateDatabase(t, "vddst")
	pgShop(t, srv, src, 2000)
	srv.Exec(t, src, `CREATE TABLE settings (id int PRIMARY KEY, v text); INSERT INTO settings SELECT g, 'v' || g FROM generate_series(1, 100) g`)
	w := startPGWriter(t, srv.URL(src), 2001)
	bg := startFerry(t, "sync", srv.URL(src), srv.URL(dst), "--name", "vd", "--state-dir", t.TempDir(),
		"--verify", "50ms", "--ui", "127.0.0.1:0", "--log-format", "json", "--progress", "none")
	url := dashboardURL(t, bg)
	b := startBrowser(t)
	b.navigate(t, url)
	ctx := context.Background()
	out := artifacts(t)

	// wait polls the page until every table's verify text passes ok.
	wait := func(what string, ok func(table, state string) bool) map[string]string {
		t.Helper()
		var texts map[string]string
		if !waitUntil(ctx, 2*time.Minute, func() bool {
			texts = nil
			b.eval(t, readTableTexts, &texts)
			if len(texts) != 3 {
				return false
			}
			for table, text := range texts {
				m := checkedText.FindStringSubmatch(text)
				if m == nil || m[2] == "0" || !ok(table, m[3]) {
					return false
				}
			}
			return true
		}) {
			t.Fatalf("the page never showed %s: %v\n%s", what, texts, bg.stderr.String())
		}
		return texts
	}
	texts := wait("every table checked with no difference", func(_, state string) bool { return state == "no difference" })
	t.Logf("under load: %v", texts)
	w.halt(t)

	srv.Exec(t, dst, `UPDATE settings SET v = 'tampered' WHERE id = 7`)
	texts = wait("the difference in settings", func(table, state string) bool {
		if table == "public.settings" {
			return strings.HasPrefix(state, "1 different")
		}
		return state == "no difference"
	})
	t.Logf("after a row changed at the destination: %v", texts)
	b.screenshot(t, filepath.Join(out, "dashboard-verify.png"))
	problems, _ := b.report()
	for _, p := range problems {
		t.Errorf("the page reported: %s", p)
	}
}
