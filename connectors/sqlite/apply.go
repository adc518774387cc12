package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// OpenApplier returns a writer of folded changes. Like row writers, appliers
// share the file's one write connection.
func (c *Conn) OpenApplier(ctx context.Context) (connector.ChangeWriter, error) {
	if _, err := c.writer(ctx); err != nil {
		return nil, err
	}
	return &changeWriter{c: c}, nil
}

type changeWriter struct{ c *Conn }

func (w *changeWriter) Close() error { return nil }

// ApplyChanges applies the batch and stores its checkpoint in one
// transaction: per table, deletes by key (a missing row is fine), then
// upserts; an Unchanged value keeps the row's current value.
func (w *changeWriter) ApplyChanges(ctx context.Context, b *model.ApplyBatch) error {
	if b == nil || (b.Len() == 0 && b.Checkpoint == nil) {
		return nil
	}
	db, err := w.c.writer(ctx)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite file %s: begin applying changes: %w", w.c.path, err)
	}
	for _, tc := range b.Tables {
		if tc == nil || tc.Table == nil {
			return rollback(tx, fmt.Errorf("sqlite file %s: changes without a table", w.c.path))
		}
		if err := applyTable(ctx, tx, tc); err != nil {
			return rollback(tx, fmt.Errorf("table %s: %w", tc.Table.Namespace, err))
		}
	}
	for _, cp := range b.Checkpoints() {
		if err := saveCheckpoint(ctx, tx, cp); err != nil {
			return rollback(tx, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite file %s: commit changes: %w", w.c.path, err)
	}
	return nil
}

func applyTable(ctx context.Context, tx *sql.Tx, tc *model.TableChanges) error {
	t := tc.Table
	if len(tc.Deletes) == 0 && len(tc.Upserts) == 0 && len(tc.RowChanges) == 0 {
		return nil
	}
	if len(t.PrimaryKey) == 0 {
		return fmt.Errorf("no primary key: ferry applies changes by key (add a primary key to the source table)")
	}
	keyIdx := t.KeyIndexes()
	for i, ki := range keyIdx {
		if ki < 0 {
			return fmt.Errorf("primary key column %q is not a column", t.PrimaryKey[i])
		}
	}
	where := make([]string, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		where[i] = quoteIdent(k) + " = ?"
	}
	whereSQL := strings.Join(where, " AND ")

	if len(tc.Deletes) > 0 {
		del, err := tx.PrepareContext(ctx, "DELETE FROM "+quoteIdent(t.Namespace.Table)+" WHERE "+whereSQL)
		if err != nil {
			return fmt.Errorf("prepare delete: %w", err)
		}
		args := make([]any, len(keyIdx))
		for _, key := range tc.Deletes {
			if len(key) != len(keyIdx) {
				return fmt.Errorf("delete key has %d values for a key of %d columns", len(key), len(keyIdx))
			}
			for i, ki := range keyIdx {
				v, err := toSQLite(t.Columns[ki].Type, key[i])
				if err != nil {
					return fmt.Errorf("delete key column %s: %w", t.Columns[ki].Name, err)
				}
				args[i] = v
			}
			if _, err := del.ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("delete key %s: %w", formatKey(t, keyIdx, key), err)
			}
		}
	}

	var full []model.Row
	var partial []model.Row
	for _, row := range tc.Upserts {
		if len(row) != len(t.Columns) {
			return fmt.Errorf("upsert row has %d values for %d columns", len(row), len(t.Columns))
		}
		hasUnchanged := false
		for _, v := range row {
			if model.IsUnchanged(v) {
				hasUnchanged = true
				break
			}
		}
		if hasUnchanged {
			partial = append(partial, row)
		} else {
			full = append(full, row)
		}
	}
	if err := upsertRows(ctx, tx, t, full); err != nil {
		return fmt.Errorf("upsert %d rows: %w", len(full), err)
	}
	if len(partial) == 0 {
		return nil
	}
	keyRow := make(map[int]bool, len(keyIdx))
	for _, ki := range keyIdx {
		keyRow[ki] = true
	}
	stmts := map[string]*sql.Stmt{} // by the set of columns updated
	for _, row := range partial {
		var sets, unchanged []string
		var args []any
		for i, col := range t.Columns {
			if model.IsUnchanged(row[i]) {
				if keyRow[i] {
					return fmt.Errorf("upsert row leaves key column %s unchanged", col.Name)
				}
				unchanged = append(unchanged, col.Name)
				continue
			}
			if keyRow[i] {
				continue
			}
			v, err := toSQLite(col.Type, row[i])
			if err != nil {
				return valueErr(t, col.Name, row, err)
			}
			sets = append(sets, quoteIdent(col.Name)+" = ?")
			args = append(args, v)
		}
		key := make(model.Row, len(keyIdx))
		for i, ki := range keyIdx {
			v, err := toSQLite(t.Columns[ki].Type, row[ki])
			if err != nil {
				return fmt.Errorf("key column %s: %w", t.Columns[ki].Name, err)
			}
			args = append(args, v)
			key[i] = row[ki]
		}
		var affected int64 = 1
		if len(sets) > 0 {
			q := "UPDATE " + quoteIdent(t.Namespace.Table) + " SET " + strings.Join(sets, ", ") + " WHERE " + whereSQL
			stmt, ok := stmts[q]
			if !ok {
				var err error
				if stmt, err = tx.PrepareContext(ctx, q); err != nil {
					return fmt.Errorf("prepare update: %w", err)
				}
				stmts[q] = stmt
			}
			res, err := stmt.ExecContext(ctx, args...)
			if err != nil {
				return fmt.Errorf("update key %s: %w", formatKey(t, keyIdx, key), err)
			}
			if affected, err = res.RowsAffected(); err != nil {
				return fmt.Errorf("update key %s: %w", formatKey(t, keyIdx, key), err)
			}
		} else {
			// Only the key and unchanged columns: the row must exist.
			var one int
			err := tx.QueryRowContext(ctx, "SELECT 1 FROM "+quoteIdent(t.Namespace.Table)+" WHERE "+whereSQL, args...).Scan(&one)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				affected = 0
			case err != nil:
				return fmt.Errorf("look up key %s: %w", formatKey(t, keyIdx, key), err)
			}
		}
		if affected == 0 {
			return fmt.Errorf("key %s: the row does not exist at the destination and the change leaves column(s) %s unchanged, so ferry cannot insert it; restart the flow's copy of this table (ferry sync --restart)",
				formatKey(t, keyIdx, key), strings.Join(unchanged, ", "))
		}
	}
	return nil
}

// formatKey renders key values (in key order) for an error message.
func formatKey(t *model.Table, keyIdx []int, key model.Row) string {
	parts := make([]string, len(keyIdx))
	for i, ki := range keyIdx {
		col := t.Columns[ki]
		var s string
		if i >= len(key) || key[i] == nil {
			s = "NULL"
		} else if _, err := model.AppendCanonical(nil, col.Type, key[i]); err != nil {
			s = fmt.Sprintf("%v", key[i])
		} else if txt, err := model.FormatText(col.Type, key[i]); err != nil {
			s = fmt.Sprintf("%v", key[i])
		} else {
			s = txt
		}
		parts[i] = col.Name + "=" + s
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
