package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// slotName is the replication slot of a flow: ferry_ and the flow's name
// made a valid identifier (with a hash when it had to be shortened or
// changed, so two flows never share one).
func slotName(flow string) string {
	var b strings.Builder
	changed := false
	for _, r := range strings.ToLower(flow) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
			changed = true
		}
	}
	name := "ferry_" + b.String()
	if changed || len(name) > 63 || flow != strings.ToLower(flow) {
		sum := sha256.Sum256([]byte(flow))
		suffix := "_" + hex.EncodeToString(sum[:])[:8]
		if len(name) > 63-len(suffix) {
			name = name[:63-len(suffix)]
		}
		name += suffix
	}
	return name
}

func (c *Conn) slotFor(flow string) (name string, own bool) {
	if c.opts.Slot != "" {
		return c.opts.Slot, false
	}
	return slotName(flow), true
}

func (c *Conn) publicationFor(flow string) (name string, own bool) {
	if c.opts.Publication != "" {
		return c.opts.Publication, false
	}
	return slotName(flow), true
}

// startCDC checks that the server and the tables allow logical replication,
// then creates the publication and the slot (unless the user named existing
// ones). It returns T0 and the name of the snapshot of exactly T0 this Conn
// now holds for the copy, or "" when the copy reads current data. A
// recorded start (a reverse flow's) is adopted as it is.
func (c *Conn) startCDC(ctx context.Context, tables []*srcTable, flow string, recorded bool) (model.Position, string, error) {
	if err := c.checkCDC(ctx, tables); err != nil {
		return "", "", err
	}
	if recorded {
		t0, err := c.adoptRecordedSlot(ctx, tables, flow)
		return t0, "", err
	}
	slot, ownSlot := c.slotFor(flow)
	pub, ownPub := c.publicationFor(flow)
	c.warnInactiveSlots(ctx, slot)

	exists, confirmed, err := c.checkSlot(ctx, slot, ownSlot, flow)
	if err != nil {
		return "", "", err
	}
	logged, err := c.ensureDDLLog(ctx, tables)
	if err != nil {
		return "", "", err
	}
	if err := c.ensurePublication(ctx, pub, ownPub, tables, logged); err != nil {
		if ownPub && ctx.Err() != nil {
			// Cancelled: the server may have created it all the same.
			c.dropPublication(context.WithoutCancel(ctx), pub)
		}
		return "", "", err
	}
	if exists {
		// A slot the user made: it has no snapshot to share, so the copy
		// reads current data and the replay from T0 converges it.
		if confirmed == nil {
			return "", "", errs.BadConfig(fmt.Sprintf("slot %s is not a logical replication slot", slot), "give a logical slot using pgoutput")
		}
		return model.Position(*confirmed), "", nil
	}
	repl, err := c.replicationConn(ctx, slot, nil)
	if err == nil {
		c.src.markMade(slot)
	}
	if err != nil {
		if ownPub {
			c.dropPublication(context.WithoutCancel(ctx), pub)
		}
		return "", "", err
	}
	res, err := c.createSlot(ctx, repl, slot)
	if err != nil {
		repl.Close(context.WithoutCancel(ctx)) //nolint:errcheck // failing anyway
		if ownPub {
			c.dropPublication(context.WithoutCancel(ctx), pub)
		}
		if ctx.Err() != nil {
			return "", "", err
		}
		return "", "", c.slotError(ctx, err, slot)
	}
	if _, err := pglogrepl.ParseLSN(res.ConsistentPoint); err != nil {
		return "", "", fmt.Errorf("slot %s: consistent point %q: %w", slot, res.ConsistentPoint, err)
	}
	if !c.opts.Snapshot {
		repl.Close(ctx) //nolint:errcheck // not needed
		return model.Position(res.ConsistentPoint), "", nil
	}
	c.src.hold(&snapshot{id: res.SnapshotName, repl: repl})
	return model.Position(res.ConsistentPoint), res.SnapshotName, nil
}

// checkSlot looks the slot up: one in use is refused, and so is ferry's own
// left over from a run that kept no plan. It returns whether it exists and
// its confirmed position.
func (c *Conn) checkSlot(ctx context.Context, slot string, own bool, flow string) (bool, *string, error) {
	var exists, active bool
	var pid *int32
	var confirmed *string
	err := c.pool.QueryRow(ctx, `SELECT true, active, active_pid, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&exists, &active, &pid, &confirmed)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return false, nil, c.classify(err, "look up replication slot "+slot)
	}
	if exists && active {
		who := ""
		if pid != nil {
			who = fmt.Sprintf(" (server process %d)", *pid)
		}
		return false, nil, errs.BadConfig(fmt.Sprintf("replication slot %s is in use by another process%s", slot, who), "stop the other ferry (or other client) using it, or give this flow another --name")
	}
	if exists && own && c.src.madeSlot(slot) {
		// Made by an earlier attempt of this very plan that never returned
		// (the server went away in between): its snapshot is gone with its
		// connection, so it is made again.
		slog.Warn("postgres: dropping the replication slot an interrupted attempt of this plan made, to make it again", "slot", slot, "server", c.where())
		return false, nil, c.dropLeftoverSlot(ctx, slot)
	}
	if exists && own {
		// A plan is asked for only when the flow has none: a run made the
		// slot and was stopped (killed) before it saved its plan, so no
		// plan and no checkpoint depends on the slot. Unless another ferry
		// is making this flow's plan right now: the walsender holding the
		// slot's snapshot carries the slot's name.
		var holder int32
		err := c.pool.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE backend_type = 'walsender' AND application_name = $1 LIMIT 1`, slot).Scan(&holder)
		switch {
		case err == nil:
			return false, nil, errs.BadConfig(fmt.Sprintf("replication slot %s is being made by another ferry planning flow %q (server process %d)", slot, flow, holder), "stop the other ferry running the flow, or give this flow another --name")
		case !errors.Is(err, pgx.ErrNoRows):
			return false, nil, c.classify(err, "look up who holds replication slot "+slot)
		}
		slog.Warn(fmt.Sprintf("postgres: dropping replication slot %s: an earlier run of flow %q created it and stopped before saving its plan, so nothing depends on it; a new one is made", slot, flow), "slot", slot, "server", c.where())
		return false, nil, c.dropLeftoverSlot(ctx, slot)
	}
	return exists, confirmed, nil
}

// dropLeftoverSlot drops a slot of this flow that no plan depends on.
func (c *Conn) dropLeftoverSlot(ctx context.Context, slot string) error {
	if _, err := c.pool.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, slot); err != nil {
		if sqlState(err) == "42501" {
			return c.replicationPrivilegeError(ctx, c.cfg.ConnConfig.User, c.scrub.Err(err))
		}
		return c.classify(err, "drop replication slot "+slot)
	}
	return nil
}

// checkCDC checks wal_level, the privilege to replicate and each table's
// replica identity, each with the fix for the service the server runs on.
func (c *Conn) checkCDC(ctx context.Context, tables []*srcTable) error {
	var level string
	var canReplicate bool
	var user string
	// Managed services grant replication through a role instead of the
	// attribute; membership may be inherited through another role.
	err := c.pool.QueryRow(ctx, `SELECT current_setting('wal_level'), current_user,
			r.rolreplication OR r.rolsuper OR EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname = ANY($1) AND pg_has_role(current_user, g.oid, 'MEMBER'))
		FROM pg_roles r WHERE r.rolname = current_user`, replicatorRoles).Scan(&level, &user, &canReplicate)
	if err != nil {
		return c.classify(err, "check replication settings")
	}
	if level != "logical" {
		return c.walLevelError(ctx, fmt.Errorf("wal_level is %s", level))
	}
	if !canReplicate {
		return c.replicationPrivilegeError(ctx, user, nil)
	}
	var problems []string
	for _, s := range tables {
		name := showQualified(s.table.Namespace.Schema, s.table.Namespace.Table)
		switch {
		case s.replident == 'n':
			problems = append(problems, fmt.Sprintf("%s has REPLICA IDENTITY NOTHING, so its updates and deletes carry no key (ALTER TABLE %s REPLICA IDENTITY DEFAULT)", s.table.Namespace, name))
		case s.replident == 'd' && !s.hasPK:
			problems = append(problems, fmt.Sprintf("%s has no primary key and no full replica identity, so its updates and deletes carry no key (add a primary key, or ALTER TABLE %s REPLICA IDENTITY FULL)", s.table.Namespace, name))
		case s.replident == 'i' && s.hasPK && strings.Join(s.identKey, "\x00") != strings.Join(s.table.PrimaryKey, "\x00"):
			problems = append(problems, fmt.Sprintf("%s identifies rows in its changes by index columns (%s), not by its primary key (ALTER TABLE %s REPLICA IDENTITY DEFAULT)", s.table.Namespace, strings.Join(s.identKey, ", "), name))
		}
	}
	if len(problems) > 0 {
		return errs.BadConfig("change data capture cannot follow: "+strings.Join(problems, "; "), "fix the replica identity (ALTER TABLE needs the table's owner), exclude the tables with --tables '!name', or copy without CDC with --mode snapshot")
	}
	return nil
}

// warnInactiveSlots logs ferry slots other than this flow's that no one
// reads: each keeps WAL on the server until it is dropped.
func (c *Conn) warnInactiveSlots(ctx context.Context, except string) {
	rows, err := c.pool.Query(ctx, `SELECT slot_name, COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::int8,
			COALESCE(pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)), '0 bytes')
		FROM pg_replication_slots WHERE slot_name LIKE 'ferry\_%' AND NOT active AND slot_name <> $1`, except)
	if err != nil {
		return
	}
	defer rows.Close()
	for rows.Next() {
		var name, pretty string
		var retained int64
		if rows.Scan(&name, &retained, &pretty) == nil {
			slog.Warn(fmt.Sprintf("inactive ferry replication slot %s retains %s of WAL on the source; if its flow is over, drop the flow (ferry drop SOURCE DESTINATION --name FLOW) or the slot (SELECT pg_drop_replication_slot('%s'))", name, pretty, name),
				"slot", name, "retained_bytes", retained, "server", c.where())
		}
	}
}

// ensurePublication creates (or updates) ferry's publication for the
// tables (and ferry's DDL log, when there is one), or checks that the
// user's covers them. Partitioned tables publish through their root, so
// their changes carry the table's name.
func (c *Conn) ensurePublication(ctx context.Context, pub string, own bool, tables []*srcTable, ddlLog bool) error {
	var exists, viaRoot bool
	err := c.pool.QueryRow(ctx, `SELECT true, pubviaroot FROM pg_publication WHERE pubname = $1`, pub).Scan(&exists, &viaRoot)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return c.classify(err, "look up publication "+pub)
	}
	if !own {
		return c.checkPublication(ctx, pub, tables)
	}
	names := make([]string, len(tables))
	for i, s := range tables {
		names[i] = qualified(s.table.Namespace)
	}
	sort.Strings(names)
	if ddlLog {
		names = append(names, qualified(ddlLogNS))
	}
	var stmt string
	if exists {
		stmt = "ALTER PUBLICATION " + quoteIdent(pub) + " SET TABLE " + strings.Join(names, ", ")
	} else {
		stmt = "CREATE PUBLICATION " + quoteIdent(pub) + " FOR TABLE " + strings.Join(names, ", ") + " WITH (publish_via_partition_root = true)"
	}
	if _, err := c.pool.Exec(ctx, stmt); err != nil {
		if sqlState(err) == "42501" {
			return &errs.ConfigError{Msg: fmt.Sprintf("cannot create publication %s: the URL's user must own the tables and have the CREATE privilege on database %s", pub, c.cfg.ConnConfig.Database),
				Fix: fmt.Sprintf("GRANT CREATE ON DATABASE %s TO %s as the database's owner, or as the tables' owner run CREATE PUBLICATION %s FOR TABLE ... WITH (publish_via_partition_root = true), then add publication=%s to the source URL", showIdent(c.cfg.ConnConfig.Database), showIdent(c.cfg.ConnConfig.User), quoteIdent(pub), pub),
				Err: c.scrub.Err(err)}
		}
		return c.classify(err, "create publication "+pub)
	}
	if exists && !viaRoot {
		if _, err := c.pool.Exec(ctx, "ALTER PUBLICATION "+quoteIdent(pub)+" SET (publish_via_partition_root = true)"); err != nil {
			return c.classify(err, "alter publication "+pub)
		}
	}
	return nil
}

// checkPublication checks that the user's publication exists and
// publishes every table.
func (c *Conn) checkPublication(ctx context.Context, pub string, tables []*srcTable) error {
	var exists, truncates bool
	err := c.pool.QueryRow(ctx, `SELECT true, pubtruncate FROM pg_publication WHERE pubname = $1`, pub).Scan(&exists, &truncates)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return c.classify(err, "look up publication "+pub)
	}
	if !exists {
		return errs.BadConfig(fmt.Sprintf("publication %s does not exist at %s", pub, c.where()), "create it (CREATE PUBLICATION "+showIdent(pub)+" FOR TABLE ... WITH (publish_via_partition_root = true)) or leave publication= out so ferry creates one")
	}
	if !truncates {
		// Warned, not refused: a publication without truncate may be what
		// its owner wants, and the flow is exact as long as no one truncates.
		slog.Warn(fmt.Sprintf("publication %s does not publish TRUNCATE: a table of the flow truncated at the source stays full at the destination; ALTER PUBLICATION %s SET (publish = 'insert, update, delete, truncate') to follow truncates", pub, showIdent(pub)),
			"publication", pub, "server", c.where())
	}
	rows, err := c.pool.Query(ctx, `SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1`, pub)
	if err != nil {
		return c.classify(err, "read publication "+pub)
	}
	have := map[model.Namespace]bool{}
	for rows.Next() {
		var ns model.Namespace
		if err := rows.Scan(&ns.Schema, &ns.Table); err != nil {
			rows.Close()
			return c.classify(err, "read publication "+pub)
		}
		have[ns] = true
	}
	rows.Close()
	var missing []string
	for _, s := range tables {
		if !have[s.table.Namespace] {
			missing = append(missing, s.table.Namespace.String())
		}
	}
	if len(missing) > 0 {
		return errs.BadConfig(fmt.Sprintf("publication %s does not publish %s", pub, strings.Join(missing, ", ")), "ALTER PUBLICATION "+showIdent(pub)+" ADD TABLE ..., or select fewer tables with --tables")
	}
	return nil
}

func (c *Conn) dropPublication(ctx context.Context, pub string) {
	c.pool.Exec(ctx, "DROP PUBLICATION IF EXISTS "+quoteIdent(pub)) //nolint:errcheck // cleanup after a failure
}

// slotError explains a failure to create a slot.
func (c *Conn) slotError(ctx context.Context, err error, slot string) error {
	switch sqlState(err) {
	case "53400":
		var names []string
		rows, qerr := c.pool.Query(ctx, `SELECT slot_name || CASE WHEN active THEN ' (active)' ELSE ' (inactive)' END FROM pg_replication_slots ORDER BY 1`)
		if qerr == nil {
			for rows.Next() {
				var n string
				if rows.Scan(&n) == nil {
					names = append(names, n)
				}
			}
			rows.Close()
		}
		return &errs.ConfigError{Msg: fmt.Sprintf("cannot create replication slot %s: every replication slot of %s is in use (%s)", slot, c.where(), strings.Join(names, ", ")),
			Fix: "raise max_replication_slots in postgresql.conf and restart the server, or drop a slot no one needs with SELECT pg_drop_replication_slot('name')", Err: c.scrub.Err(err)}
	case "42710":
		return errs.BadConfig(fmt.Sprintf("replication slot %s already exists", slot), "give this flow another --name, or drop the slot")
	case "42501":
		return c.replicationPrivilegeError(ctx, c.cfg.ConnConfig.User, c.scrub.Err(err))
	}
	return c.classify(err, "create replication slot "+slot)
}

// replicationConn opens a logical replication connection, reading through
// pacer unless it is nil (source_pace.go).
func (c *Conn) replicationConn(ctx context.Context, slot string, pacer *readPacer) (*pgconn.PgConn, error) {
	cfg := c.cfg.ConnConfig.Config.Copy()
	cfg.RuntimeParams["replication"] = "database"
	if pacer != nil {
		cfg.BuildFrontend = pacer.frontend
	}
	// The slot's name tells another ferry planning the same flow that
	// this process holds the slot (checkSlot), and an operator what the
	// walsender is for.
	cfg.RuntimeParams["application_name"] = slot
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil && sqlState(err) == "42501" {
		// The server, not the preflight, has the last word on who may
		// replicate (a managed role may not grant it on this server).
		return nil, c.replicationPrivilegeError(ctx, cfg.User, c.scrub.Err(err))
	}
	if err != nil {
		return nil, c.classify(err, "open a replication connection")
	}
	return conn, nil
}

// DropFlow drops the flow's replication slot and publication, if ferry
// created them (a slot or publication named in the URL is the user's).
func (c *Conn) DropFlow(ctx context.Context, flow string) error {
	c.src.release()
	var failed []error
	if slot, own := c.slotFor(flow); own {
		// A slot still held by a dying walsender is dropped once it is free.
		_, err := c.pool.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, slot)
		if err != nil && sqlState(err) == "55006" {
			_, err = c.pool.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`, slot)
			if err == nil {
				time.Sleep(200 * time.Millisecond)
				_, err = c.pool.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, slot)
			}
		}
		if err != nil {
			failed = append(failed, c.classify(err, "drop replication slot "+slot))
		}
	}
	if pub, own := c.publicationFor(flow); own {
		if _, err := c.pool.Exec(ctx, "DROP PUBLICATION IF EXISTS "+quoteIdent(pub)); err != nil {
			failed = append(failed, c.classify(err, "drop publication "+pub))
		}
	}
	if len(failed) == 0 {
		failed = append(failed, c.dropDDLLog(ctx))
	}
	return errors.Join(failed...)
}
