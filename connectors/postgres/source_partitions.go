package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

var _ connector.PartitionReader = (*Conn)(nil)

// Partitionings reads the partitioning of the given tables as it is now,
// in the same catalog pass as discovery (discoverPartitioning), so a
// partition created, detached or dropped while the flow ran shows.
func (c *Conn) Partitionings(ctx context.Context, tables []model.Namespace) (map[model.Namespace]*model.Partitioning, error) {
	out := map[model.Namespace]*model.Partitioning{}
	if len(tables) == 0 {
		return out, nil
	}
	names := make([]string, len(tables))
	for i, ns := range tables {
		names[i] = qualified(ns)
	}
	tx, err := c.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, c.classify(err, "read partitions")
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only
	if _, err := tx.Exec(ctx, `SET LOCAL search_path = ''`); err != nil {
		return nil, c.classify(err, "read partitions")
	}
	rows, err := tx.Query(ctx, `SELECT c.oid, n.nspname, c.relname, c.relkind
		FROM unnest($1::text[]) AS r(name)
		JOIN pg_class c ON c.oid = to_regclass(r.name)
		JOIN pg_namespace n ON n.oid = c.relnamespace`, names)
	if err != nil {
		return nil, c.classify(fmt.Errorf("read partitions: %w", err), "read partitions")
	}
	byOID := map[uint32]*srcTable{}
	var oids []uint32
	for rows.Next() {
		st := &srcTable{table: &model.Table{}}
		if err := rows.Scan(&st.oid, &st.table.Namespace.Schema, &st.table.Namespace.Table, &st.relkind); err != nil {
			rows.Close()
			return nil, c.classify(fmt.Errorf("read partitions: %w", err), "read partitions")
		}
		byOID[st.oid] = st
		oids = append(oids, st.oid)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, c.classify(fmt.Errorf("read partitions: %w", err), "read partitions")
	}
	if err := discoverPartitioning(ctx, tx, oids, byOID); err != nil {
		return nil, c.classify(fmt.Errorf("read partitions: %w", err), "read partitions")
	}
	for _, st := range byOID {
		if st.table.Partitioning != nil {
			out[st.table.Namespace] = st.table.Partitioning
		}
	}
	return out, tx.Commit(ctx)
}
