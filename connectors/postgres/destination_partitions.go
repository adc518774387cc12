package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// A table partitioned at a PostgreSQL source (model.Partitioning) is
// created partitioned here, with every partition the source has, so the
// application keeps its partitioning after the cutover. ferry copies and
// applies changes to the partitioned table itself and the server routes
// each row to its partition; its primary key (destination_keys.go), the
// secondary indexes FinishTable builds and the unique ones the cutover
// builds (destination_constraints.go) are made on it and reach every
// partition.

// partitionBy is the PARTITION BY clause of a table partitioned as p, ""
// for a plain table.
func partitionBy(p *model.Partitioning) string {
	if p == nil || p.Key == "" {
		return ""
	}
	return " PARTITION BY " + p.Key
}

// partitionsSQL creates the partitions of parent (named so here), a
// partition of root, as p lists them, each before its own partitions. A
// partition in root's source schema is created in root's schema here, so
// --rename moves the partitions with their table.
func partitionsSQL(root, parent model.Namespace, p *model.Partitioning) string {
	if p == nil || p.Key == "" {
		return ""
	}
	var sb strings.Builder
	for _, part := range p.Partitions {
		name := model.PartitionIn(root, part.Name)
		if name.Schema != "" && name.Schema != root.Schema {
			sb.WriteString(";\nCREATE SCHEMA IF NOT EXISTS " + quoteIdent(name.Schema))
		}
		sb.WriteString(";\nCREATE TABLE IF NOT EXISTS " + qualified(name) + " PARTITION OF " + qualified(parent) + " " + part.Bound + partitionBy(part.Partitioning))
		if part.Comment != "" {
			sb.WriteString(";\nCOMMENT ON TABLE " + qualified(name) + " IS " + quoteLiteral(part.Comment))
		}
		sb.WriteString(partitionsSQL(root, name, part.Partitioning))
	}
	return sb.String()
}

// partIndex is a partition of a partitioned table getting a unique index
// at cutover: PostgreSQL 15 refuses CREATE INDEX CONCURRENTLY on a
// partitioned table, so each leaf partition's index is built CONCURRENTLY
// under a temporary name, and the naming transaction ties them together
// under the table's (namePartIndexes).
type partIndex struct {
	table, parent model.Namespace
	leaf          bool
	level         int
	// name is the index's name on this partition: the source's
	// (model.Constraint.Partitions), else one made of the partition's and
	// the constraint's.
	name string
	// temp is the name a leaf's index is built under.
	temp string
}

// partIndexes lists p's table's partitions here, parents before their
// partitions, each with the name the source gives p's index on it.
func (c *Conn) partIndexes(ctx context.Context, p *pendingConstraint) ([]partIndex, error) {
	names := map[model.Namespace]string{}
	for _, pi := range p.Partitions {
		names[model.PartitionIn(p.Table, pi.Partition)] = pi.Name
	}
	rows, err := c.pool.Query(ctx, `SELECT n.nspname, c.relname, pn.nspname, pc.relname, t.isleaf, t.level
		FROM pg_partition_tree(to_regclass($1)) t
		JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_class pc ON pc.oid = t.parentrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
		WHERE t.level > 0
		ORDER BY t.level, n.nspname, c.relname`, p.rel)
	if err != nil {
		return nil, c.classify(fmt.Errorf("constraint %s: read the partitions: %w", p.Constraint, err), "read the partitions of "+p.Table.String())
	}
	parts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (partIndex, error) {
		var pi partIndex
		err := r.Scan(&pi.table.Schema, &pi.table.Table, &pi.parent.Schema, &pi.parent.Table, &pi.leaf, &pi.level)
		return pi, err
	})
	if err != nil {
		return nil, c.classify(fmt.Errorf("constraint %s: read the partitions: %w", p.Constraint, err), "read the partitions of "+p.Table.String())
	}
	for i := range parts {
		pi := &parts[i]
		if pi.name = names[pi.table]; pi.name == "" {
			pi.name = truncateIdent(pi.table.Table + "_" + p.Name)
		}
		h := sha256.Sum256([]byte(p.Table.String() + "\x00" + p.Name + "\x00" + pi.table.String()))
		pi.temp = "ferry_unique_" + hex.EncodeToString(h[:8])
	}
	return parts, nil
}

// truncateIdent cuts a name to PostgreSQL's 63 bytes, as the server would.
func truncateIdent(s string) string {
	for len(s) > 63 {
		s = s[:len(s)-1]
	}
	return strings.ToValidUTF8(s, "")
}

// buildPartIndexes builds p's unique index CONCURRENTLY on each leaf
// partition under its temporary name, dropping first a leftover of a
// build that crashed (INVALID or not). Writes go on meanwhile.
func (c *Conn) buildPartIndexes(ctx context.Context, p *pendingConstraint) error {
	for _, part := range p.parts {
		if !part.leaf {
			continue
		}
		temp := qualified(model.Namespace{Schema: schemaOf(part.table), Table: part.temp})
		if _, err := c.pool.Exec(ctx, "DROP INDEX CONCURRENTLY IF EXISTS "+temp); err != nil {
			return err
		}
		q := "CREATE UNIQUE INDEX CONCURRENTLY " + quoteIdent(part.temp) + " ON " + qualified(part.table) + " USING " + p.Index
		if _, err := c.pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("partition %s: %s: %w", part.table, q, err)
		}
	}
	return nil
}

// namePartIndexes, in the naming transaction, makes the leaves' indexes
// p's: for a unique constraint each leaf's becomes its constraint (ADD
// CONSTRAINT ... USING INDEX, which PostgreSQL allows on a partition but
// not on a partitioned table), then the constraint is added to each
// partitioned partition, deepest first, and to the table, which attaches
// the partitions' instead of building anything; for a unique index the
// index is created ON ONLY the table and each partitioned partition (no
// build), the leaves' are renamed, and each is attached to its parent's,
// deepest first.
func namePartIndexes(ctx context.Context, tx pgx.Tx, p *pendingConstraint) error {
	var stmts []string
	indexOf := func(ns model.Namespace, name string) string {
		return qualified(model.Namespace{Schema: schemaOf(ns), Table: name})
	}
	nameOf := map[model.Namespace]string{p.Table: p.Name}
	for _, part := range p.parts {
		nameOf[part.table] = part.name
	}
	if p.Kind == model.ConstraintUniqueIndex {
		stmts = append(stmts, "CREATE UNIQUE INDEX "+quoteIdent(p.Name)+" ON ONLY "+p.rel+" USING "+p.Index)
	}
	for _, part := range p.parts {
		switch {
		case part.leaf && p.Kind == model.ConstraintUnique:
			stmts = append(stmts, "ALTER TABLE "+qualified(part.table)+" ADD CONSTRAINT "+quoteIdent(part.name)+" UNIQUE USING INDEX "+quoteIdent(part.temp)+deferrable(p.Definition))
		case part.leaf:
			stmts = append(stmts, "ALTER INDEX "+indexOf(part.table, part.temp)+" RENAME TO "+quoteIdent(part.name))
		case p.Kind == model.ConstraintUniqueIndex:
			stmts = append(stmts, "CREATE UNIQUE INDEX "+quoteIdent(part.name)+" ON ONLY "+qualified(part.table)+" USING "+p.Index)
		}
	}
	for i := len(p.parts) - 1; i >= 0; i-- {
		part := p.parts[i]
		switch {
		case p.Kind == model.ConstraintUniqueIndex:
			stmts = append(stmts, "ALTER INDEX "+indexOf(part.parent, nameOf[part.parent])+" ATTACH PARTITION "+indexOf(part.table, part.name))
		case !part.leaf:
			stmts = append(stmts, "ALTER TABLE "+qualified(part.table)+" ADD CONSTRAINT "+quoteIdent(part.name)+" "+p.Definition)
		}
	}
	if p.Kind == model.ConstraintUnique {
		stmts = append(stmts, "ALTER TABLE "+p.rel+" ADD CONSTRAINT "+quoteIdent(p.Name)+" "+p.Definition)
	}
	for _, q := range stmts {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// noPartitionError says what to do when a change's row has no partition
// at the destination: the partitions are created with the table, so the
// source has one created while the flow ran (pgoutput does not tell), and
// ferry does not create it. nil for any other error.
func noPartitionError(ns model.Namespace, err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23514" || !strings.Contains(pe.Message, "no partition of relation") {
		return nil
	}
	return &errs.ConfigError{
		Msg: fmt.Sprintf("table %s: a change's row has no partition at the destination (%s): the source has a partition created while the flow ran, which ferry does not create", ns, pe.Detail),
		Fix: "create that partition at the destination as the source has it (pg_dump --schema-only --table <partition> of the source prints its CREATE TABLE and ATTACH PARTITION; or CREATE TABLE <partition> PARTITION OF " + showQualified(ns.Schema, ns.Table) + " FOR VALUES ... with the source's bound), then run ferry sync again: it resumes with this change",
		Err: noPartition{err},
	}
}

// noPartition marks the server's error for a row without a partition as
// connector.ErrNoPartition, saying what the server said.
type noPartition struct{ err error }

func (n noPartition) Error() string        { return n.err.Error() }
func (n noPartition) Unwrap() error        { return n.err }
func (n noPartition) Is(target error) bool { return target == connector.ErrNoPartition }

// namePartitionKeys gives the primary key's indexes on t's partitions,
// which the server names when the key is added to the partitioned table,
// the names the source's have (and so their constraints, which take their
// index's name), where another relation does not hold the name.
func namePartitionKeys(ctx context.Context, tx pgx.Tx, t *model.Table) error {
	for _, pi := range t.PrimaryKeyPartitions {
		part := model.PartitionIn(t.Namespace, pi.Partition)
		var old string
		err := tx.QueryRow(ctx, `SELECT quote_ident(n.nspname) || '.' || quote_ident(x.relname)
			FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid JOIN pg_namespace n ON n.oid = x.relnamespace
			WHERE i.indrelid = to_regclass($1) AND i.indisprimary AND x.relname <> $2
				AND to_regclass(quote_ident(n.nspname) || '.' || quote_ident($2)) IS NULL`, qualified(part), pi.Name).Scan(&old)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return fmt.Errorf("partition %s: read its primary key: %w", part, err)
		}
		if _, err := tx.Exec(ctx, "ALTER INDEX "+old+" RENAME TO "+quoteIdent(pi.Name)); err != nil {
			return fmt.Errorf("partition %s: name its primary key %s: %w", part, pi.Name, err)
		}
	}
	return nil
}
