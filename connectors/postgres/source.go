package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/jackc/pglogrepl"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// sourceState is the source half's own state; the destination's methods
// never touch it.
type sourceState struct {
	mu sync.Mutex
	// snap is the exported snapshot of this process's plan while its
	// connection is open, nil otherwise; the plan's partitions name it
	// (model.Partition.Snapshot).
	snap *snapshot
	// madeSlots are the slots this Conn tried to create for a plan. The
	// engine asks for a plan again only when the last attempt did not
	// reach it (an outage), so such a slot is this run's own leftover.
	madeSlots map[string]bool
	// acked is the last position the engine acknowledged, sent to the
	// server by the running stream.
	acked atomic.Uint64
}

// markMade records that this Conn tries to create slot for a plan.
func (s *sourceState) markMade(slot string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.madeSlots == nil {
		s.madeSlots = map[string]bool{}
	}
	s.madeSlots[slot] = true
}

// madeSlot reports whether this Conn tried to create slot for a plan.
func (s *sourceState) madeSlot(slot string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.madeSlots[slot]
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

var _ connector.PositionMarker = (*Conn)(nil)

// MarkPosition writes a logical message (as the heartbeat does) in a
// transaction of its own and returns its position: the message is written
// after every transaction committed before the call, and the change stream
// reads it at once, so a cutover's drain on an idle source ends without
// waiting for the next heartbeat.
func (c *Conn) MarkPosition(ctx context.Context) (model.Position, error) {
	var lsn string
	if err := c.pool.QueryRow(ctx, `SELECT pg_logical_emit_message(true, 'ferry', 'mark')::text`).Scan(&lsn); err != nil {
		return "", c.classify(err, "write a position marker")
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
		cur := c.src.acked.Load()
		if uint64(lsn) <= cur || c.src.acked.CompareAndSwap(cur, uint64(lsn)) {
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
