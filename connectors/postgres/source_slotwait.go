package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
)

// Creating a logical slot with an exported snapshot waits until every
// transaction holding a transaction id on the whole server (any database)
// has ended: a write transaction left open somewhere holds the plan for as
// long as it stays open. The walsender waits on each such transaction's
// lock, so pg_blocking_pids names them.
var (
	// slotWaitFirst is how long the creation may take before ferry says
	// what it waits for; slotWaitEvery how often it says it again while
	// the same transactions block it (at once when they change).
	slotWaitFirst = 3 * time.Second
	slotWaitEvery = 30 * time.Second
	slotWaitPoll  = time.Second
)

// blocker is a transaction the slot's creation waits for.
type blocker struct {
	pid      int32 // 0 for a prepared transaction
	database string
	user     string
	state    string
	age      time.Duration // -1 when hidden from this role
	query    string
	gid      string // a prepared transaction's name
}

// createSlot creates the flow's slot on repl, reporting what the creation
// waits for while it waits. When ctx ends first, the walsender is ended
// too and the slot dropped, so a cancelled plan leaves nothing behind.
func (c *Conn) createSlot(ctx context.Context, repl *pgconn.PgConn, slot string) (pglogrepl.CreateReplicationSlotResult, error) {
	watch, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.watchSlotWait(watch, slot, repl.PID())
	}()
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, quoteIdent(slot), "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "EXPORT_SNAPSHOT"})
	stopWatch()
	wg.Wait()
	if err != nil && ctx.Err() != nil {
		c.releaseCreatingSlot(context.WithoutCancel(ctx), slot, repl.PID())
		return res, fmt.Errorf("create replication slot %s: %w", slot, ctx.Err())
	}
	return res, err
}

// watchSlotWait logs, once the creation has taken slotWaitFirst, which
// transactions it waits for, until ctx ends.
func (c *Conn) watchSlotWait(ctx context.Context, slot string, walsender uint32) {
	start := time.Now()
	t := time.NewTimer(slotWaitFirst)
	defer t.Stop()
	var last string
	var lastAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		t.Reset(slotWaitPoll)
		blockers, err := c.slotBlockers(ctx, walsender)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			blockers = nil // say at least that it waits
		}
		key := blockerKey(blockers)
		if key == last && time.Since(lastAt) < slotWaitEvery {
			continue
		}
		last, lastAt = key, time.Now()
		waited := time.Since(start).Round(time.Second)
		pids := make([]int32, 0, len(blockers))
		for _, b := range blockers {
			if b.pid != 0 { // 0: a prepared transaction, named in the message
				pids = append(pids, b.pid)
			}
		}
		slog.Warn(slotWaitMessage(slot, waited, blockers, c.cfg.ConnConfig.User),
			"slot", slot, "server", c.where(), "waited", waited.String(), "blocking_pids", pids)
	}
}

// slotBlockers lists the transactions the walsender creating the slot
// waits for, oldest first: sessions (pg_blocking_pids) and prepared
// transactions (which hold their transaction id's lock with no session).
func (c *Conn) slotBlockers(ctx context.Context, walsender uint32) ([]blocker, error) {
	rows, err := c.pool.Query(ctx, `
		SELECT b.pid, COALESCE(a.datname, ''), COALESCE(a.usename, ''), COALESCE(a.state, ''),
			COALESCE(EXTRACT(epoch FROM clock_timestamp() - a.xact_start)::float8, -1), COALESCE(a.query, ''), ''
		FROM unnest(pg_blocking_pids($1)) AS b(pid) JOIN pg_stat_activity a ON a.pid = b.pid
		UNION ALL
		SELECT 0, p.database, p.owner, 'prepared', EXTRACT(epoch FROM clock_timestamp() - p.prepared)::float8, '', p.gid
		FROM pg_prepared_xacts p
		WHERE p.transaction IN (SELECT l.transactionid FROM pg_locks l WHERE l.pid = $1 AND l.locktype = 'transactionid' AND NOT l.granted)
		ORDER BY 5 DESC, 1`, int32(walsender))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []blocker
	for rows.Next() {
		var b blocker
		var age float64
		if err := rows.Scan(&b.pid, &b.database, &b.user, &b.state, &age, &b.query, &b.gid); err != nil {
			return nil, err
		}
		b.age = -1
		if age >= 0 {
			b.age = time.Duration(age * float64(time.Second)).Round(time.Second)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

func blockerKey(bs []blocker) string {
	var b strings.Builder
	for _, x := range bs {
		b.WriteString(strconv.Itoa(int(x.pid)))
		b.WriteString(x.gid)
		b.WriteByte(',')
	}
	return b.String()
}

// slotWaitMessage says what the slot's creation waits for and how to end
// the wait.
func slotWaitMessage(slot string, waited time.Duration, bs []blocker, role string) string {
	head := fmt.Sprintf("postgres: creating replication slot %s has waited %s: PostgreSQL creates it only once every transaction that was writing when it started has ended, in any database of the server, and ferry copies nothing until then", slot, waited)
	if len(bs) == 0 {
		return head + "; no transaction blocks it right now (SELECT pid, datname, xact_start, query FROM pg_stat_activity WHERE backend_xid IS NOT NULL lists the writing ones)"
	}
	n := "1 transaction"
	if len(bs) > 1 {
		n = fmt.Sprintf("%d transactions", len(bs))
	}
	var parts, terminate []string
	hidden := false
	for _, b := range bs {
		if b.pid == 0 {
			gid := "'" + strings.ReplaceAll(b.gid, "'", "''") + "'"
			parts = append(parts, fmt.Sprintf("prepared transaction %s (database %s, owner %s, prepared %s ago; end it in database %s with COMMIT PREPARED %s or ROLLBACK PREPARED %s)",
				gid, b.database, b.user, b.age, b.database, gid, gid))
			continue
		}
		var d []string
		d = append(d, "database "+b.database)
		if b.user != "" {
			d = append(d, "user "+b.user)
		}
		if b.age >= 0 {
			d = append(d, "open "+b.age.String())
		}
		if b.state != "" {
			d = append(d, b.state)
		}
		switch {
		case b.query == "<insufficient privilege>" || b.query == "":
			hidden = true
		case b.state == "active":
			d = append(d, "query: "+shortQuery(b.query))
		default:
			d = append(d, "last query: "+shortQuery(b.query))
		}
		parts = append(parts, fmt.Sprintf("pid %d (%s)", b.pid, strings.Join(d, ", ")))
		terminate = append(terminate, fmt.Sprintf("SELECT pg_terminate_backend(%d)", b.pid))
	}
	msg := fmt.Sprintf("%s; it waits for %s: %s", head, n, strings.Join(parts, "; "))
	if len(terminate) > 0 {
		msg += "; have it committed or rolled back, or end it with " + strings.Join(terminate, ", ")
	}
	if hidden {
		msg += fmt.Sprintf("; role %s cannot see other roles' queries (GRANT pg_read_all_stats TO %s shows them)", role, showIdent(role))
	}
	return msg
}

// shortQuery is a query on one line, cut to 200 characters.
func shortQuery(q string) string {
	q = strings.Join(strings.Fields(q), " ")
	if r := []rune(q); len(r) > 200 {
		q = string(r[:200]) + "..."
	}
	return q
}

// releaseCreatingSlot ends the walsender that was creating the slot and
// drops the slot if it was made all the same. pgx's cancel request on the
// closed connection is sent asynchronously and may come too late (the
// transactions ended meanwhile and the slot was made): ending the process
// and waiting for it makes what is left certain before the plan returns.
func (c *Conn) releaseCreatingSlot(ctx context.Context, slot string, walsender uint32) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, int32(walsender)); err != nil {
		slog.Warn("postgres: cannot end the server process creating the replication slot", "slot", slot, "pid", walsender,
			"server", c.where(), "error", c.scrub.Err(err).Error())
	}
	// The dying walsender drops the slot it had not finished; one it had
	// finished stays, and is dropped by name once no process holds it.
	for ctx.Err() == nil {
		var gone bool
		err := c.pool.QueryRow(ctx, `SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)`, int32(walsender)).Scan(&gone)
		if err != nil || gone {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, err := c.pool.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, slot)
	if err != nil {
		slog.Warn(fmt.Sprintf("postgres: cannot drop replication slot %s after cancelling its creation; drop it with SELECT pg_drop_replication_slot('%s')", slot, slot),
			"slot", slot, "server", c.where(), "error", c.scrub.Err(err).Error())
	}
}
