package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// dropTableCommand is the command ferry_ddl_drop logs a dropped table with.
const dropTableCommand = "DROP TABLE"

// createsTable reports whether a command the DDL log logs creates a table.
func createsTable(command string) bool {
	switch command {
	case "CREATE TABLE", "CREATE TABLE AS", "SELECT INTO":
		return true
	}
	return false
}

// tableCreated follows a table created at the source, which the DDL log
// logged and the stream does not know: when StreamOptions.NewTables selects
// it, the stream emits its definition with Created ahead of the changes
// that follow, and decodes its changes from then on (they come once the
// engine has added it to the publication, TableAdder.AddTables).
//
// The table is discovered by its oid as the catalog has it now, under the
// name it has now: one dropped since (or a partition, or a table of ferry's
// own schema) is passed over, and its DROP TABLE, which follows in the
// stream, names a table the stream does not know. One altered since is
// discovered with its new columns: its ALTER TABLE entries, which follow,
// show columns the stream knows already and change nothing.
func (s *streamer) tableCreated(ctx context.Context, relid uint32, send func(pending) error) error {
	if s.newTables == nil {
		return nil
	}
	src, err := s.c.discoverOID(ctx, relid)
	if err != nil || src == nil {
		return err
	}
	ns := src.table.Namespace
	if s.tables[ns] != nil || !s.newTables(ns) {
		return nil
	}
	if src.table.NoChangeStream == "" {
		if err := s.checkBinaryTable(src.table); err != nil {
			return err
		}
	}
	if err := s.flushPartial(ctx, send); err != nil {
		return err
	}
	// Created UNLOGGED: the engine leaves it out, as the plan does, with
	// the reason NoChangeStream gives; the stream never follows it (an
	// ALTER or DROP of it later names a table it does not know).
	if src.table.NoChangeStream != "" {
		s.schemas = append(s.schemas, model.SchemaChange{Table: src.table.Clone(), Created: true})
		return nil
	}
	// Refused as the plan refuses it: the flow asked for the table.
	if err := checkSelected([]*srcTable{src}); err != nil {
		return err
	}
	st, err := s.c.newStreamTable(ctx, src.table)
	if err != nil {
		return err
	}
	s.tables[ns] = st
	s.changeTables(func() { delete(s.tables, ns) })
	s.schemas = append(s.schemas, model.SchemaChange{Table: src.table.Clone(), Created: true})
	// A publication that publishes it already (FOR TABLES IN SCHEMA) may
	// have sent its relation message before: it is bound now.
	var again []*relation
	for _, r := range s.rels {
		if r.st == nil && r.ns == ns && r.msg != nil {
			again = append(again, r)
		}
	}
	for _, r := range again {
		if err := s.relation(ctx, r.msg, send); err != nil {
			return err
		}
	}
	return nil
}

// madeUnlogged refuses to go on past ALTER TABLE ... SET UNLOGGED of a
// table the flow follows: from then on its changes are not in the WAL, so
// the stream would silently miss them. The table as the catalog has it now
// counts: one made logged again since is followed as before, and the rows
// written while it was unlogged reach the destination only by copying it
// again (ferry snapshot), which the error says.
func (s *streamer) madeUnlogged(ctx context.Context, st *streamTable, relid uint32) error {
	var persistence string
	err := s.c.pool.QueryRow(ctx, `SELECT relpersistence::text FROM pg_class WHERE oid = $1`, relid).Scan(&persistence)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && persistence != "u") {
		return nil
	}
	if err != nil {
		return s.c.classify(err, "read the table's persistence")
	}
	ns := st.table.Namespace
	return errs.BadConfig(fmt.Sprintf("table %s was made UNLOGGED at the source (ALTER TABLE ... SET UNLOGGED) while the flow follows it: its changes are no longer written to the WAL, so change data capture cannot see them; the flow stopped before anything after it", ns),
		fmt.Sprintf("make it logged again at the source (ALTER TABLE %s SET LOGGED), run the flow again, and copy the table again while it runs (ferry snapshot SOURCE DESTINATION %s) for the changes made while it was unlogged; or leave it out of the flow: --tables '...,!%s' and run it again", ns, ns, ns))
}

// tableDropped stops following a table of the stream dropped at the
// source: the changes before the drop go first, then its definition with
// Dropped. The server removed it from the publication with it.
func (s *streamer) tableDropped(ctx context.Context, st *streamTable, send func(pending) error) error {
	if err := s.flushPartial(ctx, send); err != nil {
		return err
	}
	s.schemas = append(s.schemas, model.SchemaChange{Table: st.table.Clone(), Dropped: true})
	delete(s.tables, st.table.Namespace)
	s.changeTables(func() { s.tables[st.table.Namespace] = st })
	for id, r := range s.rels {
		if r.st == st {
			delete(s.rels, id)
		}
	}
	return nil
}
