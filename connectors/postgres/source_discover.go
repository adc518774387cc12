package postgres

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// srcTable is what discovery learned of a source table beyond its
// canonical schema.
type srcTable struct {
	table     *model.Table
	oid       uint32
	relkind   byte // r ordinary, p partitioned
	replident byte // d default, n nothing, f full, i index
	// identKey is the replica identity index's columns (replident i).
	identKey []string
	// hasPK: PrimaryKey is the primary key (not the replica identity index).
	hasPK bool
	// unsupported names columns whose type cannot be copied, with why.
	unsupported []string
	canSelect   bool
}

// excludedSchemas are never tables of a flow.
const excludedSchemas = `n.nspname NOT IN ('pg_catalog', 'information_schema', '_ferry')
	AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'`

// Tables lists the ordinary and partitioned tables of every user schema. A
// partitioned table is one table (its partitions are not listed); its
// estimates sum its partitions'.
func (c *Conn) Tables(ctx context.Context) ([]*model.Table, error) {
	infos, err := c.discover(ctx, nil)
	if err != nil {
		return nil, err
	}
	out := make([]*model.Table, len(infos))
	for i, s := range infos {
		out[i] = s.table
	}
	return out, nil
}

// discover reads the catalog; with only set, just those tables.
func (c *Conn) discover(ctx context.Context, only []model.Namespace) ([]*srcTable, error) {
	want := map[model.Namespace]bool{}
	for _, ns := range only {
		want[ns] = true
	}
	return c.discoverWhere(ctx, 0, func(ns model.Namespace) bool { return len(want) == 0 || want[ns] })
}

// discoverOID discovers the one table of that oid, by the name it has now;
// nil when it is gone, a partition or not a table of a user schema.
func (c *Conn) discoverOID(ctx context.Context, oid uint32) (*srcTable, error) {
	infos, err := c.discoverWhere(ctx, oid, func(model.Namespace) bool { return true })
	if err != nil || len(infos) == 0 {
		return nil, err
	}
	return infos[0], nil
}

// discoverWhere reads the catalog for the tables keep selects; with oid
// set, for that table alone (the server sizes no other).
func (c *Conn) discoverWhere(ctx context.Context, oid uint32, keep func(model.Namespace) bool) ([]*srcTable, error) {
	q := `SELECT c.oid, n.nspname, c.relname, c.relkind, c.relreplident, c.relpersistence,
			has_table_privilege(c.oid, 'SELECT'),
			CASE WHEN c.relkind = 'p' THEN
				(SELECT COALESCE(sum(GREATEST(l.reltuples, 0)), 0)::float8 FROM pg_partition_tree(c.oid) p JOIN pg_class l ON l.oid = p.relid WHERE p.isleaf)
			ELSE c.reltuples::float8 END,
			CASE WHEN c.relkind = 'p' THEN
				(SELECT COALESCE(sum(pg_total_relation_size(p.relid)), 0)::int8 FROM pg_partition_tree(c.oid) p WHERE p.isleaf)
			ELSE pg_total_relation_size(c.oid) END,
			CASE WHEN c.relkind = 'p' THEN
				(SELECT COALESCE(sum(pg_relation_size(p.relid)), 0)::int8 FROM pg_partition_tree(c.oid) p WHERE p.isleaf)
			ELSE pg_relation_size(c.oid) END
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND ($1::oid = 0::oid OR c.oid = $1::oid) AND ` + excludedSchemas + `
		ORDER BY n.nspname, c.relname`
	rows, err := c.pool.Query(ctx, q, oid)
	if err != nil {
		return nil, c.classify(err, "discover tables")
	}
	var infos []*srcTable
	byOID := map[uint32]*srcTable{}
	for rows.Next() {
		var s srcTable
		var ns model.Namespace
		var relkind, replident, persistence string
		var tuples float64
		var total, heap int64
		if err := rows.Scan(&s.oid, &ns.Schema, &ns.Table, &relkind, &replident, &persistence, &s.canSelect, &tuples, &total, &heap); err != nil {
			rows.Close()
			return nil, c.classify(err, "discover tables")
		}
		if !keep(ns) {
			continue
		}
		s.relkind, s.replident = relkind[0], replident[0]
		rowsEst := int64(tuples)
		if tuples < 0 {
			rowsEst = 0
		}
		s.table = &model.Table{Namespace: ns, EstimatedRows: rowsEst, EstimatedBytes: heap}
		if s.table.EstimatedBytes == 0 {
			s.table.EstimatedBytes = total
		}
		s.table.FullRowIdentity = s.replident == 'f'
		if persistence == "u" {
			s.table.NoChangeStream = "UNLOGGED: logical decoding cannot see its changes (they are not written to the WAL)"
		}
		infos = append(infos, &s)
		byOID[s.oid] = &s
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, c.classify(err, "discover tables")
	}
	if len(infos) == 0 {
		return nil, nil
	}
	oids := make([]uint32, 0, len(infos))
	for _, s := range infos {
		oids = append(oids, s.oid)
	}
	if err := c.discoverColumns(ctx, oids, byOID); err != nil {
		return nil, err
	}
	if err := c.discoverKeys(ctx, oids, byOID); err != nil {
		return nil, err
	}
	if err := c.discoverIndexes(ctx, oids, byOID); err != nil {
		return nil, err
	}
	if err := c.discoverDefinitions(ctx, oids, byOID); err != nil {
		return nil, err
	}
	return infos, nil
}

type rawColumn struct {
	rel       uint32
	name      string
	typ       uint32
	typmod    int32
	notNull   bool
	generated string
	native    string
	toastable bool // attstorage is not plain: the value may be stored out of line
}

func (c *Conn) discoverColumns(ctx context.Context, oids []uint32, byOID map[uint32]*srcTable) error {
	rows, err := c.pool.Query(ctx, `SELECT a.attrelid, a.attname, a.atttypid, a.atttypmod, a.attnotnull, a.attgenerated::text,
			format_type(a.atttypid, a.atttypmod), a.attstorage <> 'p'
		FROM pg_attribute a
		WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attrelid, a.attnum`, oids)
	if err != nil {
		return c.classify(err, "discover columns")
	}
	var cols []rawColumn
	var typeOIDs []uint32
	for rows.Next() {
		var rc rawColumn
		if err := rows.Scan(&rc.rel, &rc.name, &rc.typ, &rc.typmod, &rc.notNull, &rc.generated, &rc.native, &rc.toastable); err != nil {
			rows.Close()
			return c.classify(err, "discover columns")
		}
		cols = append(cols, rc)
		typeOIDs = append(typeOIDs, rc.typ)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return c.classify(err, "discover columns")
	}
	if err := c.types.load(ctx, c.pool, typeOIDs); err != nil {
		return c.classify(err, "discover column types")
	}
	for _, rc := range cols {
		s := byOID[rc.rel]
		ct, err := c.types.mapType(rc.typ, rc.typmod, rc.native)
		if err != nil {
			// Listed, so the table's shape is right; refused if selected.
			s.unsupported = append(s.unsupported, fmt.Sprintf("column %s: %v", rc.name, err))
			ct.typ = model.Type{Kind: model.KindUnknown, Native: rc.native}
		}
		s.table.Columns = append(s.table.Columns, model.Column{
			Name: rc.name, Type: ct.typ, Nullable: !rc.notNull, Generated: rc.generated != "",
			// An update that leaves a value stored out of line alone sends
			// it as unchanged, unless the old row goes whole (FULL).
			SentUnchanged: rc.toastable && s.replident != 'f',
		})
	}
	return nil
}

// discoverKeys reads primary keys and replica identity indexes. A table
// without a primary key whose replica identity is a unique index uses that
// index as its key: it is what the change stream identifies rows by.
func (c *Conn) discoverKeys(ctx context.Context, oids []uint32, byOID map[uint32]*srcTable) error {
	rows, err := c.pool.Query(ctx, `SELECT i.indrelid, i.indisprimary, x.relname, a.attname
		FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
		CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE i.indrelid = ANY($1) AND (i.indisprimary OR i.indisreplident)
		ORDER BY i.indrelid, i.indisprimary DESC, i.indexrelid, k.ord`, oids)
	if err != nil {
		return c.classify(err, "discover primary keys")
	}
	defer rows.Close()
	for rows.Next() {
		var rel uint32
		var primary bool
		var index, name string
		if err := rows.Scan(&rel, &primary, &index, &name); err != nil {
			return c.classify(err, "discover primary keys")
		}
		s := byOID[rel]
		if primary {
			// A primary key's index has the constraint's name.
			s.table.PrimaryKey = append(s.table.PrimaryKey, name)
			s.table.PrimaryKeyName = index
			s.hasPK = true
		} else {
			s.identKey = append(s.identKey, name)
		}
	}
	if err := rows.Err(); err != nil {
		return c.classify(err, "discover primary keys")
	}
	for _, s := range byOID {
		if !s.hasPK && s.replident == 'i' && len(s.identKey) > 0 {
			s.table.PrimaryKey = append([]string(nil), s.identKey...)
		}
	}
	return nil
}

// checkSelected refuses, before anything is copied, selected tables ferry
// cannot read: columns of types it cannot copy, or no SELECT privilege.
func checkSelected(infos []*srcTable) error {
	var problems, noSelect []string
	for _, s := range infos {
		for _, u := range s.unsupported {
			problems = append(problems, fmt.Sprintf("table %s, %s", s.table.Namespace, u))
		}
		if !s.canSelect {
			noSelect = append(noSelect, showQualified(s.table.Namespace.Schema, s.table.Namespace.Table))
		}
	}
	sort.Strings(noSelect)
	if len(noSelect) > 0 {
		return errs.BadConfig("permission denied: the URL's user cannot read "+strings.Join(noSelect, ", "), "GRANT SELECT ON "+strings.Join(noSelect, ", ")+" TO <the URL's user>, or exclude the tables with --tables '!name'")
	}
	if len(problems) > 0 {
		return errs.BadConfig("cannot copy: "+strings.Join(problems, "; "), "exclude the tables with --tables '!name', or change the column types")
	}
	return nil
}

// discoverIndexes reads each table's secondary indexes: every valid index
// but the primary key and the replica identity index standing in for one.
func (c *Conn) discoverIndexes(ctx context.Context, oids []uint32, byOID map[uint32]*srcTable) error {
	rows, err := c.pool.Query(ctx, `SELECT i.indrelid, x.relname, i.indisunique, i.indisreplident, pg_get_indexdef(i.indexrelid),
			CASE WHEN i.indexprs IS NULL AND i.indpred IS NULL THEN ARRAY(
				SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
				JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
				WHERE k.ord <= i.indnkeyatts ORDER BY k.ord) END
		FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
		WHERE i.indrelid = ANY($1) AND NOT i.indisprimary AND i.indisvalid AND i.indislive
		ORDER BY i.indrelid, x.relname`, oids)
	if err != nil {
		return c.classify(err, "discover indexes")
	}
	defer rows.Close()
	for rows.Next() {
		var rel uint32
		var ix model.Index
		var replident bool
		var def string
		if err := rows.Scan(&rel, &ix.Name, &ix.Unique, &replident, &def, &ix.Columns); err != nil {
			return c.classify(err, "discover indexes")
		}
		s := byOID[rel]
		if replident && !s.hasPK && s.replident == 'i' {
			continue // the table's key at the destination
		}
		if _, tail, ok := strings.Cut(def, " USING "); ok {
			ix.Native = tail
		}
		s.table.Indexes = append(s.table.Indexes, ix)
	}
	if err := rows.Err(); err != nil {
		return c.classify(err, "discover indexes")
	}
	rows.Close()
	var partitioned []string
	for _, oid := range oids {
		if s := byOID[oid]; s.relkind == 'p' {
			partitioned = append(partitioned, qualified(s.table.Namespace))
		}
	}
	if len(partitioned) == 0 {
		return nil
	}
	named, err := partitionIndexes(ctx, c.pool, partitioned)
	if err != nil {
		return c.classify(err, "discover the indexes of partitions")
	}
	for _, oid := range oids {
		t := byOID[oid].table
		for i := range t.Indexes {
			t.Indexes[i].Partitions = named[indexKey{t.Namespace, t.Indexes[i].Name}]
		}
		if byOID[oid].hasPK {
			t.PrimaryKeyPartitions = named[indexKey{t.Namespace, t.PrimaryKeyName}]
		}
	}
	return nil
}
