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
// across tables. Without it (an old server, a standby) readers read current
// data.
func (c *Conn) exportSnapshot(ctx context.Context) {
	c.closeSnapshot()
	conn, err := pgx.ConnectConfig(ctx, c.cfg.ConnConfig)
	if err != nil {
		return
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		conn.Close(ctx)
		return
	}
	var id string
	if err := tx.QueryRow(ctx, `SELECT pg_export_snapshot()`).Scan(&id); err != nil {
		conn.Close(ctx)
		return
	}
	c.mu.Lock()
	c.snap = &snapshot{id: id, tx: tx, conn: conn}
	c.mu.Unlock()
}

// snapshotID is the exported snapshot partition readers should use, or "".
func (c *Conn) snapshotID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snap == nil {
		return ""
	}
	return c.snap.id
}

// closeSnapshot ends the exported snapshot: readers started later read
// current data.
func (c *Conn) closeSnapshot() {
	c.mu.Lock()
	s := c.snap
	c.snap = nil
	c.mu.Unlock()
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s.repl != nil {
		s.repl.Close(ctx) //nolint:errcheck // closing: nothing to do about it
	}
	if s.conn != nil {
		s.conn.Close(ctx) //nolint:errcheck // closing
	}
}
