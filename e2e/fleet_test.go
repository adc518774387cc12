package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/dashboard"
	"github.com/ferrydb/ferry/scaleout"
)

// The fleet dashboard (ferry dashboard) against a real Temporal dev server,
// a real worker and two real flows: fleet-a streams the fake source's
// changes into SQLite, fleet-b copies another fake source into null:// and
// then follows its (empty) change stream.

const fleetToken = "fleet-e2e-token-42"

// fleet is the Temporal server and the two flows' names.
type fleet struct {
	ts   *temporalServer
	a, b string
}

func startFleet(t *testing.T) *fleet {
	t.Helper()
	ts := startTemporal(t)
	dir := t.TempDir()
	ts.worker(t, "asrc=fake://?tables=2&rows=3000&changes_per_sec=40&seed=5", "adst=sqlite://"+filepath.Join(dir, "a.db"),
		"bsrc=fake://?tables=1&rows=2000&seed=6", "bdst=null://")
	f := &fleet{ts: ts, a: "fleet-a", b: "fleet-b"}
	mustFerry(t, "run", "--temporal", ts.addr, "--source", "asrc", "--destination", "adst", "--name", f.a, "--detach")
	mustFerry(t, "run", "--temporal", ts.addr, "--source", "bsrc", "--destination", "bdst", "--name", f.b, "--detach")
	return f
}

// startDashboard runs ferry dashboard (with the token when given) and
// returns its URL.
func (f *fleet) startDashboard(t *testing.T, token string) (*background, string) {
	t.Helper()
	args := []string{"dashboard", "--ui", "127.0.0.1:0", "--temporal", f.ts.addr, "--log-format", "json"}
	if token != "" {
		args = append(args, "--ui-token", token)
	}
	bg := startFerry(t, args...)
	return bg, dashboardURL(t, bg)
}

// request makes a dashboard request, with the token as a bearer when given.
func request(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// list reads GET /api/flows.
func list(t *testing.T, url, token string) dashboard.FleetList {
	t.Helper()
	code, body := request(t, "GET", url+"api/flows", token)
	if code != 200 {
		t.Fatalf("GET /api/flows: %d %s", code, body)
	}
	var l dashboard.FleetList
	if err := json.Unmarshal([]byte(body), &l); err != nil {
		t.Fatalf("GET /api/flows: %v\n%s", err, body)
	}
	return l
}

func byName(l dashboard.FleetList) map[string]scaleout.FlowSummary {
	m := map[string]scaleout.FlowSummary{}
	for _, f := range l.Flows {
		m[f.Flow] = f
	}
	return m
}

// awaitList waits until the fleet list satisfies cond.
func awaitList(t *testing.T, url, token, what string, cond func(map[string]scaleout.FlowSummary) bool) map[string]scaleout.FlowSummary {
	t.Helper()
	var last map[string]scaleout.FlowSummary
	if !waitUntil(context.Background(), 3*time.Minute, func() bool {
		last = byName(list(t, url, token))
		return cond(last)
	}) {
		t.Fatalf("the fleet list never showed %s: %+v", what, last)
	}
	return last
}

func streaming(s scaleout.FlowSummary) bool {
	return s.Status == "Running" && s.Phase == scaleout.PhaseCDC && !s.Paused
}

// awaitStatus waits until ferry flow status --json satisfies cond.
func (f *fleet) awaitStatus(t *testing.T, flow, what string, cond func(*scaleout.Status) bool) {
	t.Helper()
	var st *scaleout.Status
	if !waitUntil(context.Background(), 2*time.Minute, func() bool {
		st = f.ts.flowStatus(t, flow)
		return st != nil && cond(st)
	}) {
		t.Fatalf("flow %s never showed %s: %+v", flow, what, st)
	}
}

func TestFleetDashboardAPI(t *testing.T) {
	f := startFleet(t)
	dash, url := f.startDashboard(t, fleetToken)

	// Both flows, with their phases, progress, health and workers.
	flows := awaitList(t, url, fleetToken, "both flows streaming", func(m map[string]scaleout.FlowSummary) bool {
		return streaming(m[f.a]) && streaming(m[f.b])
	})
	for _, name := range []string{f.a, f.b} {
		s := flows[name]
		if s.Percent == nil || *s.Percent != 100 || s.Health != "ok" || len(s.Workers) == 0 || s.RowsCopied == 0 {
			t.Errorf("flow %s in the list: %+v; want 100%% copied, healthy, on a worker", name, s)
		}
	}
	if l := list(t, url, fleetToken); !l.Control {
		t.Error("a dashboard with a token does not offer the actions")
	}
	awaitList(t, url, fleetToken, "fleet-a's CDC lag", func(m map[string]scaleout.FlowSummary) bool { return m[f.a].LagSeconds != nil })

	// ferry flow list reads the same summary.
	r := mustFerry(t, "flow", "list", "--temporal", f.ts.addr)
	t.Logf("ferry flow list:\n%s", r.stdout)
	for _, want := range []string{"PHASE", "PROGRESS", "LAG", "HEALTH", "WORKERS", f.a, f.b, "100.0%"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("ferry flow list lacks %q:\n%s", want, r.stdout)
		}
	}
	r = mustFerry(t, "flow", "list", "--temporal", f.ts.addr, "--json")
	var listed []scaleout.FlowSummary
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil || len(listed) != 2 || listed[0].Phase == "" || listed[0].Health == "" {
		t.Errorf("ferry flow list --json: %v\n%s", err, r.stdout)
	}

	// One flow's page, fed from its Temporal status.
	code, body := request(t, "GET", url+"flows/"+f.a+"/api/flow", fleetToken)
	var one dashboard.Flow
	if code != 200 || json.Unmarshal([]byte(body), &one) != nil || one.Flow != f.a || one.Coordinator != "temporal" || len(one.Tables) != 2 {
		t.Errorf("GET /flows/%s/api/flow: %d %s", f.a, code, body)
	}
	if code, _ := request(t, "GET", url+"flows/nosuchflow/api/flow", fleetToken); code != 404 {
		t.Errorf("a flow that does not exist: %d, want 404", code)
	}

	// Pause, then resume, with the token.
	if code, body := request(t, "POST", url+"api/flows/"+f.a+"/pause", fleetToken); code != 200 || !strings.Contains(body, "pause sent") {
		t.Fatalf("POST pause: %d %s", code, body)
	}
	f.awaitStatus(t, f.a, "paused", func(st *scaleout.Status) bool {
		return st.Running() && st.State.Paused && st.State.Phase == scaleout.PhasePaused
	})
	awaitList(t, url, fleetToken, "fleet-a paused", func(m map[string]scaleout.FlowSummary) bool { return m[f.a].Paused })
	if code, body := request(t, "POST", url+"api/flows/"+f.a+"/resume", fleetToken); code != 200 {
		t.Fatalf("POST resume: %d %s", code, body)
	}
	f.awaitStatus(t, f.a, "running again", func(st *scaleout.Status) bool {
		return st.Running() && !st.State.Paused && st.State.Phase == scaleout.PhaseCDC
	})

	// Refusals: an unknown action, a cutover the flow refuses is shown as
	// such, a request from another site's page.
	if code, _ := request(t, "POST", url+"api/flows/"+f.a+"/explode", fleetToken); code != 400 {
		t.Errorf("an unknown action: %d, want 400", code)
	}
	req, _ := http.NewRequest("POST", url+"api/flows/"+f.a+"/pause", nil)
	req.Header.Set("Authorization", "Bearer "+fleetToken)
	req.Header.Set("Origin", "http://evil.example")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 403 {
		t.Errorf("an action from another origin: %v %v, want 403", resp, err)
	} else {
		resp.Body.Close()
	}

	// Cancel ends the flow.
	if code, body := request(t, "POST", url+"api/flows/"+f.b+"/cancel", fleetToken); code != 200 {
		t.Fatalf("POST cancel: %d %s", code, body)
	}
	awaitList(t, url, fleetToken, "fleet-b cancelled", func(m map[string]scaleout.FlowSummary) bool {
		return m[f.b].Status != "Running" && m[f.b].Phase == scaleout.PhaseCancelled
	})
	if st := f.ts.flowStatus(t, f.b); st == nil || st.Running() {
		t.Errorf("fleet-b still runs after the cancel: %+v", st)
	}
	if code, body := request(t, "POST", url+"api/flows/"+f.b+"/pause", fleetToken); code != 409 {
		t.Errorf("pausing a cancelled flow: %d %s, want 409", code, body)
	}

	// Without the token: 401 here; a dashboard without one is read-only
	// and refuses the actions with 403.
	if code, _ := request(t, "POST", url+"api/flows/"+f.a+"/pause", ""); code != 401 {
		t.Errorf("an action without the token: %d, want 401", code)
	}
	ro, roURL := f.startDashboard(t, "")
	if l := list(t, roURL, ""); l.Control || len(l.Flows) != 2 {
		t.Errorf("the read-only dashboard's list: control %v, %d flows", l.Control, len(l.Flows))
	}
	if code, body := request(t, "POST", roURL+"api/flows/"+f.a+"/pause", ""); code != 403 || !strings.Contains(body, "read-only") {
		t.Errorf("an action on the read-only dashboard: %d %s, want 403", code, body)
	}
	if st := f.ts.flowStatus(t, f.a); st == nil || st.State.Paused {
		t.Errorf("the refused pause paused the flow: %+v", st)
	}

	// Cut over: the flow drains to the source's position at the request,
	// finishes and ends.
	if code, body := request(t, "POST", url+"api/flows/"+f.a+"/cutover", fleetToken); code != 200 || !strings.Contains(body, "draining to the source's position") {
		t.Fatalf("POST cutover: %d %s", code, body)
	}
	awaitList(t, url, fleetToken, "fleet-a cut over", func(m map[string]scaleout.FlowSummary) bool {
		return m[f.a].Status == "Completed" && m[f.a].Phase == scaleout.PhaseDone && m[f.a].Health == "ok"
	})
	if st := f.ts.flowStatus(t, f.a); st == nil || st.State.Cut == nil || !st.State.Cut.Done {
		t.Errorf("fleet-a's status after the cutover: %+v", st)
	}
	for _, bg := range []*background{ro, dash} {
		if code := bg.signal(t, syscall.SIGINT); code != 0 {
			t.Errorf("ferry dashboard exited %d:\n%s", code, bg.stderr.String())
		}
	}
	if strings.Contains(dash.stderr.String(), fleetToken) {
		t.Error("the log shows the token")
	}
}

// fleetRow is one flow's row as the fleet view renders it.
type fleetRow struct {
	Flow    string   `json:"flow"`
	Phase   string   `json:"phase"`
	Health  string   `json:"health"`
	Buttons []string `json:"buttons"`
}

type fleetPage struct {
	Rows    []fleetRow `json:"rows"`
	Notice  string     `json:"notice"`
	Confirm string     `json:"confirm"` // the confirmation's text while it is shown
	// ConfirmShown says the confirmation is on the page, text or not.
	ConfirmShown bool `json:"confirm_shown"`
	Actions      bool `json:"actions"` // the actions column is shown
}

const readFleet = `(() => {
  // Shown means laid out: the hidden attribute alone can lose to a style.
  const $ = (id) => {
    const e = document.getElementById(id);
    return e ? { hidden: e.getClientRects().length === 0, textContent: e.textContent } : { hidden: true, textContent: '' };
  };
  return {
  rows: [...document.querySelectorAll('#flows tr[data-flow]')].map((tr) => ({
    flow: tr.dataset.flow,
    phase: (tr.querySelector('.fphase') || {}).textContent || '',
    health: (tr.querySelector('.health .chip') || {}).textContent || '',
    buttons: [...tr.querySelectorAll('button')].map((b) => b.dataset.action),
  })),
  notice: $('notice').hidden ? '' : $('notice').textContent,
  confirm: $('confirm').hidden ? '' : $('confirm-text').textContent,
  confirm_shown: !$('confirm').hidden,
  actions: !$('actions-head').hidden,
}; })()`

func (p fleetPage) row(flow string) fleetRow {
	for _, r := range p.Rows {
		if r.Flow == flow {
			return r
		}
	}
	return fleetRow{}
}

// A real browser drives the fleet view: both flows listed, pause clicked
// on one (it shows paused, and Temporal says so), cancel clicked on the
// other and confirmed (it ends), the paused flow's own page opened; a
// dashboard without a token shows no buttons.
func TestFleetDashboardInABrowser(t *testing.T) {
	if !browserAvailable(t) {
		t.Skipf("%s is missing (Debian package chromium); scripts/test installs it and requires this test", chromiumPath)
	}
	out := artifacts(t)
	t.Logf("screenshots go to %s", out)
	f := startFleet(t)
	dash, url := f.startDashboard(t, fleetToken)
	awaitList(t, url, fleetToken, "both flows streaming", func(m map[string]scaleout.FlowSummary) bool {
		return streaming(m[f.a]) && streaming(m[f.b])
	})
	b := startBrowser(t)
	b.navigate(t, url+"?token="+fleetToken) // the cookie, then the address without the token
	ctx := context.Background()
	var page fleetPage
	await := func(what string, cond func(fleetPage) bool) {
		t.Helper()
		if !waitUntil(ctx, 2*time.Minute, func() bool {
			b.eval(t, readFleet, &page)
			return cond(page)
		}) {
			t.Fatalf("the fleet view never showed %s: %+v\n%s", what, page, dash.stderr.String())
		}
	}
	streamingRow := func(r fleetRow) bool {
		return r.Phase == "STREAMING" && r.Health == "ok" && strings.Join(r.Buttons, ",") == "pause,cutover,cancel"
	}
	await("both flows streaming, with their buttons", func(p fleetPage) bool {
		return len(p.Rows) == 2 && streamingRow(p.row(f.a)) && streamingRow(p.row(f.b)) && p.Actions
	})
	b.screenshot(t, filepath.Join(out, "fleet-streaming.png"))

	// Pause: no question asked; the row shows it paused, Temporal too.
	b.eval(t, `(() => { document.querySelector('tr[data-flow="fleet-a"] button[data-action="pause"]').click(); return true; })()`, new(bool))
	await("fleet-a paused", func(p fleetPage) bool {
		r := p.row(f.a)
		return r.Phase == "PAUSED" && len(r.Buttons) > 0 && r.Buttons[0] == "resume" && strings.Contains(p.Notice, "pause sent to flow fleet-a")
	})
	if page.ConfirmShown {
		t.Errorf("a pause shows a confirmation: %+v", page)
	}
	if st := f.ts.flowStatus(t, f.a); st == nil || !st.State.Paused {
		t.Errorf("the page shows fleet-a paused, its status does not: %+v", st)
	}
	b.screenshot(t, filepath.Join(out, "fleet-paused.png"))

	// Cancel asks first; No leaves the flow alone, Yes cancels it.
	cancel := `(() => { document.querySelector('tr[data-flow="fleet-b"] button[data-action="cancel"]').click(); return true; })()`
	b.eval(t, cancel, new(bool))
	await("the cancel's confirmation", func(p fleetPage) bool { return strings.Contains(p.Confirm, "Cancel flow fleet-b?") })
	b.eval(t, `(() => { document.getElementById('confirm-no').click(); return true; })()`, new(bool))
	time.Sleep(2500 * time.Millisecond)
	b.eval(t, readFleet, &page)
	if page.ConfirmShown || !streamingRow(page.row(f.b)) {
		t.Fatalf("after No, the flow is not left streaming: %+v", page)
	}
	b.eval(t, cancel, new(bool))
	await("the cancel's confirmation", func(p fleetPage) bool { return p.Confirm != "" })
	b.screenshot(t, filepath.Join(out, "fleet-confirm-cancel.png"))
	b.eval(t, `(() => { document.getElementById('confirm-yes').click(); return true; })()`, new(bool))
	await("fleet-b cancelled", func(p fleetPage) bool {
		r := p.row(f.b)
		return r.Phase == "CANCELLED" && len(r.Buttons) == 0
	})
	if st := f.ts.flowStatus(t, f.b); st == nil || st.Running() {
		t.Errorf("the page shows fleet-b cancelled, but it runs: %+v", st)
	}
	b.screenshot(t, filepath.Join(out, "fleet-cancelled.png"))

	// Drill into the paused flow: the one-flow page, from its Temporal status.
	b.navigate(t, url+"flows/fleet-a/")
	var one pageState
	if !waitUntil(ctx, time.Minute, func() bool {
		b.eval(t, readPage, &one)
		return one.Phase == "PAUSED" && one.Tables == 2 && number(one.Rows) == 6000
	}) {
		t.Fatalf("fleet-a's own page: %+v", one)
	}
	var back bool
	b.eval(t, `!document.getElementById('back').hidden`, &back)
	if !back {
		t.Error("fleet-a's own page has no way back to the list")
	}
	time.Sleep(time.Second) // the bars' transition
	b.screenshot(t, filepath.Join(out, "fleet-flow.png"))

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

	// Read-only: the same list, no buttons.
	ro, roURL := f.startDashboard(t, "")
	b.navigate(t, roURL)
	await("the read-only list", func(p fleetPage) bool { return len(p.Rows) == 2 && p.row(f.a).Phase == "PAUSED" })
	for _, r := range page.Rows {
		if len(r.Buttons) > 0 || page.Actions {
			t.Errorf("the read-only dashboard shows actions: %+v", page)
		}
	}
	b.screenshot(t, filepath.Join(out, "fleet-readonly.png"))
	for _, bg := range []*background{ro, dash} {
		if code := bg.signal(t, syscall.SIGINT); code != 0 {
			t.Errorf("ferry dashboard exited %d:\n%s", code, bg.stderr.String())
		}
	}
}
