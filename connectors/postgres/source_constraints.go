package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

var _ connector.ConstraintReader = (*Conn)(nil)

// constraintsSQL lists, for the given tables, the unique constraints and
// unique indexes (but the primary key and the replica identity index
// standing in for one, which is the destination's key), the foreign keys
// and the checks. It runs with search_path = pg_catalog, so every
// definition names tables and functions with their schemas and reads the
// same at a destination.
var constraintsSQL = `
WITH rels AS (
	SELECT r.oid AS root, r.oid AS rel FROM unnest($1::regclass[]) AS r(oid)
	UNION ALL
	SELECT r.oid, p.relid FROM unnest($1::regclass[]) AS r(oid) CROSS JOIN LATERAL pg_partition_tree(r.oid) p WHERE p.level > 0
)
SELECT CASE WHEN c.contype = 'u' THEN 'unique' ELSE 'unique_index' END,
		n.nspname, t.relname, x.relname, COALESCE(pg_get_constraintdef(c.oid), ''),
		pg_get_indexdef(i.indexrelid),
		ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, false) FROM generate_series(1, i.indnkeyatts) k),
		COALESCE(pg_get_expr(i.indpred, i.indrelid), ''), i.indnullsnotdistinct,
		CASE WHEN i.indexprs IS NULL THEN ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum WHERE k.ord <= i.indnkeyatts ORDER BY k.ord)
			ELSE '{}'::text[] END,
		'', '', '{}'::text[], '', false, '',
		rn.nspname, rt.relname, '', ''
	FROM rels
	JOIN pg_index i ON i.indrelid = rels.rel
	JOIN pg_class x ON x.oid = i.indexrelid
	JOIN pg_class t ON t.oid = i.indrelid
	JOIN pg_namespace n ON n.oid = t.relnamespace
	JOIN pg_class rt ON rt.oid = rels.root
	JOIN pg_namespace rn ON rn.oid = rt.relnamespace
	LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype = 'u'
	WHERE i.indisunique AND NOT i.indisprimary AND NOT x.relispartition
		AND i.indisvalid AND i.indislive
		AND NOT EXISTS (SELECT 1 FROM pg_constraint e WHERE e.conindid = i.indexrelid AND e.contype = 'x')
		AND NOT (i.indisreplident AND t.relreplident = 'i'
			AND NOT EXISTS (SELECT 1 FROM pg_index p WHERE p.indrelid = t.oid AND p.indisprimary))
UNION ALL
SELECT CASE c.contype WHEN 'f' THEN 'foreign_key' ELSE 'check' END,
		n.nspname, t.relname, c.conname, pg_get_constraintdef(c.oid),
		'', '{}'::text[], '', false,
		ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(attnum, ord)
			JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord),
		COALESCE(rn.nspname, ''), COALESCE(r.relname, ''),
		ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(attnum, ord)
			JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.ord),
		CASE WHEN r.oid IS NULL THEN '' ELSE quote_ident(rn.nspname) || '.' || quote_ident(r.relname) END,
		c.confmatchtype = 'f',
		CASE WHEN c.contype = 'c' THEN pg_get_expr(c.conbin, c.conrelid) ELSE '' END,
		tn.nspname, tt.relname,
		` + fkAction("c.confdeltype") + `, ` + fkAction("c.confupdtype") + `
	FROM rels
	JOIN pg_constraint c ON c.conrelid = rels.rel
	JOIN pg_class t ON t.oid = c.conrelid
	JOIN pg_class tt ON tt.oid = rels.root
	JOIN pg_namespace tn ON tn.oid = tt.relnamespace
	JOIN pg_namespace n ON n.oid = t.relnamespace
	LEFT JOIN pg_class r ON r.oid = c.confrelid
	LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace
	WHERE c.contype IN ('f', 'c') AND c.conparentid = 0 AND (NOT t.relispartition OR c.coninhcount = 0)
ORDER BY 17, 18, 2, 3, 1, 4`

// fkAction spells a foreign key's action column (confdeltype,
// confupdtype) as SQL does, for a destination of another engine.
func fkAction(col string) string {
	return "CASE " + col + " WHEN 'r' THEN 'RESTRICT' WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' ELSE 'NO ACTION' END"
}

// Constraints reads the constraints of tables from the catalog. The
// definitions are the server's own (pg_get_constraintdef,
// pg_get_indexdef): they are read at cutover, so a constraint added while
// the flow ran is included.
func (c *Conn) Constraints(ctx context.Context, tables []model.Namespace) ([]model.Constraint, error) {
	if len(tables) == 0 {
		return nil, nil
	}
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = qualified(t)
	}
	var out []model.Constraint
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL search_path = pg_catalog"); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, constraintsSQL, names)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (model.Constraint, error) {
			var k model.Constraint
			var kind, indexDef string
			var root model.Namespace
			err := r.Scan(&kind, &k.Table.Schema, &k.Table.Table, &k.Name, &k.Definition, &indexDef,
				&k.Keys, &k.Predicate, &k.NullsEqual, &k.Columns, &k.RefTable.Schema, &k.RefTable.Table,
				&k.RefColumns, &k.RefNative, &k.MatchFull, &k.Check, &root.Schema, &root.Table, &k.OnDelete, &k.OnUpdate)
			k.Kind = model.ConstraintKind(kind)
			if k.Check != "" {
				k.PortableCheck, _ = portableCheck(k.Check)
			}
			if root != k.Table {
				// A partition's own: built on that partition of the
				// table's destination table.
				k.Partition, k.Table = k.Table, root
				if k.Partition.Schema == root.Schema {
					k.Partition.Schema = ""
				}
			}
			if _, tail, ok := strings.Cut(indexDef, " USING "); ok {
				k.Index = tail
			}
			return k, err
		})
		if err != nil {
			return err
		}
		named, err := partitionIndexes(ctx, tx, names)
		if err != nil {
			return err
		}
		for i, k := range out {
			if (k.Kind == model.ConstraintUnique || k.Kind == model.ConstraintUniqueIndex) && k.Partition.Table == "" {
				out[i].Partitions = named[indexKey{k.Table, k.Name}]
			}
		}
		return nil
	})
	if err != nil {
		return nil, c.classify(fmt.Errorf("read constraints: %w", err), "read constraints")
	}
	return out, nil
}
