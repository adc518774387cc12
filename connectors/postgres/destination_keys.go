package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// Deferred primary keys: a table ferry creates for a copy has no primary key
// while the copy fills it, as pg_dump and pgcopydb load theirs, so the server
// does not maintain the key's index row by row. FinishTable builds it. The
// table is recorded in _ferry.deferred_keys in the transaction that creates
// it, and the record is deleted in the transaction that adds the key: any
// later run or worker sees which tables still wait for theirs, whatever
// process created them and however the last one ended.
//
// A partition read outside the plan's snapshot (a resumed run, a reader
// reconnecting after a source outage, scale-out workers) can read a row a
// second time when a concurrent update moved it ahead of the cursor, and a
// batch whose commit was not confirmed is written again. With the key such
// rows would be upserted; without it the table keeps every copy until
// FinishTable, which keeps one per key. Every copy was read at or after T0
// and change data capture replays every change from T0 once FinishTable is
// done, so the row converges to the source's whichever copy is kept.

var _ connector.KeyDeferrer = (*Conn)(nil)

// CreateTablesForCopy is CreateTables for tables the copy fills next: the
// tables it creates have no primary key until FinishTable.
func (c *Conn) CreateTablesForCopy(ctx context.Context, tables []*model.Table) error {
	return c.createTables(ctx, tables, true)
}

// deferredKey returns the key columns a table was created without, or nil
// when it is not waiting for its key. The record is the table's by OID, so
// a table dropped and created again by someone else is not mistaken for it.
func deferredKey(ctx context.Context, q querier, ns model.Namespace) ([]string, error) {
	var cols []string
	err := q.QueryRow(ctx, `SELECT key_columns FROM _ferry.deferred_keys WHERE relid = to_regclass($1)`, qualified(ns)).Scan(&cols)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return cols, err
}

// deferKey records, in the transaction that created it, that table t has
// no primary key yet.
func deferKey(ctx context.Context, tx pgx.Tx, t *model.Table) error {
	name := qualified(t.Namespace)
	_, err := tx.Exec(ctx, `DELETE FROM _ferry.deferred_keys WHERE table_name = $1`, name)
	if err == nil {
		_, err = tx.Exec(ctx, `INSERT INTO _ferry.deferred_keys (relid, table_name, key_columns) VALUES (to_regclass($1)::oid, $1, $2)`, name, t.PrimaryKey)
	}
	return err
}

// keyConstraint is the CONSTRAINT clause naming t's primary key as the
// source names it, or "" (the server's default name) when the source gave
// no name or the name is taken by another relation of the schema.
func keyConstraint(ctx context.Context, q querier, t *model.Table) (string, error) {
	if t.PrimaryKeyName == "" {
		return "", nil
	}
	var free bool
	if err := q.QueryRow(ctx, `SELECT to_regclass(quote_ident($1) || '.' || quote_ident($2)) IS NULL`, schemaOf(t.Namespace), t.PrimaryKeyName).Scan(&free); err != nil {
		return "", err
	}
	if !free {
		return "", nil
	}
	return "CONSTRAINT " + quoteIdent(t.PrimaryKeyName) + " ", nil
}

func keyList(t *model.Table) string {
	keys := make([]string, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		keys[i] = quoteIdent(k)
	}
	return strings.Join(keys, ", ")
}

// finishKey adds the primary key table t was created without, if it is
// still waiting for it. Rows with the same key (read twice by the copy) are
// first reduced to one. It runs in one transaction holding the table's
// ACCESS EXCLUSIVE lock from the check to the commit, so two finishers (a
// retried scale-out activity, a killed run's backend still running) do the
// work once, and a kill at any point leaves either the record and no key or
// the key and no record.
func (c *Conn) finishKey(ctx context.Context, t *model.Table) error {
	if len(t.PrimaryKey) == 0 {
		return nil
	}
	where := "add the primary key of " + t.Namespace.String()
	// Without the lock first: most tables (existing ones, a second finish)
	// have nothing to do, and the lock would wait for their readers.
	cols, err := deferredKey(ctx, c.pool, t.Namespace)
	if err != nil || cols == nil {
		return c.classify(err, where)
	}
	name := qualified(t.Namespace)
	tx, err := c.pool.Begin(ctx)
	if err != nil {
		return c.classify(err, where)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, "LOCK TABLE "+name+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		return c.classify(err, where)
	}
	if cols, err = deferredKey(ctx, tx, t.Namespace); err != nil || cols == nil {
		return c.classify(err, where) // another finisher added it
	}
	if strings.Join(cols, "\x00") != strings.Join(t.PrimaryKey, "\x00") {
		return fmt.Errorf("table %s at %s was created for a copy by key (%s), but ferry writes it by key (%s); drop the table and run again",
			t.Namespace, c.where(), strings.Join(cols, ", "), strings.Join(t.PrimaryKey, ", "))
	}
	dt, err := loadDst(ctx, tx, t.Namespace)
	if err != nil {
		return c.classify(err, where)
	}
	var removed int64
	if dt == nil || len(dt.pk) == 0 {
		if removed, err = addKey(ctx, tx, t); err != nil {
			return c.classify(err, where)
		}
		if err := namePartitionKeys(ctx, tx, t); err != nil {
			return c.classify(err, where)
		}
	} else if strings.Join(dt.pk, "\x00") != strings.Join(t.PrimaryKey, "\x00") {
		return fmt.Errorf("table %s: has primary key (%s) at %s, but ferry writes by key (%s)", t.Namespace, strings.Join(dt.pk, ", "), c.where(), strings.Join(t.PrimaryKey, ", "))
	}
	if _, err := tx.Exec(ctx, `DELETE FROM _ferry.deferred_keys WHERE relid = to_regclass($1)`, name); err != nil {
		return c.classify(err, where)
	}
	if err := tx.Commit(ctx); err != nil {
		return c.classify(err, where)
	}
	if removed > 0 {
		slog.Warn("postgres: rows copied more than once were removed before adding the primary key",
			"table", t.Namespace.String(), "rows_removed", removed,
			"why", "a partition read again outside the copy's snapshot (a resumed run, a reconnect, a scale-out retry) met rows a concurrent update had moved ahead of its cursor, or a batch was written again after a lost commit confirmation (or the source holds a key twice); one row per key is kept, and change data capture from T0 brings it to the source's state")
	}
	return nil
}

// addKey adds t's primary key in tx; when rows share a key (23505) it
// deletes all but one per key and adds the key again, returning how many
// rows it deleted.
func addKey(ctx context.Context, tx pgx.Tx, t *model.Table) (int64, error) {
	constraint, err := keyConstraint(ctx, tx, t)
	if err != nil {
		return 0, err
	}
	add := "ALTER TABLE " + qualified(t.Namespace) + " ADD " + constraint + "PRIMARY KEY (" + keyList(t) + ")"
	if _, err := tx.Exec(ctx, "SAVEPOINT ferry_key"); err != nil {
		return 0, err
	}
	_, err = tx.Exec(ctx, add)
	if sqlState(err) != "23505" {
		return 0, err
	}
	if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT ferry_key"); err != nil {
		return 0, err
	}
	tag, err := tx.Exec(ctx, dedupSQL(t))
	if err != nil {
		return 0, fmt.Errorf("remove rows copied twice: %w", err)
	}
	if _, err := tx.Exec(ctx, add); err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// dedupSQL deletes every row of t that has a twin by key at a later ctid,
// leaving one row per key.
func dedupSQL(t *model.Table) string {
	conds := make([]string, 0, len(t.PrimaryKey)+1)
	for _, k := range t.PrimaryKey {
		conds = append(conds, "a."+quoteIdent(k)+" = b."+quoteIdent(k))
	}
	conds = append(conds, "a.ctid < b.ctid")
	name := qualified(t.Namespace)
	return "DELETE FROM " + name + " a USING " + name + " b WHERE " + strings.Join(conds, " AND ")
}

// noKeyError says why changes cannot be applied to t, whose table here has
// no primary key: upserts find their row by it (ON CONFLICT).
func (c *Conn) noKeyError(ctx context.Context, t *model.Table) error {
	deferred, err := deferredKey(ctx, c.pool, t.Namespace)
	if err != nil {
		return c.classify(err, "read table "+t.Namespace.String())
	}
	if deferred != nil {
		return fmt.Errorf("no primary key at %s yet: the table was created by a ferry copy that has not finished, and its key (%s) is built when the copy ends; run the flow's copy to its end before applying changes",
			c.where(), strings.Join(deferred, ", "))
	}
	return errs.BadConfig(fmt.Sprintf("no primary key at %s, and ferry applies changes by key", c.where()), "give the table its primary key ("+strings.Join(t.PrimaryKey, ", ")+"), or drop it and run again")
}
