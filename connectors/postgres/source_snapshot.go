package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// snapshot is an exported snapshot kept alive by the connection that
// exported it: the replication connection that created the slot (its
// snapshot is exactly T0) or a plain transaction for a copy without CDC.
type snapshot struct {
	id   string
	repl *pgconn.PgConn // for a slot's snapshot
	tx   pgx.Tx         // for pg_export_snapshot
	conn *pgx.Conn
}

// exportSnapshot opens a read-only transaction whose snapshot this
// process's partition readers share, so a copy without CDC is consistent
// across tables, and returns its name. Without it (an old server, a
// standby: "") readers read current data.
func (c *Conn) exportSnapshot(ctx context.Context) string {
	c.src.release()
	conn, err := pgx.ConnectConfig(ctx, c.cfg.ConnConfig)
	if err != nil {
		return ""
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		conn.Close(ctx)
		return ""
	}
	var id string
	if err := tx.QueryRow(ctx, `SELECT pg_export_snapshot()`).Scan(&id); err != nil {
		conn.Close(ctx)
		return ""
	}
	c.src.hold(&snapshot{id: id, tx: tx, conn: conn})
	return id
}

// hold keeps snap open for the partition readers, ending the one held
// before.
func (s *sourceState) hold(snap *snapshot) {
	s.release()
	s.mu.Lock()
	s.snap = snap
	s.mu.Unlock()
}

// holds reports whether name is the exported snapshot this Conn keeps open.
func (s *sourceState) holds(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return name != "" && s.snap != nil && s.snap.id == name
}

// release ends the exported snapshot: readers started later read current
// data.
func (s *sourceState) release() {
	s.mu.Lock()
	snap := s.snap
	s.snap = nil
	s.mu.Unlock()
	if snap == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if snap.repl != nil {
		snap.repl.Close(ctx) //nolint:errcheck // closing: nothing to do about it
	}
	if snap.conn != nil {
		snap.conn.Close(ctx) //nolint:errcheck // closing
	}
}
