package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// Tables that exist before the flow (the user's migrations, pg_dump -s) may
// carry triggers and foreign keys. ferry's writing sessions run with
// session_replication_role = replica, as a logical replica's apply worker
// does, so neither fires for the rows ferry writes; where the role may not
// set it, CheckTables refuses such tables before anything is written
// (docs/decisions/2026-12-05-existing-tables.md).

var _ connector.UniqueReporter = (*Conn)(nil)

// replicaRole reports, once per connector, whether the role may set
// session_replication_role: a superuser, or on PostgreSQL 15 and later a
// role granted SET ON PARAMETER session_replication_role.
func (c *Conn) replicaRole(ctx context.Context) (bool, error) {
	c.dst.mu.Lock()
	defer c.dst.mu.Unlock()
	if c.dst.replicaKnown {
		return c.dst.replica, nil
	}
	var may bool
	err := c.pool.QueryRow(ctx, `SELECT current_setting('is_superuser') = 'on'`).Scan(&may)
	if err == nil && !may && c.serverVersion(ctx) >= 150000 {
		err = c.pool.QueryRow(ctx, `SELECT has_parameter_privilege('session_replication_role', 'SET')`).Scan(&may)
	}
	if err != nil {
		return false, c.classify(err, "read whether the role may set session_replication_role")
	}
	c.dst.replica, c.dst.replicaKnown = may, true
	return may, nil
}

// serverVersion is the server's version number (150004), 0 if unknown.
func (c *Conn) serverVersion(ctx context.Context) int {
	var v int
	if err := c.pool.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&v); err != nil {
		return 0
	}
	return v
}

// writingSession makes a session ferry writes rows or changes on keep the
// destination's triggers and foreign keys from firing, when the role may.
func (c *Conn) writingSession(ctx context.Context, conn *pgxpool.Conn) error {
	may, err := c.replicaRole(ctx)
	if err != nil || !may {
		return err
	}
	if _, err := conn.Exec(ctx, "SET session_replication_role = replica"); err != nil {
		return c.classify(err, "set session_replication_role")
	}
	return nil
}

// firing is what would fire at a destination table when ferry writes to
// it: user triggers, and foreign keys it holds or is referenced by.
type firing struct {
	table    model.Namespace
	triggers []string
	fkeys    []string
}

func (f firing) String() string {
	var what []string
	if len(f.triggers) > 0 {
		what = append(what, "triggers "+strings.Join(f.triggers, ", "))
	}
	if len(f.fkeys) > 0 {
		what = append(what, "foreign keys "+strings.Join(f.fkeys, ", "))
	}
	return f.table.String() + " (" + strings.Join(what, "; ") + ")"
}

// whatFires lists, of the tables that exist already, those with user
// triggers or foreign keys (either end), in the order given.
func (c *Conn) whatFires(ctx context.Context, tables []*model.Table) ([]firing, error) {
	var out []firing
	for _, t := range tables {
		f := firing{table: t.Namespace}
		rows, err := c.pool.Query(ctx, `SELECT 't', tgname FROM pg_trigger
				WHERE tgrelid = to_regclass($1) AND NOT tgisinternal AND tgenabled <> 'D'
			UNION ALL
			SELECT 'f', conname FROM pg_constraint
				WHERE contype = 'f' AND (conrelid = to_regclass($1) OR confrelid = to_regclass($1))
			ORDER BY 1, 2`, qualified(t.Namespace))
		if err != nil {
			return nil, c.classify(err, "read the triggers and foreign keys of "+t.Namespace.String())
		}
		for rows.Next() {
			var kind, name string
			if err := rows.Scan(&kind, &name); err != nil {
				rows.Close()
				return nil, c.classify(err, "read the triggers and foreign keys of "+t.Namespace.String())
			}
			if kind == "t" {
				f.triggers = append(f.triggers, name)
			} else {
				f.fkeys = append(f.fkeys, name)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, c.classify(err, "read the triggers and foreign keys of "+t.Namespace.String())
		}
		if len(f.triggers)+len(f.fkeys) > 0 {
			out = append(out, f)
		}
	}
	return out, nil
}

// checkFiring refuses existing tables whose triggers or foreign keys would
// fire for the rows ferry writes, when the role may not keep them from
// firing: triggers would act on every copied row (an audit table filled
// with the copy), and foreign keys would refuse rows that writers in
// parallel bring in another order than the source's.
func (c *Conn) checkFiring(ctx context.Context, tables []*model.Table) error {
	may, err := c.replicaRole(ctx)
	if err != nil || may {
		return err
	}
	fires, err := c.whatFires(ctx, tables)
	if err != nil || len(fires) == 0 {
		return err
	}
	names := make([]string, len(fires))
	for i, f := range fires {
		names[i] = f.String()
	}
	user := showIdent(c.cfg.ConnConfig.User)
	return errs.BadConfig(
		fmt.Sprintf("destination tables at %s have triggers or foreign keys that would fire for every row ferry writes, and role %s may not set session_replication_role = replica to keep them from firing: %s",
			c.where(), user, strings.Join(names, ", ")),
		"as a superuser, run GRANT SET ON PARAMETER session_replication_role TO "+user+" (PostgreSQL 15 and later), or connect as a superuser; or let ferry create the tables (drop them first) and add the triggers and foreign keys after the cutover")
}

// UniqueTables names the tables, of those given, that hold a unique index
// or an exclusion constraint besides their primary key. Changes folded by
// key and applied in parallel could break such a constraint for a moment
// (two rows swapping a value), so the engine applies these tables' changes
// in the source's order on one writer.
func (c *Conn) UniqueTables(ctx context.Context, tables []*model.Table) ([]model.Namespace, error) {
	var out []model.Namespace
	for _, t := range tables {
		var has bool
		err := c.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_index
			WHERE indrelid = to_regclass($1) AND ((indisunique AND NOT indisprimary) OR indisexclusion))`, qualified(t.Namespace)).Scan(&has)
		if err != nil {
			return nil, c.classify(err, "read the unique indexes of "+t.Namespace.String())
		}
		if has {
			out = append(out, t.Namespace)
		}
	}
	return out, nil
}
