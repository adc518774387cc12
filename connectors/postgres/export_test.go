package postgres

import (
	"context"
	"sync/atomic"
)

// LoseSessionAfterLogRow makes the next session that handles a DDL log row
// end right after it, before its transaction's commit, as a lost
// connection would (once); the returned func puts things back.
func LoseSessionAfterLogRow(lost error) (restore func()) {
	once := false
	afterLogRow = func() error {
		if once {
			return nil
		}
		once = true
		return lost
	}
	return func() { afterLogRow = nil }
}

// ForgetPrepared drops every prepared statement of the applier's session
// on the server (DEALLOCATE ALL), as a pooler in transaction mode does when
// it hands the session another server connection; the applier is not told.
func ForgetPrepared(a any) error {
	w := a.(*changeWriter)
	_, err := w.conn.Exec(context.Background(), "DEALLOCATE ALL")
	return err
}

// Prepared is the number of statements the applier prepared on its session.
func Prepared(a any) int { return len(sessionStmts(a.(*changeWriter).conn.Conn().PgConn()).names) }

// Unprepared makes the applier send its pipelined statements unprepared,
// as after a pooler lost them (a benchmark's baseline).
func Unprepared(a any) {
	*sessionStmts(a.(*changeWriter).conn.Conn().PgConn()) = preparedStmts{off: true}
}

// ExecOnApplier runs sql on the applier's session.
func ExecOnApplier(a any, sql string) error {
	_, err := a.(*changeWriter).conn.Exec(context.Background(), sql)
	return err
}

// WatchPacing reports whether the latest replication session's reads are
// paced (a backlog), how many of them waited and the receive buffer its
// connection asked for (0: the system's); restore puts things back.
func WatchPacing() (on func() bool, waits func() int64, rcvBuf func() int, restore func()) {
	var latest atomic.Pointer[readPacer]
	pacerStarted = func(p *readPacer) { latest.Store(p) }
	on = func() bool { p := latest.Load(); return p != nil && p.on.Load() }
	waits = func() int64 {
		if p := latest.Load(); p != nil {
			return p.waits.Load()
		}
		return 0
	}
	rcvBuf = func() int {
		if p := latest.Load(); p != nil {
			return p.rcvBuf
		}
		return -1
	}
	return on, waits, rcvBuf, func() { pacerStarted = nil }
}

// PaceLag is how far behind its commit a change is read paced.
const PaceLag = paceLag

// NearRcvBuf is the receive buffer of a replication connection to a
// server close by.
const NearRcvBuf = nearRcvBuf
