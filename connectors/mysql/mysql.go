// Package mysql is ferry's MySQL and MariaDB connector: a source (discovery
// from information_schema, primary-key range partitions, keyset reads), a
// change source (the binlog in ROW format, read with go-mysql's replication
// client) and a destination (tables in utf8mb4, multi-row upserts, change
// application and checkpoints in the same transaction, added columns).
//
// URLs:
//
//	mysql://user:pass@host:3306/db?zero_dates=null   (also mariadb://)
//	mysql://user:pass@host:3306/db?ssl-ca=/ca.pem&ssl-cert=/client.pem&ssl-key=/client-key.pem
//
// The path's database selects what a source reads (Namespace.Schema is the
// database name); without one, every user database (not mysql,
// information_schema, performance_schema, sys). As a destination, every table
// goes to the URL's database when it names one, otherwise to a database named
// after the table's Namespace.Schema; databases are created when missing.
//
// How T0 relates to the copy (Plan.SnapshotConsistent is false): MySQL cannot
// share one snapshot between connections, so partitions are read in parallel,
// each query at the current state, after T0 was recorded. CDC then replays
// every change from T0 with idempotent writes (upserts of full row images,
// deletes that ignore missing rows), which converges each row to its latest
// state: nothing committed after T0 is missed, and anything the copy read
// "too late" is overwritten by the replay. On MariaDB T0 is the binlog
// position of a consistent snapshot (binlog_snapshot_file/position), so every
// transaction before T0 is visible to the copy's reads; on MySQL, which lacks
// it, T0 is taken under FLUSH TABLES WITH READ LOCK when the user may, else
// with SHOW MASTER STATUS alone (see docs/connectors.md).
//
// The files, by role:
//
//   - mysql.go: Open, the URL's options, the registration, what both
//     halves share (the pool, the server's settings, error classes).
//   - tls.go: the URL's TLS (tls=, ssl-ca, ssl-cert, ssl-key) as the one
//     tls.Config of the pool and the binlog connection, and what a failed
//     handshake says.
//   - source.go and source_*.go, the source half: discover (tables from
//     information_schema), plan (primary-key range partitions, T0), keyset
//     (key conditions and cursors), read (snapshot reads), position
//     (binlog positions, T0, Ack), gtid (GTID positions, their order, and
//     whether a server's history holds a flow's position), preflight (checks before a flow), stream
//     (the binlog reader and its reconnections), stream_events
//     (transactions and row events), stream_schema (the flow's tables as
//     the binlog changes them), stream_ddl and stream_ddl_tokens (what a
//     QUERY event does to the flow).
//   - destination.go and destination_*.go, the destination half: ddl
//     (databases and tables), types (the MySQL type of a canonical column),
//     write (copied rows as multi-row upserts), infile (LOAD DATA LOCAL
//     INFILE), apply (changes), checkpoint, alter (added columns), empty.
//   - codec_*.go, the value codecs: types (MySQL column types to canonical),
//     decode (driver and binlog values to canonical), time (MySQL's date
//     and time text), encode (canonical values to SQL literals), errors
//     (what a value error says).
package mysql

import (
	"context"
	"crypto/tls"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/internal/cputune"
)

func init() {
	connector.Register(connector.Registration{
		Scheme:    "mysql",
		Aliases:   []string{"mariadb"},
		Summary:   "MySQL or MariaDB (source with binlog CDC, and destination)",
		Example:   "mysql://user:pass@localhost:3306/shop",
		Open:      connector.OpenerOf(Open),
		Prototype: (*Conn)(nil),
	})
}

// systemDBs are never read without being named.
var systemDBs = map[string]bool{"mysql": true, "information_schema": true, "performance_schema": true, "sys": true, checkpointDB: true}

// options are the URL's query parameters.
type options struct {
	// zeroNull reads zero dates as NULL instead of failing.
	zeroNull bool
	// serverID is the replica id CDC registers with; 0 picks one.
	serverID uint32
	tls      tlsOptions
}

var knownParams = map[string]string{
	"zero_dates": "zero_dates=error|null (how to read 0000-00-00 dates)",
	"server_id":  "server_id=N (the replica id CDC registers with)",
	"tls":        "tls=true|verify-ca|skip-verify|preferred|false",
	"ssl-ca":     "ssl-ca=/path/ca.pem (the CA that signed the server's certificate)",
	"ssl-cert":   "ssl-cert=/path/client.pem (a client certificate)",
	"ssl-key":    "ssl-key=/path/client-key.pem (the client certificate's key)",
}

// Conn is an opened MySQL or MariaDB server. It keeps what both halves use
// (the URL, the pool, the server's settings); each half keeps its own state.
type Conn struct {
	host     string // host:port
	local    bool   // the server runs on this machine (connector.Colocated)
	user     string
	password string
	database string // the URL's database, "" for none
	opts     options
	scrubber *errs.Scrubber // the URL's secrets, out of every error
	// tlsCfg is the TLS of the pool and the binlog connection alike (nil:
	// none, or tls=preferred, which the driver handles by name).
	tlsCfg *tls.Config
	// driverLog keeps the last error the driver logged instead of
	// returning it.
	driverLog quietLogger

	db     *sql.DB
	server serverInfo

	// log receives what the connector reports on its own (reconnections).
	log *slog.Logger

	dest destState
}

// serverInfo is what ferry needs to know about the server.
type serverInfo struct {
	version      string
	mariadb      bool
	gtidMode     bool // MySQL with gtid_mode=ON: positions carry gtid_executed
	logBin       bool
	format       string // binlog_format
	rowImage     string // binlog_row_image
	maxPacket    int
	lowerCase    int // lower_case_table_names
	noPadBinColl string
	localInfile  bool // LOAD DATA LOCAL INFILE is allowed
}

// Open parses a mysql URL and connects, so that a wrong host, user or
// password is reported before anything else happens.
func Open(ctx context.Context, u *url.URL) (*Conn, error) {
	c, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func parseURL(u *url.URL) (*Conn, error) {
	const fix = "URLs look like mysql://user:password@host:3306/database"
	if u.Opaque != "" {
		return nil, errs.BadConfig("mysql URL has no host", fix)
	}
	c := &Conn{log: slog.Default(), driverLog: newQuietLogger()}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		host = "localhost"
	}
	if port == "" {
		port = "3306"
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return nil, errs.BadConfig(fmt.Sprintf("mysql URL port %q is not a number", port), fix)
	}
	c.host = net.JoinHostPort(host, port)
	if u.User != nil {
		c.user = u.User.Username()
		c.password, _ = u.User.Password()
	}
	if c.user == "" {
		c.user = "root"
	}
	c.scrubber = errs.NewScrubber(u.String())
	db := strings.Trim(u.Path, "/")
	if strings.Contains(db, "/") {
		return nil, errs.BadConfig(fmt.Sprintf("mysql URL path %q names more than a database", u.Path), fix)
	}
	c.database = db
	for k, vs := range u.Query() {
		v := vs[len(vs)-1]
		// MySQL's option files spell them ssl_ca as well as ssl-ca.
		switch k {
		case "ssl_ca", "ssl_cert", "ssl_key":
			k = strings.ReplaceAll(k, "_", "-")
		}
		switch k {
		case "zero_dates":
			switch v {
			case "error":
			case "null":
				c.opts.zeroNull = true
			default:
				return nil, errs.BadConfig(fmt.Sprintf("unknown zero_dates value %q", v), "use zero_dates=error or zero_dates=null")
			}
		case "server_id":
			id, err := strconv.ParseUint(v, 10, 32)
			if err != nil || id == 0 {
				return nil, errs.BadConfig(fmt.Sprintf("bad server_id %q", v), "use a number between 1 and 4294967295 that no other replica of the server uses")
			}
			c.opts.serverID = uint32(id)
		case "tls":
			switch v {
			case "true", "false", "verify-ca", "skip-verify", "preferred":
				c.opts.tls.mode = v
			default:
				return nil, errs.BadConfig(fmt.Sprintf("unknown tls value %q", v), tlsFix)
			}
		case "ssl-ca":
			c.opts.tls.ca = v
		case "ssl-cert":
			c.opts.tls.cert = v
		case "ssl-key":
			c.opts.tls.keyFile = v
		default:
			var known []string
			for _, doc := range knownParams {
				known = append(known, doc)
			}
			sort.Strings(known)
			return nil, errs.BadConfig(fmt.Sprintf("unknown mysql URL parameter %q", k), "known parameters: "+strings.Join(known, "; "))
		}
	}
	cfg, err := c.opts.tls.config(host)
	if err != nil {
		return nil, err
	}
	c.tlsCfg = cfg
	return c, nil
}

// driverConfig is the driver's configuration for ferry's sessions: utf8mb4,
// UTC, strict, and string literals without backslash escapes (ferry writes
// its own literals).
func (c *Conn) driverConfig() *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.User = c.user
	cfg.Passwd = c.password
	cfg.Net = "tcp"
	cfg.Addr = c.host
	cfg.Timeout = 10 * time.Second
	cfg.ClientFoundRows = true // an UPDATE counts the rows it matched
	cfg.MaxAllowedPacket = 0   // ask the server
	if c.tlsCfg != nil {
		cfg.TLS = c.tlsCfg.Clone()
	} else {
		cfg.TLSConfig = c.opts.tls.mode
	}
	cfg.Logger = c.driverLog                // ferry reports the errors the driver returns
	cfg.Apply(mysql.Charset("utf8mb4", "")) //nolint:errcheck // Charset never fails
	cfg.Params = map[string]string{
		"time_zone":          "'+00:00'",
		"sql_mode":           "'STRICT_ALL_TABLES,NO_BACKSLASH_ESCAPES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
		"foreign_key_checks": "0",
		"net_write_timeout":  "600", // a reader may wait long for a slow destination
	}
	return cfg
}

// tlsConfig is the binlog client's TLS configuration: the pool's.
func (c *Conn) tlsConfig() *tls.Config {
	if c.tlsCfg == nil {
		return nil
	}
	return c.tlsCfg.Clone()
}

func (c *Conn) connect(ctx context.Context) error {
	connr, err := mysql.NewConnector(c.driverConfig())
	if err != nil {
		return errs.BadConfig(c.scrubber.Err(err).Error(), "check the URL")
	}
	db := sql.OpenDB(connr)
	db.SetMaxIdleConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return c.connectError(err)
	}
	var si serverInfo
	var logBin int
	var format, image sql.NullString
	err = db.QueryRowContext(ctx, `SELECT VERSION(), @@log_bin, @@binlog_format, @@max_allowed_packet, @@lower_case_table_names`).
		Scan(&si.version, &logBin, &format, &si.maxPacket, &si.lowerCase)
	if err != nil {
		db.Close()
		return fmt.Errorf("mysql %s: read server settings: %w", c.host, c.scrubber.Err(err))
	}
	// binlog_row_image exists from MySQL 5.6 and MariaDB 10.1.
	if err := db.QueryRowContext(ctx, `SELECT @@binlog_row_image`).Scan(&image); err != nil {
		image = sql.NullString{String: "FULL", Valid: true}
	}
	var localInfile int
	if err := db.QueryRowContext(ctx, `SELECT @@local_infile`).Scan(&localInfile); err == nil {
		si.localInfile = localInfile == 1
	}
	si.mariadb = strings.Contains(strings.ToLower(si.version), "mariadb")
	if !si.mariadb {
		var mode string
		if err := db.QueryRowContext(ctx, `SELECT @@GLOBAL.gtid_mode`).Scan(&mode); err == nil {
			si.gtidMode = strings.EqualFold(mode, "ON")
		}
	}
	if err := c.checkVersion(si); err != nil {
		db.Close()
		return err
	}
	si.logBin = logBin == 1
	si.format = strings.ToUpper(format.String)
	si.rowImage = strings.ToUpper(image.String)
	si.noPadBinColl = "utf8mb4_bin"
	for _, coll := range []string{"utf8mb4_nopad_bin", "utf8mb4_0900_bin"} {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.COLLATIONS WHERE COLLATION_NAME = ?`, coll).Scan(&n); err == nil && n > 0 {
			si.noPadBinColl = coll
			break
		}
	}
	c.db, c.server = db, si
	if h, _, err := net.SplitHostPort(c.host); err == nil {
		c.local = cputune.HostOnThisMachine(ctx, h)
	}
	return nil
}

// ServerOnThisMachine says whether the URL's host is this machine
// (localhost, a loopback address, or a name of one of its addresses).
func (c *Conn) ServerOnThisMachine() bool { return c.local }

// connectError explains a failed connection.
func (c *Conn) connectError(err error) error {
	// These say only that the connection broke (the driver's own "bad
	// connection" of a login it could not write is not driver.ErrBadConn);
	// the driver logged why, or a TLS 1.2 attempt tells whether the client
	// certificate was refused.
	if errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, driver.ErrBadConn) || err.Error() == "bad connection" {
		if logged := c.driverLog.lastError(); logged != nil {
			err = fmt.Errorf("%w: %w", err, logged)
		}
		if errs.DiagnoseTLS(err) == errs.NoTLSProblem {
			if perr := c.probeClientCert(context.Background()); errs.DiagnoseTLS(perr) != errs.NoTLSProblem {
				err = fmt.Errorf("%w (again over TLS 1.2: %w)", err, perr)
			}
		}
	}
	if te := c.tlsError(err); te != nil {
		return te
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1045:
			return &errs.ConfigError{Msg: fmt.Sprintf("mysql %s: access denied for user %q", c.host, c.user),
				Fix: c.accessDeniedFix()}
		case 1044, 1049:
			return &errs.ConfigError{Msg: fmt.Sprintf("mysql %s: %s", c.host, c.scrubber.Err(me).Error()), Fix: "check the database in the URL"}
		}
		return &errs.ConfigError{Msg: fmt.Sprintf("mysql %s: connect as %q", c.host, c.user), Err: c.scrubber.Err(me)}
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return &errs.ConfigError{Msg: fmt.Sprintf("cannot reach MySQL at %s", c.host), Err: c.scrubber.Err(err),
			Fix: "check the host and port in the URL and that the server is running and accepts TCP connections"}
	}
	return &errs.ConfigError{Msg: fmt.Sprintf("cannot connect to MySQL at %s", c.host), Err: c.scrubber.Err(err),
		Fix: "check the host, port, user and password in the URL"}
}

// Close closes the connection pool.
func (c *Conn) Close() error {
	if c == nil || c.db == nil {
		return nil
	}
	if err := c.db.Close(); err != nil {
		return fmt.Errorf("close mysql %s: %w", c.host, err)
	}
	return nil
}

// lostConnection reports an error meaning the server is out of reach or the
// connection broke (a restart, a network cut): the driver's invalid or bad
// connection, a refused, reset or closed socket, an unexpected end of the
// stream, or the server saying it is shutting down (1053) or killed the
// connection (1927). A retry on a new connection may succeed.
func lostConnection(err error) bool {
	if n := driverErrCode(err); n != 0 {
		return n == 1053 || n == 1927
	}
	return errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, driver.ErrBadConn) || errs.BrokenConnection(err)
}

// driverErrCode returns the server error number of a driver error, 0 if none.
func driverErrCode(err error) int {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return int(me.Number)
	}
	return 0
}

// quietLogger drops the driver's own log lines ("closing bad idle
// connection"), which would bypass ferry's logger, keeping the last error
// among them: for a failure inside a packet read (a TLS alert from a server
// refusing the client certificate) the driver returns only "invalid
// connection" and logs the cause.
type quietLogger struct {
	mu   *sync.Mutex
	last *error
}

func newQuietLogger() quietLogger { return quietLogger{mu: &sync.Mutex{}, last: new(error)} }

func (l quietLogger) Print(v ...any) {
	if l.mu == nil {
		return
	}
	for _, x := range v {
		if err, ok := x.(error); ok {
			l.mu.Lock()
			*l.last = err
			l.mu.Unlock()
		}
	}
}

// lastError is the last error the driver logged, nil if none.
func (l quietLogger) lastError() error {
	if l.mu == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return *l.last
}

// checkVersion refuses a server older than ferry supports, naming its
// version and the supported ones: MariaDB 10.5 (BINLOG MONITOR, the binlog
// snapshot status ferry's T0 reads), MySQL 8.0 (utf8mb4_0900_bin for keys
// compared byte for byte). docs/connectors.md lists them.
func (c *Conn) checkVersion(si serverInfo) error {
	major, minor, name := 8, 0, "MySQL"
	if si.mariadb {
		major, minor, name = 10, 5, "MariaDB"
	}
	if versionAtLeast(si.version, major, minor) {
		return nil
	}
	return errs.BadConfig(fmt.Sprintf("mysql %s: %s %s is not supported; ferry supports MariaDB 10.5 and later and MySQL 8.0 and later (as source and destination)", c.host, name, si.version),
		"upgrade the server")
}
