package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	_ "github.com/ferrydb/ferry/connectors/fake"
	_ "github.com/ferrydb/ferry/connectors/null"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/internal/dashboard"
	"github.com/ferrydb/ferry/internal/telemetry"
	"github.com/ferrydb/ferry/state"
)

const (
	secret = "s3cr3t-pw-771"
	token  = "tok-abc-123456"
	srcURL = "fake://?tables=2&rows=5000"
	dstURL = "null://ferry:" + secret + "@somewhere/db"
)

// runFlow runs a real fake→null flow in this process, with the dashboard
// attached the way ferry sync attaches it, and returns the server (not
// listening: tests call its handler).
func runFlow(t *testing.T, opts dashboard.Options, tel ...*telemetry.Telemetry) (*dashboard.Server, *engine.Engine) {
	t.Helper()
	cfg := flow.Config{Source: srcURL, Destination: dstURL, StateDir: t.TempDir(), PartitionRows: 1000, Parallel: 2, Until: "caught-up"}
	s, eng := openFlow(t, cfg, opts, tel...)
	ctx := context.Background()
	if err := eng.Run(ctx, ctx); err != nil {
		t.Fatal(err)
	}
	return s, eng
}

// openFlow prepares a flow with the dashboard attached, ready to Run.
func openFlow(t *testing.T, cfg flow.Config, opts dashboard.Options, tel ...*telemetry.Telemetry) (*dashboard.Server, *engine.Engine) {
	t.Helper()
	ctx := context.Background()
	src, err := connector.Open(ctx, cfg.Source)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	dst, err := connector.Open(ctx, cfg.Destination)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	store, err := state.Open(ctx, cfg.StateDir, cfg.FlowName())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	eng, err := engine.New(cfg, src, dst, store, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	opts.Info = dashboard.Info{Flow: eng.Name(), Source: cfg.Source, Destination: cfg.Destination, Coordinator: "local", Version: "test"}
	opts.Interval = 20 * time.Millisecond
	s := dashboard.New(opts)
	t.Cleanup(func() { s.Close(context.Background()) })
	s.Attach(eng.Progress().Snapshot)
	for _, tel := range tel {
		f, err := tel.Flow(ctx, telemetry.FlowInfo{Name: eng.Name(), Mode: string(eng.Mode()), Coordinator: "local"}, eng.Progress().Snapshot)
		if err != nil {
			t.Fatal(err)
		}
		eng.SetObserver(f)
		t.Cleanup(func() { f.End(nil) })
	}
	if err := eng.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	s.SetReady()
	return s, eng
}

func TestAPIFlowShowsTheCutoverAndItsSteps(t *testing.T) {
	// 3000 changes at 1000/s: the drain to the head (3000) lasts seconds
	// after a request made as CDC starts.
	cfg := flow.Config{Source: "fake://?tables=1&rows=500&changes=3000&changes_per_sec=1000", Destination: "null://",
		StateDir: t.TempDir(), Parallel: 2}
	s, eng := openFlow(t, cfg, dashboard.Options{})
	ctx := context.Background()
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx, ctx) }()
	get := func() dashboard.Flow {
		var f dashboard.Flow
		if err := json.Unmarshal([]byte(do(t, s.Handler(), "/api/flow", nil).body), &f); err != nil {
			t.Fatal(err)
		}
		return f
	}
	deadline := time.Now().Add(time.Minute)
	for f := get(); f.Phase != engine.PhaseCDC; f = get() {
		if time.Now().After(deadline) {
			t.Fatalf("never streamed: phase %s", f.Phase)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := eng.RequestCutover(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	f := get()
	for f.Phase == engine.PhaseCDC && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		f = get()
	}
	if f.Phase != engine.PhaseCutover || f.Cutover == nil || f.Cutover.Step != engine.StepDrain {
		t.Fatalf("while draining: phase %s, cutover %+v; want phase cutover, step drain", f.Phase, f.Cutover)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	f = get()
	if f.Phase != engine.PhaseDone || f.Cutover == nil || !f.Cutover.Done || f.Cutover.Position != "3000" ||
		len(f.Cutover.Steps) != 1 || f.Cutover.Steps[0].Name != engine.StepDrain {
		t.Fatalf("after the cutover: phase %s, cutover %+v", f.Phase, f.Cutover)
	}
}

type response struct {
	code   int
	header http.Header
	body   string
}

func do(t *testing.T, h http.Handler, path string, edit func(*http.Request)) response {
	t.Helper()
	req := httptest.NewRequest("GET", "http://127.0.0.1:8080"+path, nil)
	if edit != nil {
		edit(req)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header(), rec.Body.String()}
}

func TestAPIFlowDescribesTheFlowWithoutSecrets(t *testing.T) {
	s, eng := runFlow(t, dashboard.Options{})
	r := do(t, s.Handler(), "/api/flow", nil)
	if r.code != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("/api/flow: %d %s %s", r.code, r.header.Get("Content-Type"), r.body)
	}
	var f dashboard.Flow
	if err := json.Unmarshal([]byte(r.body), &f); err != nil {
		t.Fatal(err)
	}
	if f.Flow != eng.Name() || f.Source != srcURL || f.Destination != "null://ferry:xxxxx@somewhere/db" {
		t.Errorf("flow %q from %q to %q", f.Flow, f.Source, f.Destination)
	}
	if f.RowsCopied != 10000 || len(f.Tables) != 2 || f.Percent == nil || *f.Percent != 100 {
		t.Errorf("after the copy: %d rows, %d tables, percent %v", f.RowsCopied, len(f.Tables), f.Percent)
	}
	if f.Partitions != 10 || f.PartitionsDone != 10 || !f.Ready || !f.Running {
		t.Errorf("partitions %d done %d, ready %v running %v", f.Partitions, f.PartitionsDone, f.Ready, f.Running)
	}
	// What the connectors can do, as the engine discovered it: a CDC
	// source, a destination that applies changes and counts them.
	if a := f.Abilities; a == nil || !a.Source.Source || !a.Source.CDC || a.Source.Destination ||
		!a.Destination.Destination || !a.Destination.Apply || !a.Destination.Counts || a.Destination.Source {
		t.Errorf("abilities %+v", f.Abilities)
	}
	var named struct {
		Abilities map[string]map[string]bool `json:"abilities"`
	}
	if err := json.Unmarshal([]byte(r.body), &named); err != nil || !named.Abilities["source"]["cdc"] || !named.Abilities["destination"]["apply"] {
		t.Errorf("/api/flow does not name the abilities (%v): %s", err, r.body)
	}
	if strings.Contains(r.body, secret) {
		t.Errorf("/api/flow shows the password: %s", r.body)
	}

	// The end: the phase and the error stay, scrubbed.
	s.Finish(errors.New("writing to null://ferry:"+secret+"@somewhere/db: gone"), false)
	r = do(t, s.Handler(), "/api/flow", nil)
	json.Unmarshal([]byte(r.body), &f) //nolint:errcheck
	if f.Phase != engine.PhaseFailed || f.Running || f.Ready || f.Ended == nil || !strings.Contains(f.Error, "ferry:xxxxx@") {
		t.Errorf("after a failure: phase %s running %v ready %v error %q", f.Phase, f.Running, f.Ready, f.Error)
	}
	e := do(t, s.Handler(), "/api/errors", nil)
	var p dashboard.Problems
	if err := json.Unmarshal([]byte(e.body), &p); err != nil {
		t.Fatal(err)
	}
	if p.Total != 1 || len(p.Errors) != 1 || p.Errors[0].Kind != "error" {
		t.Errorf("/api/errors: %s", e.body)
	}
	for _, body := range []string{r.body, e.body} {
		if strings.Contains(body, secret) {
			t.Errorf("the password shows: %s", body)
		}
	}
}

func TestHistoryKeepsSamplesAndFiltersBySince(t *testing.T) {
	s, _ := runFlow(t, dashboard.Options{HistorySize: 5})
	var h dashboard.History
	// The flow has ended; the sampler goes on until the ring is full and
	// its newest point is a sample taken after the end (on a loaded
	// machine the ring can fill while the copy still runs).
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := do(t, s.Handler(), "/api/history", nil)
		if err := json.Unmarshal([]byte(r.body), &h); err != nil {
			t.Fatal(err)
		}
		if len(h.Points) == 5 && h.Points[4].RowsCopied == 10000 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(h.Points) != 5 || h.Capacity != 5 {
		t.Fatalf("history: %d points of %d, want the capacity 5 kept", len(h.Points), h.Capacity)
	}
	last := h.Points[len(h.Points)-1]
	if last.RowsCopied != 10000 {
		t.Errorf("the last point has %d rows copied", last.RowsCopied)
	}
	for i := 1; i < len(h.Points); i++ {
		if h.Points[i].T <= h.Points[i-1].T {
			t.Errorf("points out of order: %d then %d", h.Points[i-1].T, h.Points[i].T)
		}
	}
	r := do(t, s.Handler(), "/api/history?since="+itoa(h.Points[2].T), nil)
	var newer dashboard.History
	json.Unmarshal([]byte(r.body), &newer) //nolint:errcheck
	for _, p := range newer.Points {
		if p.T <= h.Points[2].T {
			t.Errorf("since=%d returned a point at %d", h.Points[2].T, p.T)
		}
	}
	if r := do(t, s.Handler(), "/api/history?since=yesterday", nil); r.code != 400 {
		t.Errorf("since=yesterday: %d, want 400", r.code)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestTokenIsCheckedOnEveryRequest(t *testing.T) {
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Prometheus: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Shutdown(context.Background()) })
	s, _ := runFlow(t, dashboard.Options{Token: token, Metrics: tel.Handler()}, tel)
	h := s.Handler()
	bearer := func(v string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+v) }
	}
	for _, path := range []string{"/", "/assets/app.js", "/api/flow", "/api/history", "/api/errors", "/api/events", "/metrics"} {
		if r := do(t, h, path, nil); r.code != 401 || r.header.Get("WWW-Authenticate") == "" || !strings.Contains(r.body, "token is required") {
			t.Errorf("GET %s without the token: %d %q", path, r.code, r.body)
		}
		if r := do(t, h, path, bearer("wrong-token")); r.code != 401 {
			t.Errorf("GET %s with a wrong token: %d", path, r.code)
		}
		if r := do(t, h, path, func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "ferry_token", Value: token[:len(token)-1]}) }); r.code != 401 {
			t.Errorf("GET %s with a cookie holding a prefix of the token: %d", path, r.code)
		}
		if path == "/api/events" {
			continue // a stream: below
		}
		if r := do(t, h, path, bearer(token)); r.code != 200 {
			t.Errorf("GET %s with the bearer token: %d %q", path, r.code, r.body)
		}
		if r := do(t, h, path, func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "ferry_token", Value: token}) }); r.code != 200 {
			t.Errorf("GET %s with the cookie: %d", path, r.code)
		}
	}
	// Health checks answer orchestrators without the token.
	for _, path := range []string{"/healthz", "/readyz"} {
		if r := do(t, h, path, nil); r.code != 200 {
			t.Errorf("GET %s: %d %q", path, r.code, r.body)
		}
	}
	// ?token= on the page sets the cookie and drops the token from the address.
	r := do(t, h, "/?token="+token, nil)
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/" || !strings.Contains(r.header.Get("Set-Cookie"), "ferry_token="+token) ||
		!strings.Contains(r.header.Get("Set-Cookie"), "HttpOnly") {
		t.Errorf("/?token=: %d Location %q Set-Cookie %q", r.code, r.header.Get("Location"), r.header.Get("Set-Cookie"))
	}
	if r := do(t, h, "/api/flow?token="+token, nil); r.code != 200 {
		t.Errorf("/api/flow?token=: %d", r.code)
	}
	m := do(t, h, "/metrics", bearer(token))
	if !strings.Contains(m.body, "ferry_rows_written_total") {
		t.Errorf("/metrics lacks ferry's metrics:\n%.2000s", m.body)
	}
	if strings.Contains(m.body, secret) || strings.Contains(m.body, token) {
		t.Error("/metrics shows a secret")
	}
}

func TestWithoutATokenOnlyLoopbackHostsAreAnswered(t *testing.T) {
	s, _ := runFlow(t, dashboard.Options{})
	for host, want := range map[string]int{
		"127.0.0.1:8080": 200, "localhost:8080": 200, "LOCALHOST": 200, "[::1]:8080": 200,
		"evil.example:8080": 403, "10.0.0.5:8080": 403, "127.0.0.1.nip.io": 403,
	} {
		r := do(t, s.Handler(), "/api/flow", func(r *http.Request) { r.Host = host })
		if r.code != want {
			t.Errorf("Host %s: %d, want %d", host, r.code, want)
		}
	}
}

func TestCheckBind(t *testing.T) {
	for _, c := range []struct {
		addr, token, err string
	}{
		{"127.0.0.1:8080", "", ""},
		{"localhost:0", "", ""},
		{"[::1]:8080", "", ""},
		{"0.0.0.0:8080", "", "without a token"},
		{":8080", "", "every interface"},
		{"10.1.2.3:8080", "", "without a token"},
		{"0.0.0.0:8080", "t", ""},
		{"8080", "", "want HOST:PORT"},
		{"127.0.0.1:http", "", "bad port"},
		{"127.0.0.1:70000", "", "bad port"},
	} {
		err := dashboard.CheckBind(c.addr, c.token)
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("CheckBind(%q, %q) = %v, want %q", c.addr, c.token, err, c.err)
		}
	}
}

func TestReadyzFollowsTheFlow(t *testing.T) {
	s := dashboard.New(dashboard.Options{Info: dashboard.Info{Flow: "f", Source: srcURL, Destination: dstURL}})
	t.Cleanup(func() { s.Close(context.Background()) })
	h := s.Handler()
	if r := do(t, h, "/readyz", nil); r.code != 503 || !strings.Contains(r.body, "not ready") {
		t.Errorf("before the plan: %d %q", r.code, r.body)
	}
	if r := do(t, h, "/healthz", nil); r.code != 200 {
		t.Errorf("/healthz: %d", r.code)
	}
	s.SetReady()
	if r := do(t, h, "/readyz", nil); r.code != 200 {
		t.Errorf("ready: %d %q", r.code, r.body)
	}
	s.Finish(nil, true)
	if r := do(t, h, "/readyz", nil); r.code != 503 || !strings.Contains(r.body, "stopped") {
		t.Errorf("after a stop: %d %q", r.code, r.body)
	}
	if r := do(t, h, "/metrics", nil); r.code != 404 {
		t.Errorf("/metrics without telemetry: %d", r.code)
	}
}

// The event stream sends the flow at once and a point and the flow every
// interval, over a real connection.
func TestEventsStreamLive(t *testing.T) {
	s, _ := runFlow(t, dashboard.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Serve(ln)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ln.Addr().String()+"/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	events := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var last string
	for sc.Scan() && (events["flow"] < 3 || events["point"] < 2) {
		line := sc.Text()
		if ev, ok := strings.CutPrefix(line, "event: "); ok {
			last = ev
			events[ev]++
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok && last == "flow" {
			var f dashboard.Flow
			if err := json.Unmarshal([]byte(data), &f); err != nil || f.RowsCopied != 10000 {
				t.Fatalf("a flow event: %v %.300s", err, data)
			}
		}
	}
	if events["flow"] < 3 || events["point"] < 2 {
		t.Fatalf("events: %v (%v)", events, sc.Err())
	}
	// Close ends the stream.
	cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ccancel()
	if err := s.Close(cctx); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil && !errors.Is(err, context.Canceled) {
		t.Logf("after close: %v", err)
	}
}

// Warnings logged through the dashboard's handler show in /api/errors,
// scrubbed; info lines do not.
func TestWarningsReachTheErrorsList(t *testing.T) {
	s := dashboard.New(dashboard.Options{Info: dashboard.Info{Flow: "f", Source: srcURL, Destination: dstURL}})
	t.Cleanup(func() { s.Close(context.Background()) })
	log := slog.New(s.LogHandler(slog.NewTextHandler(io.Discard, nil)))
	log.Info("all is well")
	log.Warn("retrying the destination", "url", dstURL, "table", "public.t", "partition", "p3")
	var p dashboard.Problems
	json.Unmarshal([]byte(do(t, s.Handler(), "/api/errors", nil).body), &p) //nolint:errcheck
	if p.Total != 1 || len(p.Errors) != 1 {
		t.Fatalf("problems: %+v", p)
	}
	got := p.Errors[0]
	if got.Kind != "warning" || got.Table != "public.t" || got.Partition != "p3" || !strings.Contains(got.Message, "retrying the destination") {
		t.Errorf("warning: %+v", got)
	}
	if strings.Contains(got.Message, secret) {
		t.Errorf("the warning shows the password: %q", got.Message)
	}
}
