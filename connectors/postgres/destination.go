package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// destinationState is the destination half's own state: whether ferry's
// _ferry tables exist, and the catalog views of the tables it writes. The
// source's methods never touch it.
type destinationState struct {
	mu     sync.Mutex
	ready  bool                 // _ferry's tables exist
	tables map[string]*dstTable // by quoted name
	// rawTargets are the tables that accepted a raw format, by quoted name.
	rawTargets map[string]*rawTarget
	// replica: the role may set session_replication_role (replicaRole),
	// once replicaKnown.
	replica, replicaKnown bool
}

// table returns the cached view of the table of quoted name, or nil.
func (d *destinationState) table(name string) *dstTable {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.tables[name]
}

func (d *destinationState) keepTable(name string, dt *dstTable) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tables == nil {
		d.tables = map[string]*dstTable{}
	}
	d.tables[name] = dt
}

// rawTarget returns how the table of quoted name takes a raw format, or
// nil when it has not accepted one.
func (d *destinationState) rawTarget(name string) *rawTarget {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rawTargets[name]
}

func (d *destinationState) keepRawTarget(name string, rt *rawTarget) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.rawTargets == nil {
		d.rawTargets = map[string]*rawTarget{}
	}
	d.rawTargets[name] = rt
}

// forget drops what is cached of the table of quoted name: its catalog
// changed (created, altered, its key added).
func (d *destinationState) forget(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.tables, name)
	delete(d.rawTargets, name)
}

// dstTable is a destination table as the catalog has it.
type dstTable struct {
	name string // quoted, qualified
	cols map[string]*dstCol
	pk   []string
	// deferrable: a unique, primary-key or exclusion constraint is
	// DEFERRABLE, so the apply transaction defers it to its commit.
	deferrable bool
}

type dstCol struct {
	name       string
	oid        uint32 // the column's type
	cast       string // the type without modifier, to cast text to
	generated  bool
	notNull    bool
	hasDefault bool
}

const metaDDL = `CREATE SCHEMA IF NOT EXISTS _ferry;
CREATE TABLE IF NOT EXISTS _ferry.checkpoints (
	flow text NOT NULL,
	key text NOT NULL,
	value text NOT NULL,
	PRIMARY KEY (flow, key)
);
CREATE TABLE IF NOT EXISTS _ferry.deferred_keys (
	relid oid PRIMARY KEY,
	table_name text NOT NULL,
	key_columns text[] NOT NULL
)`

// ensureMeta creates ferry's checkpoint table, and the table of tables
// waiting for their primary key (destination_keys.go), once per connector.
func (c *Conn) ensureMeta(ctx context.Context) error {
	c.dst.mu.Lock()
	defer c.dst.mu.Unlock()
	if c.dst.ready {
		return nil
	}
	if _, err := c.pool.Exec(ctx, metaDDL); err != nil {
		if sqlState(err) == "42501" {
			return &errs.ConfigError{Msg: fmt.Sprintf("cannot create schema _ferry at %s for ferry's checkpoints", c.where()),
				Fix: "GRANT CREATE ON DATABASE " + showIdent(c.cfg.ConnConfig.Database) + " TO " + showIdent(c.cfg.ConnConfig.User), Err: c.scrub.Err(err)}
		}
		return c.classify(err, "create _ferry.checkpoints")
	}
	c.dst.ready = true
	c.dst.tables = map[string]*dstTable{}
	return nil
}

// loadDst reads a destination table's columns and key; nil if it does not
// exist.
func loadDst(ctx context.Context, q querier, ns model.Namespace) (*dstTable, error) {
	name := qualified(ns)
	// Values are cast to the column's type by its plain name, without a
	// modifier: character and bit alone would mean length 1, and an explicit
	// cast to varchar(n) truncates where the assignment raises an error.
	rows, err := q.Query(ctx, `SELECT a.attname, a.atttypid, quote_ident(tn.nspname) || '.' || quote_ident(ty.typname), a.attgenerated <> '', a.attnotnull,
			a.atthasdef OR a.attidentity <> '',
			COALESCE(a.attnum = ANY(i.indkey), false), COALESCE(array_position(i.indkey::int2[], a.attnum), 0)
		FROM pg_attribute a
		JOIN pg_type ty ON ty.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = ty.typnamespace
		LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
		WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	dt := &dstTable{name: name, cols: map[string]*dstCol{}}
	pkPos := map[int]string{}
	for rows.Next() {
		var col dstCol
		var inPK bool
		var pos int
		if err := rows.Scan(&col.name, &col.oid, &col.cast, &col.generated, &col.notNull, &col.hasDefault, &inPK, &pos); err != nil {
			return nil, err
		}
		dt.cols[col.name] = &col
		if inPK {
			pkPos[pos] = col.name
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(dt.cols) == 0 {
		return nil, nil
	}
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_constraint
		WHERE conrelid = to_regclass($1) AND condeferrable AND contype IN ('p', 'u', 'x'))`, name).Scan(&dt.deferrable); err != nil {
		return nil, err
	}
	positions := make([]int, 0, len(pkPos))
	for pos := range pkPos {
		positions = append(positions, pos)
	}
	sort.Ints(positions)
	for _, pos := range positions {
		dt.pk = append(dt.pk, pkPos[pos])
	}
	return dt, nil
}

// destTable returns the cached catalog view of a destination table.
func (c *Conn) destTable(ctx context.Context, ns model.Namespace) (*dstTable, error) {
	name := qualified(ns)
	if dt := c.dst.table(name); dt != nil {
		return dt, nil
	}
	dt, err := loadDst(ctx, c.pool, ns)
	if err != nil {
		return nil, c.classify(err, "read table "+ns.String())
	}
	if dt == nil {
		return nil, fmt.Errorf("table %s does not exist at %s", ns, c.where())
	}
	c.dst.keepTable(name, dt)
	return dt, nil
}

func (c *Conn) forgetDst(ns model.Namespace) {
	c.dst.forget(qualified(ns))
}

// inTx runs fn in a transaction on conn.
func (c *Conn) inTx(ctx context.Context, conn *pgx.Conn, fn func(pgx.Tx) error, where string) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return c.classify(err, where)
	}
	if err := fn(tx); err != nil {
		tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // reporting err
		return c.txError(err, where)
	}
	if err := tx.Commit(ctx); err != nil {
		return c.classify(err, where)
	}
	return nil
}

// txError is the error of a transaction's work, rolled back.
func (c *Conn) txError(err error, where string) error {
	var ce *errs.ConfigError
	if errors.As(err, &ce) || sqlState(err) == "" {
		err = fmt.Errorf("%s: %w", where, c.scrub.Err(err))
		if lostConnection(err) {
			return errs.Unavailable(err)
		}
		return err
	}
	return c.classify(err, where)
}

// EmptyTables truncates the tables in one statement, for a flow started
// over, with their triggers kept from firing as for the rows ferry writes.
func (c *Conn) EmptyTables(ctx context.Context, tables []*model.Table) error {
	if len(tables) == 0 {
		return nil
	}
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = qualified(t.Namespace)
	}
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return c.classify(err, "empty the destination tables")
	}
	defer conn.Release()
	// A table that existed before the flow may have ON TRUNCATE triggers.
	if err := c.writingSession(ctx, conn); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "TRUNCATE TABLE "+strings.Join(names, ", ")); err != nil {
		return c.classify(err, "empty the destination tables")
	}
	return nil
}
