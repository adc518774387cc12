package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// parseGTIDSet reads a GTID position in either flavour: MySQL's sets name a
// server UUID before a colon ("3e11fa47-...:1-5"), MariaDB's positions are
// domain-server-seq triples ("0-1-42,1-2-7").
func parseGTIDSet(s string) (gomysql.GTIDSet, error) {
	if strings.Contains(s, ":") {
		return gomysql.ParseMysqlGTIDSet(s)
	}
	return gomysql.ParseMariadbGTIDSet(s)
}

// compareGTID orders two GTID positions: the one whose history holds the
// other's is later. Two positions neither of which holds the other come
// from diverged histories, which no order fits.
func compareGTID(a, b string) (int, error) {
	sa, err := parseGTIDSet(a)
	if err != nil {
		return 0, err
	}
	sb, err := parseGTIDSet(b)
	if err != nil {
		return 0, err
	}
	switch {
	case sa.Equal(sb):
		return 0, nil
	case sa.Contain(sb):
		return 1, nil
	case sb.Contain(sa):
		return -1, nil
	}
	return 0, fmt.Errorf("GTID positions %s and %s are on diverged histories (neither contains the other)", a, b)
}

// addGTID is the GTID position after the transaction with GTID next.
func addGTID(pos, next string) (string, error) {
	set, err := parseGTIDSet(pos)
	if err != nil {
		return "", err
	}
	if pos == "" && strings.Contains(next, ":") {
		set, err = gomysql.ParseMysqlGTIDSet("")
		if err != nil {
			return "", err
		}
	}
	if err := set.Update(next); err != nil {
		return "", err
	}
	return set.String(), nil
}

// mysqlExecutedSet reads MySQL's Executed_Gtid_Set (SHOW MASTER STATUS,
// gtid_executed), which the server breaks into lines after its commas,
// into the canonical set; none (gtid_mode OFF, or nothing executed) is
// no GTID.
func mysqlExecutedSet(raw string) (string, bool, error) {
	s := strings.Join(strings.Fields(raw), "")
	if s == "" {
		return "", false, nil
	}
	set, err := gomysql.ParseMysqlGTIDSet(s)
	if err != nil {
		return "", false, err
	}
	return set.String(), true, nil
}

// streamByGTID is the decision whether a stream from p starts by GTID.
// MariaDB: when p's file and offset are not the same point on this server
// (sameHere, asked only then: BINLOG_GTID_POS maps them). MySQL with
// gtid_mode ON: whenever p has a set, since MySQL cannot map a file and
// offset to a set; COM_BINLOG_DUMP_GTID sends every transaction not in
// it, so a position inside a transaction (a huge one checkpointed in
// parts) starts again at that transaction, whose changes apply again
// idempotently.
func streamByGTID(mariadb, gtidMode bool, p binlogPos, sameHere func() bool) bool {
	if !p.hasGTID || p.gtid == "" {
		return false
	}
	if mariadb {
		return !sameHere()
	}
	return gtidMode && strings.Contains(p.gtid, ":")
}

// withGTID adds to a position of a MariaDB server the GTID position there
// (BINLOG_GTID_POS: the same point as the file and offset, whatever has
// been written since). MySQL positions carry the executed set read with
// them (statusQuery), or none.
func (c *Conn) withGTID(ctx context.Context, q queryer, p binlogPos) (binlogPos, error) {
	if !c.server.mariadb {
		return p, nil
	}
	rows, err := q.QueryContext(ctx, "SELECT BINLOG_GTID_POS(?, ?)", p.file, p.pos)
	if err != nil {
		return p, fmt.Errorf("mysql %s: read the GTID position at %s: %w", c.host, p, c.scrubber.Err(err))
	}
	defer rows.Close()
	var gtid sql.NullString
	if rows.Next() {
		if err := rows.Scan(&gtid); err != nil {
			return p, err
		}
	}
	if err := rows.Err(); err != nil {
		return p, err
	}
	if !gtid.Valid {
		return p, nil // a position the server cannot map: file and offset only
	}
	set, err := parseGTIDSet(gtid.String)
	if err != nil {
		return p, fmt.Errorf("mysql %s: GTID position %q at %s: %w", c.host, gtid.String, p, err)
	}
	p.gtid, p.hasGTID = set.String(), true
	return p, nil
}

// binlogGTID is the GTID position at the end of the server's binlog:
// MariaDB's gtid_binlog_pos, MySQL's gtid_executed.
func (c *Conn) binlogGTID(ctx context.Context) (string, error) {
	name := "gtid_binlog_pos"
	if !c.server.mariadb {
		name = "gtid_executed"
	}
	var v string
	if err := c.db.QueryRowContext(ctx, "SELECT @@GLOBAL."+name).Scan(&v); err != nil {
		return "", fmt.Errorf("mysql %s: read %s: %w", c.host, name, c.scrubber.Err(err))
	}
	if !c.server.mariadb {
		set, _, err := mysqlExecutedSet(v)
		return set, err
	}
	return v, nil
}

// streamsByGTID tells whether a stream from p starts by GTID: on MariaDB,
// from a position that has one, unless its file and offset are that same
// point on this server (the server the flow was on: it then streams as it
// always did, from the file and offset). A file and offset name a place in
// one server's binlog only; the GTID names it on every server of the
// topology.
func (c *Conn) streamsByGTID(ctx context.Context, p binlogPos) bool {
	return streamByGTID(c.server.mariadb, c.server.gtidMode, p, func() bool {
		here, err := c.withGTID(ctx, c.db, binlogPos{file: p.file, pos: p.pos})
		return err == nil && here.hasGTID && here.gtid == p.gtid
	})
}

// gtidPurged is the error of a server whose binlogs from a GTID position
// on were purged (error 1236 to a GTID request).
func (c *Conn) gtidPurged(p binlogPos, err error) error {
	return &errs.ConfigError{Msg: fmt.Sprintf("mysql %s: the binlog holding the flow's GTID position %s was purged (%s); the changes since the flow's checkpoint %s are gone", c.host, p.gtid, c.scrubber.Err(err), p),
		Fix: "the flow must restart with --restart (and increase binlog_expire_logs_seconds, or expire_logs_days, so binlogs outlive a pause of the flow)"}
}

// CheckHistory tells whether this server's binlog holds the flow's
// position pos, so that a flow started on another server (the primary this
// one replicated from) may resume here: the position must carry a GTID, and
// every domain of it must be in the server's gtid_binlog_pos at the same or
// a later sequence number. It returns a *errs.ConfigError saying why not.
func (c *Conn) CheckHistory(ctx context.Context, pos model.Position) error {
	p, err := parsePosition(pos)
	if err != nil {
		return err
	}
	if !(c.server.mariadb || c.server.gtidMode) || !p.hasGTID {
		return &errs.ConfigError{Msg: fmt.Sprintf("mysql %s: the flow's position %s has no GTID, so it names a place in the old server's binlog only", c.host, pos),
			Fix: "point the flow at the server it was started on, or start it over with --restart (flows keep GTID positions on MariaDB, and on MySQL with gtid_mode=ON, since ferry recorded them)"}
	}
	head, err := c.binlogGTID(ctx)
	if err != nil {
		return err
	}
	if p.gtid == "" {
		return nil
	}
	if n, err := compareGTID(head, p.gtid); err != nil || n < 0 {
		why := "has not reached it (a replica that has not caught up?)"
		if err != nil {
			why = "is on another history (another replication topology, or the GTID domains differ)"
		}
		return &errs.ConfigError{Msg: fmt.Sprintf("mysql %s: the server's binlog (gtid_binlog_pos %s) does not hold the flow's position %s: it %s", c.host, head, p.gtid, why),
			Fix: "point the flow at a server of the same replication topology that has applied every transaction the flow has seen (log_slave_updates on replicas), or start it over with --restart"}
	}
	return nil
}
