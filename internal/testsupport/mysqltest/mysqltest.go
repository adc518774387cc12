// Package mysqltest starts private MariaDB servers for tests: each on a free
// 127.0.0.1 port, in its own temporary data directory, with the binlog in ROW
// format and FULL row images unless an option says otherwise. A test never
// touches a server it did not start (in particular not a shared one on port
// 3306).
//
// Starting a server costs about a second: tests that can share one use
// Shared, which starts it once per test binary. A package with a TestMain
// calls StopShared at its end; without one, the server dies with the test
// process (it is started with a parent-death signal) and its directory is
// removed by the next test run that starts a server.
//
// The first server of a process bootstraps a template data directory with
// mariadb-install-db; later servers copy it, which is much faster.
//
// With the TLS option (or FERRY_TEST_TLS=1 in the environment, which gives
// every server the shared testpki certificates) the server takes TLS
// connections and URL and UserURL carry ssl-ca, ssl-cert and ssl-key;
// RequireX509 makes a user connect with a client certificate.
//
// Its verbs (Start, Shared, Down, Up, Restart, Connect, Exec, CreateDatabase,
// CreateUser, ...) are pgtest's, for the same acts; the parent package
// testsupport lists them.
package mysqltest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport"
	"github.com/ferrydb/ferry/internal/testsupport/testpki"
	"github.com/go-sql-driver/mysql"
)

// Binaries, overridable for machines that install MariaDB elsewhere.
var (
	ServerBin  = envOr("MYSQLTEST_MARIADBD", "/usr/sbin/mariadbd")
	InstallBin = envOr("MYSQLTEST_INSTALL_DB", "mariadb-install-db")
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// dirPrefix names every directory this package creates, so stale ones
// (from a killed test process) can be found and removed.
const dirPrefix = "mysqltest-"

type config struct {
	binlog       bool
	format       string
	rowImage     string
	extra        []string
	startTimeout time.Duration
	pki          *testpki.PKI
}

// TLS turns TLS on with the server certificate and CA of pki
// (--ssl-cert, --ssl-key, --ssl-ca).
func TLS(pki *testpki.PKI) Option { return func(c *config) { c.pki = pki } }

// TLSFromEnv reports whether FERRY_TEST_TLS asks every server to take TLS
// (make chaos-tls sets it).
func TLSFromEnv() bool {
	v := os.Getenv("FERRY_TEST_TLS")
	return v == "1" || v == "true"
}

// Option changes how a server is started.
type Option func(*config)

// WithoutBinlog starts the server with the binary log disabled.
func WithoutBinlog() Option { return func(c *config) { c.binlog = false } }

// WithBinlogFormat sets binlog_format (ROW, STATEMENT or MIXED).
func WithBinlogFormat(f string) Option { return func(c *config) { c.format = f } }

// WithRowImage sets binlog_row_image (FULL, MINIMAL or NOBLOB).
func WithRowImage(img string) Option { return func(c *config) { c.rowImage = img } }

// WithArgs adds server options ("--max-allowed-packet=64M").
func WithArgs(args ...string) Option {
	return func(c *config) { c.extra = append(c.extra, args...) }
}

// Server is a running private MariaDB.
type Server struct {
	Port    int
	DataDir string
	Socket  string

	dir  string // the server's own temporary directory (holds DataDir)
	args []string
	pki  *testpki.PKI

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
	db   *sql.DB // root connection without a default database
}

// Start starts a private server and stops it (removing its directory) when
// the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	skipUnlessAvailable(t)
	s, err := start(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Shared returns the test binary's shared server (ROW, FULL), starting it on
// first use. Tests sharing it use their own databases.
func Shared(t testing.TB) *Server {
	t.Helper()
	skipUnlessAvailable(t)
	shared.once.Do(func() { shared.srv, shared.err = start() })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.srv
}

// StopShared stops the shared server, if any, and removes the template
// directory; call it at the end of TestMain.
func StopShared() {
	if shared.srv != nil {
		shared.srv.Stop()
	}
	template.mu.Lock()
	defer template.mu.Unlock()
	if template.dir != "" {
		os.RemoveAll(template.dir) //nolint:errcheck // best effort at exit
		template.dir = ""
	}
}

// skipUnlessAvailable skips a test on a machine without MariaDB (ferry's
// test script installs it, so CI always runs these tests).
func skipUnlessAvailable(t testing.TB) {
	t.Helper()
	if !Available() {
		t.Skipf("MariaDB is not installed (%s): install the Debian package mariadb-server", ServerBin)
	}
}

// Available reports whether the MariaDB server binaries are installed.
func Available() bool {
	if _, err := os.Stat(ServerBin); err != nil {
		return false
	}
	_, err := exec.LookPath(InstallBin)
	return err == nil
}

var template struct {
	mu  sync.Mutex
	dir string // holds "data", a bootstrapped data directory
}

// templateDir bootstraps (once per process) a data directory to copy.
func templateDir() (string, error) {
	template.mu.Lock()
	defer template.mu.Unlock()
	if template.dir != "" {
		return filepath.Join(template.dir, "data"), nil
	}
	if !Available() {
		return "", fmt.Errorf("mysqltest: MariaDB is not installed (%s, %s); install the Debian package mariadb-server", ServerBin, InstallBin)
	}
	removeStale()
	dir, err := os.MkdirTemp("", dirPrefix+strconv.Itoa(os.Getpid())+"-template-")
	if err != nil {
		return "", err
	}
	data := filepath.Join(dir, "data")
	cmd := exec.Command(InstallBin, "--no-defaults", "--datadir="+data, "--user=root",
		"--auth-root-authentication-method=normal", "--skip-test-db",
		"--innodb-log-file-size=16M", "--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0", "--skip-log-bin")
	out, err := cmd.CombinedOutput()
	if err != nil {
		os.RemoveAll(dir) //nolint:errcheck // already failing
		return "", fmt.Errorf("mysqltest: %s: %v\n%s", InstallBin, err, out)
	}
	template.dir = dir
	return data, nil
}

// removeStale removes directories left by test processes that no longer run.
func removeStale() {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, m := range matches {
		rest := strings.TrimPrefix(filepath.Base(m), dirPrefix)
		pidStr, _, ok := strings.Cut(rest, "-")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			continue // still running (or not ours to judge)
		}
		os.RemoveAll(m) //nolint:errcheck // best effort
	}
}

func start(opts ...Option) (*Server, error) {
	cfg := config{binlog: true, format: "ROW", rowImage: "FULL", startTimeout: 60 * time.Second}
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
	tmpl, err := templateDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", dirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, DataDir: filepath.Join(dir, "data"), Socket: filepath.Join(dir, "mysqld.sock"), pki: cfg.pki}
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, err
	}
	if out, err := exec.Command("cp", "-a", tmpl, s.DataDir).CombinedOutput(); err != nil {
		os.RemoveAll(dir) //nolint:errcheck // already failing
		return nil, fmt.Errorf("mysqltest: copy template: %v\n%s", err, out)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := testsupport.FreePort()
		if err != nil {
			return nil, fmt.Errorf("mysqltest: %w", err)
		}
		s.Port = port
		s.args = []string{"--no-defaults", "--user=root", "--datadir=" + s.DataDir,
			"--port=" + strconv.Itoa(port), "--bind-address=127.0.0.1", "--socket=" + s.Socket,
			"--pid-file=" + filepath.Join(dir, "mysqld.pid"),
			// Its own temporary directory: servers sharing /tmp have been
			// seen to lose each other's internal temporary tables.
			"--tmpdir=" + filepath.Join(dir, "tmp"),
			"--skip-name-resolve", "--server-id=1",
			"--innodb-log-file-size=16M", "--innodb-buffer-pool-size=64M",
			"--innodb-flush-log-at-trx-commit=2", "--innodb-doublewrite=0", "--sync-binlog=0",
			"--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
			"--max-connections=300", "--skip-performance-schema"}
		if cfg.binlog {
			s.args = append(s.args, "--log-bin="+filepath.Join(s.DataDir, "binlog"),
				"--binlog-format="+cfg.format, "--binlog-row-image="+cfg.rowImage)
		} else {
			s.args = append(s.args, "--skip-log-bin")
		}
		if p := cfg.pki; p != nil {
			s.args = append(s.args, "--ssl-ca="+p.CA, "--ssl-cert="+p.ServerCert, "--ssl-key="+p.ServerKey)
		}
		s.args = append(s.args, cfg.extra...)
		if lastErr = s.launch(cfg.startTimeout); lastErr == nil {
			return s, nil
		}
		s.kill()
	}
	os.RemoveAll(dir) //nolint:errcheck // already failing
	return nil, lastErr
}

// launch starts mariadbd with s.args and waits until it accepts connections.
func (s *Server) launch(timeout time.Duration) error {
	logf, err := os.OpenFile(filepath.Join(s.dir, "mysqld.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(ServerBin, s.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The server dies with the test process, even when it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("mysqltest: start %s: %w", ServerBin, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }() //nolint:errcheck // the exit is observed through done
	s.mu.Lock()
	s.cmd, s.done, s.log = cmd, done, logf
	s.mu.Unlock()

	db, err := sql.Open("mysql", s.dsn(""))
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			break
		}
		select {
		case <-done:
			db.Close()
			return fmt.Errorf("mysqltest: mariadbd exited during start-up:\n%s", s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			db.Close()
			return fmt.Errorf("mysqltest: mariadbd not ready after %s: %v\n%s", timeout, err, s.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	db.SetMaxOpenConns(4)
	s.mu.Lock()
	s.db = db
	s.mu.Unlock()
	return nil
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "mysqld.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func (s *Server) dsn(db string) string {
	cfg := mysql.NewConfig()
	cfg.User = "root"
	cfg.Net = "tcp"
	cfg.Addr = "127.0.0.1:" + strconv.Itoa(s.Port)
	cfg.DBName = db
	cfg.MultiStatements = true
	cfg.Params = map[string]string{"charset": "utf8mb4"}
	return cfg.FormatDSN()
}

// URL returns the connector URL of database db (empty: no database).
func (s *Server) URL(db string) string {
	return "mysql://root@127.0.0.1:" + strconv.Itoa(s.Port) + "/" + url.PathEscape(db) + s.tlsQuery()
}

// UserURL returns the URL of database db for a user with a password.
func (s *Server) UserURL(user, pass, db string) string {
	u := url.URL{Scheme: "mysql", User: url.UserPassword(user, pass), Host: "127.0.0.1:" + strconv.Itoa(s.Port), Path: "/" + db}
	return u.String() + s.tlsQuery()
}

// tlsQuery is the URL query that verifies the server and presents the
// client certificate, "" without TLS.
func (s *Server) tlsQuery() string {
	if s.pki == nil {
		return ""
	}
	return "?ssl-ca=" + url.QueryEscape(s.pki.CA) + "&ssl-cert=" + url.QueryEscape(s.pki.ClientCert) + "&ssl-key=" + url.QueryEscape(s.pki.ClientKey)
}

// PKI is the certificates the server was started with (nil without TLS).
func (s *Server) PKI() *testpki.PKI { return s.pki }

// RequireX509 makes user (one CreateUser made) connect over TLS with a
// client certificate the server's CA signed (REQUIRE X509).
func (s *Server) RequireX509(t testing.TB, user string) {
	t.Helper()
	for _, host := range []string{"%", "127.0.0.1"} {
		s.Exec(t, fmt.Sprintf("ALTER USER '%s'@'%s' REQUIRE X509", user, host))
	}
}

// Connect returns a root connection pool with db as its default database
// (empty for none); it is closed when the test ends.
func (s *Server) Connect(t testing.TB, db string) *sql.DB {
	t.Helper()
	d, err := sql.Open("mysql", s.dsn(db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// Exec runs statements as root (several per string are allowed).
func (s *Server) Exec(t testing.TB, stmts ...string) {
	t.Helper()
	s.mu.Lock()
	db := s.db
	s.mu.Unlock()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("mysqltest: %s: %v", q, err)
		}
	}
}

// CreateUser creates a user named prefix_<random>, at '%' (and at
// '127.0.0.1', which root's skip-name-resolve setup would otherwise shadow),
// with a password and the given grants, each a privilege list and object
// ("SELECT ON shop.*"), and returns its name.
func (s *Server) CreateUser(t testing.TB, prefix, password string, grants ...string) string {
	t.Helper()
	name := testsupport.UniqueName(prefix)
	for _, host := range []string{"%", "127.0.0.1"} {
		user := fmt.Sprintf("'%s'@'%s'", name, host)
		s.Exec(t, fmt.Sprintf("CREATE OR REPLACE USER %s IDENTIFIED BY '%s'", user, strings.ReplaceAll(password, "'", "''")))
		for _, g := range grants {
			s.Exec(t, "GRANT "+g+" TO "+user)
		}
	}
	return name
}

// CreateDatabase creates an empty database named prefix_<random> and returns
// the name. It is dropped when the test ends, unless the server is down.
func (s *Server) CreateDatabase(t testing.TB, prefix string) string {
	t.Helper()
	name := testsupport.UniqueName(prefix)
	s.Exec(t, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4")
	t.Cleanup(func() {
		s.mu.Lock()
		db := s.db
		s.mu.Unlock()
		if db == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`") //nolint:errcheck // best effort
	})
	return name
}

// Down stops the server in the given mode, keeping its data: "fast"
// (SIGTERM: clients are disconnected, InnoDB shuts down normally) or
// "immediate" (SIGKILL: crash recovery at the next start). Up starts it
// again on the same port.
func (s *Server) Down(t testing.TB, mode string) {
	t.Helper()
	switch mode {
	case "fast":
		if !s.halt(syscall.SIGTERM) {
			t.Errorf("mysqltest: mariadbd did not shut down within 60s of SIGTERM")
		}
	case "immediate":
		s.kill()
	default:
		t.Fatalf("mysqltest: stop mode %q: use fast or immediate", mode)
	}
}

// Up starts a server stopped by Down again, on the same port and data
// directory.
func (s *Server) Up(t testing.TB) {
	t.Helper()
	var err error
	for attempt := 0; attempt < 40; attempt++ {
		if err = s.launch(60 * time.Second); err == nil {
			return
		}
		s.kill()
		time.Sleep(250 * time.Millisecond) // the port may still be held
	}
	t.Fatalf("mysqltest: start again: %v", err)
}

// Restart stops the server in the given mode ("fast" or "immediate") and
// starts it again on the same port.
func (s *Server) Restart(t testing.TB, mode string) {
	t.Helper()
	s.Down(t, mode)
	s.Up(t)
}

// halt stops the running process with sig (SIGTERM: a clean shutdown,
// SIGKILL: as a crash) and waits for it; false if SIGTERM took more than 60s
// and the process was killed.
func (s *Server) halt(sig syscall.Signal) bool {
	s.mu.Lock()
	cmd, done, db, logf := s.cmd, s.done, s.db, s.log
	s.cmd, s.db, s.log = nil, nil, nil
	s.mu.Unlock()
	if db != nil {
		db.Close()
	}
	clean := true
	if cmd != nil && cmd.Process != nil {
		cmd.Process.Signal(sig) //nolint:errcheck // it may have exited already
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill() //nolint:errcheck // last resort
			<-done
			clean = false
		}
	}
	if logf != nil {
		logf.Close()
	}
	return clean
}

func (s *Server) kill() { s.halt(syscall.SIGKILL) }

// Stop kills the server and removes its directory.
func (s *Server) Stop() {
	s.kill()
	os.RemoveAll(s.dir) //nolint:errcheck // best effort
}

// Log returns the server's error log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "mysqld.log"))
	return string(b)
}
