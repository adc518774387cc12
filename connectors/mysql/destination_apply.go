package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// deleteChunk is the number of keys one DELETE names.
const deleteChunk = 500

// OpenApplier returns a writer of folded changes.
func (c *Conn) OpenApplier(ctx context.Context) (connector.ChangeWriter, error) {
	return &changeWriter{c: c}, nil
}

type changeWriter struct {
	c *Conn
	// span is the destination transaction kept open across the parts of a
	// source transaction (model.ApplyBatch.Continues).
	span *sql.Tx
}

// Close rolls back a transaction left open by parts whose end never came:
// a reader never sees part of a source transaction.
func (w *changeWriter) Close() error {
	if w.span != nil {
		w.span.Rollback() //nolint:errcheck // the connection may be gone; its transaction then is too
		w.span = nil
	}
	return nil
}

// ApplyChanges applies the batch and stores its checkpoint in one
// transaction: per table, deletes by key (a missing row is fine), then
// upserts; a row with Unchanged values updates only the columns it has.
func (w *changeWriter) ApplyChanges(ctx context.Context, b *model.ApplyBatch) error {
	if b == nil || (b.Len() == 0 && b.Checkpoint == nil && w.span == nil && !b.Continues) {
		return nil
	}
	c := w.c
	type prepared struct {
		tc      *model.TableChanges
		name    model.Namespace
		targets []*target
	}
	var tables []prepared
	for _, tc := range b.Tables {
		if tc == nil || tc.Table == nil {
			return fmt.Errorf("mysql %s: changes without a table", c.host)
		}
		if len(tc.Deletes) == 0 && len(tc.Upserts) == 0 && len(tc.RowChanges) == 0 {
			continue
		}
		if len(tc.Table.PrimaryKey) == 0 {
			return fmt.Errorf("table %s has no primary key: ferry applies changes by key (add a primary key to the source table)", tc.Table.Namespace)
		}
		name, targets, err := c.targetsFor(ctx, tc.Table)
		if err != nil {
			return err
		}
		tables = append(tables, prepared{tc, name, targets})
	}
	what := fmt.Sprintf("mysql %s: apply %d changes", c.host, b.Len())
	apply := func(tx *sql.Tx) error {
		for _, p := range tables {
			if err := c.applyTable(ctx, tx, p.tc, p.name, p.targets); err != nil {
				return fmt.Errorf("table %s: %w", p.name, err)
			}
		}
		for _, cp := range b.Checkpoints() {
			if err := c.saveCheckpoint(ctx, tx, cp); err != nil {
				return err
			}
		}
		return nil
	}
	if w.span == nil && !b.Continues {
		return c.inTx(ctx, what, apply)
	}
	return w.applyPart(ctx, what+" of a source transaction in parts", b.Continues, apply)
}

// applyPart applies a part of a source transaction in the transaction its
// parts keep open, and commits it unless more parts follow. A deadlock or
// lock wait that rolls it back cannot be retried here, the earlier parts
// being gone with it: it is reported as an outage, so the engine replays
// the whole source transaction from the checkpoint before it.
func (w *changeWriter) applyPart(ctx context.Context, what string, continues bool, apply func(*sql.Tx) error) error {
	c := w.c
	if w.span == nil {
		tx, err := c.db.BeginTx(ctx, &sql.TxOptions{Isolation: c.isolation()})
		if err != nil {
			return outage(err, fmt.Errorf("%s: begin: %w", what, c.scrubber.Err(err)))
		}
		w.span = tx
	}
	tx := w.span
	err := apply(tx)
	if err == nil && continues {
		return nil
	}
	w.span = nil
	if err != nil {
		err = rollback(tx, err)
	} else if err = tx.Commit(); err != nil {
		what += ": commit"
	}
	if err == nil {
		return nil
	}
	werr := fmt.Errorf("%s: %w", what, c.scrubber.Err(err))
	if isRetryable(err) {
		return errs.Unavailable(werr)
	}
	return outage(err, werr)
}

func (c *Conn) applyTable(ctx context.Context, tx *sql.Tx, tc *model.TableChanges, name model.Namespace, targets []*target) error {
	t := tc.Table
	keyIdx := t.KeyIndexes()
	for i, ki := range keyIdx {
		if ki < 0 {
			return fmt.Errorf("primary key column %q is not a column", t.PrimaryKey[i])
		}
	}
	exec := func(q []byte) error {
		_, err := tx.ExecContext(ctx, string(q))
		return err
	}
	for start := 0; start < len(tc.Deletes); start += deleteChunk {
		chunk := tc.Deletes[start:min(start+deleteChunk, len(tc.Deletes))]
		q, err := deleteSQL(name, keyIdx, targets, chunk)
		if err != nil {
			return err
		}
		if err := exec(q); err != nil {
			return fmt.Errorf("delete %d keys: %w", len(chunk), err)
		}
	}
	var full, partial []model.Row
	for _, row := range tc.Upserts {
		if len(row) != len(t.Columns) {
			return fmt.Errorf("upsert row has %d values for %d columns", len(row), len(t.Columns))
		}
		if hasUnchanged(row) {
			partial = append(partial, row)
		} else {
			full = append(full, row)
		}
	}
	if err := c.upsertStatements(t, name, targets, full, exec); err != nil {
		return fmt.Errorf("upsert %d rows: %w", len(full), err)
	}
	for _, row := range partial {
		if err := updatePresent(ctx, tx, t, name, keyIdx, targets, row); err != nil {
			return err
		}
	}
	return nil
}

func hasUnchanged(row model.Row) bool {
	for _, v := range row {
		if model.IsUnchanged(v) {
			return true
		}
	}
	return false
}

// deleteSQL renders DELETE ... WHERE key IN (...) for a chunk of keys (in
// key order), as OR-ed equalities for a composite key.
func deleteSQL(name model.Namespace, keyIdx []int, targets []*target, keys []model.Row) ([]byte, error) {
	q := []byte("DELETE FROM " + quoteName(name) + " WHERE ")
	var err error
	if len(keyIdx) == 1 {
		tg := targets[keyIdx[0]]
		q = append(q, quoteIdent(tg.name)+" IN ("...)
		for i, key := range keys {
			if len(key) != 1 {
				return nil, fmt.Errorf("delete key has %d values for a key of 1 column", len(key))
			}
			if i > 0 {
				q = append(q, ',')
			}
			if q, err = appendLiteral(q, tg, key[0]); err != nil {
				return nil, fmt.Errorf("delete key column %s: %w", tg.name, err)
			}
		}
		return append(q, ')'), nil
	}
	for i, key := range keys {
		if len(key) != len(keyIdx) {
			return nil, fmt.Errorf("delete key has %d values for a key of %d columns", len(key), len(keyIdx))
		}
		if i > 0 {
			q = append(q, " OR "...)
		}
		q = append(q, '(')
		for j, ki := range keyIdx {
			tg := targets[ki]
			if j > 0 {
				q = append(q, " AND "...)
			}
			q = append(q, quoteIdent(tg.name)+" = "...)
			if q, err = appendLiteral(q, tg, key[j]); err != nil {
				return nil, fmt.Errorf("delete key column %s: %w", tg.name, err)
			}
		}
		q = append(q, ')')
	}
	return q, nil
}

// updatePresent updates the columns a row has (not Unchanged) by key. The
// row must exist: without its unchanged values ferry could not insert it.
func updatePresent(ctx context.Context, tx *sql.Tx, t *model.Table, name model.Namespace, keyIdx []int, targets []*target, row model.Row) error {
	isKey := map[int]bool{}
	for _, ki := range keyIdx {
		isKey[ki] = true
	}
	var sets, unchanged []string
	var q []byte
	var err error
	for i, tg := range targets {
		if model.IsUnchanged(row[i]) {
			if isKey[i] {
				return fmt.Errorf("upsert row leaves key column %s unchanged", tg.name)
			}
			unchanged = append(unchanged, tg.name)
			continue
		}
		if isKey[i] {
			continue
		}
		lit, err := appendLiteral(nil, tg, row[i])
		if err != nil {
			return columnErr(t, tg.name, row, err)
		}
		sets = append(sets, quoteIdent(tg.name)+" = "+string(lit))
	}
	var where []string
	for _, ki := range keyIdx {
		lit, err := appendLiteral(nil, targets[ki], row[ki])
		if err != nil {
			return columnErr(t, targets[ki].name, row, err)
		}
		where = append(where, quoteIdent(targets[ki].name)+" = "+string(lit))
	}
	if len(sets) > 0 {
		q = []byte("UPDATE " + quoteName(name) + " SET " + strings.Join(sets, ", ") + " WHERE " + strings.Join(where, " AND "))
	} else {
		q = []byte("SELECT count(*) FROM " + quoteName(name) + " WHERE " + strings.Join(where, " AND "))
	}
	var affected int64
	if len(sets) > 0 {
		res, err := tx.ExecContext(ctx, string(q))
		if err != nil {
			return fmt.Errorf("update key %s: %w", formatKey(t, row), err)
		}
		// The connection counts matched rows (CLIENT_FOUND_ROWS), not changed ones.
		if affected, err = res.RowsAffected(); err != nil {
			return fmt.Errorf("update key %s: %w", formatKey(t, row), err)
		}
	} else if err = tx.QueryRowContext(ctx, string(q)).Scan(&affected); err != nil {
		return fmt.Errorf("look up key %s: %w", formatKey(t, row), err)
	}
	if affected == 0 {
		return fmt.Errorf("key %s: the row does not exist at the destination and the change leaves column(s) %s unchanged, so ferry cannot insert it; restart the flow's copy of this table (ferry sync --restart)",
			formatKey(t, row), strings.Join(unchanged, ", "))
	}
	return nil
}
