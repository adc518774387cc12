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

// FinishTable adds a copied table's primary key if it was deferred
// (destination_keys.go), builds its secondary indexes and analyzes it, so
// the planner knows its size before changes are applied to it. Each step
// is skipped when already done, so finishing a table again is harmless.
func (c *Conn) FinishTable(ctx context.Context, t *model.Table) error {
	t = portableIndexes(t)
	if err := c.ensureMeta(ctx); err != nil {
		return err
	}
	err := c.finishKey(ctx, t)
	// The copy's writers cached the table without its key; the appliers
	// that come next must see it.
	c.forgetDst(t.Namespace)
	if err != nil {
		return err
	}
	if err := c.buildIndexes(ctx, t); err != nil {
		return err
	}
	if err := c.buildPartitionsOwnIndexes(ctx, t); err != nil {
		return err
	}
	if _, err := c.pool.Exec(ctx, "ANALYZE "+qualified(t.Namespace)); err != nil {
		return c.classify(err, "analyze "+t.Namespace.String())
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
		if err := c.buildPartitionIndexes(ctx, t, ix); err != nil {
			return err
		}
		if _, err := c.pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("table %s: build index %s (%s): %w; create what it needs at the destination (function, extension, collation) and run again, the copy resumes here",
				t.Namespace, ix.Name, q, c.classify(err, "build index"))
		}
	}
	return nil
}

// buildPartitionIndexes builds, on the partitions of a partitioned table,
// its index ix under the names the source's partitions give it, deepest
// partitions first: building ix on the table then attaches them instead
// of building indexes of its own naming. A name another relation holds
// here is left to the server's choice.
func (c *Conn) buildPartitionIndexes(ctx context.Context, t *model.Table, ix model.Index) error {
	if t.Partitioning == nil {
		return nil
	}
	for i := len(ix.Partitions) - 1; i >= 0; i-- {
		pi := ix.Partitions[i]
		part := model.PartitionIn(t.Namespace, pi.Partition)
		var free, exists bool
		err := c.pool.QueryRow(ctx, `SELECT to_regclass(quote_ident($1) || '.' || quote_ident($2)) IS NULL, to_regclass($3) IS NOT NULL`,
			schemaOf(part), pi.Name, qualified(part)).Scan(&free, &exists)
		if err != nil {
			return c.classify(err, "read indexes of "+part.String())
		}
		if !free || !exists {
			continue
		}
		q := indexSQL(&model.Table{Namespace: part}, model.Index{Name: pi.Name, Columns: ix.Columns, Native: ix.Native}, true)
		if q == "" {
			return nil
		}
		if _, err := c.pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("table %s: build index %s on partition %s (%s): %w; create what it needs at the destination (function, extension, collation) and run again, the copy resumes here",
				t.Namespace, ix.Name, part, q, c.classify(err, "build index"))
		}
	}
	return nil
}

// buildPartitionsOwnIndexes builds the indexes a partitioned table's
// partitions have of their own, each unless its partition has one of its
// name.
func (c *Conn) buildPartitionsOwnIndexes(ctx context.Context, t *model.Table) error {
	var err error
	t.Partitioning.Each(func(tp *model.TablePartition) {
		if err != nil || len(tp.Indexes) == 0 {
			return
		}
		part := &model.Table{Namespace: model.PartitionIn(t.Namespace, tp.Name), Indexes: tp.Indexes}
		if e := c.buildIndexes(ctx, part); e != nil {
			err = fmt.Errorf("partition %s of table %s: %w", part.Namespace, t.Namespace, e)
		}
	})
	return err
}
