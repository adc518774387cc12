// Package dashboard serves a running flow's live web dashboard: one page
// (embedded in the binary, nothing fetched from elsewhere), the JSON API the
// page is drawn from (/api/flow, /api/history, /api/errors and the
// server-sent events of /api/events), the Prometheus /metrics of the
// telemetry package, and health endpoints for orchestrators.
//
// It reads the engine's snapshots once a second into a bounded history; it
// never touches the flow. Connection URLs are redacted when the server is
// built, and every message it shows is scrubbed of their secrets.
package dashboard

import (
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
)

//go:embed assets
var assets embed.FS

// TokenEnv is the environment variable that holds the dashboard's token
// when --ui-token is not given.
const TokenEnv = "FERRY_UI_TOKEN"

const cookieName = "ferry_token"

// Info describes the flow the dashboard shows. Source and Destination are
// the URLs as given: the server redacts them itself.
type Info struct {
	Flow        string
	Source      string
	Destination string
	StatePath   string
	// Coordinator is "local" for ferry sync ("temporal" once scale-out
	// mode serves the same page).
	Coordinator string
	Version     string
}

// Options configures a Server.
type Options struct {
	Info Info
	// Token, when set, must accompany every request but the health checks.
	Token string
	// Metrics serves /metrics; nil answers 404.
	Metrics http.Handler
	// Interval between samples and events; one second when zero.
	Interval time.Duration
	// HistorySize is how many samples /api/history keeps; 3600 (an hour
	// at one a second) when zero.
	HistorySize int
	// Log receives the server's own failures; nil discards them.
	Log *slog.Logger
	// mounted says the server answers inside the fleet dashboard, which
	// checked the token already.
	mounted bool
}

// Server is the dashboard of one flow.
type Server struct {
	opts     Options
	info     Info // redacted
	scrub    func(string) string
	history  *ring
	problems *problemLog
	mux      *http.ServeMux
	http     *http.Server

	mu       sync.Mutex
	snap     func() engine.Snapshot
	ready    bool
	ended    time.Time
	final    *engine.Snapshot
	runErr   string
	stopped  bool
	subs     map[chan []byte]struct{}
	closed   bool
	stopLoop chan struct{}
	loopDone chan struct{}
}

// New builds the server; nothing listens until Serve.
func New(opts Options) *Server {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.HistorySize <= 0 {
		opts.HistorySize = 3600
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	scrubber := errs.NewScrubber(opts.Info.Source, opts.Info.Destination)
	scrubber.AddSecret(opts.Token)
	scrub := scrubber.Scrub
	info := opts.Info
	info.Source = errs.Redact(info.Source)
	info.Destination = errs.Redact(info.Destination)
	s := &Server{opts: opts, info: info, scrub: scrub, history: newRing(opts.HistorySize),
		problems: &problemLog{scrub: scrub}, subs: map[chan []byte]struct{}{},
		stopLoop: make(chan struct{}), loopDone: make(chan struct{})}
	s.routes()
	go s.loop()
	return s
}

// SetStatePath records where the flow's state is kept, once known.
func (s *Server) SetStatePath(p string) {
	s.mu.Lock()
	s.info.StatePath = p
	s.mu.Unlock()
}

// Attach starts showing a flow's progress (the engine's
// Progress().Snapshot).
func (s *Server) Attach(snap func() engine.Snapshot) {
	s.mu.Lock()
	s.snap = snap
	s.mu.Unlock()
}

// SetReady marks the flow prepared (planned, destination tables created):
// /readyz answers 200 from now until the flow ends.
func (s *Server) SetReady() {
	s.mu.Lock()
	s.ready = true
	s.mu.Unlock()
}

// Finish records the end of the flow: err is what ended it (nil: done, or
// stopped when stopped is true). The last snapshot is kept and pushed to
// every open event stream; the page then shows the final state.
func (s *Server) Finish(err error, stopped bool) {
	s.mu.Lock()
	if !s.ended.IsZero() {
		s.mu.Unlock()
		return
	}
	s.ended = time.Now()
	if s.snap != nil {
		snap := s.snap()
		s.final = &snap
	}
	s.stopped = stopped && err == nil
	if err != nil {
		s.runErr = s.scrub(err.Error())
	}
	s.mu.Unlock()
	if err != nil {
		s.problems.add(Problem{Time: time.Now(), Kind: "error", Message: err.Error()})
	}
	s.tick(time.Now())
}

// Serve serves the dashboard on ln until Close.
func (s *Server) Serve(ln net.Listener) {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.http = srv
	s.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.Log.Warn("dashboard stopped serving", "error", err)
		}
	}()
}

// Close ends the event streams and stops serving, waiting for requests in
// flight until ctx is done.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for ch := range s.subs {
		close(ch)
		delete(s.subs, ch)
	}
	srv := s.http
	s.mu.Unlock()
	close(s.stopLoop)
	<-s.loopDone
	if srv == nil {
		return nil
	}
	return srv.Shutdown(ctx)
}

// Handler is the dashboard's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

func (s *Server) routes() {
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // unreachable: the directory is embedded
	}
	files := http.FileServerFS(static)
	m := http.NewServeMux()
	m.HandleFunc("GET /healthz", s.healthz)
	m.HandleFunc("GET /readyz", s.readyz)
	m.Handle("GET /api/flow", s.auth(http.HandlerFunc(s.apiFlow)))
	m.Handle("GET /api/history", s.auth(http.HandlerFunc(s.apiHistory)))
	m.Handle("GET /api/errors", s.auth(http.HandlerFunc(s.apiErrors)))
	m.Handle("GET /api/events", s.auth(http.HandlerFunc(s.apiEvents)))
	m.Handle("GET /metrics", s.auth(http.HandlerFunc(s.metrics)))
	m.Handle("GET /{$}", s.auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pageHeaders(w)
		http.ServeFileFS(w, r, static, "index.html")
	})))
	m.Handle("GET /assets/", s.auth(http.StripPrefix("/assets/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pageHeaders(w)
		files.ServeHTTP(w, r)
	}))))
	s.mux = m
}

func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	// Everything the page uses comes from this server.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
}

// auth checks the token (header, cookie, or ?token= which then sets the
// cookie for the page's own requests). Without a token it only refuses
// requests whose Host is not a loopback name, so a web page elsewhere cannot
// read the dashboard through DNS rebinding.
func (s *Server) auth(next http.Handler) http.Handler {
	if s.opts.mounted {
		return next
	}
	return tokenAuth(s.opts.Token, next)
}

// tokenAuth is the check of auth, for a dashboard whose token is token.
func tokenAuth(token string, next http.Handler) http.Handler {
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(want) == 0 {
			if !loopbackHost(r.Host) {
				http.Error(w, "ferry: this dashboard has no token, so it answers only requests to localhost or a loopback address", http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		ok := func(got string) bool { return got != "" && subtle.ConstantTimeCompare([]byte(got), want) == 1 }
		if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") && ok(strings.TrimPrefix(h, "Bearer ")) {
			next.ServeHTTP(w, r)
			return
		}
		if c, err := r.Cookie(cookieName); err == nil && ok(c.Value) {
			next.ServeHTTP(w, r)
			return
		}
		if q := r.URL.Query(); ok(q.Get("token")) {
			http.SetCookie(w, &http.Cookie{Name: cookieName, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			if r.URL.Path == "/" {
				// Drop the token from the address bar and the history.
				q.Del("token")
				u := *r.URL
				u.RawQuery = q.Encode()
				http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="ferry"`)
		http.Error(w, "ferry: a token is required: send Authorization: Bearer TOKEN, or open the page as /?token=TOKEN", http.StatusUnauthorized)
	})
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckBind refuses to serve on an address reachable from other machines
// without a token. It accepts host:port where host is a loopback address or
// localhost; any other host, or none (":8080", all interfaces), needs one.
func CheckBind(addr, token string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--ui %q: want HOST:PORT, such as 127.0.0.1:8080", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("--ui %q: bad port %q", addr, port)
	}
	if token == "" && !loopbackHost(host) {
		where := host
		if where == "" {
			where = "every interface"
		}
		return fmt.Errorf("--ui %s would serve the dashboard on %s without a token; set --ui-token or %s (every request must then carry it), or bind to 127.0.0.1", addr, where, TokenEnv)
	}
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, "ok")
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	f := s.flow()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !f.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %s\n", f.Phase)
		return
	}
	fmt.Fprintf(w, "ready: %s\n", f.Phase)
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.opts.Metrics == nil {
		http.NotFound(w, r)
		return
	}
	s.opts.Metrics.ServeHTTP(w, r)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // URLs stay readable: & not \u0026
	enc.Encode(v)            //nolint:errcheck // the client went away
}

// marshal is json.Marshal without HTML escaping, on one line.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

func (s *Server) apiFlow(w http.ResponseWriter, _ *http.Request) { writeJSON(w, s.flow()) }

func (s *Server) apiErrors(w http.ResponseWriter, _ *http.Request) { writeJSON(w, s.problems.get()) }

func (s *Server) apiHistory(w http.ResponseWriter, r *http.Request) {
	var since int64
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			http.Error(w, "since: want Unix milliseconds", http.StatusBadRequest)
			return
		}
		since = n
	}
	writeJSON(w, History{IntervalSeconds: s.opts.Interval.Seconds(), Capacity: s.opts.HistorySize, Points: s.history.points(since)})
}

// maxStreams bounds the open event streams; each costs a goroutine and a
// JSON encoding a second.
const maxStreams = 64

// apiEvents streams server-sent events: "flow" (the /api/flow document) and
// "point" (the newest /api/history point) once a second.
func (s *Server) apiEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	ch := make(chan []byte, 8)
	s.mu.Lock()
	if s.closed || len(s.subs) >= maxStreams {
		s.mu.Unlock()
		http.Error(w, "ferry: too many event streams", http.StatusServiceUnavailable)
		return
	}
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if _, ok := s.subs[ch]; ok {
			delete(s.subs, ch)
		}
		s.mu.Unlock()
	}()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	// The current state at once, then every tick.
	first, err := marshal(s.flow())
	if err != nil {
		return
	}
	if _, err := fmt.Fprintf(w, "retry: 3000\nevent: flow\ndata: %s\n\n", first); err != nil {
		return
	}
	if rc.Flush() != nil {
		return
	}
	for {
		select {
		case msg, ok := <-ch:
			if !ok {
				return
			}
			if _, err := w.Write(msg); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}

// loop samples the flow every interval.
func (s *Server) loop() {
	defer close(s.loopDone)
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			s.mu.Lock()
			ended := !s.ended.IsZero()
			s.mu.Unlock()
			if !ended {
				s.tick(now)
			}
		case <-s.stopLoop:
			return
		}
	}
}

// tick samples the flow into the history and pushes both to the streams.
func (s *Server) tick(now time.Time) {
	snap, ok := s.snapshot()
	if !ok {
		return
	}
	p := s.history.sample(now, snap)
	f := s.flow()
	pb, err1 := marshal(p)
	fb, err2 := marshal(f)
	if err1 != nil || err2 != nil {
		return
	}
	msg := []byte(fmt.Sprintf("event: point\ndata: %s\n\nevent: flow\ndata: %s\n\n", pb, fb))
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- msg:
		default: // a slow reader misses a second rather than slowing everyone
		}
	}
}

// snapshot is the flow's progress now, or its last one once it ended.
func (s *Server) snapshot() (engine.Snapshot, bool) {
	s.mu.Lock()
	snap, final := s.snap, s.final
	s.mu.Unlock()
	if final != nil {
		return *final, true
	}
	if snap == nil {
		return engine.Snapshot{}, false
	}
	return snap(), true
}
