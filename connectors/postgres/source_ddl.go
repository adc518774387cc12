package postgres

import (
	"context"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/model"
)

// ddlLogNS is the table ferry's event trigger logs schema changes in. It is
// part of ferry's publication, so each change reaches the stream in commit
// order, before the altered table's next change.
var ddlLogNS = model.Namespace{Schema: "_ferry", Table: "ddl_log"}

// ddlLogTrigger is the event trigger's name (event triggers are per
// database, not per schema).
const ddlLogTrigger = "ferry_ddl_log"

// ddlRewriteTrigger notes, for the log's next entry, that an ALTER TABLE
// rewrote a table's rows (a default computed per row, a column converted):
// values changed that no change in the stream carries.
const ddlRewriteTrigger = "ferry_ddl_rewrite"

// ddlRewriteDoneTrigger clears those notes at the end of the command, after
// ddlLogTrigger (event triggers fire in the order of their names).
const ddlRewriteDoneTrigger = "ferry_ddl_rewrite_done"

// ddlDropTrigger logs each table dropped (DROP TABLE, and DROP SCHEMA or
// DROP OWNED that take tables with them), so a flow stops following it at
// that point of its stream.
const ddlDropTrigger = "ferry_ddl_drop"

// ddlLogTags are the commands ddlLogTrigger logs: CREATE TABLE AS and
// SELECT INTO create tables too.
const ddlLogTags = `'ALTER TABLE', 'CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO'`

// ddlLogSetup creates the DDL log, the function that reads a table's live
// columns, the event trigger function that logs them after each ALTER TABLE
// and CREATE TABLE, and the one that logs a DROP TABLE. The trigger function is SECURITY DEFINER, so whoever runs
// the DDL needs no privilege on the log, and it never fails the user's
// statement: a row it could not write shows up as a disagreement between
// the log and the stream, which stops the flow.
//
// The missing values are spelled in the text form ferry's sessions read
// (postgres.go's sessionParams), whatever the altering session's DateStyle.
//
// volatile_default reads the functions a default calls from its node tree:
// the server records no dependency on built-in functions such as
// clock_timestamp(), and offers no SQL for contain_volatile_functions.
const ddlLogSetup = `
CREATE SCHEMA IF NOT EXISTS _ferry;
CREATE TABLE IF NOT EXISTS _ferry.ddl_log (
	id bigserial PRIMARY KEY,
	relid oid NOT NULL,
	schema_name text NOT NULL,
	table_name text NOT NULL,
	command text NOT NULL,
	columns jsonb NOT NULL,
	logged_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE _ferry.ddl_log ADD COLUMN IF NOT EXISTS rewritten boolean NOT NULL DEFAULT false;
CREATE INDEX IF NOT EXISTS ddl_log_relid ON _ferry.ddl_log (relid, id);
CREATE OR REPLACE FUNCTION _ferry.table_columns(rel oid) RETURNS jsonb LANGUAGE sql STABLE
SET search_path = pg_catalog SET TimeZone = 'UTC' SET DateStyle = 'ISO, MDY' SET IntervalStyle = 'iso_8601'
SET extra_float_digits = 3 SET bytea_output = 'hex' SET lc_monetary = 'C' AS $f$
	SELECT COALESCE(jsonb_agg(jsonb_build_object(
		'attnum', a.attnum, 'name', a.attname, 'type_oid', a.atttypid::int8, 'typmod', a.atttypmod,
		'format_type', format_type(a.atttypid, a.atttypmod), 'notnull', a.attnotnull,
		'hasmissing', a.atthasmissing, 'missing', CASE WHEN a.atthasmissing THEN a.attmissingval::text END,
		'hasdef', a.atthasdef, 'generated', a.attgenerated <> '', 'identity', a.attidentity <> '',
		'volatile_default', EXISTS (SELECT 1 FROM pg_attrdef d
			CROSS JOIN LATERAL regexp_matches(d.adbin::text, ':(?:func|opfunc)id (\d+)', 'g') m
			JOIN pg_proc p ON p.oid = m[1]::oid
			WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND p.provolatile = 'v')
	) ORDER BY a.attnum), '[]'::jsonb)
	FROM pg_attribute a WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
$f$;
CREATE OR REPLACE FUNCTION _ferry.log_rewrite() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER AS $f$
BEGIN
	-- No SET clause: leaving the function would undo the setting; every
	-- name is qualified instead. On table_rewrite, reason 2 (a default
	-- computed per row) marks the table, and so does reason 4 (a column's
	-- values converted) unless the client sent one ALTER TABLE statement
	-- without USING: then the server converted with the types' own casts,
	-- whose result the destination's conversion gives too. At the
	-- command's end (after ferry_ddl_log logged it) the marks go, so the
	-- transaction's next command starts clean.
	IF TG_EVENT OPERATOR(pg_catalog.=) 'table_rewrite' THEN
		PERFORM pg_catalog.set_config('ferry.rewritten', pg_catalog.concat(pg_catalog.current_setting('ferry.rewritten', true), ' ', pg_catalog.pg_event_trigger_table_rewrite_oid(), ' '), true)
		WHERE pg_catalog.pg_event_trigger_table_rewrite_reason() OPERATOR(pg_catalog.&) 2 OPERATOR(pg_catalog.<>) 0
			OR pg_catalog.pg_event_trigger_table_rewrite_reason() OPERATOR(pg_catalog.&) 4 OPERATOR(pg_catalog.<>) 0
			AND NOT (pg_catalog.current_query() OPERATOR(pg_catalog.~*) '^\s*alter\s+table\M[^;]*;?\s*$'
				AND pg_catalog.current_query() OPERATOR(pg_catalog.!~*) '\musing\M');
	ELSE
		PERFORM pg_catalog.set_config('ferry.rewritten', '', true);
	END IF;
END
$f$;
CREATE OR REPLACE FUNCTION _ferry.log_ddl() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog AS $f$
DECLARE
	r record;
	rewritten text := coalesce(current_setting('ferry.rewritten', true), '');
BEGIN
	FOR r IN SELECT DISTINCT c.objid, c.command_tag FROM pg_event_trigger_ddl_commands() c
		WHERE c.classid = 'pg_class'::regclass AND c.object_type IN ('table', 'table column') LOOP
		BEGIN
			INSERT INTO _ferry.ddl_log (relid, schema_name, table_name, command, columns, rewritten)
			SELECT k.oid, n.nspname, k.relname, r.command_tag, _ferry.table_columns(k.oid),
				EXISTS (SELECT 1 FROM (SELECT k.oid UNION ALL SELECT relid FROM pg_partition_tree(k.oid)) t(relid)
					WHERE position(' ' || t.relid::oid::text || ' ' IN rewritten) > 0)
			FROM pg_class k JOIN pg_namespace n ON n.oid = k.relnamespace
			WHERE k.oid = r.objid AND k.relkind IN ('r', 'p') AND n.nspname <> '_ferry';
		EXCEPTION WHEN OTHERS THEN
			RAISE WARNING 'ferry: could not log the schema change of table %: %', r.objid::regclass, SQLERRM;
		END;
	END LOOP;
END
$f$;
CREATE OR REPLACE FUNCTION _ferry.log_drop() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog AS $f$
DECLARE
	r record;
BEGIN
	-- Every table the command dropped, the ones a DROP SCHEMA ... CASCADE
	-- took with it too; the partitions of a dropped partitioned table are
	-- logged as well, and the stream, which does not follow them, passes.
	FOR r IN SELECT d.objid, d.schema_name, d.object_name FROM pg_event_trigger_dropped_objects() d
		WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0 AND d.object_type = 'table'
			AND NOT d.is_temporary AND d.schema_name <> '_ferry' LOOP
		BEGIN
			INSERT INTO _ferry.ddl_log (relid, schema_name, table_name, command, columns)
			VALUES (r.objid, r.schema_name, r.object_name, 'DROP TABLE', '[]'::jsonb);
		EXCEPTION WHEN OTHERS THEN
			RAISE WARNING 'ferry: could not log the drop of table %.%: %', r.schema_name, r.object_name, SQLERRM;
		END;
	END LOOP;
END
$f$;
`

// ddlLogBaseline logs the live columns of the flow's tables that the log
// does not show as they are now: the first entry the stream compares later
// ones with. Written before the slot exists, it never reaches the stream.
const ddlLogBaseline = `INSERT INTO _ferry.ddl_log (relid, schema_name, table_name, command, columns)
	SELECT k.oid, n.nspname, k.relname, 'BASELINE', _ferry.table_columns(k.oid)
	FROM pg_class k JOIN pg_namespace n ON n.oid = k.relnamespace
	WHERE k.oid = ANY($1) AND _ferry.table_columns(k.oid) IS DISTINCT FROM
		(SELECT l.columns FROM _ferry.ddl_log l WHERE l.relid = k.oid ORDER BY l.id DESC LIMIT 1)`

// ddlLogRoles are the managed services' administrator roles that may create
// event triggers (Amazon RDS and Aurora, Google Cloud SQL).
var ddlLogRoles = []string{"rds_superuser", "cloudsqlsuperuser"}

// ensureDDLLog creates the DDL log and its event trigger when the role may
// (superuser, or a managed service's administrator role), and logs the
// flow's tables as they are now. It reports whether the log is there; where
// it cannot be, the stream follows schema changes by column name alone and
// stops where that is ambiguous.
func (c *Conn) ensureDDLLog(ctx context.Context, tables []*srcTable) (bool, error) {
	may, err := c.mayCreateEventTriggers(ctx)
	if err != nil {
		return false, err
	}
	if !may {
		c.warnNoDDLLog("the role may not create event triggers (it needs superuser, or rds_superuser / cloudsqlsuperuser on a managed service)")
		return false, nil
	}
	// A publication FOR ALL TABLES would publish the log too, and a
	// subscriber without the table would stop on its first row.
	var allTables []string
	rows, err := c.pool.Query(ctx, `SELECT pubname FROM pg_publication WHERE puballtables ORDER BY 1`)
	if err != nil {
		return false, c.classify(err, "read publications")
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err == nil {
			allTables = append(allTables, n)
		}
	}
	rows.Close()
	if len(allTables) > 0 {
		c.warnNoDDLLog("publication(s) " + strings.Join(allTables, ", ") + " publish all tables, and would carry the log to their subscribers")
		return false, nil
	}
	oids := make([]uint32, len(tables))
	for i, s := range tables {
		oids[i] = s.oid
	}
	err = pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		// Flows starting together would race on CREATE OR REPLACE.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('ferry ddl log'))`); err != nil {
			return err
		}
		// Made once: replacing the functions needs their owner, which
		// another administrator role on a managed service is not.
		exists, err := ddlLogCurrent(ctx, tx)
		if err != nil {
			return err
		}
		if !exists {
			if _, err := tx.Exec(ctx, ddlLogSetup); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DROP EVENT TRIGGER IF EXISTS `+ddlLogTrigger+`;
				CREATE EVENT TRIGGER `+ddlLogTrigger+` ON ddl_command_end WHEN TAG IN (`+ddlLogTags+`) EXECUTE FUNCTION _ferry.log_ddl();
				DROP EVENT TRIGGER IF EXISTS `+ddlRewriteTrigger+`;
				CREATE EVENT TRIGGER `+ddlRewriteTrigger+` ON table_rewrite WHEN TAG IN ('ALTER TABLE') EXECUTE FUNCTION _ferry.log_rewrite();
				DROP EVENT TRIGGER IF EXISTS `+ddlRewriteDoneTrigger+`;
				CREATE EVENT TRIGGER `+ddlRewriteDoneTrigger+` ON ddl_command_end WHEN TAG IN ('ALTER TABLE') EXECUTE FUNCTION _ferry.log_rewrite();
				DROP EVENT TRIGGER IF EXISTS `+ddlDropTrigger+`;
				CREATE EVENT TRIGGER `+ddlDropTrigger+` ON sql_drop EXECUTE FUNCTION _ferry.log_drop()`); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, ddlLogBaseline, oids)
		return err
	})
	if err != nil {
		if sqlState(err) == "42501" {
			c.warnNoDDLLog("creating it was refused: " + c.scrub.Err(err).Error())
			return false, nil
		}
		return false, c.classify(err, "create ferry's DDL log (_ferry.ddl_log and event trigger "+ddlLogTrigger+")")
	}
	return true, nil
}

// ddlLogCurrent reports whether the DDL log is there as this ferry makes
// it. A log made before rewrites were logged lacks the rewrite trigger, one
// made before tables created and dropped were followed the drop trigger and
// CREATE TABLE AS among the logged commands: either is made again.
func ddlLogCurrent(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (bool, error) {
	var current bool
	err := q.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_event_trigger WHERE evtname IN ($1, $2, $3, $4)) = 4 AND to_regprocedure('_ferry.log_ddl()') IS NOT NULL
			AND to_regprocedure('_ferry.log_rewrite()') IS NOT NULL AND to_regprocedure('_ferry.log_drop()') IS NOT NULL
			AND to_regprocedure('_ferry.table_columns(oid)') IS NOT NULL AND to_regclass('_ferry.ddl_log') IS NOT NULL
			AND EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = $1 AND 'CREATE TABLE AS' = ANY (evttags))`,
		ddlLogTrigger, ddlRewriteTrigger, ddlRewriteDoneTrigger, ddlDropTrigger).Scan(&current)
	return current, err
}

// mayCreateEventTriggers reports whether the role may make the DDL log.
func (c *Conn) mayCreateEventTriggers(ctx context.Context) (bool, error) {
	var may bool
	err := c.pool.QueryRow(ctx, `SELECT r.rolsuper OR EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname = ANY($1) AND pg_has_role(current_user, g.oid, 'MEMBER'))
		FROM pg_roles r WHERE r.rolname = current_user`, ddlLogRoles).Scan(&may)
	if err != nil {
		return false, c.classify(err, "check the privilege to create event triggers")
	}
	return may, nil
}

// upgradeDDLLog makes again, when a stream starts, a DDL log an older ferry
// made for a flow planned by it: without it the stream would not see
// tables dropped at the source. A role that may not make it streams on
// with the log as it is, and is told what it misses.
func (c *Conn) upgradeDDLLog(ctx context.Context) error {
	current, err := ddlLogCurrent(ctx, c.pool)
	if err != nil {
		return c.classify(err, "look up ferry's DDL log")
	}
	if current {
		return nil
	}
	may, err := c.mayCreateEventTriggers(ctx)
	if err != nil {
		return err
	}
	if !may {
		slog.Warn("postgres: ferry's DDL log on the source was made by an older ferry and does not log dropped tables (event trigger "+ddlDropTrigger+"); a table dropped at the source goes unnoticed by the stream. Run the flow once with a role that may create event triggers (superuser, or rds_superuser / cloudsqlsuperuser on a managed service) to make it again",
			"server", c.where())
		return nil
	}
	_, err = c.ensureDDLLog(ctx, nil)
	return err
}

func (c *Conn) warnNoDDLLog(why string) {
	slog.Warn("postgres: ferry cannot keep its DDL log on the source ("+why+"); schema changes are followed by column name, and a renamed column stops the flow",
		"server", c.where())
}

// dropDDLLog removes the DDL log, its functions and its event trigger when
// no publication (another flow's, or a user's) publishes the log any more.
func (c *Conn) dropDDLLog(ctx context.Context) error {
	var used, exists bool
	err := c.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication_tables WHERE schemaname = $1 AND tablename = $2),
			to_regclass('_ferry.ddl_log') IS NOT NULL OR EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname IN ($3, $4, $5, $6))`,
		ddlLogNS.Schema, ddlLogNS.Table, ddlLogTrigger, ddlRewriteTrigger, ddlRewriteDoneTrigger, ddlDropTrigger).Scan(&used, &exists)
	if err != nil {
		return c.classify(err, "look up ferry's DDL log")
	}
	if used || !exists {
		return nil
	}
	_, err = c.pool.Exec(ctx, `DROP EVENT TRIGGER IF EXISTS `+ddlLogTrigger+`;
		DROP EVENT TRIGGER IF EXISTS `+ddlRewriteTrigger+`;
		DROP EVENT TRIGGER IF EXISTS `+ddlRewriteDoneTrigger+`;
		DROP EVENT TRIGGER IF EXISTS `+ddlDropTrigger+`;
		DROP FUNCTION IF EXISTS _ferry.log_ddl();
		DROP FUNCTION IF EXISTS _ferry.log_rewrite();
		DROP FUNCTION IF EXISTS _ferry.log_drop();
		DROP FUNCTION IF EXISTS _ferry.table_columns(oid);
		DROP TABLE IF EXISTS _ferry.ddl_log`)
	if err != nil && sqlState(err) == "42501" {
		// Made by a role with more rights than this one: the flow is
		// dropped all the same, and the log is only in the way of no one.
		slog.Warn("postgres: ferry's DDL log is no longer used but this role may not drop it; as a superuser: DROP EVENT TRIGGER "+ddlLogTrigger+"; DROP EVENT TRIGGER "+ddlRewriteTrigger+"; DROP EVENT TRIGGER "+ddlRewriteDoneTrigger+"; DROP EVENT TRIGGER "+ddlDropTrigger+"; DROP TABLE _ferry.ddl_log; DROP FUNCTION _ferry.log_ddl(), _ferry.log_rewrite(), _ferry.log_drop(), _ferry.table_columns(oid)",
			"server", c.where(), "error", c.scrub.Err(err).Error())
		return nil
	}
	if err != nil {
		return c.classify(err, "drop ferry's DDL log (_ferry.ddl_log and event trigger "+ddlLogTrigger+")")
	}
	// The schema may hold a destination's tables too: it goes only empty.
	var empty bool
	err = c.pool.QueryRow(ctx, `SELECT NOT EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = n.oid) AND NOT EXISTS (SELECT 1 FROM pg_proc WHERE pronamespace = n.oid)
		AND NOT EXISTS (SELECT 1 FROM pg_type WHERE typnamespace = n.oid) FROM pg_namespace n WHERE n.nspname = '_ferry'`).Scan(&empty)
	if err != nil && err != pgx.ErrNoRows {
		return c.classify(err, "look up schema _ferry")
	}
	if empty {
		if _, err := c.pool.Exec(ctx, `DROP SCHEMA IF EXISTS _ferry`); err != nil {
			return c.classify(err, "drop schema _ferry")
		}
	}
	return nil
}

// publishesDDLLog reports whether the publication publishes ferry's DDL
// log: then the stream follows schema changes by the log.
func (c *Conn) publishesDDLLog(ctx context.Context, pub string) (bool, error) {
	var yes bool
	err := c.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3)`,
		pub, ddlLogNS.Schema, ddlLogNS.Table).Scan(&yes)
	if err != nil {
		return false, c.classify(err, "read publication "+pub)
	}
	return yes, nil
}
