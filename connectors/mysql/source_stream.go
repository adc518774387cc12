package mysql

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

const (
	// heartbeatPeriod is how often an idle server sends a heartbeat, after
	// which ferry emits an empty batch at the current position.
	heartbeatPeriod = time.Second
	// readTimeout ends a connection that has sent nothing, not even a
	// heartbeat, for that long: the stream then reconnects.
	readTimeout = 15 * time.Second
	// idleEmit is the longest ferry waits before reporting a position that
	// moved over transactions outside the flow.
	idleEmit = time.Second
	// maxPendingChanges bounds the changes of one transaction held in
	// memory; a larger transaction is emitted in pieces, each at the
	// position where the transaction began (a safe resume point: resuming
	// replays the whole transaction, harmlessly).
	maxPendingChanges = 20000
)

// permanent marks a stream error that a reconnection cannot cure.
type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

func fatal(err error) error { return &permanent{err: err} }

// stream is one StreamChanges call's state; it survives reconnections.
type stream struct {
	c      *Conn
	emit   func(context.Context, *model.ChangeBatch) error
	tables map[model.Namespace]*streamTable
	// lower maps lower-cased names to flow tables, for servers with
	// lower_case_table_names set.
	lower map[model.Namespace]*streamTable
	// newTables selects the tables created during the stream it follows
	// (connector.StreamOptions.NewTables); nil: none.
	newTables func(model.Namespace) bool

	serverID uint32 // the replica server id it registers with
	file     string // the binlog file being read
	boundary binlogPos
	emitted  binlogPos
	lastEmit time.Time

	ids        map[uint64]*tableMap
	inTxn      bool
	standalone bool // the group is one statement, ended by its QUERY event
	changes    []model.Change
	schemas    []model.SchemaChange
	progressed bool   // the current connection delivered a transaction
	txnGTID    string // the GTID of the transaction being read, "" if none
}

// StreamChanges reads the binlog from position from and emits each
// transaction touching the flow's tables as a batch ending at the position
// after its commit. It reconnects with backoff when the server goes away,
// resuming at the last transaction boundary.
func (c *Conn) StreamChanges(ctx context.Context, tables []*model.Table, from model.Position, opts connector.StreamOptions, emit func(context.Context, *model.ChangeBatch) error) error {
	start, err := parsePosition(from)
	if err != nil {
		return err
	}
	if err := c.checkBinlogSettings(); err != nil {
		return err
	}
	if c.server.mariadb && !start.hasGTID {
		// A position recorded before flows kept GTIDs: from here on they do.
		if start, err = c.withGTID(ctx, c.db, start); err != nil {
			return err
		}
	}
	if c.streamsByGTID(ctx, start) {
		if err := c.CheckHistory(ctx, start.position()); err != nil {
			return err
		}
	} else if err := c.checkNotPurged(ctx, start); err != nil {
		return err
	}
	s := &stream{c: c, serverID: c.serverID(opts.Flow), emit: emit, tables: map[model.Namespace]*streamTable{}, lower: map[model.Namespace]*streamTable{},
		newTables: opts.NewTables, boundary: start, emitted: start, file: start.file}
	current, err := c.describeTables(ctx, tables)
	if err != nil {
		return err
	}
	for _, t := range tables {
		st, err := c.newStreamTable(t, current[t.Namespace])
		if err != nil {
			return err
		}
		s.tables[t.Namespace] = st
		s.lower[lowerNS(t.Namespace)] = st
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 200 * time.Millisecond
	bo.MaxInterval = 10 * time.Second
	bo.MaxElapsedTime = 10 * time.Minute
	for {
		err := s.run(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var p *permanent
		if errors.As(err, &p) {
			return p.err
		}
		if s.progressed {
			bo.Reset()
		}
		wait := bo.NextBackOff()
		if wait == backoff.Stop {
			return fmt.Errorf("mysql %s: binlog stream at %s lost, and reconnecting failed for %s: %w", c.host, s.boundary, bo.MaxElapsedTime, c.scrubber.Err(err))
		}
		c.log.Warn("mysql: binlog stream interrupted; reconnecting", "host", c.host, "resume_at", s.boundary.String(), "retry_in", wait.Round(time.Millisecond), "error", c.scrubber.Err(err).Error())
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		check := c.checkNotPurged
		if c.streamsByGTID(ctx, s.boundary) {
			check = func(ctx context.Context, p binlogPos) error { return c.CheckHistory(ctx, p.position()) }
		}
		if err := check(ctx, s.boundary); err != nil {
			var ce *errs.ConfigError
			if errors.As(err, &ce) {
				return err
			}
			// The server may still be starting: the next attempt tells.
		}
	}
}

// checkBinlogSettings refuses a server whose binlog cannot feed CDC.
func (c *Conn) checkBinlogSettings() error {
	switch {
	case !c.server.logBin:
		return c.binlogDisabled()
	case c.server.format != "ROW":
		return &errs.ConfigError{Msg: fmt.Sprintf("mysql %s: binlog_format is %s, and change data capture needs ROW (whole rows in the binlog)", c.host, c.server.format),
			Fix: "SET GLOBAL binlog_format = 'ROW' and set binlog_format=ROW in the server's configuration (sessions already open keep their format), or copy without CDC with --mode snapshot"}
	case c.server.rowImage != "FULL":
		return &errs.ConfigError{Msg: fmt.Sprintf("mysql %s: binlog_row_image is %s, and change data capture needs FULL (every column of every changed row)", c.host, c.server.rowImage),
			Fix: "SET GLOBAL binlog_row_image = 'FULL' and set binlog_row_image=FULL in the server's configuration, or copy without CDC with --mode snapshot"}
	}
	return nil
}

// checkNotPurged refuses to start from a binlog file the server no longer has.
func (c *Conn) checkNotPurged(ctx context.Context, p binlogPos) error {
	rows, err := c.db.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		if code := errCode(err); code == 1227 || code == 1142 {
			return &errs.ConfigError{Msg: fmt.Sprintf("mysql %s: user %q may not list the binlogs: %s", c.host, c.user, c.scrubber.Err(err)),
				Fix: c.replicationGrant()}
		}
		if code := errCode(err); code == 1381 {
			return c.binlogDisabled()
		}
		return fmt.Errorf("mysql %s: list binlogs: %w", c.host, c.scrubber.Err(err))
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	var files []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		name, _ := asString(vals[0])
		if name == p.file {
			return nil
		}
		files = append(files, name)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	oldest := "none"
	if len(files) > 0 {
		oldest = files[0]
	}
	return &errs.ConfigError{Msg: fmt.Sprintf("mysql %s: binlog %s was purged (the oldest binlog is %s); the changes since the flow's checkpoint %s are gone", c.host, p.file, oldest, p),
		Fix: "the flow must restart with --restart (and increase binlog_expire_logs_seconds, or expire_logs_days, so binlogs outlive a pause of the flow)"}
}

// errCode returns the server error number in err, 0 if none.
func errCode(err error) int {
	var me *gomysql.MyError
	if errors.As(err, &me) {
		return int(me.Code)
	}
	if n := driverErrCode(err); n != 0 {
		return n
	}
	if m := errCodeRe.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

var errCodeRe = regexp.MustCompile(`(?i)error (\d{4})`)

// serverID is the replica server id a stream registers with: derived from
// the flow's name, so a stale process of the same flow is disconnected by
// the server when a new one connects, while two flows never collide.
func (c *Conn) serverID(flow string) uint32 {
	if c.opts.serverID != 0 {
		return c.opts.serverID
	}
	if flow != "" {
		h := fnv.New32a()
		h.Write([]byte(flow))
		return 0x40000000 | h.Sum32()>>2
	}
	// Random, so that two flows never share an id (a server drops the older
	// of two replicas with the same id).
	return 0x40000000 | rand.Uint32()>>2
}

func (c *Conn) syncerConfig(id uint32) replication.BinlogSyncerConfig {
	host, portStr, _ := net.SplitHostPort(c.host)
	port, _ := strconv.ParseUint(portStr, 10, 16)
	flavor := gomysql.MySQLFlavor
	if c.server.mariadb {
		flavor = gomysql.MariaDBFlavor
	}
	return replication.BinlogSyncerConfig{
		ServerID:                id,
		Flavor:                  flavor,
		Host:                    host,
		Port:                    uint16(port),
		User:                    c.user,
		Password:                c.password,
		TLSConfig:               c.tlsConfig(),
		TimestampStringLocation: time.UTC,
		HeartbeatPeriod:         heartbeatPeriod,
		ReadTimeout:             readTimeout,
		DisableRetrySync:        true, // ferry reconnects itself, at a transaction boundary
		Logger:                  slog.New(slog.DiscardHandler),
		EventCacheCount:         2048,
		Localhost:               "ferry",
	}
}

// checkReplication checks that the user may read the binlog as a replica.
func (c *Conn) checkReplication(ctx context.Context) error {
	head, err := c.masterStatus(ctx, c.db)
	if err != nil {
		return err
	}
	// A random id: the flow's own could disconnect a running stream.
	syncer := replication.NewBinlogSyncer(c.syncerConfig(0x40000000 | rand.Uint32()>>2))
	defer syncer.Close()
	if _, err := syncer.StartSync(gomysql.Position{Name: head.file, Pos: head.pos}); err != nil {
		return c.replicationError(err)
	}
	return nil
}

func (c *Conn) replicationError(err error) error {
	if te := c.tlsError(err); te != nil {
		return te
	}
	switch errCode(err) {
	case 1227, 1045, 1142:
		return &errs.ConfigError{Msg: fmt.Sprintf("mysql %s: user %q may not read the binlog as a replica: %s", c.host, c.user, c.scrubber.Err(err)),
			Fix: c.replicationGrant()}
	case 1236:
		return fatal(fmt.Errorf("mysql %s: the server refused to send its binlog: %s", c.host, c.scrubber.Err(err)))
	}
	return err
}

// run streams over one connection until an error.
func (s *stream) run(ctx context.Context) error {
	c := s.c
	syncer := replication.NewBinlogSyncer(c.syncerConfig(s.serverID))
	defer syncer.Close()
	s.ids = map[uint64]*tableMap{}
	s.inTxn, s.standalone, s.changes, s.schemas, s.progressed = false, false, nil, nil, false
	s.file = s.boundary.file
	var streamer *replication.BinlogStreamer
	var err error
	byGTID := c.streamsByGTID(ctx, s.boundary)
	if byGTID {
		// By GTID: the same logical point on whichever server of the
		// topology this is; the server's first (artificial) rotate event
		// names the file it reads.
		var set gomysql.GTIDSet
		if set, err = parseGTIDSet(s.boundary.gtid); err != nil {
			return fatal(fmt.Errorf("mysql %s: GTID position %s: %w", c.host, s.boundary, err))
		}
		streamer, err = syncer.StartSyncGTID(set)
	} else {
		streamer, err = syncer.StartSync(gomysql.Position{Name: s.boundary.file, Pos: s.boundary.pos})
	}
	if err != nil {
		err = c.replicationError(err)
		var ce *errs.ConfigError
		if errors.As(err, &ce) {
			return fatal(err)
		}
		return err
	}
	for {
		ev, err := streamer.GetEvent(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if byGTID && errCode(err) == 1236 {
				return fatal(c.gtidPurged(s.boundary, err))
			}
			return c.replicationError(err)
		}
		if err := s.handle(ctx, ev.Header, ev.Event); err != nil {
			return err
		}
	}
}

// replicationGrant is the statement that gives user what CDC needs.
func (c *Conn) replicationGrant() string {
	privs := "REPLICATION SLAVE, REPLICATION CLIENT"
	if c.server.mariadb && versionAtLeast(c.server.version, 10, 5) {
		privs = "REPLICATION SLAVE, BINLOG MONITOR" // REPLICATION CLIENT's new name
	}
	return fmt.Sprintf("GRANT %s ON *.* TO %s", privs, quoteString(c.user))
}

// versionAtLeast compares a server version ("10.11.6-MariaDB-log") with
// major.minor.
func versionAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(strings.TrimFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}
