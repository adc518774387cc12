package postgres

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

var _ connector.ObjectReader = (*Conn)(nil)

// The functions, views, materialized views and triggers a destination
// creates at cutover are read with the server's own pg_get_functiondef,
// pg_get_viewdef, pg_get_triggerdef and pg_get_indexdef under an empty
// search_path, as pg_dump reads them, so every name in them is
// schema-qualified (docs/decisions/2026-12-05-objects-at-cutover.md).

// procObjectsSQL selects functions, procedures and aggregates as the rows
// readObjects scans; a WHERE on p (pg_proc) and n (its schema) follows.
const procObjectsSQL = `
SELECT 'p', p.oid, CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
		p.oid::regprocedure::text, n.nspname, '', '',
		CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid) ELSE '' END,
		ARRAY(SELECT 'COMMENT ON ' || CASE p.prokind WHEN 'p' THEN 'PROCEDURE ' WHEN 'a' THEN 'AGGREGATE ' ELSE 'FUNCTION ' END
				|| p.oid::regprocedure::text || ' IS ' || quote_literal(d.description)
			FROM pg_description d WHERE d.classoid = 'pg_proc'::regclass AND d.objoid = p.oid AND d.objsubid = 0),
		pg_get_userbyid(p.proowner), p.prosecdef, l.lanname
	FROM pg_proc p
	JOIN pg_namespace n ON n.oid = p.pronamespace
	JOIN pg_language l ON l.oid = p.prolang`

// objectsSQL lists the objects of schemas $1 and the triggers of tables
// $2 (and of those schemas' views), but those an extension owns. Each
// row: the catalog ('p' pg_proc, 'r' pg_class, 't' pg_trigger) and oid,
// the kind, the ID, the schema, a trigger's table, the statement that
// creates it, those that finish it, the owner, SECURITY DEFINER and the
// language.
const objectsSQL = procObjectsSQL + `
	WHERE n.nspname = ANY($1) AND p.prokind IN ('f', 'p', 'a')
		AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_proc'::regclass AND e.objid = p.oid AND e.deptype = 'e')
UNION ALL
SELECT 'r', c.oid, CASE c.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END,
		c.oid::regclass::text, n.nspname, '', '',
		'CREATE ' || CASE c.relkind WHEN 'v' THEN 'VIEW ' ELSE 'MATERIALIZED VIEW ' END || c.oid::regclass::text
			|| COALESCE(' WITH (' || (SELECT string_agg(quote_ident(o.option_name) || '=' || quote_literal(o.option_value), ', ')
				FROM pg_options_to_table(c.reloptions) o WHERE o.option_name <> 'check_option') || ')', '')
			|| ' AS' || E'\n' || rtrim(rtrim(pg_get_viewdef(c.oid)), ';')
			|| CASE WHEN c.relkind = 'm' AND c.relispopulated THEN E'\n  WITH DATA' WHEN c.relkind = 'm' THEN E'\n  WITH NO DATA'
				ELSE COALESCE((SELECT E'\n  WITH ' || upper(o.option_value) || ' CHECK OPTION'
					FROM pg_options_to_table(c.reloptions) o WHERE o.option_name = 'check_option'), '') END,
		ARRAY(SELECT 'ALTER VIEW ' || c.oid::regclass::text || ' ALTER COLUMN ' || quote_ident(a.attname) || ' SET DEFAULT ' || pg_get_expr(d.adbin, d.adrelid)
				FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
				WHERE d.adrelid = c.oid ORDER BY a.attnum)
			|| ARRAY(SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
				WHERE i.indrelid = c.oid ORDER BY x.relname)
			|| ARRAY(SELECT 'COMMENT ON ' || CASE c.relkind WHEN 'v' THEN 'VIEW ' ELSE 'MATERIALIZED VIEW ' END
					|| c.oid::regclass::text || ' IS ' || quote_literal(d.description)
				FROM pg_description d WHERE d.classoid = 'pg_class'::regclass AND d.objoid = c.oid AND d.objsubid = 0)
			|| ARRAY(SELECT 'COMMENT ON COLUMN ' || c.oid::regclass::text || '.' || quote_ident(a.attname) || ' IS ' || quote_literal(d.description)
				FROM pg_description d JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid
				WHERE d.classoid = 'pg_class'::regclass AND d.objoid = c.oid AND d.objsubid > 0 ORDER BY a.attnum)
			|| ARRAY(SELECT 'COMMENT ON INDEX ' || i.indexrelid::regclass::text || ' IS ' || quote_literal(d.description)
				FROM pg_index i JOIN pg_description d ON d.classoid = 'pg_class'::regclass AND d.objoid = i.indexrelid AND d.objsubid = 0
				WHERE i.indrelid = c.oid ORDER BY 1),
		pg_get_userbyid(c.relowner), false, ''
	FROM pg_class c
	JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname = ANY($1) AND c.relkind IN ('v', 'm')
		AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
UNION ALL
SELECT 't', t.oid, 'trigger', quote_ident(t.tgname) || ' ON ' || c.oid::regclass::text, n.nspname, n.nspname, c.relname,
		pg_get_triggerdef(t.oid),
		ARRAY(SELECT 'ALTER TABLE ' || c.oid::regclass::text || CASE t.tgenabled WHEN 'D' THEN ' DISABLE' WHEN 'A' THEN ' ENABLE ALWAYS' ELSE ' ENABLE REPLICA' END
				|| ' TRIGGER ' || quote_ident(t.tgname) WHERE t.tgenabled <> 'O')
			|| ARRAY(SELECT 'COMMENT ON TRIGGER ' || quote_ident(t.tgname) || ' ON ' || c.oid::regclass::text || ' IS ' || quote_literal(d.description)
				FROM pg_description d WHERE d.classoid = 'pg_trigger'::regclass AND d.objoid = t.oid),
		'', false, ''
	FROM pg_trigger t
	JOIN pg_class c ON c.oid = t.tgrelid
	JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE NOT t.tgisinternal AND t.tgparentid = 0
		AND (t.tgrelid = ANY($2::regclass[]) OR (c.relkind = 'v' AND n.nspname = ANY($1)))
		AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_trigger'::regclass AND e.objid = t.oid AND e.deptype = 'e')`

// objectDepsSQL lists what the objects $1 (pg_proc), $2 (views) and $3
// (pg_trigger) depend on outside pg_catalog: relations (a composite type
// that is a relation's row type counts as the relation), functions and
// types. A view's dependencies are its rewrite rule's.
const objectDepsSQL = `
WITH o(cat, oid, classid, objid, self) AS (
	SELECT 'p', p, 'pg_proc'::regclass, p, 0::oid FROM unnest($1::oid[]) p
	UNION ALL SELECT 'r', r.ev_class, 'pg_rewrite'::regclass, r.oid, r.ev_class FROM pg_rewrite r WHERE r.ev_class = ANY($2::oid[])
	UNION ALL SELECT 't', t, 'pg_trigger'::regclass, t, 0::oid FROM unnest($3::oid[]) t
), refs AS (
	SELECT DISTINCT o.cat, o.oid,
		CASE WHEN rp.oid IS NOT NULL THEN 'function' WHEN rc.oid IS NOT NULL OR tc.oid IS NOT NULL THEN 'relation' ELSE 'type' END AS kind,
		COALESCE(rc.oid, tc.oid) AS rel, rp.oid AS proc, ty.oid AS typ
	FROM o
	JOIN pg_depend d ON d.classid = o.classid AND d.objid = o.objid AND d.deptype IN ('n', 'a')
	LEFT JOIN pg_class rc ON d.refclassid = 'pg_class'::regclass AND rc.oid = d.refobjid
	LEFT JOIN pg_proc rp ON d.refclassid = 'pg_proc'::regclass AND rp.oid = d.refobjid
	LEFT JOIN pg_type ty ON d.refclassid = 'pg_type'::regclass AND ty.oid = d.refobjid
	LEFT JOIN pg_class tc ON tc.oid = ty.typrelid AND tc.relkind <> 'c'
	WHERE d.refclassid IN ('pg_class'::regclass, 'pg_proc'::regclass, 'pg_type'::regclass)
		AND (o.self = 0 OR COALESCE(rc.oid, 0) <> o.self AND COALESCE(tc.oid, 0) <> o.self)
)
SELECT r.cat, r.oid, r.kind, n.nspname, COALESCE(c.relname, ''),
	COALESCE(c.oid::regclass::text, r.proc::regprocedure::text, format_type(r.typ, NULL))
FROM refs r
LEFT JOIN pg_class c ON c.oid = r.rel
LEFT JOIN pg_proc p ON p.oid = r.proc
LEFT JOIN pg_type t ON t.oid = r.typ
JOIN pg_namespace n ON n.oid = COALESCE(c.relnamespace, p.pronamespace, t.typnamespace)
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
ORDER BY 1, 2, 6`

// Objects reads the functions, procedures, views, materialized views and
// triggers of the tables' schemas, with what each depends on. It is called
// at cutover, so an object added while the flow ran is included.
func (c *Conn) Objects(ctx context.Context, tables []model.Namespace) ([]model.Object, error) {
	if len(tables) == 0 {
		return nil, nil
	}
	names := make([]string, len(tables))
	seen := map[string]bool{}
	var schemas []string
	for i, t := range tables {
		names[i] = qualified(t)
		if s := schemaOf(t); !seen[s] {
			seen[s] = true
			schemas = append(schemas, s)
		}
	}
	var out []model.Object
	err := pgx.BeginTxFunc(ctx, c.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL search_path = ''`); err != nil {
			return err
		}
		var err error
		out, err = readObjects(ctx, tx, schemas, names)
		return err
	})
	if err != nil {
		return nil, c.classify(fmt.Errorf("read functions, views and triggers: %w", err), "read functions, views and triggers")
	}
	return out, nil
}

type catalogOID struct {
	cat string
	oid uint32
}

func readObjects(ctx context.Context, tx pgx.Tx, schemas, tables []string) ([]model.Object, error) {
	return readObjectsOf(ctx, tx, objectsSQL, schemas, tables)
}

// readObjectsOf reads the objects query (objectsSQL or a procObjectsSQL
// with its WHERE) lists, with what each depends on: the other objects of
// the read as Needs, anything else as Tables and Uses.
func readObjectsOf(ctx context.Context, tx pgx.Tx, query string, args ...any) ([]model.Object, error) {
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var objs []model.Object
	at := map[catalogOID]int{}
	var procs, rels, trigs []uint32
	for rows.Next() {
		var o model.Object
		var k catalogOID
		var kind string
		if err := rows.Scan(&k.cat, &k.oid, &kind, &o.ID, &o.Schema, &o.Table.Schema, &o.Table.Table,
			&o.Create, &o.Then, &o.Owner, &o.SecurityDefiner, &o.Language); err != nil {
			rows.Close()
			return nil, err
		}
		o.Kind = model.ObjectKind(kind)
		at[k] = len(objs)
		objs = append(objs, o)
		switch k.cat {
		case "p":
			procs = append(procs, k.oid)
		case "r":
			rels = append(rels, k.oid)
		default:
			trigs = append(trigs, k.oid)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, nil
	}
	ids := make(map[string]bool, len(objs))
	for _, o := range objs {
		ids[o.ID] = true
	}
	rows, err = tx.Query(ctx, objectDepsSQL, procs, rels, trigs)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var k catalogOID
		var kind, schema, rel, name string
		if err := rows.Scan(&k.cat, &k.oid, &kind, &schema, &rel, &name); err != nil {
			rows.Close()
			return nil, err
		}
		i, ok := at[k]
		if !ok {
			continue
		}
		o := &objs[i]
		switch {
		case ids[name] && name != o.ID:
			o.Needs = append(o.Needs, name)
		case ids[name]:
		case kind == "relation":
			o.Tables = append(o.Tables, model.Namespace{Schema: schema, Table: rel})
		default:
			o.Uses = append(o.Uses, model.Use{Kind: kind, Name: name})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].ID < objs[j].ID })
	return objs, nil
}
