package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// The way back after a cutover (ferry cutover --reverse): the destination
// becomes the source of a reverse flow. At the cutover point it gets the
// reverse flow's publication and slot, so the slot starts after every
// change ferry applied there; the reverse flow's plan adopts that slot
// (PlanOptions.Recorded) instead of making a new one.

var _ connector.ReverseStarter = (*Conn)(nil)

// CheckReverse checks that this database can be a change source: wal_level
// = logical and the privilege to replicate.
func (c *Conn) CheckReverse(ctx context.Context) error {
	return c.checkCDC(ctx, nil)
}

// StartReverse creates the reverse flow's publication for tables and its
// replication slot, now, and returns the slot's start. A slot of that flow
// an earlier cutover made is kept, with its start.
func (c *Conn) StartReverse(ctx context.Context, flow string, tables []model.Namespace) (model.Position, error) {
	if err := c.checkCDC(ctx, nil); err != nil {
		return "", err
	}
	slot, ownSlot := c.slotFor(flow)
	pub, ownPub := c.publicationFor(flow)
	if !ownSlot || !ownPub {
		return "", errs.BadConfig(fmt.Sprintf("the destination URL names a slot or publication (%s, %s): the reverse flow makes its own", slot, pub),
			"leave slot= and publication= out of the destination URL for ferry cutover --reverse")
	}
	var active bool
	var confirmed *string
	err := c.pool.QueryRow(ctx, `SELECT active, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&active, &confirmed)
	switch {
	case err == nil && active:
		return "", errs.BadConfig(fmt.Sprintf("replication slot %s of reverse flow %q is in use at %s", slot, flow, c.where()),
			"stop the ferry running the reverse flow; a reverse flow that already runs keeps its start")
	case err == nil && confirmed != nil:
		// An earlier cutover --reverse made it (a retried cutover): the
		// application may have written since, so its start stands. What
		// ferry applied after it came from the old database and goes back
		// in order, which changes nothing there.
		slog.Info("postgres: keeping the reverse flow's slot an earlier cutover made, and its start", "slot", slot, "position", *confirmed, "server", c.where())
		if err := c.ensurePublication(ctx, pub, true, namedTables(tables), false); err != nil {
			return "", err
		}
		return model.Position(*confirmed), nil
	case err == nil:
		return "", errs.BadConfig(fmt.Sprintf("replication slot %s at %s is not a logical replication slot", slot, c.where()),
			fmt.Sprintf("drop it (SELECT pg_drop_replication_slot('%s')) and run ferry cutover --reverse again", slot))
	case !errors.Is(err, pgx.ErrNoRows):
		return "", c.classify(err, "look up replication slot "+slot)
	}
	// The publication exists before the slot: a slot decodes with the
	// catalog of each change's time, so a change made before its
	// publication existed could not be decoded.
	if err := c.ensurePublication(ctx, pub, true, namedTables(tables), false); err != nil {
		return "", err
	}
	repl, err := c.replicationConn(ctx, slot, nil)
	if err != nil {
		return "", err
	}
	defer repl.Close(context.WithoutCancel(ctx)) //nolint:errcheck // the slot outlives it
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, quoteIdent(slot), "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "NOEXPORT_SNAPSHOT"})
	if err != nil {
		return "", c.slotError(ctx, err, slot)
	}
	if _, err := pglogrepl.ParseLSN(res.ConsistentPoint); err != nil {
		return "", fmt.Errorf("slot %s: consistent point %q: %w", slot, res.ConsistentPoint, err)
	}
	return model.Position(res.ConsistentPoint), nil
}

// adoptRecordedSlot is startCDC for a flow whose start was recorded by
// StartReverse: its slot must be there, and is kept.
func (c *Conn) adoptRecordedSlot(ctx context.Context, tables []*srcTable, flow string) (model.Position, error) {
	slot, _ := c.slotFor(flow)
	pub, ownPub := c.publicationFor(flow)
	var active bool
	var confirmed *string
	err := c.pool.QueryRow(ctx, `SELECT active, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&active, &confirmed)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", errs.BadConfig(fmt.Sprintf("replication slot %s, made at the cutover for reverse flow %q, is gone from %s: the changes written there since the cutover cannot be read", slot, flow, c.where()),
			"if nothing was written there since, run ferry cutover --reverse again from the forward flow; otherwise carry the changes back by hand (ferry verify lists the keys that differ)")
	case err != nil:
		return "", c.classify(err, "look up replication slot "+slot)
	case active:
		return "", errs.BadConfig(fmt.Sprintf("replication slot %s is in use by another process", slot), "stop the other ferry running reverse flow "+flow)
	case confirmed == nil:
		return "", errs.BadConfig(fmt.Sprintf("slot %s is not a logical replication slot", slot), "run ferry cutover --reverse again")
	}
	logged, err := c.ensureDDLLog(ctx, tables)
	if err != nil {
		return "", err
	}
	if err := c.ensurePublication(ctx, pub, ownPub, tables, logged); err != nil {
		return "", err
	}
	return model.Position(*confirmed), nil
}

// namedTables are tables known by name only, for ensurePublication.
func namedTables(names []model.Namespace) []*srcTable {
	out := make([]*srcTable, len(names))
	for i, ns := range names {
		out[i] = &srcTable{table: &model.Table{Namespace: ns}}
	}
	return out
}
