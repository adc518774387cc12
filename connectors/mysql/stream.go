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

// streamTable is a table of the flow as the stream decodes it.
type streamTable struct {
	table  *model.Table // the definition the engine knows
	codecs []*codec
	keyIdx []int
	// minCols is the column count of the oldest definition whose rows the
	// current one decodes: columns past it were appended (ADD COLUMN without
	// FIRST or AFTER), so an older row holds a prefix of the columns and the
	// rest were NULL (ferry only follows nullable columns without default).
	minCols int
}

// tableMap is what a TABLE_MAP event announced for a table id.
type tableMap struct {
	ns model.Namespace
	st *streamTable // nil: not in the flow
}

// stream is one StreamChanges call's state; it survives reconnections.
type stream struct {
	c      *Conn
	emit   func(context.Context, *model.ChangeBatch) error
	tables map[model.Namespace]*streamTable
	// lower maps lower-cased names to flow tables, for servers with
	// lower_case_table_names set.
	lower map[model.Namespace]*streamTable

	serverID uint32 // the replica server id it registers with
	file     string // the binlog file being read
	boundary binlogPos
	emitted  binlogPos
	lastEmit time.Time

	ids        map[uint64]*tableMap
	inTxn      bool
	standalone bool // the group is one statement, ended by its QUERY event
	changes    []model.Change
	schemas    []*model.Table
	txnTime    time.Time
	progressed bool // the current connection delivered a transaction
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
	if err := c.checkNotPurged(ctx, start); err != nil {
		return err
	}
	s := &stream{c: c, serverID: c.serverID(opts.Flow), emit: emit, tables: map[model.Namespace]*streamTable{}, lower: map[model.Namespace]*streamTable{},
		boundary: start, emitted: start, file: start.file}
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
		if err := c.checkNotPurged(ctx, s.boundary); err != nil {
			var ce *connector.ConfigError
			if errors.As(err, &ce) {
				return err
			}
			// The server may still be starting: the next attempt tells.
		}
	}
}

func lowerNS(ns model.Namespace) model.Namespace {
	return model.Namespace{Schema: strings.ToLower(ns.Schema), Table: strings.ToLower(ns.Table)}
}

// newStreamTable prepares the decoding of table t, whose current definition
// (for the columns' character sets) is cur, nil when the table is gone.
func (c *Conn) newStreamTable(t *model.Table, cur *tableInfo) (*streamTable, error) {
	st := &streamTable{table: t, keyIdx: t.KeyIndexes(), minCols: len(t.Columns)}
	for _, col := range t.Columns {
		charset := ""
		if cur != nil {
			if i := cur.table.ColumnIndex(col.Name); i >= 0 {
				charset = cur.charsets[i]
			}
		}
		if col.Type.Kind == model.KindUnknown {
			return nil, fmt.Errorf("table %s, column %s: type %s is not supported", t.Namespace, col.Name, col.Type.Native)
		}
		cd, err := newCodec(col, charset, c.opts.zeroNull)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", t.Namespace, err)
		}
		st.codecs = append(st.codecs, cd)
	}
	return st, nil
}

// checkBinlogSettings refuses a server whose binlog cannot feed CDC.
func (c *Conn) checkBinlogSettings() error {
	switch {
	case !c.server.logBin:
		return c.binlogDisabled()
	case c.server.format != "ROW":
		return &connector.ConfigError{Msg: fmt.Sprintf("mysql %s: binlog_format is %s, and change data capture needs ROW (whole rows in the binlog)", c.host, c.server.format),
			Fix: "SET GLOBAL binlog_format = 'ROW' and set binlog_format=ROW in the server's configuration (sessions already open keep their format), or copy without CDC with --mode snapshot"}
	case c.server.rowImage != "FULL":
		return &connector.ConfigError{Msg: fmt.Sprintf("mysql %s: binlog_row_image is %s, and change data capture needs FULL (every column of every changed row)", c.host, c.server.rowImage),
			Fix: "SET GLOBAL binlog_row_image = 'FULL' and set binlog_row_image=FULL in the server's configuration, or copy without CDC with --mode snapshot"}
	}
	return nil
}

// checkNotPurged refuses to start from a binlog file the server no longer has.
func (c *Conn) checkNotPurged(ctx context.Context, p binlogPos) error {
	rows, err := c.db.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		if code := errCode(err); code == 1227 || code == 1142 {
			return &connector.ConfigError{Msg: fmt.Sprintf("mysql %s: user %q may not list the binlogs: %s", c.host, c.user, c.scrubber.Err(err)),
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
	return &connector.ConfigError{Msg: fmt.Sprintf("mysql %s: binlog %s was purged (the oldest binlog is %s); the changes since the flow's checkpoint %s are gone", c.host, p.file, oldest, p),
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
	switch errCode(err) {
	case 1227, 1045, 1142:
		return &connector.ConfigError{Msg: fmt.Sprintf("mysql %s: user %q may not read the binlog as a replica: %s", c.host, c.user, c.scrubber.Err(err)),
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
	streamer, err := syncer.StartSync(gomysql.Position{Name: s.boundary.file, Pos: s.boundary.pos})
	if err != nil {
		err = c.replicationError(err)
		var ce *connector.ConfigError
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
			return c.replicationError(err)
		}
		if err := s.handle(ctx, ev.Header, ev.Event); err != nil {
			return err
		}
	}
}

// handle processes one event. Positions only advance at transaction
// boundaries, so a reconnection never resumes inside a transaction.
func (s *stream) handle(ctx context.Context, h *replication.EventHeader, ev replication.Event) error {
	switch e := ev.(type) {
	case *replication.RotateEvent:
		s.file = string(e.NextLogName)
		if !s.inTxn {
			s.boundary = binlogPos{file: s.file, pos: uint32(e.Position)}
		}
		return nil
	case *replication.HeartbeatEvent:
		return s.idle(ctx)
	case *replication.MariadbGTIDEvent:
		s.begin(e.IsStandalone())
		return nil
	case *replication.GTIDEvent:
		s.begin(true) // a BEGIN query follows unless the group is one DDL
		return nil
	case *replication.GtidTaggedLogEvent:
		s.begin(true)
		return nil
	case *replication.TableMapEvent:
		return s.tableMap(ctx, e, h)
	case *replication.RowsEvent:
		return s.rows(ctx, e, h)
	case *replication.XIDEvent:
		return s.commit(ctx, h)
	case *replication.QueryEvent:
		return s.query(ctx, e, h)
	case *replication.TransactionPayloadEvent:
		for _, inner := range e.Events {
			ih := *inner.Header
			ih.LogPos = h.LogPos // inner events live inside this one
			if err := s.handle(ctx, &ih, inner.Event); err != nil {
				return err
			}
		}
		return nil
	}
	s.advance(h)
	return nil
}

func (s *stream) begin(standalone bool) {
	s.inTxn = true
	s.standalone = standalone
	s.changes, s.schemas = s.changes[:0], nil
}

// advance moves the resume point over an event outside any transaction.
func (s *stream) advance(h *replication.EventHeader) {
	if s.inTxn || h.LogPos == 0 || h.Flags&replication.LOG_EVENT_ARTIFICIAL_F != 0 {
		return
	}
	p := binlogPos{file: s.file, pos: h.LogPos}
	if c, err := p.compare(s.boundary); err == nil && c > 0 {
		s.boundary = p
	}
}

// idle emits an empty batch at the current position, so a caught-up flow
// can tell it is caught up.
func (s *stream) idle(ctx context.Context) error {
	if s.inTxn {
		return nil
	}
	if c, err := s.boundary.compare(s.emitted); err == nil && c <= 0 && time.Since(s.lastEmit) < 10*idleEmit {
		return nil
	}
	return s.send(ctx, &model.ChangeBatch{Position: s.boundary.position(), CommitTime: time.Now()}, s.boundary)
}

func (s *stream) send(ctx context.Context, b *model.ChangeBatch, at binlogPos) error {
	if err := s.emit(ctx, b); err != nil {
		// The caller refused the batch: not an interrupted stream to
		// reconnect, and its error is the one StreamChanges returns.
		return fatal(err)
	}
	s.emitted = at
	s.lastEmit = time.Now()
	return nil
}

// commit ends a transaction (or a standalone statement) at the event whose
// header is h: the position after it is a safe resume point.
func (s *stream) commit(ctx context.Context, h *replication.EventHeader) error {
	pos := binlogPos{file: s.file, pos: h.LogPos}
	s.inTxn, s.standalone = false, false
	if h.LogPos == 0 {
		pos = s.boundary // an event without a position (never expected at a commit)
	}
	s.boundary = pos
	s.progressed = true
	commitTime := time.Unix(int64(h.Timestamp), 0)
	if len(s.changes) == 0 && len(s.schemas) == 0 {
		if time.Since(s.lastEmit) < idleEmit {
			return nil
		}
		return s.send(ctx, &model.ChangeBatch{Position: pos.position(), CommitTime: commitTime}, pos)
	}
	b := &model.ChangeBatch{Schemas: s.schemas, Changes: s.changes, Position: pos.position(), CommitTime: commitTime}
	s.changes, s.schemas = nil, nil
	return s.send(ctx, b, pos)
}

// flow finds a table of the flow by name.
func (s *stream) flow(ns model.Namespace) *streamTable {
	if st := s.tables[ns]; st != nil {
		return st
	}
	if s.c.server.lowerCase != 0 {
		return s.lower[lowerNS(ns)]
	}
	return nil
}

func (s *stream) at(h *replication.EventHeader) string {
	return fmt.Sprintf("%s:%d", s.file, h.LogPos)
}

func (s *stream) tableMap(ctx context.Context, e *replication.TableMapEvent, h *replication.EventHeader) error {
	ns := model.Namespace{Schema: string(e.Schema), Table: string(e.Table)}
	tm := &tableMap{ns: ns, st: s.flow(ns)}
	s.ids[e.TableID] = tm
	if tm.st == nil {
		return nil
	}
	if n := int(e.ColumnCount); n >= tm.st.minCols && n <= len(tm.st.table.Columns) && namesMatch(e, tm.st.table) {
		return nil
	}
	// The table has other columns than the flow knows: a column was added
	// before this point (and the flow resumed after the ALTER), or the
	// table changed in a way ferry cannot follow.
	return s.reload(ctx, tm.st, int(e.ColumnCount), fmt.Sprintf("the binlog at %s has rows of %d columns, the flow knows %d", s.at(h), e.ColumnCount, len(tm.st.table.Columns)))
}

// namesMatch compares the column names a TABLE_MAP carries
// (binlog_row_metadata=FULL) with the table's.
func namesMatch(e *replication.TableMapEvent, t *model.Table) bool {
	names := e.ColumnNameString()
	if len(names) == 0 {
		return true
	}
	for i, n := range names {
		if i >= len(t.Columns) || n != t.Columns[i].Name {
			return false
		}
	}
	return true
}

// reload re-reads a flow table's definition after a change the flow may
// follow: it must only add columns (nullable, without a default, not
// generated) to what the flow knows, and have wantCols columns (0: any).
func (s *stream) reload(ctx context.Context, st *streamTable, wantCols int, why string) error {
	old := st.table
	infos, err := s.c.describeTables(ctx, []*model.Table{old})
	if err != nil {
		return err // the server may be going away: retried
	}
	cur := infos[old.Namespace]
	if cur == nil {
		return fatal(fmt.Errorf("table %s: %s, and the table no longer exists; restart the flow (ferry sync --restart)", old.Namespace, why))
	}
	if err := cur.problem(); err != nil {
		return fatal(err)
	}
	nt := cur.table
	if wantCols > 0 && len(nt.Columns) != wantCols {
		return fatal(fmt.Errorf("table %s: %s, and the table now has %d: its definition changed again since, so ferry cannot tell which columns those rows hold; restart the flow (ferry sync --restart)", old.Namespace, why, len(nt.Columns)))
	}
	var problems []string
	for _, oc := range old.Columns {
		i := nt.ColumnIndex(oc.Name)
		if i < 0 {
			problems = append(problems, fmt.Sprintf("column %s was dropped or renamed", oc.Name))
			continue
		}
		nc := nt.Columns[i]
		if nc.Type.Native != oc.Type.Native {
			problems = append(problems, fmt.Sprintf("column %s changed type from %s to %s", oc.Name, oc.Type.Native, nc.Type.Native))
		}
		if nc.Nullable != oc.Nullable {
			problems = append(problems, fmt.Sprintf("column %s changed nullability", oc.Name))
		}
	}
	if strings.Join(nt.PrimaryKey, "\x00") != strings.Join(old.PrimaryKey, "\x00") {
		problems = append(problems, fmt.Sprintf("primary key changed from (%s) to (%s)", strings.Join(old.PrimaryKey, ", "), strings.Join(nt.PrimaryKey, ", ")))
	}
	for i, nc := range nt.Columns {
		if old.ColumnIndex(nc.Name) >= 0 {
			continue
		}
		switch {
		case cur.generated[i]:
			problems = append(problems, fmt.Sprintf("added column %s is generated: the rows that existed got values no binlog event carries", nc.Name))
		case cur.defaults[i] != nil:
			problems = append(problems, fmt.Sprintf("added column %s has the default %s: the rows that existed got it without a binlog event", nc.Name, *cur.defaults[i]))
		case !nc.Nullable:
			problems = append(problems, fmt.Sprintf("added column %s is NOT NULL: the rows that existed got a value without a binlog event", nc.Name))
		}
	}
	if len(problems) > 0 {
		return fatal(fmt.Errorf("table %s: %s; ferry follows only added columns that are nullable and have no default, and the table changed otherwise: %s; the flow stops so nothing wrong is written: recreate the destination table and restart the flow (ferry sync --restart)", old.Namespace, why, strings.Join(problems, "; ")))
	}
	if len(nt.Columns) == len(old.Columns) {
		return nil // nothing new (a replayed ALTER the flow already followed)
	}
	fresh, err := s.c.newStreamTable(nt, cur)
	if err != nil {
		return fatal(err)
	}
	fresh.minCols = len(nt.Columns)
	appended := true
	for i, oc := range old.Columns {
		if nt.Columns[i].Name != oc.Name {
			appended = false
		}
	}
	if appended {
		fresh.minCols = st.minCols
	}
	*st = *fresh
	s.schemas = append(s.schemas, nt.Clone())
	return nil
}

func (s *stream) rows(ctx context.Context, e *replication.RowsEvent, h *replication.EventHeader) error {
	tm := s.ids[e.TableID]
	if tm == nil || tm.st == nil {
		return nil
	}
	st := tm.st
	t := st.table
	for _, skipped := range e.SkippedColumns {
		if len(skipped) > 0 {
			return fatal(&connector.ConfigError{Msg: fmt.Sprintf("mysql %s: a row of table %s at %s lacks column(s): the binlog was written with binlog_row_image other than FULL", s.c.host, t.Namespace, s.at(h)),
				Fix: "SET GLOBAL binlog_row_image = 'FULL' (and in the server's configuration), then restart the flow with --restart"})
		}
	}
	ns := t.Namespace
	where := func(err error) error {
		return fatal(fmt.Errorf("table %s, binlog %s: %w", ns, s.at(h), err))
	}
	if n := int(e.ColumnCount); n < len(t.Columns) {
		// A row from before columns were appended: they were NULL.
		for i, r := range e.Rows {
			e.Rows[i] = append(r[:n:n], make([]any, len(t.Columns)-n)...)
		}
	}
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		for _, raw := range e.Rows {
			row, err := decodeRow(t, st.codecs, raw, true)
			if err != nil {
				return where(err)
			}
			s.changes = append(s.changes, model.Change{Op: model.OpInsert, Table: ns, Row: row})
		}
	case replication.EnumRowsEventTypeDelete:
		for _, raw := range e.Rows {
			key, err := s.key(st, raw)
			if err != nil {
				return where(err)
			}
			s.changes = append(s.changes, model.Change{Op: model.OpDelete, Table: ns, Key: key})
		}
	case replication.EnumRowsEventTypeUpdate:
		if len(e.Rows)%2 != 0 {
			return where(fmt.Errorf("update event with %d row images", len(e.Rows)))
		}
		for i := 0; i < len(e.Rows); i += 2 {
			before, err := s.key(st, e.Rows[i])
			if err != nil {
				return where(err)
			}
			row, err := decodeRow(t, st.codecs, e.Rows[i+1], true)
			if err != nil {
				return where(err)
			}
			ch := model.Change{Op: model.OpUpdate, Table: ns, Row: row}
			if keyChanged(t, st.keyIdx, before, row) {
				ch.Key = before
			}
			s.changes = append(s.changes, ch)
		}
	default:
		return where(fmt.Errorf("unknown rows event type %v", h.EventType))
	}
	if len(s.changes) >= maxPendingChanges && len(s.schemas) == 0 {
		// A large transaction: emit what it has so far at the position where
		// it began, which stays a safe resume point.
		b := &model.ChangeBatch{Changes: s.changes, Position: s.boundary.position()}
		s.changes = nil
		return s.send(ctx, b, s.boundary)
	}
	return nil
}

// key decodes the primary-key values of a row image, in key order.
func (s *stream) key(st *streamTable, raw []any) (model.Row, error) {
	key := make(model.Row, len(st.keyIdx))
	for i, j := range st.keyIdx {
		v, err := st.codecs[j].decode(raw[j], true)
		if err != nil {
			return nil, columnErr(st.table, st.table.Columns[j].Name, nil, err)
		}
		key[i] = v
	}
	return key, nil
}

func keyChanged(t *model.Table, keyIdx []int, before, after model.Row) bool {
	for i, j := range keyIdx {
		a, err1 := model.AppendCanonical(nil, t.Columns[j].Type, before[i])
		b, err2 := model.AppendCanonical(nil, t.Columns[j].Type, after[j])
		if err1 != nil || err2 != nil || string(a) != string(b) {
			return true
		}
	}
	return false
}

func (s *stream) query(ctx context.Context, e *replication.QueryEvent, h *replication.EventHeader) error {
	q := string(e.Query)
	st := classify(q, string(e.Schema))
	switch st.kind {
	case stmtBegin:
		s.inTxn, s.standalone = true, false
		return nil
	case stmtCommit:
		return s.commit(ctx, h)
	}
	var touched []*streamTable
	for _, ns := range st.tables {
		if t := s.flow(ns); t != nil {
			touched = append(touched, t)
		}
	}
	for _, db := range st.databases {
		for ns, t := range s.tables {
			if ns.Schema == db || (s.c.server.lowerCase != 0 && strings.EqualFold(ns.Schema, db)) {
				touched = append(touched, t)
			}
		}
	}
	if len(touched) > 0 {
		stmt := q
		if len(stmt) > 300 {
			stmt = stmt[:300] + "..."
		}
		switch st.kind {
		case stmtSchemaChange:
			return fatal(fmt.Errorf("table %s changed at binlog %s: %q; ferry can follow only ALTER TABLE ... ADD COLUMN (a nullable column without a default), so the flow stops here and writes nothing wrong: recreate the destination table to match and restart the flow (ferry sync --restart)", touched[0].table.Namespace, s.at(h), stmt))
		case stmtDML:
			return fatal(&connector.ConfigError{Msg: fmt.Sprintf("mysql %s: table %s was changed by a statement logged as SQL text at binlog %s (%q), which carries no rows; a session used binlog_format STATEMENT or MIXED", s.c.host, touched[0].table.Namespace, s.at(h), stmt),
				Fix: "make every writer use binlog_format=ROW (SET GLOBAL binlog_format = 'ROW' and reconnect the writers), then restart the flow with --restart"})
		case stmtAddColumns:
			for _, t := range touched {
				if err := s.reload(ctx, t, 0, fmt.Sprintf("%q at binlog %s", stmt, s.at(h))); err != nil {
					return err
				}
			}
		}
	}
	if s.standalone || !s.inTxn {
		return s.commit(ctx, h)
	}
	return nil
}
