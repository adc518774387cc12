package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/model"
)

// Secondary indexes are not created with the table: they would slow every
// copied row down. FinishTable builds them once the table's copy is done
// (the engine finishes tables in parallel), as pg_restore and pgcopydb do.

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
	return nil
}

// indexSQL is the statement that builds ix on table t here, or "" when
// ix says nothing this server can build. Unique indexes are built without
// UNIQUE: changes are applied in parallel across keys, so two rows may hold
// the same value for a moment (a value moved from one row to another) and
// a unique index would stop the flow.
func indexSQL(t *model.Table, ix model.Index, named bool) string {
	def := ix.Native
	if def == "" {
		if len(ix.Columns) == 0 {
			return ""
		}
		cols := make([]string, len(ix.Columns))
		for i, col := range ix.Columns {
			cols[i] = quoteIdent(col)
		}
		def = "btree (" + strings.Join(cols, ", ") + ")"
	}
	def = strings.Replace(def, " NULLS NOT DISTINCT", "", 1)
	name := ""
	if named {
		name = quoteIdent(ix.Name) + " "
	}
	return "CREATE INDEX " + name + "ON " + qualified(t.Namespace) + " USING " + def
}

// buildIndexes builds t's secondary indexes that the table does not have
// yet (by name), so finishing a table twice builds each once.
func (c *Conn) buildIndexes(ctx context.Context, t *model.Table) error {
	for _, ix := range t.Indexes {
		var here, elsewhere bool
		err := c.pool.QueryRow(ctx, `SELECT
				EXISTS (SELECT 1 FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid WHERE i.indrelid = to_regclass($1) AND x.relname = $2),
				to_regclass(quote_ident($3) || '.' || quote_ident($2)) IS NOT NULL`,
			qualified(t.Namespace), ix.Name, schemaOf(t.Namespace)).Scan(&here, &elsewhere)
		if err != nil {
			return c.classify(err, "read indexes of "+t.Namespace.String())
		}
		if here {
			continue
		}
		q := indexSQL(t, ix, !elsewhere)
		if q == "" {
			continue
		}
		if _, err := c.pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("table %s: build index %s (%s): %w; create what it needs at the destination (function, extension, collation) and run again, the copy resumes here",
				t.Namespace, ix.Name, q, c.classify(err, "build index"))
		}
	}
	return nil
}

func schemaOf(ns model.Namespace) string {
	if ns.Schema == "" {
		return "public"
	}
	return ns.Schema
}
