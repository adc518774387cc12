package dashboard

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/scaleout"
)

// Fleet is what the fleet dashboard reads and controls: the flows of a
// Temporal namespace. ferry dashboard implements it with a Temporal client.
type Fleet interface {
	// Flows lists every flow with its summary, newest first.
	Flows(ctx context.Context) ([]scaleout.FlowSummary, error)
	// Status is one flow's whole status (ferry flow status).
	Status(ctx context.Context, name string) (*scaleout.Status, error)
	// Control pauses, resumes, cuts over or cancels a flow, as ferry flow
	// does, and says what it did.
	Control(ctx context.Context, name, action string) (string, error)
}

// Actions the fleet view's buttons ask for.
var fleetActions = map[string]bool{"pause": true, "resume": true, "cutover": true, "cancel": true}

// FleetOptions configures a FleetServer.
type FleetOptions struct {
	Fleet Fleet
	// Token, when set, must accompany every request but the health checks,
	// and allows the actions; without one the dashboard is read-only.
	Token     string
	Version   string
	Namespace string
	// Refresh is how long one listing of the flows is served before the
	// next (2s when zero), however many pages ask.
	Refresh time.Duration
	// Idle is how long a flow's own page may go unread before ferry stops
	// reading its status (1 minute when zero).
	Idle time.Duration
	Log  *slog.Logger
}

// FleetServer is the dashboard of every flow on Temporal: a list of the
// flows refreshed live, each flow's own page (the one-flow dashboard, fed
// from its Temporal status while it is open) and, with the token, the
// actions of ferry flow.
type FleetServer struct {
	opts FleetOptions
	mux  *http.ServeMux

	listMu sync.Mutex
	list   []scaleout.FlowSummary
	listAt time.Time
	listEr string

	mu     sync.Mutex
	views  map[string]*flowView
	http   *http.Server
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

// FleetList is GET /api/flows.
type FleetList struct {
	Flows []scaleout.FlowSummary `json:"flows"`
	// Control says the actions are allowed (the dashboard has a token).
	Control   bool   `json:"control"`
	Namespace string `json:"namespace"`
	Version   string `json:"version"`
	// Error is why the list could not be read ("" when it was); Flows is
	// then the last list read.
	Error string    `json:"error"`
	Now   time.Time `json:"now"`
}

// NewFleet builds the fleet dashboard; nothing listens until Serve.
func NewFleet(opts FleetOptions) *FleetServer {
	if opts.Refresh <= 0 {
		opts.Refresh = 2 * time.Second
	}
	if opts.Idle <= 0 {
		opts.Idle = time.Minute
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &FleetServer{opts: opts, views: map[string]*flowView{}, stop: make(chan struct{}), done: make(chan struct{})}
	s.routes()
	go s.sweep()
	return s
}

// Handler is the fleet dashboard's HTTP handler.
func (s *FleetServer) Handler() http.Handler { return s.mux }

// Serve serves the dashboard on ln until Close.
func (s *FleetServer) Serve(ln net.Listener) {
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.http = srv
	s.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.Log.Warn("dashboard stopped serving", "error", err)
		}
	}()
}

// Close stops every flow's page and serving, waiting for requests in
// flight until ctx is done.
func (s *FleetServer) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	views := s.views
	s.views = map[string]*flowView{}
	srv := s.http
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	for _, v := range views {
		v.close(ctx)
	}
	if srv == nil {
		return nil
	}
	return srv.Shutdown(ctx)
}

func (s *FleetServer) routes() {
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // unreachable: the directory is embedded
	}
	files := http.FileServerFS(static)
	auth := func(next http.Handler) http.Handler { return tokenAuth(s.opts.Token, next) }
	m := http.NewServeMux()
	m.HandleFunc("GET /healthz", (*Server)(nil).healthz)
	m.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintln(w, "ready: fleet")
	})
	m.Handle("GET /{$}", auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pageHeaders(w)
		http.ServeFileFS(w, r, static, "fleet.html")
	})))
	m.Handle("GET /assets/", auth(http.StripPrefix("/assets/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pageHeaders(w)
		files.ServeHTTP(w, r)
	}))))
	m.Handle("GET /api/flows", auth(http.HandlerFunc(s.apiFlows)))
	m.Handle("POST /api/flows/{name}/{action}", auth(http.HandlerFunc(s.apiControl)))
	m.Handle("GET /flows/{name}", auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, url.PathEscape(r.PathValue("name"))+"/", http.StatusSeeOther)
	})))
	m.Handle("GET /flows/{name}/", auth(http.HandlerFunc(s.flowPage)))
	s.mux = m
}

// flows is the list of flows, read from the Fleet at most once a Refresh.
func (s *FleetServer) flows(ctx context.Context) FleetList {
	s.listMu.Lock()
	defer s.listMu.Unlock()
	if time.Since(s.listAt) >= s.opts.Refresh {
		// One page's request reads the list for all: its leaving must not
		// cut the read short.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		list, err := s.opts.Fleet.Flows(lctx)
		cancel()
		s.listAt = time.Now()
		if err != nil {
			s.listEr = err.Error()
		} else {
			s.list, s.listEr = list, ""
		}
	}
	list := s.list
	if list == nil {
		list = []scaleout.FlowSummary{}
	}
	return FleetList{Flows: list, Control: s.opts.Token != "", Namespace: s.opts.Namespace, Version: s.opts.Version, Error: s.listEr, Now: time.Now()}
}

func (s *FleetServer) apiFlows(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.flows(r.Context()))
}

// ControlResult is what POST /api/flows/NAME/ACTION answers.
type ControlResult struct {
	Flow    string `json:"flow"`
	Action  string `json:"action"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

// apiControl runs an action on a flow. Only a dashboard with a token
// allows it (the request has passed auth, so it carries the token); a
// request from a page of another origin is refused.
func (s *FleetServer) apiControl(w http.ResponseWriter, r *http.Request) {
	name, action := r.PathValue("name"), r.PathValue("action")
	res := ControlResult{Flow: name, Action: action}
	answer := func(code int) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		writeJSON(w, res)
	}
	if s.opts.Token == "" {
		res.Error = "this dashboard is read-only: it has no token (start ferry dashboard with --ui-token or " + TokenEnv + " to control flows)"
		answer(http.StatusForbidden)
		return
	}
	if o := r.Header.Get("Origin"); o != "" {
		if u, err := url.Parse(o); err != nil || u.Host != r.Host {
			res.Error = "a request from another site's page is refused"
			answer(http.StatusForbidden)
			return
		}
	}
	if !fleetActions[action] {
		res.Error = fmt.Sprintf("unknown action %q: use pause, resume, cutover or cancel", action)
		answer(http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	msg, err := s.opts.Fleet.Control(ctx, name, action)
	s.listMu.Lock()
	s.listAt = time.Time{} // the next list shows what the action changed
	s.listMu.Unlock()
	if err != nil {
		res.Error = err.Error()
		var ce *errs.ConfigError
		switch {
		case errors.Is(err, scaleout.ErrNoFlow):
			answer(http.StatusNotFound)
		case errors.As(err, &ce):
			answer(http.StatusConflict) // refused: not running, copy unfinished, ...
		default:
			answer(http.StatusBadGateway)
		}
		s.opts.Log.Warn("dashboard action failed", "flow", name, "action", action, "error", err)
		return
	}
	res.Message = msg
	s.opts.Log.Info("dashboard action", "flow", name, "action", action, "result", msg)
	answer(http.StatusOK)
}

// flowPage serves /flows/NAME/...: the one-flow dashboard of NAME, made
// on first use.
func (s *FleetServer) flowPage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	v, err := s.view(r.Context(), name)
	if err != nil {
		code := http.StatusBadGateway
		if errors.Is(err, scaleout.ErrNoFlow) {
			code = http.StatusNotFound
		}
		http.Error(w, "ferry: "+err.Error(), code)
		return
	}
	// What follows /flows/NAME is the one-flow dashboard's own path.
	rest := r.URL.Path
	if i := strings.Index(strings.TrimPrefix(rest, "/flows/"), "/"); i >= 0 {
		rest = strings.TrimPrefix(rest, "/flows/")[i:]
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.URL.RawPath = rest, ""
	v.serve(w, r2)
}

// view returns the page of a flow, starting to follow its status.
func (s *FleetServer) view(ctx context.Context, name string) (*flowView, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("the dashboard is closing")
	}
	v := s.views[name]
	s.mu.Unlock()
	if v != nil {
		return v, nil
	}
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	st, err := s.opts.Fleet.Status(sctx, name)
	cancel()
	if err != nil {
		return nil, err
	}
	v = newFlowView(s.opts, st)
	s.mu.Lock()
	defer s.mu.Unlock()
	if other := s.views[name]; other != nil || s.closed {
		go v.close(context.Background())
		if other == nil {
			return nil, errors.New("the dashboard is closing")
		}
		return other, nil
	}
	s.views[name] = v
	return v, nil
}

// sweep stops following the flows whose page nobody reads.
func (s *FleetServer) sweep() {
	defer close(s.done)
	t := time.NewTicker(min(s.opts.Idle/2, 10*time.Second))
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		var idle []*flowView
		s.mu.Lock()
		for name, v := range s.views {
			if v.idleFor() > s.opts.Idle {
				idle = append(idle, v)
				delete(s.views, name)
			}
		}
		s.mu.Unlock()
		for _, v := range idle {
			v.close(context.Background())
		}
	}
}

// flowView is one flow's page: the one-flow dashboard, attached to the
// flow's status read from Temporal once a second while the page is open.
type flowView struct {
	name  string
	fleet Fleet
	srv   *Server

	mu     sync.Mutex
	last   *scaleout.Status
	open   int // requests in flight (an event stream stays in flight)
	used   time.Time
	cancel context.CancelFunc
	done   chan struct{}
}

func newFlowView(opts FleetOptions, st *scaleout.Status) *flowView {
	srv := New(Options{Info: Info{Flow: st.Flow, Source: st.Options.Source, Destination: st.Options.Destination, Coordinator: "temporal", Version: opts.Version},
		Token: opts.Token, mounted: true, Log: opts.Log})
	ctx, cancel := context.WithCancel(context.Background())
	v := &flowView{name: st.Flow, fleet: opts.Fleet, srv: srv, last: st, used: time.Now(), cancel: cancel, done: make(chan struct{})}
	srv.Attach(v.snapshot)
	srv.SetReady()
	go v.follow(ctx)
	return v
}

func (v *flowView) snapshot() engine.Snapshot {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.last.Snapshot()
}

// follow reads the flow's status every second until the flow ends (its
// page then shows the final state) or the view closes.
func (v *flowView) follow(ctx context.Context) {
	defer close(v.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		v.mu.Lock()
		st := v.last
		v.mu.Unlock()
		if !st.Running() {
			v.finish(st)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		next, err := v.fleet.Status(pctx, v.name)
		cancel()
		if err != nil {
			continue // Temporal or the workers did not answer: keep the last status
		}
		v.mu.Lock()
		v.last = next
		v.mu.Unlock()
	}
}

// finish shows how the flow ended.
func (v *flowView) finish(st *scaleout.Status) {
	var err error
	switch {
	case st.State.Phase == scaleout.PhaseCancelled:
		v.srv.Finish(nil, true)
		return
	case st.Failure != "":
		err = errors.New(st.Failure)
	case st.Status != "Completed":
		err = fmt.Errorf("flow %s: workflow %s", st.Flow, strings.ToLower(st.Status))
	}
	v.srv.Finish(err, false)
}

func (v *flowView) serve(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	v.open++
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		v.open--
		v.used = time.Now()
		v.mu.Unlock()
	}()
	v.srv.Handler().ServeHTTP(w, r)
}

func (v *flowView) idleFor() time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.open > 0 {
		return 0
	}
	return time.Since(v.used)
}

func (v *flowView) close(ctx context.Context) {
	v.cancel()
	<-v.done
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	v.srv.Close(cctx) //nolint:errcheck // it never served: nothing to wait for
}
