package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// binlogPos is a binlog file and the offset of the next event in it, and,
// where the server has GTIDs, the GTID position there (MariaDB's
// domain-server-seq list, or MySQL's executed GTID set). Its text form, a
// model.Position, is "binlog.000042:1234", or "binlog.000042:1234@0-1-42"
// with the GTID: file and offset belong to one server, the GTID to the
// replication topology, so a flow resumes by GTID on a replica promoted in
// the server's place (source_gtid.go).
type binlogPos struct {
	file string
	pos  uint32
	// gtid is the canonical GTID position; hasGTID tells "" (a server with
	// no transaction yet) from a position without one (older flows, MySQL
	// without gtid_mode).
	gtid    string
	hasGTID bool
}

func (p binlogPos) String() string {
	s := p.file + ":" + strconv.FormatUint(uint64(p.pos), 10)
	if p.hasGTID {
		s += "@" + p.gtid
	}
	return s
}

func (p binlogPos) position() model.Position { return model.Position(p.String()) }

// at is p moved to another file and offset of the same server, with the same
// GTID position (an event outside any transaction).
func (p binlogPos) at(file string, pos uint32) binlogPos {
	p.file, p.pos = file, pos
	return p
}

func parsePosition(s model.Position) (binlogPos, error) {
	filePos, gtid, hasGTID := strings.Cut(string(s), "@")
	file, off, ok := strings.Cut(filePos, ":")
	if !ok || file == "" {
		return binlogPos{}, fmt.Errorf("mysql: bad binlog position %q: want file:offset", s)
	}
	n, err := strconv.ParseUint(off, 10, 32)
	if err != nil {
		return binlogPos{}, fmt.Errorf("mysql: bad binlog position %q: %v", s, err)
	}
	if _, _, err := fileSeq(file); err != nil {
		return binlogPos{}, fmt.Errorf("mysql: bad binlog position %q: %w", s, err)
	}
	p := binlogPos{file: file, pos: uint32(n), hasGTID: hasGTID}
	if hasGTID {
		set, err := parseGTIDSet(gtid)
		if err != nil {
			return binlogPos{}, fmt.Errorf("mysql: bad binlog position %q: %w", s, err)
		}
		p.gtid = set.String()
	}
	return p, nil
}

// fileSeq splits "binlog.000042" into its base name and sequence number.
func fileSeq(file string) (string, uint64, error) {
	i := strings.LastIndexByte(file, '.')
	if i < 0 {
		return "", 0, fmt.Errorf("binlog file %q has no sequence number", file)
	}
	n, err := strconv.ParseUint(file[i+1:], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("binlog file %q has no sequence number", file)
	}
	return file[:i], n, nil
}

// compare orders two positions: by GTID when both have one (they may come
// from two servers of one topology), else by file and offset.
func (p binlogPos) compare(q binlogPos) (int, error) {
	if p.hasGTID && q.hasGTID {
		return compareGTID(p.gtid, q.gtid)
	}
	return p.compareFile(q)
}

// compareFile orders two positions of one server: by the file's sequence
// number, then offset.
func (p binlogPos) compareFile(q binlogPos) (int, error) {
	pb, pn, err := fileSeq(p.file)
	if err != nil {
		return 0, err
	}
	qb, qn, err := fileSeq(q.file)
	if err != nil {
		return 0, err
	}
	if pb != qb {
		return 0, fmt.Errorf("binlog files %s and %s have different base names; was the server's log-bin setting changed?", p.file, q.file)
	}
	switch {
	case pn < qn:
		return -1, nil
	case pn > qn:
		return 1, nil
	case p.pos < q.pos:
		return -1, nil
	case p.pos > q.pos:
		return 1, nil
	}
	return 0, nil
}

// ComparePositions orders two binlog positions.
func (c *Conn) ComparePositions(a, b model.Position) (int, error) {
	pa, err := parsePosition(a)
	if err != nil {
		return 0, err
	}
	pb, err := parsePosition(b)
	if err != nil {
		return 0, err
	}
	return pa.compare(pb)
}

// HeadPosition is the end of the server's binlog now.
func (c *Conn) HeadPosition(ctx context.Context) (model.Position, error) {
	p, err := c.masterStatus(ctx, c.db)
	if err != nil {
		return "", err
	}
	if p, err = c.withGTID(ctx, c.db, p); err != nil {
		return "", err
	}
	return p.position(), nil
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// masterStatus reads SHOW MASTER STATUS (SHOW BINARY LOG STATUS on MySQL
// 8.4, which dropped the old spelling).
func (c *Conn) masterStatus(ctx context.Context, q queryer) (binlogPos, error) {
	p, err := statusQuery(ctx, q, "SHOW MASTER STATUS")
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == 1064 {
		p, err = statusQuery(ctx, q, "SHOW BINARY LOG STATUS")
	}
	if err != nil {
		if errors.As(err, &me) && (me.Number == 1227 || me.Number == 1142) {
			return binlogPos{}, &errs.ConfigError{Msg: fmt.Sprintf("mysql %s: user %q may not read the binlog position: %s", c.host, c.user, me.Message),
				Fix: c.replicationGrant()}
		}
		return binlogPos{}, fmt.Errorf("mysql %s: read the binlog position: %w", c.host, c.scrubber.Err(err))
	}
	if p.file == "" {
		return binlogPos{}, c.binlogDisabled()
	}
	return p, nil
}

func statusQuery(ctx context.Context, q queryer, query string) (binlogPos, error) {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return binlogPos{}, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return binlogPos{}, err
	}
	if !rows.Next() {
		return binlogPos{}, rows.Err()
	}
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return binlogPos{}, err
	}
	n, err := strconv.ParseUint(string(vals[1]), 10, 32)
	if err != nil {
		return binlogPos{}, fmt.Errorf("%s: position %q: %w", query, vals[1], err)
	}
	p := binlogPos{file: string(vals[0]), pos: uint32(n)}
	// MySQL's fifth column, Executed_Gtid_Set, is read in the same row as
	// the file and offset: the same point (MariaDB has four columns).
	if len(vals) >= 5 {
		if p.gtid, p.hasGTID, err = mysqlExecutedSet(string(vals[4])); err != nil {
			return binlogPos{}, fmt.Errorf("%s: Executed_Gtid_Set %q: %w", query, vals[4], err)
		}
	}
	return p, nil
}

func (c *Conn) binlogDisabled() error {
	return &errs.ConfigError{Msg: fmt.Sprintf("mysql %s: the binary log is disabled (log_bin is OFF), and change data capture reads it", c.host),
		Fix: "start the server with --log-bin --binlog-format=ROW --binlog-row-image=FULL, or copy without CDC with --mode snapshot"}
}

// snapshotPosition records T0. On MariaDB it is the binlog position of a
// consistent snapshot: every transaction before it is committed and visible
// to any read that starts later, without a global lock. MySQL has no such
// status, so T0 is read under FLUSH TABLES WITH READ LOCK when the user may
// take it (commits in flight finish first), else with SHOW MASTER STATUS
// alone.
func (c *Conn) snapshotPosition(ctx context.Context) (binlogPos, string, error) {
	p, how, err := c.snapshotFilePosition(ctx)
	if err != nil {
		return p, how, err
	}
	p, err = c.withGTID(ctx, c.db, p)
	return p, how, err
}

func (c *Conn) snapshotFilePosition(ctx context.Context) (binlogPos, string, error) {
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return binlogPos{}, "", fmt.Errorf("mysql %s: %w", c.host, c.scrubber.Err(err))
	}
	defer conn.Close()
	if c.server.mariadb {
		if _, err := conn.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT"); err != nil {
			return binlogPos{}, "", fmt.Errorf("mysql %s: start a consistent snapshot: %w", c.host, c.scrubber.Err(err))
		}
		rows, err := conn.QueryContext(ctx, "SHOW STATUS LIKE 'binlog_snapshot_%'")
		if err != nil {
			discard(conn)
			return binlogPos{}, "", fmt.Errorf("mysql %s: read the snapshot's binlog position: %w", c.host, c.scrubber.Err(err))
		}
		var p binlogPos
		for rows.Next() {
			var name, value string
			if err := rows.Scan(&name, &value); err != nil {
				rows.Close()
				discard(conn)
				return binlogPos{}, "", err
			}
			switch strings.ToLower(name) {
			case "binlog_snapshot_file":
				p.file = value
			case "binlog_snapshot_position":
				n, err := strconv.ParseUint(value, 10, 32)
				if err != nil {
					rows.Close()
					discard(conn)
					return binlogPos{}, "", fmt.Errorf("binlog_snapshot_position %q: %w", value, err)
				}
				p.pos = uint32(n)
			}
		}
		rows.Close()
		if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
			discard(conn)
			return binlogPos{}, "", fmt.Errorf("mysql %s: end the snapshot: %w", c.host, c.scrubber.Err(err))
		}
		if p.file != "" {
			return p, "consistent snapshot", nil
		}
	}
	if _, err := conn.ExecContext(ctx, "FLUSH TABLES WITH READ LOCK"); err == nil {
		p, err := c.masterStatus(ctx, conn)
		if _, uerr := conn.ExecContext(ctx, "UNLOCK TABLES"); uerr != nil {
			discard(conn) // never hand a locked session back to the pool
			if err == nil {
				err = fmt.Errorf("mysql %s: unlock tables: %w", c.host, uerr)
			}
		}
		return p, "read lock", err
	}
	p, err := c.masterStatus(ctx, conn)
	return p, "master status", err
}

// discard closes a session instead of returning it to the pool, for one
// left in an unknown state (an open transaction, a lock).
func discard(conn *sql.Conn) {
	//nolint:errcheck // returning ErrBadConn is how database/sql is told to drop the session
	conn.Raw(func(any) error { return driver.ErrBadConn })
}

// Ack checks the position the flow has made durable. MySQL keeps binlogs
// by its own expiry settings, not by replica progress, so there is nothing
// to release or keep; StreamChanges reports a purged binlog when a flow
// resumes.
func (c *Conn) Ack(ctx context.Context, pos model.Position) error {
	_, err := parsePosition(pos)
	return err
}
