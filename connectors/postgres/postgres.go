package postgres

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/internal/cputune"
	"github.com/ferrydb/ferry/model"
)

func init() {
	connector.Register(connector.Registration{
		Scheme:    "postgres",
		Aliases:   []string{"postgresql"},
		Summary:   "PostgreSQL (source with logical-replication CDC, destination with COPY and upserts)",
		Example:   "postgres://user:pass@localhost:5432/db?sslmode=disable",
		Open:      connector.OpenerOf(Open),
		Prototype: (*Conn)(nil),
	})
}

var (
	_ connector.Source           = (*Conn)(nil)
	_ connector.ChangeSource     = (*Conn)(nil)
	_ connector.Destination      = (*Conn)(nil)
	_ connector.ChangeApplier    = (*Conn)(nil)
	_ connector.CheckpointKeeper = (*Conn)(nil)
	_ connector.TableFinisher    = (*Conn)(nil)
	_ connector.SchemaChanger    = (*Conn)(nil)
	_ connector.FlowDropper      = (*Conn)(nil)
	_ connector.Declarer         = (*Conn)(nil)
	_ connector.Preflighter      = (*Conn)(nil)
	_ connector.TableChecker     = (*Conn)(nil)
)

// sessionParams are set on every connection ferry opens, so values are read
// and written in one fixed text form whatever the server's defaults.
var sessionParams = map[string]string{
	"application_name":   "ferry",
	"TimeZone":           "UTC",
	"DateStyle":          "ISO, MDY",
	"IntervalStyle":      "iso_8601",
	"extra_float_digits": "3",
	"bytea_output":       "hex",
	"lc_monetary":        "C",
	"client_encoding":    "UTF8",
	// A commit ferry sees succeed must be durable: the engine then moves its
	// checkpoint and acknowledges the source, which releases the WAL or
	// binlog that could replay it. A server (or role) running with
	// synchronous_commit = off would lose the last commits in a crash after
	// ferry had acknowledged them.
	"synchronous_commit": "on",
}

// Options are the URL parameters ferry reads itself; the others go to pgx.
type Options struct {
	// Slot and Publication name a replication slot and a publication the
	// user created (or wants ferry to use); empty means ferry's own,
	// named after the flow.
	Slot, Publication string
	// Snapshot (default true) reads the copy through the slot's exported
	// snapshot when it is available.
	Snapshot bool
	// Heartbeat is how often an idle stream writes a logical message so
	// the slot advances.
	Heartbeat time.Duration
	// ReconnectTimeout bounds how long a lost replication connection is
	// retried.
	ReconnectTimeout time.Duration
}

// Conn is an opened PostgreSQL database: a source, a destination, or both.
// It holds what both halves share (the URL, the pool, the type cache); each
// half keeps its own state, src for the source's methods (source*.go) and
// dst for the destination's (destination*.go), and neither touches the
// other's.
type Conn struct {
	raw   string         // the URL without ferry's parameters, password included
	scrub *errs.Scrubber // the URL's secrets, out of every error
	opts  Options
	tls   tlsParams // for messages only: pgx applies them
	cfg   *pgxpool.Config
	pool  *pgxpool.Pool

	types *typeCache

	src sourceState
	dst destinationState

	// major is the server's major version (15), 0 if unknown.
	major int
	// local: the server runs on this machine (connector.Colocated).
	local bool
}

var slotNameRe = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// Open parses a postgres URL and connects, so that a wrong password, an
// unreachable host or a missing database is reported before anything else.
func Open(ctx context.Context, u *url.URL) (*Conn, error) {
	raw := u.String()
	c := &Conn{scrub: errs.NewScrubber(raw), opts: Options{Snapshot: true, Heartbeat: 10 * time.Second, ReconnectTimeout: 2 * time.Minute}}
	q := u.Query()
	c.tls = tlsParamsOf(q)
	const fix = "postgres URLs look like postgres://user:password@host:5432/database?sslmode=disable&slot=name&publication=name"
	if v := q.Get("slot"); v != "" {
		if !slotNameRe.MatchString(v) {
			return nil, errs.BadConfig(fmt.Sprintf("slot name %q: use at most 63 lower-case letters, digits and underscores", v), fix)
		}
		c.opts.Slot = v
	}
	if v := q.Get("publication"); v != "" {
		c.opts.Publication = v
	}
	if v := q.Get("snapshot"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, errs.BadConfig(fmt.Sprintf("snapshot=%q: use true or false", v), fix)
		}
		c.opts.Snapshot = b
	}
	for name, dst := range map[string]*time.Duration{"heartbeat": &c.opts.Heartbeat, "reconnect_timeout": &c.opts.ReconnectTimeout} {
		if v := q.Get(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, errs.BadConfig(fmt.Sprintf("%s=%q: use a duration such as 10s", name, v), fix)
			}
			*dst = d
		}
	}
	for _, k := range []string{"slot", "publication", "snapshot", "heartbeat", "reconnect_timeout"} {
		q.Del(k)
	}
	v := *u
	v.Scheme = "postgres"
	v.RawQuery = q.Encode()
	c.raw = v.String()
	cfg, err := pgxpool.ParseConfig(c.raw)
	if err != nil {
		if tlsFileProblem(err) {
			return nil, &errs.ConfigError{Msg: "postgres URL " + errs.Redact(c.raw) + ": cannot use its TLS files", Err: c.scrub.Err(err),
				Fix: "sslrootcert= names a PEM file of CA certificates, sslcert= a PEM certificate and sslkey= its PEM key (sslpassword= when the key is encrypted), each readable by ferry"}
		}
		return nil, &errs.ConfigError{Msg: "invalid postgres URL " + errs.Redact(c.raw), Fix: fix, Err: c.scrub.Err(err)}
	}
	for k, v := range sessionParams {
		cfg.ConnConfig.RuntimeParams[k] = v
	}
	cfg.MaxConns = 64
	cfg.MinConns = 0
	cfg.MaxConnIdleTime = time.Minute
	cfg.ConnConfig.ConnectTimeout = 15 * time.Second
	// Statements are built per table; the describe round trip of the
	// default mode costs more than it saves for them.
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	cfg.ConnConfig.BuildFrontend = bufferedFrontend
	c.cfg = cfg
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, c.classify(err, "connect")
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		pool.Close()
		return nil, c.classify(err, "connect")
	}
	version := conn.Conn().PgConn().ParameterStatus("server_version")
	c.local = cputune.OnThisMachine(conn.Conn().PgConn().Conn().RemoteAddr())
	conn.Release()
	if err := c.checkVersion(version); err != nil {
		pool.Close()
		return nil, err
	}
	c.major = parseMajor(version)
	c.pool = pool
	c.types = newTypeCache()
	return c, nil
}

// readBufferBytes is how much a connection reads from the server at once.
// The driver reads 8 KB at a time: a copy's stream of a gigabyte took
// 128,000 read calls, and ferry's system CPU (2.5 s in a 15 s copy on two
// cores) was more than its own work; psql's pipes doing the same copy
// used almost none.
const readBufferBytes = 128 << 10

// bufferedFrontend is the driver's protocol reader on a buffer of
// readBufferBytes: one read call takes what the server has sent, up to it.
func bufferedFrontend(r io.Reader, w io.Writer) *pgproto3.Frontend {
	return pgproto3.NewFrontend(bufio.NewReaderSize(r, readBufferBytes), w)
}

// ServerOnThisMachine says whether the server is on this machine: the
// first connection's remote address was a Unix socket, a loopback address
// or one of this machine's.
func (c *Conn) ServerOnThisMachine() bool { return c.local }

// Close releases every connection.
func (c *Conn) Close() error {
	if c == nil {
		return nil
	}
	c.src.release()
	if c.pool != nil {
		c.pool.Close()
	}
	return nil
}

// where names the server for messages: host:port/database, no secrets.
func (c *Conn) where() string {
	cc := c.cfg.ConnConfig
	return fmt.Sprintf("%s:%d/%s", cc.Host, cc.Port, cc.Database)
}

// quoteIdent quotes an identifier.
func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

var plainIdent = regexp.MustCompile(`^[a-z_][a-z0-9_$]*$`)

// showIdent quotes an identifier only where SQL needs it, for messages a
// user copies from.
func showIdent(s string) string {
	if plainIdent.MatchString(s) {
		return s
	}
	return quoteIdent(s)
}

func showQualified(schema, table string) string {
	if schema == "" {
		return showIdent(table)
	}
	return showIdent(schema) + "." + showIdent(table)
}

// quoteLiteral quotes a string constant.
func quoteLiteral(s string) string {
	if strings.Contains(s, `\`) {
		return `E'` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `'`, `''`) + `'`
	}
	return `'` + strings.ReplaceAll(s, `'`, `''`) + `'`
}

func qualified(ns model.Namespace) string {
	if ns.Schema == "" {
		return quoteIdent(ns.Table)
	}
	return quoteIdent(ns.Schema) + "." + quoteIdent(ns.Table)
}

func schemaOf(ns model.Namespace) string {
	if ns.Schema == "" {
		return "public"
	}
	return ns.Schema
}

type querier interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
	QueryRow(context.Context, string, ...any) pgx.Row
}
