package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/dustin/go-humanize"
	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

var _ connector.RetentionMeter = (*Conn)(nil)

// slotHealth is the flow's replication slot as pg_replication_slots shows
// it: whether the server still keeps the WAL the flow has not read.
type slotHealth struct {
	exists bool
	// walStatus: reserved, extended, unreserved (beyond
	// max_slot_wal_keep_size: lost at the next checkpoint) or lost.
	walStatus string
	retained  int64 // bytes of WAL from the slot's restart_lsn to the head
	limit     int64 // max_slot_wal_keep_size in bytes, 0 when unlimited
	safe      int64 // safe_wal_size: bytes more before it is lost
}

// readSlotHealth reads the slot's state.
func (c *Conn) readSlotHealth(ctx context.Context, slot string) (slotHealth, error) {
	h := slotHealth{exists: true}
	var status *string
	var retained, safe *int64
	var keepMB int64
	err := c.pool.QueryRow(ctx, `SELECT s.wal_status, pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::int8, s.safe_wal_size::int8,
			(SELECT setting::int8 FROM pg_settings WHERE name = 'max_slot_wal_keep_size')
		FROM pg_replication_slots s WHERE s.slot_name = $1`, slot).Scan(&status, &retained, &safe, &keepMB)
	if errors.Is(err, pgx.ErrNoRows) {
		return slotHealth{}, nil
	}
	if err != nil {
		return slotHealth{}, c.classify(err, "read replication slot "+slot)
	}
	if status != nil {
		h.walStatus = *status
	}
	if retained != nil {
		h.retained = max(*retained, 0)
	}
	if keepMB > 0 {
		h.limit = keepMB << 20
	}
	if safe != nil {
		h.safe = *safe
	}
	return h, nil
}

// Retention measures the WAL the flow's slot keeps against
// max_slot_wal_keep_size.
func (c *Conn) Retention(ctx context.Context, flow string) (connector.Retention, error) {
	slot, _ := c.slotFor(flow)
	h, err := c.readSlotHealth(ctx, slot)
	if err != nil {
		return connector.Retention{}, err
	}
	if !h.exists {
		return connector.Retention{}, c.slotGone(slot, "")
	}
	if h.walStatus == "lost" {
		return connector.Retention{}, c.slotLost(slot, "", h)
	}
	return connector.Retention{Retained: h.retained, Limit: h.limit, Safe: h.safe}, nil
}

// checkSlotUsable refuses to stream from a slot that is gone or that the
// server invalidated, and warns of one near its limit.
func (c *Conn) checkSlotUsable(ctx context.Context, slot string, from model.Position) error {
	h, err := c.readSlotHealth(ctx, slot)
	if err != nil {
		return err
	}
	switch {
	case !h.exists:
		return c.slotGone(slot, from)
	case h.walStatus == "lost":
		return c.slotLost(slot, from, h)
	}
	if r := (connector.Retention{Retained: h.retained, Limit: h.limit, Safe: h.safe}); r.Near() {
		slog.Warn(retentionWarning(slot, r),
			"slot", slot, "server", c.where(), "retained_bytes", h.retained, "limit_bytes", h.limit, "safe_bytes", h.safe, "wal_status", h.walStatus)
	}
	return nil
}

// retentionWarning says how near its limit a slot is, with the numbers.
func retentionWarning(slot string, r connector.Retention) string {
	return fmt.Sprintf("replication slot %s retains %s of WAL with max_slot_wal_keep_size %s: %s more and the server invalidates it at a checkpoint, and the flow must start over; let CDC catch up, or raise max_slot_wal_keep_size",
		slot, humanize.IBytes(uint64(r.Retained)), humanize.IBytes(uint64(r.Limit)), humanize.IBytes(uint64(max(r.Safe, 0))))
}

func (c *Conn) slotGone(slot string, from model.Position) error {
	since := ""
	if from != "" {
		since = fmt.Sprintf("; the changes since the flow's position %s cannot be read any more", from)
	}
	return errs.BadConfig(fmt.Sprintf("replication slot %s does not exist at %s (it was dropped)%s", slot, c.where(), since),
		"run the flow with --restart: it makes a new slot and copies the tables again (what the destination holds now is correct up to the flow's position)")
}

func (c *Conn) slotLost(slot string, from model.Position, h slotHealth) error {
	since := "the changes since the flow's position"
	if from != "" {
		since += " " + string(from)
	}
	limit := "unlimited"
	if h.limit > 0 {
		limit = humanize.IBytes(uint64(h.limit))
	}
	return errs.BadConfig(fmt.Sprintf("replication slot %s at %s was invalidated by the server (wal_status lost): it retained more WAL than max_slot_wal_keep_size (%s) allows, so the server removed WAL the flow had not read, and %s are lost to it", slot, c.where(), limit, since),
		"run the flow with --restart: it drops the slot, makes a new one and copies the tables again (an incremental snapshot, ferry snapshot, needs a working slot); to keep it from happening again, raise max_slot_wal_keep_size or keep the flow running")
}
