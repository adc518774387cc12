package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pglogrepl"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// BindFlow records the flow's name: its slot and publication are named
// after it.
func (c *Conn) BindFlow(flow string) {
	c.mu.Lock()
	c.flow = flow
	c.mu.Unlock()
}

func (c *Conn) boundFlow() (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.flow == "" && c.opts.Slot == "" {
		return "", fmt.Errorf("postgres: the change stream does not know its flow (no BindFlow and no slot= in the URL)")
	}
	return c.flow, nil
}

// HeadPosition is the server's current WAL insert position: every
// transaction committed before the call ends before it, also with
// synchronous_commit off (pg_current_wal_lsn, the write position, may not
// have reached such a commit yet).
func (c *Conn) HeadPosition(ctx context.Context) (model.Position, error) {
	var lsn string
	if err := c.pool.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&lsn); err != nil {
		return "", c.classify(err, "read the current WAL position")
	}
	return model.Position(lsn), nil
}

// ComparePositions orders two LSNs.
func (c *Conn) ComparePositions(a, b model.Position) (int, error) {
	x, err := pglogrepl.ParseLSN(string(a))
	if err != nil {
		return 0, fmt.Errorf("postgres: bad position %q", a)
	}
	y, err := pglogrepl.ParseLSN(string(b))
	if err != nil {
		return 0, fmt.Errorf("postgres: bad position %q", b)
	}
	switch {
	case x < y:
		return -1, nil
	case x > y:
		return 1, nil
	}
	return 0, nil
}

// Ack records that everything up to pos is durable at the destination. The
// running stream reports it to the server as flushed, which lets the slot
// release the WAL before it.
func (c *Conn) Ack(ctx context.Context, pos model.Position) error {
	lsn, err := pglogrepl.ParseLSN(string(pos))
	if err != nil {
		return fmt.Errorf("postgres: bad position %q", pos)
	}
	for {
		cur := c.acked.Load()
		if uint64(lsn) <= cur || c.acked.CompareAndSwap(cur, uint64(lsn)) {
			return nil
		}
	}
}

var _ connector.LagMeter = (*Conn)(nil)

// LagBytes is how many bytes of WAL pos is behind the server's current
// insert position (the head CDC catches up to).
func (c *Conn) LagBytes(ctx context.Context, pos model.Position) (int64, error) {
	if _, err := pglogrepl.ParseLSN(string(pos)); err != nil {
		return 0, fmt.Errorf("postgres: bad position %q", pos)
	}
	var n int64
	if err := c.pool.QueryRow(ctx, `SELECT GREATEST(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::text::pg_lsn), 0)::int8`, string(pos)).Scan(&n); err != nil {
		return 0, c.classify(err, "measure the replication lag")
	}
	return n, nil
}
