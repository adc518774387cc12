package postgres

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

var _ connector.PartitionBuilder = (*Conn)(nil)

// At cutover the partitions of a partitioned table are made the source's
// as it has them at that moment (docs/decisions/2026-12-05-partitioned-tables.md):
// pgoutput does not say when the source gains a partition, and a change
// for it lands in the destination's DEFAULT partition, if there is one.
//
// PostgreSQL 15 refuses CREATE TABLE ... PARTITION OF (and ATTACH
// PARTITION) while the parent's DEFAULT partition holds a row the new
// partition would take. So, in one transaction per table, for each
// partition the destination lacks under a parent with a DEFAULT partition:
// the rows it would take are found with the server's own predicate for its
// bound (pg_get_partition_constraintdef of a partition of that bound of a
// scratch temporary table keyed as the parent, made in a savepoint rolled
// back, so the DEFAULT partition is never detached and keeps its indexes,
// constraints and the foreign keys referring to it), moved out of the DEFAULT
// partition into a temporary table (DELETE ... RETURNING), the partition
// is created PARTITION OF its parent as the copy creates partitions, and
// the rows are inserted again through the parent, which routes them.

// dstPartition is a partition of a partitioned table at the destination.
type dstPartition struct {
	parent model.Namespace
	bound  string
}

// BuildPartitions creates the partitions the destination lacks and lists
// those it has that the source has not.
func (c *Conn) BuildPartitions(ctx context.Context, tables []*model.Table, opts connector.PartitionOptions) (connector.PartitionsBuilt, error) {
	var done connector.PartitionsBuilt
	for _, t := range tables {
		if t.Partitioning == nil {
			continue
		}
		if err := c.buildTablePartitions(ctx, t, opts, &done); err != nil {
			return done, err
		}
	}
	return done, nil
}

// buildTablePartitions makes t's partitions the source's, in one
// transaction; what it created is added to done only once it commits.
func (c *Conn) buildTablePartitions(ctx context.Context, t *model.Table, opts connector.PartitionOptions, done *connector.PartitionsBuilt) error {
	tx, err := c.pool.Begin(ctx)
	if err != nil {
		return c.classify(err, "create partitions of "+t.Namespace.String())
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit, a no-op
	if _, err := tx.Exec(ctx, `SET LOCAL search_path = pg_catalog`); err != nil {
		return c.classify(err, "create partitions of "+t.Namespace.String())
	}
	have, err := dstPartitions(ctx, tx, t.Namespace)
	if err != nil {
		return c.classify(fmt.Errorf("table %s: read its partitions: %w", t.Namespace, err), "read partitions of "+t.Namespace.String())
	}
	// Moving rows deletes and inserts them: no trigger of the
	// application's, and no foreign key's action (ON DELETE CASCADE of a
	// table referring to this one), may fire for them.
	replica, err := c.replicaRole(ctx)
	if err != nil {
		return err
	}
	if replica {
		if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return c.classify(err, "create partitions of "+t.Namespace.String())
		}
	}
	b := partitionBuild{tx: tx, root: t.Namespace, replica: replica, tree: t.Partitioning, have: have, seen: map[model.Namespace]bool{}, keepDefaults: opts.KeepDefaults}
	if err := b.walk(ctx, t.Namespace, t.Partitioning); err != nil {
		return c.classify(fmt.Errorf("table %s: %w; nothing of this table's partitions was changed", t.Namespace, err), "create partitions of "+t.Namespace.String())
	}
	b.listExtra(t.Namespace)
	if err := tx.Commit(ctx); err != nil {
		return c.classify(fmt.Errorf("table %s: create partitions: %w", t.Namespace, err), "create partitions of "+t.Namespace.String())
	}
	done.Created = append(done.Created, b.created...)
	done.Moved += b.moved
	done.Issues = append(done.Issues, b.issues...)
	return nil
}

// dstPartitions reads root's partitions at the destination, sub-partitions
// included, by name.
func dstPartitions(ctx context.Context, tx pgx.Tx, root model.Namespace) (map[model.Namespace]dstPartition, error) {
	rows, err := tx.Query(ctx, `SELECT n.nspname, c.relname, pn.nspname, pc.relname, COALESCE(pg_get_expr(c.relpartbound, c.oid), '')
		FROM pg_partition_tree(to_regclass($1)) t
		JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_class pc ON pc.oid = t.parentrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
		WHERE t.level > 0`, qualified(root))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[model.Namespace]dstPartition{}
	for rows.Next() {
		var name model.Namespace
		var p dstPartition
		if err := rows.Scan(&name.Schema, &name.Table, &p.parent.Schema, &p.parent.Table, &p.bound); err != nil {
			return nil, err
		}
		out[name] = p
	}
	return out, rows.Err()
}

// partitionBuild is one table's pass in its transaction.
type partitionBuild struct {
	tx   pgx.Tx
	root model.Namespace
	// tree is the source's partitioning of root.
	tree *model.Partitioning
	have map[model.Namespace]dstPartition
	// seen are the source's partitions (destination names).
	seen map[model.Namespace]bool
	// keepDefaults: create no partition whose rows a DEFAULT one holds.
	keepDefaults bool
	// replica: session_replication_role is replica (no trigger fires).
	replica bool
	created []string
	moved   int64
	issues  []string
}

// walk creates the partitions of parent that p lists and the destination
// lacks, parents before their partitions.
func (b *partitionBuild) walk(ctx context.Context, parent model.Namespace, p *model.Partitioning) error {
	if p == nil {
		return nil
	}
	for i := range p.Partitions {
		part := &p.Partitions[i]
		name := model.PartitionIn(b.root, part.Name)
		b.seen[name] = true
		got, ok := b.have[name]
		if !ok {
			if was, renamed := b.renamed(parent, part); renamed {
				b.seen[was] = true
				b.issues = append(b.issues, fmt.Sprintf("partition %s (%s of %s) is named %s here: renamed at the source while the flow ran; to fix: ALTER TABLE %s RENAME TO %s",
					name, part.Bound, parent, was, qualified(was), quoteIdent(name.Table)))
				if err := b.walk(ctx, was, part.Partitioning); err != nil {
					return err
				}
				continue
			}
			if err := b.create(ctx, parent, part); err != nil {
				return err
			}
			continue
		}
		if got.parent != parent || got.bound != part.Bound {
			b.issues = append(b.issues, fmt.Sprintf("partition %s is %s of %s here, %s of %s at the source; to fix: ALTER TABLE %s DETACH PARTITION %s; ALTER TABLE %s ATTACH PARTITION %s %s",
				name, got.bound, got.parent, part.Bound, parent, qualified(got.parent), qualified(name), qualified(parent), qualified(name), part.Bound))
		}
		if err := b.walk(ctx, name, part.Partitioning); err != nil {
			return err
		}
	}
	return nil
}

// create creates part under parent with its own partitions, moving into
// it the rows parent's DEFAULT partition holds for it.
func (b *partitionBuild) create(ctx context.Context, parent model.Namespace, part *model.TablePartition) error {
	name := model.PartitionIn(b.root, part.Name)
	// partitionsSQL writes the partitions of a partitioned parent (any
	// Key: the parent's is not printed), each after ";\n".
	create := strings.TrimPrefix(partitionsSQL(b.root, parent, &model.Partitioning{Key: "-", Partitions: []model.TablePartition{*part}}), ";\n")
	def, hasDefault := b.defaultOf(parent)
	if hasDefault && b.keepDefaults {
		return nil
	}
	if !hasDefault || part.Bound == "DEFAULT" {
		if _, err := b.tx.Exec(ctx, create); err != nil {
			return fmt.Errorf("create partition %s (%s): %w", name, create, err)
		}
		return b.createdTree(ctx, part)
	}
	// The predicate of the new partition's bound, as the server writes
	// it, read from a partition of that bound of a scratch table keyed as
	// parent (the DEFAULT partition would refuse one of parent itself,
	// and detaching it is refused while a foreign key refers to it), then
	// undone.
	var key, pred string
	if err := b.tx.QueryRow(ctx, `SELECT pg_get_partkeydef(to_regclass($1))`, qualified(parent)).Scan(&key); err != nil {
		return fmt.Errorf("partition %s: read the partition key of %s: %w", name, parent, err)
	}
	probe := "SAVEPOINT ferry_partition_probe; " +
		"CREATE TEMP TABLE ferry_partition_probe (LIKE " + qualified(parent) + ") PARTITION BY " + key + "; " +
		"CREATE TEMP TABLE ferry_partition_probe_part PARTITION OF pg_temp.ferry_partition_probe " + part.Bound
	if _, err := b.tx.Exec(ctx, probe); err != nil {
		return fmt.Errorf("partition %s: read which rows of %s belong to it (%s): %w", name, def, probe, err)
	}
	if err := b.tx.QueryRow(ctx, `SELECT pg_get_partition_constraintdef('pg_temp.ferry_partition_probe_part'::regclass)`).Scan(&pred); err != nil {
		return fmt.Errorf("partition %s: read its partition constraint: %w", name, err)
	}
	if _, err := b.tx.Exec(ctx, "ROLLBACK TO SAVEPOINT ferry_partition_probe; RELEASE SAVEPOINT ferry_partition_probe"); err != nil {
		return fmt.Errorf("partition %s: %w", name, err)
	}
	if err := b.mayMove(ctx, def); err != nil {
		return fmt.Errorf("partition %s: %w", name, err)
	}
	cols, err := insertableColumns(ctx, b.tx, parent)
	if err != nil {
		return fmt.Errorf("partition %s: read the columns of %s: %w", name, parent, err)
	}
	list := strings.Join(cols, ", ")
	move := "CREATE TEMP TABLE ferry_moved_rows (LIKE " + qualified(def) + ") ON COMMIT DROP"
	if _, err := b.tx.Exec(ctx, move); err != nil {
		return fmt.Errorf("partition %s: %s: %w", name, move, err)
	}
	move = "WITH m AS (DELETE FROM " + qualified(def) + " WHERE " + pred + " RETURNING " + list + ") INSERT INTO pg_temp.ferry_moved_rows (" + list + ") SELECT " + list + " FROM m"
	tag, err := b.tx.Exec(ctx, move)
	if err != nil {
		return fmt.Errorf("partition %s: move its rows out of %s (%s): %w", name, def, move, err)
	}
	if _, err := b.tx.Exec(ctx, create); err != nil {
		return fmt.Errorf("create partition %s (%s): %w", name, create, err)
	}
	back := "INSERT INTO " + qualified(parent) + " (" + list + ") OVERRIDING SYSTEM VALUE SELECT " + list + " FROM pg_temp.ferry_moved_rows"
	if _, err := b.tx.Exec(ctx, back); err != nil {
		return fmt.Errorf("partition %s: insert the rows moved out of %s (%s): %w", name, def, back, err)
	}
	if _, err := b.tx.Exec(ctx, "DROP TABLE pg_temp.ferry_moved_rows"); err != nil {
		return fmt.Errorf("partition %s: %w", name, err)
	}
	b.moved += tag.RowsAffected()
	return b.createdTree(ctx, part)
}

// createdTree records part and its partitions, all created now, and
// builds their own indexes (the table's reach them by PARTITION OF).
func (b *partitionBuild) createdTree(ctx context.Context, part *model.TablePartition) error {
	tree := model.Partitioning{Partitions: []model.TablePartition{*part}}
	var err error
	tree.Each(func(tp *model.TablePartition) {
		name := model.PartitionIn(b.root, tp.Name)
		b.seen[name] = true
		b.created = append(b.created, name.String())
		for _, ix := range tp.Indexes {
			if err != nil || ix.Native == "" {
				continue
			}
			q := "CREATE INDEX IF NOT EXISTS " + quoteIdent(ix.Name) + " ON " + qualified(name) + " USING " + ix.Native
			if _, e := b.tx.Exec(ctx, q); e != nil {
				err = fmt.Errorf("partition %s: build its index %s (%s): %w", name, ix.Name, q, e)
			}
		}
	})
	return err
}

// renamed finds the partition of parent here with part's bound that the
// source does not name: part under another name (the stream does not
// carry renames), which creating part would collide with.
func (b *partitionBuild) renamed(parent model.Namespace, part *model.TablePartition) (model.Namespace, bool) {
	for name, p := range b.have {
		if p.parent == parent && p.bound == part.Bound && !b.seen[name] && !b.sourceNames(name) {
			return name, true
		}
	}
	return model.Namespace{}, false
}

// sourceNames tells whether the source's tree names the partition name.
func (b *partitionBuild) sourceNames(name model.Namespace) bool {
	found := false
	b.tree.Each(func(tp *model.TablePartition) {
		found = found || model.PartitionIn(b.root, tp.Name) == name
	})
	return found
}

// mayMove refuses to move rows out of def when a trigger of the
// application's or a foreign key referring to the table would fire for
// them and the role may not keep them from firing.
func (b *partitionBuild) mayMove(ctx context.Context, def model.Namespace) error {
	if b.replica {
		return nil
	}
	var fires string
	err := b.tx.QueryRow(ctx, `SELECT COALESCE((SELECT 'trigger ' || tgname FROM pg_trigger
			WHERE tgrelid IN (SELECT relid FROM pg_partition_tree(to_regclass($1))) AND NOT tgisinternal LIMIT 1),
		(SELECT 'foreign key ' || conname || ' of ' || conrelid::regclass::text FROM pg_constraint
			WHERE contype = 'f' AND conparentid = 0 AND confrelid IN (SELECT relid FROM pg_partition_tree(to_regclass($2))) LIMIT 1), '')`,
		qualified(def), qualified(b.root)).Scan(&fires)
	if err != nil {
		return fmt.Errorf("read the triggers of %s: %w", def, err)
	}
	if fires == "" {
		return nil
	}
	return &errs.ConfigError{
		Msg: fmt.Sprintf("rows of the DEFAULT partition %s must move into it, and %s would fire for them, which the role may not keep from firing (session_replication_role)", def, fires),
		Fix: "as a superuser, run GRANT SET ON PARAMETER session_replication_role TO <ferry's role> (PostgreSQL 15 and later), or run the cutover as a superuser; then run ferry cutover again",
	}
}

// defaultOf is parent's DEFAULT partition at the destination.
func (b *partitionBuild) defaultOf(parent model.Namespace) (model.Namespace, bool) {
	for name, p := range b.have {
		if p.parent == parent && p.bound == "DEFAULT" {
			return name, true
		}
	}
	return model.Namespace{}, false
}

// listExtra lists the destination's partitions the source no longer has
// (detached or dropped there while the flow ran): their rows stay, and
// ferry drops nothing. A partition under one listed is not listed again.
func (b *partitionBuild) listExtra(root model.Namespace) {
	for name, p := range b.have {
		if b.seen[name] || (p.parent != root && !b.seen[p.parent]) {
			continue
		}
		b.issues = append(b.issues, fmt.Sprintf("partition %s (%s of %s) is not a partition at the source (detached or dropped there while the flow ran), and keeps its rows here; to fix: ALTER TABLE %s DETACH PARTITION %s, then DROP TABLE %s if the source dropped it",
			name, p.bound, p.parent, qualified(p.parent), qualified(name), qualified(name)))
	}
	sort.Strings(b.issues)
}

// insertableColumns are table's columns an INSERT may name: not dropped,
// not generated.
func insertableColumns(ctx context.Context, tx pgx.Tx, table model.Namespace) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT quote_ident(attname) FROM pg_attribute
		WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
		ORDER BY attnum`, qualified(table))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
