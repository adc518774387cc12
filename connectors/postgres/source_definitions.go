package postgres

import (
	"context"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/model"
)

// discoverDefinitions reads what a PostgreSQL destination needs to create a
// table as the source has it: defaults, generated expressions, identity
// columns, the sequences defaults use, domains and composite types, and the
// user-defined functions a default or expression calls (pg_depend). They
// are read with the server's own functions (pg_get_expr, format_type,
// pg_get_constraintdef) under an empty search_path, as pg_dump does, so
// every name in them is schema-qualified and means the same at the
// destination (docs/decisions/2026-12-05-schema-definitions.md).
func (c *Conn) discoverDefinitions(ctx context.Context, oids []uint32, byOID map[uint32]*srcTable) error {
	tx, err := c.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return c.classify(err, "discover column definitions")
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only
	if _, err := tx.Exec(ctx, `SET LOCAL search_path = ''`); err != nil {
		return c.classify(err, "discover column definitions")
	}
	if err := discoverColumnDefinitions(ctx, tx, oids, byOID); err != nil {
		return c.classify(err, "discover column definitions")
	}
	if err := discoverSequences(ctx, tx, oids, byOID); err != nil {
		return c.classify(err, "discover sequences")
	}
	if err := discoverExtensions(ctx, tx, oids, byOID); err != nil {
		return c.classify(err, "discover extensions")
	}
	if err := discoverTableComments(ctx, tx, oids, byOID); err != nil {
		return c.classify(err, "discover table comments")
	}
	if err := discoverPartitioning(ctx, tx, oids, byOID); err != nil {
		return c.classify(err, "discover partitions")
	}
	if err := discoverFunctions(ctx, tx, oids, byOID); err != nil {
		return c.classify(err, "discover the functions tables use")
	}
	return tx.Commit(ctx)
}

// usedFunctionsSQL lists, per table of $1, the user-defined functions and
// procedures its definition calls (pg_depend): its defaults and generated
// columns, its indexes' expressions and predicates, its CHECK constraints,
// the CHECKs of the domains its columns have (or arrays of, or domains
// over), and what those functions call in turn (a BEGIN ATOMIC body's
// calls are recorded). Functions an extension owns are left out: the
// extension brings them.
const usedFunctionsSQL = `
WITH RECURSIVE used(rel, fn) AS (
	SELECT ad.adrelid, d.refobjid FROM pg_attrdef ad
		JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid AND d.refclassid = 'pg_proc'::regclass
		WHERE ad.adrelid = ANY($1)
	UNION SELECT i.indrelid, d.refobjid FROM pg_index i
		JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid AND d.refclassid = 'pg_proc'::regclass
		WHERE i.indrelid = ANY($1)
	UNION SELECT k.conrelid, d.refobjid FROM pg_constraint k
		JOIN pg_depend d ON d.classid = 'pg_constraint'::regclass AND d.objid = k.oid AND d.refclassid = 'pg_proc'::regclass
		WHERE k.conrelid = ANY($1)
	UNION SELECT a.attrelid, d.refobjid FROM pg_attribute a
		JOIN pg_type t ON t.oid = a.atttypid
		LEFT JOIN pg_type e ON e.oid = t.typelem
		JOIN pg_constraint k ON k.contypid <> 0 AND k.contypid IN (t.oid, t.typbasetype, e.oid, e.typbasetype)
		JOIN pg_depend d ON d.classid = 'pg_constraint'::regclass AND d.objid = k.oid AND d.refclassid = 'pg_proc'::regclass
		WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
	UNION SELECT u.rel, d.refobjid FROM used u
		JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = u.fn AND d.refclassid = 'pg_proc'::regclass
)
SELECT u.rel, u.fn FROM used u
	JOIN pg_proc p ON p.oid = u.fn
	JOIN pg_namespace n ON n.oid = p.pronamespace
	WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND p.prokind IN ('f', 'p')
		AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_proc'::regclass AND e.objid = p.oid AND e.deptype = 'e')
	ORDER BY 1, 2`

// discoverFunctions reads, per table, the definitions of the user-defined
// functions its definition calls (usedFunctionsSQL), as the cutover's
// objects step reads them (readObjectsOf), for a destination to create
// before the table. A function that depends on a table (a row type as its
// argument or result) is left to the cutover: it cannot precede the table.
func discoverFunctions(ctx context.Context, tx pgx.Tx, oids []uint32, byOID map[uint32]*srcTable) error {
	rows, err := tx.Query(ctx, usedFunctionsSQL, oids)
	if err != nil {
		return err
	}
	uses := map[uint32][]uint32{}
	var fns []uint32
	seen := map[uint32]bool{}
	for rows.Next() {
		var rel, fn uint32
		if err := rows.Scan(&rel, &fn); err != nil {
			rows.Close()
			return err
		}
		uses[rel] = append(uses[rel], fn)
		if !seen[fn] {
			seen[fn] = true
			fns = append(fns, fn)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(fns) == 0 {
		return err
	}
	objs, err := readObjectsOf(ctx, tx, procObjectsSQL+` WHERE p.oid = ANY($1)`, fns)
	if err != nil {
		return err
	}
	var ids []string
	if err := tx.QueryRow(ctx, `SELECT array_agg(f::regprocedure::text ORDER BY o) FROM unnest($1::oid[]) WITH ORDINALITY AS u(f, o)`, fns).Scan(&ids); err != nil {
		return err
	}
	byID := map[string]model.Object{}
	for _, o := range objs {
		if len(o.Tables) == 0 {
			byID[o.ID] = o
		}
	}
	idOf := map[uint32]string{}
	for i, fn := range fns {
		idOf[fn] = ids[i]
	}
	for _, oid := range oids {
		t := byOID[oid].table
		for _, fn := range uses[oid] {
			if o, ok := byID[idOf[fn]]; ok {
				t.Functions = append(t.Functions, o)
			}
		}
		sort.Slice(t.Functions, func(i, j int) bool { return t.Functions[i].ID < t.Functions[j].ID })
	}
	return nil
}

func discoverColumnDefinitions(ctx context.Context, tx pgx.Tx, oids []uint32, byOID map[uint32]*srcTable) error {
	rows, err := tx.Query(ctx, `SELECT a.attrelid, a.attname, a.attgenerated <> '', COALESCE(pg_get_expr(d.adbin, d.adrelid), ''),
			a.attidentity::text, COALESCE(sn.nspname, ''), COALESCE(sc.relname, ''), COALESCE(format_type(s.seqtypid, NULL), ''),
			COALESCE(s.seqstart, 0), COALESCE(s.seqincrement, 0), COALESCE(s.seqmin, 0), COALESCE(s.seqmax, 0), COALESCE(s.seqcache, 0), COALESCE(s.seqcycle, false),
			CASE WHEN t.typtype IN ('d', 'c') THEN t.oid WHEN e.typtype IN ('d', 'c') THEN e.oid ELSE 0 END, e.oid IS NOT NULL,
			ARRAY(SELECT p.refobjid::regprocedure::text FROM pg_depend p WHERE p.classid = 'pg_attrdef'::regclass AND p.objid = d.oid
				AND p.refclassid = 'pg_proc'::regclass AND p.refobjid >= 16384 ORDER BY 1),
			COALESCE((SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname) FROM pg_collation co
				JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation AND a.attcollation <> t.typcollation), ''),
			COALESCE(col_description(a.attrelid, a.attnum), '')
		FROM pg_attribute a
		JOIN pg_type t ON t.oid = a.atttypid
		LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
		LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		LEFT JOIN pg_depend dep ON a.attidentity <> '' AND dep.classid = 'pg_class'::regclass AND dep.refclassid = 'pg_class'::regclass
			AND dep.refobjid = a.attrelid AND dep.refobjsubid = a.attnum AND dep.deptype = 'i'
		LEFT JOIN pg_class sc ON sc.oid = dep.objid AND sc.relkind = 'S'
		LEFT JOIN pg_namespace sn ON sn.oid = sc.relnamespace
		LEFT JOIN pg_sequence s ON s.seqrelid = sc.oid
		WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attrelid, a.attnum`, oids)
	if err != nil {
		return err
	}
	defer rows.Close()
	var users []uint32
	var userCols []*model.Column
	var arrays []bool
	for rows.Next() {
		var rel, user uint32
		var array bool
		var name, expr, identity string
		var generated bool
		var uses []string
		var collation, comment string
		var seq model.SequenceDef
		if err := rows.Scan(&rel, &name, &generated, &expr, &identity, &seq.Name.Schema, &seq.Name.Table, &seq.Type,
			&seq.Start, &seq.Increment, &seq.Min, &seq.Max, &seq.Cache, &seq.Cycle, &user, &array, &uses, &collation, &comment); err != nil {
			return err
		}
		t := byOID[rel].table
		i := t.ColumnIndex(name)
		if i < 0 {
			continue
		}
		col := &t.Columns[i]
		col.Uses, col.Collation, col.Comment = uses, collation, comment
		if generated {
			col.Expression = expr
		} else {
			col.Default = expr
		}
		if identity != "" && seq.Name.Table != "" {
			col.Identity = &model.Identity{Always: identity == "a", Sequence: seq}
		}
		if user != 0 {
			users = append(users, user)
			userCols = append(userCols, col)
			arrays = append(arrays, array)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows.Close()
	defs, err := userTypes(ctx, tx, users)
	if err != nil {
		return err
	}
	for i, col := range userCols {
		u := defs[users[i]]
		if u != nil && arrays[i] {
			// The column's type is an array of the user type: created
			// with it, and named so.
			u = &model.UserType{Name: u.Name + "[]", Create: u.Create, Comment: u.Comment, Requires: u.Requires}
		}
		col.Type.User = u
	}
	return nil
}

// typeDef is a user type's definition and the user types it uses.
type typeDef struct {
	name, create, comment string
	uses                  []uint32
}

// userTypes reads the definitions of the given domains and composite
// types, each with the user types it uses (a domain's base, a composite's
// attributes' types, arrays by their element) to create first.
func userTypes(ctx context.Context, tx pgx.Tx, oids []uint32) (map[uint32]*model.UserType, error) {
	defs := map[uint32]*typeDef{}
	for want := oids; len(want) > 0; {
		rows, err := tx.Query(ctx, `SELECT t.oid, format_type(t.oid, NULL),
				CASE t.typtype
				WHEN 'd' THEN 'CREATE DOMAIN ' || format_type(t.oid, NULL) || ' AS ' || format_type(t.typbasetype, NULLIF(t.typtypmod, -1))
					|| COALESCE(' DEFAULT ' || pg_get_expr(t.typdefaultbin, 0), '')
					|| CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END
					|| COALESCE((SELECT string_agg(' CONSTRAINT ' || quote_ident(k.conname) || ' ' || pg_get_constraintdef(k.oid), '' ORDER BY k.conname)
						FROM pg_constraint k WHERE k.contypid = t.oid), '')
				WHEN 'c' THEN 'CREATE TYPE ' || format_type(t.oid, NULL) || ' AS ('
					|| COALESCE((SELECT string_agg(quote_ident(ca.attname) || ' ' || format_type(ca.atttypid, ca.atttypmod), ', ' ORDER BY ca.attnum)
						FROM pg_attribute ca WHERE ca.attrelid = t.typrelid AND ca.attnum > 0 AND NOT ca.attisdropped), '') || ')'
				ELSE 'CREATE TYPE ' || format_type(t.oid, NULL) || ' AS ENUM ('
					|| COALESCE((SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), '') || ')'
				END,
				ARRAY(SELECT DISTINCT u.oid FROM (
						SELECT t.typbasetype AS r WHERE t.typtype = 'd'
						UNION SELECT ca.atttypid FROM pg_attribute ca
						WHERE t.typtype = 'c' AND ca.attrelid = t.typrelid AND ca.attnum > 0 AND NOT ca.attisdropped) refs
					JOIN pg_type rt ON rt.oid = refs.r
					JOIN pg_type u ON u.oid = CASE WHEN rt.typcategory = 'A' THEN rt.typelem ELSE rt.oid END
					WHERE u.typtype IN ('d', 'c', 'e')),
				COALESCE(obj_description(t.oid, 'pg_type'), '')
			FROM pg_type t WHERE t.oid = ANY($1) AND t.typtype IN ('d', 'c', 'e')`, want)
		if err != nil {
			return nil, err
		}
		var next []uint32
		for rows.Next() {
			var oid uint32
			var d typeDef
			if err := rows.Scan(&oid, &d.name, &d.create, &d.uses, &d.comment); err != nil {
				rows.Close()
				return nil, err
			}
			defs[oid] = &d
			for _, u := range d.uses {
				if defs[u] == nil {
					next = append(next, u)
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		want = next
	}
	out := map[uint32]*model.UserType{}
	for _, oid := range oids {
		d := defs[oid]
		if d == nil {
			continue
		}
		u := &model.UserType{Name: d.name, Create: d.create, Comment: d.comment}
		seen := map[uint32]bool{oid: true}
		var visit func(uint32)
		visit = func(o uint32) {
			for _, dep := range defs[o].uses {
				if !seen[dep] && defs[dep] != nil {
					seen[dep] = true
					visit(dep) // its own requirements first
					u.Requires = append(u.Requires, model.UserType{Name: defs[dep].name, Create: defs[dep].create, Comment: defs[dep].comment})
				}
			}
		}
		visit(oid)
		out[oid] = u
	}
	return out, nil
}

// discoverSequences lists, per table, the sequences its defaults use: a
// serial column's (owned by the column) and standalone ones.
func discoverSequences(ctx context.Context, tx pgx.Tx, oids []uint32, byOID map[uint32]*srcTable) error {
	rows, err := tx.Query(ctx, `SELECT DISTINCT ad.adrelid, n.nspname, c.relname, format_type(s.seqtypid, NULL),
			s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle, COALESCE(oa.attname, ''),
			COALESCE(obj_description(c.oid, 'pg_class'), '')
		FROM pg_attrdef ad
		JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid AND d.refclassid = 'pg_class'::regclass
		JOIN pg_class c ON c.oid = d.refobjid AND c.relkind = 'S'
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_sequence s ON s.seqrelid = c.oid
		LEFT JOIN pg_depend od ON od.classid = 'pg_class'::regclass AND od.objid = c.oid AND od.refclassid = 'pg_class'::regclass
			AND od.refobjid = ad.adrelid AND od.deptype = 'a'
		LEFT JOIN pg_attribute oa ON oa.attrelid = od.refobjid AND oa.attnum = od.refobjsubid
		WHERE ad.adrelid = ANY($1)
		ORDER BY ad.adrelid, n.nspname, c.relname`, oids)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var rel uint32
		var seq model.SequenceDef
		if err := rows.Scan(&rel, &seq.Name.Schema, &seq.Name.Table, &seq.Type, &seq.Start, &seq.Increment,
			&seq.Min, &seq.Max, &seq.Cache, &seq.Cycle, &seq.OwnedBy, &seq.Comment); err != nil {
			return err
		}
		t := byOID[rel].table
		t.Sequences = append(t.Sequences, seq)
	}
	return rows.Err()
}

// discoverExtensions lists, per table, the extensions its columns use: an
// extension's type as the column's type (or an array of it, or a domain
// over it, or an array of such a domain), or an
// extension's function its default or expression calls (pg_depend 'e').
func discoverExtensions(ctx context.Context, tx pgx.Tx, oids []uint32, byOID map[uint32]*srcTable) error {
	rows, err := tx.Query(ctx, `SELECT a.attrelid, x.extname, xn.nspname, array_agg(DISTINCT a.attname ORDER BY a.attname),
			COALESCE(array_agg(DISTINCT e.objid::regprocedure::text ORDER BY e.objid::regprocedure::text) FILTER (WHERE e.classid = 'pg_proc'::regclass), '{}')
		FROM pg_attribute a
		JOIN pg_type t ON t.oid = a.atttypid
		LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		JOIN pg_depend e ON e.deptype = 'e' AND e.refclassid = 'pg_extension'::regclass AND (
			e.classid = 'pg_type'::regclass AND e.objid IN (t.oid, t.typelem, t.typbasetype, (SELECT b.typbasetype FROM pg_type b WHERE b.oid = t.typelem))
			OR e.classid = 'pg_proc'::regclass AND e.objid IN (SELECT p.refobjid FROM pg_depend p
				WHERE p.classid = 'pg_attrdef'::regclass AND p.objid = d.oid AND p.refclassid = 'pg_proc'::regclass))
		JOIN pg_extension x ON x.oid = e.refobjid
		JOIN pg_namespace xn ON xn.oid = x.extnamespace
		WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
		GROUP BY a.attrelid, x.extname, xn.nspname
		ORDER BY a.attrelid, x.extname`, oids)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var rel uint32
		var x model.Extension
		if err := rows.Scan(&rel, &x.Name, &x.Schema, &x.Columns, &x.Functions); err != nil {
			return err
		}
		t := byOID[rel].table
		t.Extensions = append(t.Extensions, x)
	}
	return rows.Err()
}

// discoverTableComments reads each table's COMMENT ON TABLE.
func discoverTableComments(ctx context.Context, tx pgx.Tx, oids []uint32, byOID map[uint32]*srcTable) error {
	rows, err := tx.Query(ctx, `SELECT c.oid, obj_description(c.oid, 'pg_class') FROM pg_class c
		WHERE c.oid = ANY($1) AND obj_description(c.oid, 'pg_class') IS NOT NULL`, oids)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var rel uint32
		var comment string
		if err := rows.Scan(&rel, &comment); err != nil {
			return err
		}
		byOID[rel].table.Comment = comment
	}
	return rows.Err()
}

// discoverPartitioning reads, for each partitioned table, its partition
// key (pg_get_partkeydef) and its partitions, sub-partitions included,
// with their bounds (pg_get_expr of relpartbound, "DEFAULT" for a default
// partition) and comments.
func discoverPartitioning(ctx context.Context, tx pgx.Tx, oids []uint32, byOID map[uint32]*srcTable) error {
	var roots []uint32
	for _, oid := range oids {
		if byOID[oid].relkind == 'p' {
			roots = append(roots, oid)
		}
	}
	if len(roots) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT r.oid, t.relid::oid, COALESCE(t.parentrelid::oid, 0), n.nspname, c.relname,
			COALESCE(pg_get_expr(c.relpartbound, c.oid), ''), COALESCE(pg_get_partkeydef(c.oid), ''),
			COALESCE(obj_description(c.oid, 'pg_class'), '')
		FROM unnest($1::oid[]) AS r(oid)
		CROSS JOIN LATERAL pg_partition_tree(r.oid) t
		JOIN pg_class c ON c.oid = t.relid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		ORDER BY r.oid, t.level, n.nspname, c.relname`, roots)
	if err != nil {
		return err
	}
	defer rows.Close()
	parts := map[uint32]*model.Partitioning{}
	for rows.Next() {
		var root, rel, parent uint32
		var p model.TablePartition
		var key string
		if err := rows.Scan(&root, &rel, &parent, &p.Name.Schema, &p.Name.Table, &p.Bound, &key, &p.Comment); err != nil {
			return err
		}
		t := byOID[root].table
		if rel == root {
			t.Partitioning = &model.Partitioning{Key: key}
			parts[rel] = t.Partitioning
			continue
		}
		if p.Name.Schema == t.Namespace.Schema {
			p.Name.Schema = "" // follows the table's schema (model.TablePartition)
		}
		if key != "" {
			p.Partitioning = &model.Partitioning{Key: key}
		}
		up := parts[parent]
		if up == nil {
			continue // under a partition this pass did not list
		}
		up.Partitions = append(up.Partitions, p)
		if p.Partitioning != nil {
			parts[rel] = p.Partitioning
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows.Close()
	return discoverPartitionIndexes(ctx, tx, roots, byOID)
}

// discoverPartitionIndexes reads the partitions' own non-unique indexes:
// those not attached to an index of the partitioned table above them.
func discoverPartitionIndexes(ctx context.Context, tx pgx.Tx, roots []uint32, byOID map[uint32]*srcTable) error {
	rows, err := tx.Query(ctx, `SELECT r.oid, n.nspname, c.relname, x.relname, pg_get_indexdef(i.indexrelid),
			CASE WHEN i.indexprs IS NULL AND i.indpred IS NULL THEN ARRAY(
				SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
				JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
				WHERE k.ord <= i.indnkeyatts ORDER BY k.ord) END
		FROM unnest($1::oid[]) AS r(oid)
		CROSS JOIN LATERAL pg_partition_tree(r.oid) t
		JOIN pg_class c ON c.oid = t.relid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_index i ON i.indrelid = t.relid
		JOIN pg_class x ON x.oid = i.indexrelid
		WHERE t.level > 0 AND NOT x.relispartition AND NOT i.indisunique AND i.indisvalid AND i.indislive
		ORDER BY r.oid, n.nspname, c.relname, x.relname`, roots)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var root uint32
		var part model.Namespace
		var ix model.Index
		var def string
		if err := rows.Scan(&root, &part.Schema, &part.Table, &ix.Name, &def, &ix.Columns); err != nil {
			return err
		}
		if _, tail, ok := strings.Cut(def, " USING "); ok {
			ix.Native = tail
		}
		t := byOID[root].table
		if part.Schema == t.Namespace.Schema {
			part.Schema = ""
		}
		if tp := t.Partitioning.Find(part); tp != nil {
			tp.Indexes = append(tp.Indexes, ix)
		}
	}
	return rows.Err()
}

// indexKey names an index of a table of the flow.
type indexKey struct {
	table model.Namespace
	index string
}

// partitionIndexes reads, for the indexes of the given partitioned tables
// (qualified names), the indexes attached to them on every partition
// (pg_partition_tree of the index), with the partitions named as in
// model.TablePartition.
func partitionIndexes(ctx context.Context, q querier, tables []string) (map[indexKey][]model.PartitionIndex, error) {
	rows, err := q.Query(ctx, `SELECT n.nspname, t.relname, x.relname, pn.nspname, pc.relname, px.relname
		FROM pg_index i
		JOIN pg_class x ON x.oid = i.indexrelid
		JOIN pg_class t ON t.oid = i.indrelid
		JOIN pg_namespace n ON n.oid = t.relnamespace
		CROSS JOIN LATERAL pg_partition_tree(i.indexrelid) pt
		JOIN pg_class px ON px.oid = pt.relid
		JOIN pg_index pi ON pi.indexrelid = pt.relid
		JOIN pg_class pc ON pc.oid = pi.indrelid
		JOIN pg_namespace pn ON pn.oid = pc.relnamespace
		WHERE i.indrelid = ANY($1::regclass[]) AND t.relkind = 'p' AND pt.level > 0
		ORDER BY 1, 2, 3, pt.level, 4, 5`, tables)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[indexKey][]model.PartitionIndex{}
	for rows.Next() {
		var k indexKey
		var p model.PartitionIndex
		if err := rows.Scan(&k.table.Schema, &k.table.Table, &k.index, &p.Partition.Schema, &p.Partition.Table, &p.Name); err != nil {
			return nil, err
		}
		if p.Partition.Schema == k.table.Schema {
			p.Partition.Schema = ""
		}
		out[k] = append(out[k], p)
	}
	return out, rows.Err()
}
