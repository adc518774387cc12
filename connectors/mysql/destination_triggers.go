package mysql

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// refuseTriggers refuses tables that exist at this destination with
// triggers: MySQL fires them for every row ferry copies or applies and has
// no session setting that keeps them from firing (PostgreSQL's
// session_replication_role), and a trigger that fired for the copy (an
// audit row, a counter) is not undone later. Like the PostgreSQL
// destination, ferry refuses before anything is written rather than warn
// (docs/decisions/2026-12-05-existing-tables.md).
func (c *Conn) refuseTriggers(ctx context.Context, planned []plannedTable) error {
	if len(planned) == 0 {
		return nil
	}
	var conds []string
	var args []any
	for _, p := range planned {
		conds = append(conds, "(EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?)")
		args = append(args, p.name.Schema, p.name.Table)
	}
	rows, err := c.db.QueryContext(ctx, `SELECT EVENT_OBJECT_SCHEMA, EVENT_OBJECT_TABLE, TRIGGER_NAME FROM information_schema.TRIGGERS
		WHERE `+strings.Join(conds, " OR ")+` ORDER BY 1, 2, 3`, args...)
	if err != nil {
		return outage(err, fmt.Errorf("mysql %s: read the triggers of the destination tables: %w", c.host, c.scrubber.Err(err)))
	}
	defer rows.Close()
	byTable := map[model.Namespace][]string{}
	var drops []string
	for rows.Next() {
		var ns model.Namespace
		var name string
		if err := rows.Scan(&ns.Schema, &ns.Table, &name); err != nil {
			return err
		}
		byTable[ns] = append(byTable[ns], name)
		drops = append(drops, "DROP TRIGGER "+quoteIdent(ns.Schema)+"."+quoteIdent(name))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(byTable) == 0 {
		return nil
	}
	var what []string
	for ns, names := range byTable {
		what = append(what, fmt.Sprintf("%s (trigger %s)", ns, strings.Join(names, ", ")))
	}
	sort.Strings(what)
	return errs.BadConfig(fmt.Sprintf("destination table(s) %s have triggers, which MySQL would fire for every row ferry copies and applies (it cannot switch them off for a session)", strings.Join(what, "; ")),
		"keep each trigger's definition (SHOW CREATE TRIGGER), drop them ("+strings.Join(drops, "; ")+"), and create them again after the cutover; or leave the table(s) out with --tables")
}
