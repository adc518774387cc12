package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// artifacts is where a test saves what a person should look at: $FERRY_ARTIFACTS
// (created if needed) or a temporary directory.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("FERRY_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browserAvailable reports whether Chromium is installed; where the test
// script requires it (FERRY_REQUIRE_BROWSER), its absence fails the test.
func browserAvailable(t *testing.T) bool {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("FERRY_REQUIRE_BROWSER") != "" {
			t.Fatalf("%s is missing: install the Debian package chromium", chromiumPath)
		}
		return false
	}
	return true
}

// pageState is what the dashboard shows, read from the rendered page.
type pageState struct {
	Phase      string `json:"phase"`
	Headline   string `json:"headline"`
	Percent    string `json:"percent"`
	Rows       string `json:"rows"`
	Changes    string `json:"changes"`
	Tables     int    `json:"tables"`
	TableBars  []int  `json:"table_bars"` // rendered widths in pixels
	Throughput int    `json:"throughput"` // pixels of the rows/s and changes/s colours
	Lag        int    `json:"lag"`        // pixels of the lag colour
}

// readPage reads the numbers as rendered (text, not data attributes) and
// counts the pixels each chart drew in its series' colours.
const readPage = `(() => {
  const txt = (id) => (document.getElementById(id) || {}).textContent || '';
  const pixels = (id, colours) => {
    const c = document.getElementById(id);
    if (!c || !c.width || !c.height) return 0;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] < 200) continue;
      for (const [r, g, b] of colours) {
        if (Math.abs(d[i] - r) < 40 && Math.abs(d[i + 1] - g) < 40 && Math.abs(d[i + 2] - b) < 40) { n++; break; }
      }
    }
    return n;
  };
  return {
    phase: txt('phase'), headline: txt('headline'), percent: txt('overall-percent'),
    rows: txt('overall-rows'), changes: txt('changes-received'),
    tables: document.querySelectorAll('#tables .trow').length,
    table_bars: [...document.querySelectorAll('#tables .trow .fill')].map((e) => Math.round(e.getBoundingClientRect().width)),
    throughput: pixels('chart-throughput', [[37, 99, 235], [13, 148, 136]]),
    lag: pixels('chart-lag', [[234, 88, 12]]),
  };
})()`

// number parses a rendered number such as "126,000".
func number(s string) int64 {
	var digits strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			digits.WriteRune(r)
		}
	}
	n, _ := strconv.ParseInt(digits.String(), 10, 64)
	return n
}

// A real browser loads the dashboard of a running flow: the numbers it
// renders advance, the charts draw, nothing is fetched from elsewhere and the
// page reports no error. Screenshots of the copy, CDC and final states are
// saved for a person to look at.
func TestDashboardInABrowser(t *testing.T) {
	if !browserAvailable(t) {
		t.Skipf("%s is missing (Debian package chromium); scripts/test installs it and requires this test", chromiumPath)
	}
	dir := t.TempDir()
	out := artifacts(t)
	t.Logf("screenshots go to %s", out)
	bg := startFerry(t, "sync", "fake://?tables=3&rows=100000&changes=14000&changes_per_sec=2000",
		"sqlite://"+filepath.Join(dir, "dst.db"), "--until", "caught-up", "--state-dir", filepath.Join(dir, "state"),
		"--partition-rows", "25000", "--parallel", "3",
		"--ui", "127.0.0.1:0", "--ui-linger", "60s", "--log-format", "json", "--progress", "none")
	url := dashboardURL(t, bg)
	b := startBrowser(t)
	b.navigate(t, url)
	ctx := context.Background()

	var first pageState
	if !waitUntil(ctx, 30*time.Second, func() bool {
		b.eval(t, readPage, &first)
		return first.Phase == "COPYING" && number(first.Rows) > 0 && first.Tables == 3
	}) {
		t.Fatalf("the page never showed the copy: %+v\n%s", first, bg.stderr.String())
	}
	time.Sleep(2500 * time.Millisecond)
	var second pageState
	b.eval(t, readPage, &second)
	t.Logf("copy: %+v then %+v", first, second)
	if second.Phase == "COPYING" || second.Phase == "STREAMING" {
		if number(second.Rows) <= number(first.Rows) && number(second.Changes) <= number(first.Changes) {
			t.Errorf("the rendered numbers did not advance in 2.5s: rows %s then %s, changes %s then %s",
				first.Rows, second.Rows, first.Changes, second.Changes)
		}
	}
	if second.Throughput < 50 {
		t.Errorf("the throughput chart drew %d pixels of its series during the copy", second.Throughput)
	}
	b.screenshot(t, filepath.Join(out, "dashboard-copy.png"))

	// CDC: the lag chart draws, the change count advances.
	var cdc pageState
	if !waitUntil(ctx, 60*time.Second, func() bool {
		b.eval(t, readPage, &cdc)
		return cdc.Phase == "STREAMING" && number(cdc.Changes) > 0 && cdc.Lag > 20
	}) {
		t.Fatalf("the page never showed CDC with its lag: %+v\n%s", cdc, bg.stderr.String())
	}
	time.Sleep(2500 * time.Millisecond)
	var cdc2 pageState
	b.eval(t, readPage, &cdc2)
	t.Logf("cdc: %+v then %+v", cdc, cdc2)
	if cdc2.Phase == "STREAMING" && number(cdc2.Changes) <= number(cdc.Changes) {
		t.Errorf("the change count did not advance in 2.5s: %s then %s", cdc.Changes, cdc2.Changes)
	}
	if cdc2.Percent != "100%" {
		t.Errorf("during CDC the page shows %s copied", cdc2.Percent)
	}
	b.screenshot(t, filepath.Join(out, "dashboard-cdc.png"))

	// The end: the page keeps the final state.
	var done pageState
	if !waitUntil(ctx, 60*time.Second, func() bool {
		b.eval(t, readPage, &done)
		return done.Phase == "DONE"
	}) {
		t.Fatalf("the page never showed the end: %+v\n%s", done, bg.stderr.String())
	}
	time.Sleep(time.Second) // the last chart point
	b.eval(t, readPage, &done)
	if number(done.Rows) != 300000 || number(done.Changes) != 14000 {
		t.Errorf("final page: %+v; want 300,000 rows and 14,000 changes", done)
	}
	for i, w := range done.TableBars {
		if w < 100 {
			t.Errorf("table %d's bar is %dpx wide at the end", i, w)
		}
	}
	b.screenshot(t, filepath.Join(out, "dashboard-done.png"))
	t.Logf("screenshots: %s", strings.Join([]string{"dashboard-copy.png", "dashboard-cdc.png", "dashboard-done.png"}, ", "))

	problems, requests := b.report()
	for _, p := range problems {
		t.Errorf("the page reported: %s", p)
	}
	origin := strings.TrimSuffix(url, "/")
	for _, r := range requests {
		if !strings.HasPrefix(r, origin+"/") && r != "about:blank" {
			t.Errorf("the page fetched %s, outside ferry", r)
		}
	}
	if code := bg.signal(t, syscall.SIGINT); code != 0 {
		t.Fatalf("ferry exited %d after the linger was interrupted:\n%s", code, bg.stderr.String())
	}
}

const password = "hunter2secret"

// get fetches a dashboard path and returns the body (up to a limit, so an
// event stream ends).
func get(t *testing.T, url string, limit int64) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, limit))
	return resp.StatusCode, string(body)
}

// A flow whose destination URL holds a password: the dashboard shows the
// URL redacted, and the password appears nowhere ferry answers or logs.
func TestDashboardNeverShowsThePassword(t *testing.T) {
	dir := t.TempDir()
	dst := "file://ferry:" + password + "@localhost" + filepath.Join(dir, "out") + "?format=jsonl"
	bg := startFerry(t, "sync", "fake://?tables=2&rows=20000", dst, "--state-dir", filepath.Join(dir, "state"),
		"--ui", "127.0.0.1:0", "--ui-linger", "60s", "--log-format", "json", "--progress", "log", "--log-level", "debug")
	url := dashboardURL(t, bg)
	if !bg.waitFor(t, "flow finished", 60*time.Second) {
		t.Fatalf("the flow did not finish:\n%s", bg.stderr.String())
	}
	seen := map[string]string{}
	for _, path := range []string{"", "assets/app.js", "api/flow", "api/history", "api/errors", "metrics", "healthz", "readyz"} {
		code, body := get(t, url+path, 4<<20)
		if code != 200 && !(path == "readyz" && code == 503) {
			t.Errorf("GET /%s: %d %s", path, code, body)
		}
		seen["/"+path] = body
	}
	// The event stream: read the first events.
	_, events := get(t, url+"api/events", 8<<10)
	seen["/api/events"] = events
	if !strings.Contains(events, "event: flow") {
		t.Errorf("/api/events sent no flow event: %q", events)
	}
	var f struct {
		Destination string `json:"destination"`
		Phase       string `json:"phase"`
	}
	if err := json.Unmarshal([]byte(seen["/api/flow"]), &f); err != nil {
		t.Fatal(err)
	}
	if want := "file://ferry:xxxxx@localhost" + filepath.Join(dir, "out") + "?format=jsonl"; f.Destination != want || f.Phase != "done" {
		t.Errorf("/api/flow shows destination %q in phase %s; want %q, done", f.Destination, f.Phase, want)
	}
	if !strings.Contains(seen["/metrics"], `ferry_rows_written_total{flow="`) {
		t.Errorf("/metrics lacks ferry's metrics:\n%s", seen["/metrics"])
	}
	if code := bg.signal(t, syscall.SIGINT); code != 0 {
		t.Fatalf("exit %d:\n%s", code, bg.stderr.String())
	}
	seen["stderr"] = bg.stderr.String()
	for where, text := range seen {
		if strings.Contains(text, password) {
			t.Errorf("%s shows the password:\n%s", where, text)
		}
	}

	// A flow that fails: the error, on the dashboard and on stderr, names the
	// destination without its password.
	bg = startFerry(t, "sync", "fake://?tables=1&rows=10", dst, "--mode", "full", "--state-dir", filepath.Join(dir, "state2"),
		"--ui", "127.0.0.1:0", "--ui-linger", "60s", "--log-format", "json")
	url = dashboardURL(t, bg)
	if !bg.waitFor(t, "flow ended; the dashboard stays up", 60*time.Second) {
		t.Fatalf("the flow did not end:\n%s", bg.stderr.String())
	}
	_, errs := get(t, url+"api/errors", 1<<20)
	_, flowDoc := get(t, url+"api/flow", 1<<20)
	if !strings.Contains(errs, "file://ferry:xxxxx@localhost") || !strings.Contains(flowDoc, `"phase": "failed"`) {
		t.Errorf("/api/errors: %s\n/api/flow: %s", errs, flowDoc)
	}
	code := bg.signal(t, syscall.SIGINT)
	if code != 2 {
		t.Errorf("exit %d, want 2 (a configuration error)", code)
	}
	for where, text := range map[string]string{"/api/errors": errs, "/api/flow": flowDoc, "stderr": bg.stderr.String()} {
		if strings.Contains(text, password) {
			t.Errorf("%s shows the password:\n%s", where, text)
		}
	}
}

// Binding beyond loopback without a token is refused before anything runs.
func TestDashboardBeyondLoopbackNeedsAToken(t *testing.T) {
	dir := t.TempDir()
	r := ferry(t, "sync", "fake://?tables=1&rows=10", "null://", "--state-dir", dir, "--ui", "0.0.0.0:0")
	if r.code != 2 || !strings.Contains(r.stderr, "without a token") {
		t.Fatalf("want exit 2 naming the missing token: %s", r)
	}
	// With a token in the environment it serves, and wants it.
	bg := startFerryEnv(t, []string{"FERRY_UI_TOKEN=e2e-token-123"}, "sync", "fake://?tables=1&rows=10&changes_per_sec=50", "null://",
		"--state-dir", dir, "--ui", "0.0.0.0:0", "--log-format", "json", "--progress", "none")
	url := dashboardURL(t, bg)
	if !bg.waitFor(t, "copy starting", 30*time.Second) { // signals are handled from here on
		t.Fatalf("the flow did not start:\n%s", bg.stderr.String())
	}
	if code, _ := get(t, url+"api/flow", 1<<20); code != 401 {
		t.Errorf("GET /api/flow without the token: %d, want 401", code)
	}
	if code, _ := get(t, url+"api/flow?token=e2e-token-123", 1<<20); code != 200 {
		t.Errorf("GET /api/flow with the token: %d, want 200", code)
	}
	if code, _ := get(t, url+"healthz", 1<<20); code != 200 {
		t.Errorf("GET /healthz: %d, want 200 without a token", code)
	}
	if code := bg.signal(t, syscall.SIGINT); code != 0 {
		t.Fatalf("exit %d:\n%s", code, bg.stderr.String())
	}
	if strings.Contains(bg.stderr.String(), "e2e-token-123") {
		t.Error("the log shows the token")
	}
}

// startFerryEnv is startFerry with extra environment variables (KEY=VALUE),
// set for the rest of the test.
func startFerryEnv(t *testing.T, env []string, args ...string) *background {
	t.Helper()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return startFerry(t, args...)
}
