// Package pgtest starts private PostgreSQL servers for tests: each on a free
// 127.0.0.1 port, in its own temporary data directory, with logical
// replication enabled, stopped and removed when the test (or the test binary)
// ends. It needs the PostgreSQL 15 server binaries (Debian package
// postgresql); without them a test is skipped with a message saying so.
//
// Starting a server costs about two seconds, so a test binary usually shares
// one (Shared) and gives each test its own database (Server.CreateDatabase).
// Tests that restart or reconfigure a server start their own (Start).
//
// Local (Unix socket) connections are trusted; TCP connections need a
// password (scram-sha-256), so tests can check what a wrong password does.
// The superuser is "postgres" with password Password.
//
// With the TLS option (or FERRY_TEST_TLS=1 in the environment, which gives
// every server the shared testpki certificates) the server takes TLS
// connections and URL and UserURL ask for sslmode=verify-full with the CA
// and a client certificate; RequireClientCert makes TCP connections without
// TLS and a client certificate signed by the CA fail.
//
// Its verbs (Start, Shared, Down, Up, Restart, Connect, Exec, CreateDatabase,
// CreateUser, ...) are mysqltest's, for the same acts; the parent package
// testsupport lists them.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport"
	"github.com/ferrydb/ferry/internal/testsupport/testpki"
	"github.com/jackc/pgx/v5"
)

// BinDir holds the PostgreSQL server binaries.
var BinDir = "/usr/lib/postgresql/15/bin"

// Password is the superuser's password on every server pgtest starts.
const Password = "pgtest-secret"

// Option changes how a server is started.
type Option func(*config)

type config struct {
	walLevel   string
	settings   []string
	pki        *testpki.PKI
	clientCert bool
}

// TLS turns TLS on with the server certificate and CA of pki.
func TLS(pki *testpki.PKI) Option { return func(c *config) { c.pki = pki } }

// RequireClientCert accepts TCP connections only over TLS with a client
// certificate signed by the CA (pg_hba.conf hostssl ... clientcert=verify-ca)
// besides the password. It needs TLS.
func RequireClientCert() Option { return func(c *config) { c.clientCert = true } }

// TLSFromEnv reports whether FERRY_TEST_TLS asks every server to take TLS
// (make chaos-tls sets it).
func TLSFromEnv() bool {
	v := os.Getenv("FERRY_TEST_TLS")
	return v == "1" || v == "true"
}

// WALLevel sets wal_level (default logical).
func WALLevel(level string) Option { return func(c *config) { c.walLevel = level } }

// Setting adds a server setting, as "name=value".
func Setting(nameValue string) Option {
	return func(c *config) { c.settings = append(c.settings, nameValue) }
}

// Server is a running private PostgreSQL server.
type Server struct {
	Port int
	// Dir holds the data directory (Dir/data), the socket and the log.
	Dir string

	cfg     config
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	reaper  *exec.Cmd
	stopped bool
}

// Available reports whether the server binaries are installed.
func Available() bool {
	_, err := os.Stat(filepath.Join(BinDir, "postgres"))
	return err == nil
}

func skipIfUnavailable(t testing.TB) {
	t.Helper()
	if !Available() {
		t.Skipf("PostgreSQL server binaries not found in %s: install the Debian package postgresql (scripts/test does)", BinDir)
	}
}

// Start starts a server for this test and stops it when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	skipIfUnavailable(t)
	s, err := start(opts...)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
)

// Shared returns the test binary's shared server, starting it on first use.
// It is stopped by StopShared (from TestMain) or, failing that, when the
// test binary exits.
func Shared(t testing.TB) *Server {
	t.Helper()
	skipIfUnavailable(t)
	sharedOnce.Do(func() { shared, sharedErr = start() })
	if sharedErr != nil {
		t.Fatalf("pgtest: %v", sharedErr)
	}
	return shared
}

// StopShared stops the shared server if one was started.
func StopShared() {
	if shared != nil {
		shared.Stop()
	}
}

func start(opts ...Option) (*Server, error) {
	cfg := config{walLevel: "logical"}
	if TLSFromEnv() {
		pki, err := testpki.Shared()
		if err != nil {
			return nil, err
		}
		cfg.pki = pki
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.clientCert && cfg.pki == nil {
		return nil, errors.New("RequireClientCert needs the TLS option")
	}
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("the postgres user is missing (install the postgresql package): %w", err)
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)
	// os.MkdirTemp, not t.TempDir: the postgres user must reach the directory.
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, cfg: cfg}
	fail := func(err error) (*Server, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fail(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(dir, uid, gid); err != nil {
			return fail(err)
		}
	}
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(Password+"\n"), 0o644); err != nil {
		return fail(err)
	}
	initdb := s.command(uid, gid, filepath.Join(BinDir, "initdb"), "-D", s.dataDir(), "-U", "postgres",
		"--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile="+pwfile, "--no-sync", "-E", "UTF8", "--locale=C.UTF-8")
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %v\n%s", err, out))
	}
	os.Remove(pwfile)
	if err := s.setUpTLS(uid, gid); err != nil {
		return fail(err)
	}
	if err := s.launch(uid, gid); err != nil {
		return fail(err)
	}
	s.startReaper()
	return s, nil
}

func (s *Server) dataDir() string { return filepath.Join(s.Dir, "data") }

func (s *Server) command(uid, gid int, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	return cmd
}

func (s *Server) serverArgs(port int) []string {
	args := []string{"-D", s.dataDir(), "-p", strconv.Itoa(port), "-k", s.Dir, "-h", "127.0.0.1",
		"-c", "wal_level=" + s.cfg.walLevel, "-c", "max_wal_senders=10", "-c", "max_replication_slots=10",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "shared_buffers=64MB", "-c", "max_connections=100"}
	if s.cfg.pki != nil {
		args = append(args, "-c", "ssl=on", "-c", "ssl_cert_file="+filepath.Join(s.Dir, "server.pem"),
			"-c", "ssl_key_file="+filepath.Join(s.Dir, "server-key.pem"), "-c", "ssl_ca_file="+filepath.Join(s.Dir, "ca.pem"))
	}
	for _, kv := range s.cfg.settings {
		args = append(args, "-c", kv)
	}
	return args
}

// setUpTLS copies the certificates where the postgres user may read them
// and, for RequireClientCert, makes every TCP line of pg_hba.conf a hostssl
// line that also wants a client certificate the CA signed.
func (s *Server) setUpTLS(uid, gid int) error {
	if s.cfg.pki == nil {
		return nil
	}
	if _, _, _, err := s.cfg.pki.CopyTo(s.Dir, uid, gid); err != nil {
		return err
	}
	if !s.cfg.clientCert {
		return nil
	}
	hba := filepath.Join(s.dataDir(), "pg_hba.conf")
	b, err := os.ReadFile(hba)
	if err != nil {
		return err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "host ") {
			line = "hostssl" + strings.TrimPrefix(line, "host") + " clientcert=verify-ca"
		}
		out = append(out, line)
	}
	return os.WriteFile(hba, []byte(strings.Join(out, "\n")), 0o600)
}

// PKI is the certificates the server was started with (nil without TLS).
func (s *Server) PKI() *testpki.PKI { return s.cfg.pki }

// launch starts postgres on a free port, trying another if it is taken.
func (s *Server) launch(uid, gid int) error {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := testsupport.FreePort()
		if err != nil {
			return err
		}
		if lastErr = s.run(uid, gid, port); lastErr == nil {
			return nil
		}
		if !strings.Contains(lastErr.Error(), "could not bind") && !strings.Contains(lastErr.Error(), "already in use") {
			break
		}
	}
	return lastErr
}

// run starts postgres on port and waits until it accepts connections.
func (s *Server) run(uid, gid, port int) error {
	logf, err := os.OpenFile(filepath.Join(s.Dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := s.command(uid, gid, filepath.Join(BinDir, "postgres"), s.serverArgs(port)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Its own process group: a Ctrl-C meant for the test binary does not stop
	// the server under a test's feet; Stop or the reaper does.
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }() //nolint:errcheck // the exit is observed through exited
	s.mu.Lock()
	s.cmd, s.exited, s.Port = cmd, exited, port
	s.mu.Unlock()
	if err := s.waitReady(exited, 30*time.Second); err != nil {
		cmd.Process.Kill() //nolint:errcheck // it failed to start
		<-exited
		return fmt.Errorf("postgres did not start: %v\n%s", err, s.log())
	}
	return nil
}

func (s *Server) log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "postgres.log"))
	return string(b)
}

// Log returns the server's log so far.
func (s *Server) Log() string { return s.log() }

func (s *Server) waitReady(exited chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.AdminURL("postgres"))
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("postgres exited")
		default:
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startReaper starts a small shell that stops the server and removes its
// directory once this process is gone, so a test binary that exits without
// calling Stop (or is killed) leaves nothing running.
func (s *Server) startReaper() {
	stop := `"$2/pg_ctl" -D "$3/data" stop -m immediate -w`
	if os.Geteuid() == 0 {
		stop = "runuser -u postgres -- " + stop // pg_ctl refuses to run as root
	}
	script := `while kill -0 "$1" 2>/dev/null; do sleep 1; done
` + stop + ` >/dev/null 2>&1 || kill -9 "$4" 2>/dev/null
rm -rf "$3"`
	cmd := exec.Command("/bin/sh", "-c", script, "reaper", strconv.Itoa(os.Getpid()), BinDir, s.Dir, strconv.Itoa(s.cmd.Process.Pid))
	// Detached, with no pipes of ours: go test would otherwise wait for it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err == nil {
		s.reaper = cmd
		go cmd.Wait() //nolint:errcheck // reaped when it ends
	}
}

// Stop stops the server at once and removes its directory.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	s.stopped = true
	s.stopLocked()
	if s.reaper != nil && s.reaper.Process != nil {
		s.reaper.Process.Kill() //nolint:errcheck // it may have ended
	}
	os.RemoveAll(s.Dir)
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	// SIGQUIT is PostgreSQL's immediate shutdown (pg_ctl stop -m immediate).
	s.cmd.Process.Signal(syscall.SIGQUIT) //nolint:errcheck // it may have exited
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill() //nolint:errcheck // last resort
		<-s.exited
	}
}

// Down stops the server in the given mode, keeping its data: "fast"
// (SIGINT: clients are disconnected, a shutdown checkpoint is written) or
// "immediate" (SIGQUIT: crash recovery at the next start). Up starts it
// again on the same port.
func (s *Server) Down(t testing.TB, mode string) {
	t.Helper()
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	var sig syscall.Signal
	switch mode {
	case "fast":
		sig = syscall.SIGINT
	case "immediate":
		sig = syscall.SIGQUIT
	default:
		t.Fatalf("pgtest: stop mode %q: use fast or immediate", mode)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatalf("pgtest: stop: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("pgtest: postgres did not stop within 60s")
	}
}

// Up starts a server stopped by Down again, on the same port.
func (s *Server) Up(t testing.TB) {
	t.Helper()
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)
	if err := s.relaunch(uid, gid, s.Port); err != nil {
		t.Fatalf("pgtest: start again: %v", err)
	}
}

// Restart stops the server in the given mode ("fast" or "immediate") and
// starts it again on the same port.
func (s *Server) Restart(t testing.TB, mode string) {
	t.Helper()
	s.RestartAfter(t, mode, 0)
}

// RestartAfter stops the server, keeps it down for the given time, then
// starts it again on the same port.
func (s *Server) RestartAfter(t testing.TB, mode string, down time.Duration) {
	t.Helper()
	s.Down(t, mode)
	time.Sleep(down)
	s.Up(t)
}

func (s *Server) relaunch(uid, gid, port int) error {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = s.run(uid, gid, port); err == nil {
			return nil
		}
		// The port may be held a moment longer by the old server's socket.
		time.Sleep(200 * time.Millisecond)
	}
	return err
}

// URL is a TCP URL for the superuser to database db.
func (s *Server) URL(db string) string {
	return s.UserURL("postgres", Password, db)
}

// UserURL is a TCP URL for a role with a password to database db.
func (s *Server) UserURL(role, password, db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(role, password), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)), Path: "/" + db, RawQuery: "sslmode=disable"}
	if p := s.cfg.pki; p != nil {
		// Not url.Values.Encode: the parameters keep this order, so a test
		// may append its own with "&".
		u.RawQuery = "sslmode=verify-full&sslrootcert=" + url.QueryEscape(p.CA) + "&sslcert=" + url.QueryEscape(p.ClientCert) + "&sslkey=" + url.QueryEscape(p.ClientKey)
	}
	return u.String()
}

// AdminURL is a Unix-socket URL for the superuser (trusted, no password).
func (s *Server) AdminURL(db string) string {
	q := url.Values{"host": {s.Dir}, "port": {strconv.Itoa(s.Port)}, "sslmode": {"disable"}, "user": {"postgres"}}
	return "postgres:///" + db + "?" + q.Encode()
}

// Connect opens a superuser connection to db, closed when the test ends.
func (s *Server) Connect(t testing.TB, db string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.AdminURL(db))
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", db, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Exec runs SQL statements in db as the superuser.
func (s *Server) Exec(t testing.TB, db, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.AdminURL(db))
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", db, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("pgtest: in %s: %v\n%s", db, err, sql)
	}
}

// CreateDatabase creates a database named prefix_<random> and returns the
// name. It is dropped (with its replication slots) when the test ends.
func (s *Server) CreateDatabase(t testing.TB, prefix string) string {
	t.Helper()
	name := testsupport.UniqueName(prefix)
	s.Exec(t, "postgres", "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() {
		s.mu.Lock()
		stopped := s.stopped
		s.mu.Unlock()
		if stopped {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, s.AdminURL("postgres"))
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		conn.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`, name) //nolint:errcheck // best effort
		conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, name)                         //nolint:errcheck // best effort
		conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")                                               //nolint:errcheck // best effort
	})
	return name
}

// CreateUser creates a login role named prefix_<random> with a password and
// the given extra attributes ("REPLICATION", ...) and returns its name.
func (s *Server) CreateUser(t testing.TB, prefix, password string, attrs ...string) string {
	t.Helper()
	name := testsupport.UniqueName(prefix)
	s.Exec(t, "postgres", fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s' %s", pgx.Identifier{name}.Sanitize(), strings.ReplaceAll(password, "'", "''"), strings.Join(attrs, " ")))
	return name
}
