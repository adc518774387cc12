//go:build cgo && duckdb

package duckdb

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// OpenApplier returns a writer of folded changes on a connection of its
// own.
func (c *Conn) OpenApplier(ctx context.Context) (connector.ChangeWriter, error) {
	s, err := c.openSession(ctx)
	if err != nil {
		return nil, err
	}
	return &changeWriter{s: s}, nil
}

type changeWriter struct{ s *session }

func (w *changeWriter) Close() error { return w.s.Close() }

// ApplyChanges applies the batch and stores its checkpoint in one
// transaction, set-based per table: the deleted keys are staged and
// deleted in one statement (a missing row is fine), the full rows are
// staged and written by key in two, and rows with Unchanged values update
// the columns they carry, one statement per set of columns.
func (w *changeWriter) ApplyChanges(ctx context.Context, b *model.ApplyBatch) error {
	if b == nil || (b.Len() == 0 && b.Checkpoint == nil) {
		return nil
	}
	w.s.h.byKey.Lock()
	defer w.s.h.byKey.Unlock()
	err := w.s.inTx(ctx, func() error {
		for _, tc := range b.Tables {
			if tc == nil || tc.Table == nil {
				return fmt.Errorf("changes without a table")
			}
			if err := w.s.applyTable(ctx, tc); err != nil {
				return fmt.Errorf("table %s: %w", tc.Table.Namespace, err)
			}
		}
		for _, cp := range b.Checkpoints() {
			if err := w.s.saveCheckpoint(ctx, cp); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("duckdb file %s: apply changes: %w", w.s.path, err)
	}
	return nil
}

func (s *session) applyTable(ctx context.Context, tc *model.TableChanges) error {
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
	if len(tc.Deletes) > 0 {
		keyTable := &model.Table{Namespace: t.Namespace, PrimaryKey: t.PrimaryKey}
		for _, ki := range keyIdx {
			keyTable.Columns = append(keyTable.Columns, t.Columns[ki])
		}
		stage := "_ferry_stage_keys"
		if err := s.exec(ctx, "CREATE OR REPLACE TEMP TABLE "+stage+" AS SELECT "+keyList(t, "")+" FROM "+qualified(t.Namespace)+" LIMIT 0"); err != nil {
			return fmt.Errorf("stage deleted keys: %w", err)
		}
		for _, key := range tc.Deletes {
			if len(key) != len(keyIdx) {
				return fmt.Errorf("delete key has %d values for a key of %d columns", len(key), len(keyIdx))
			}
		}
		if err := s.appendRows(ctx, keyTable, "temp", "main", stage, tc.Deletes); err != nil {
			return fmt.Errorf("stage deleted keys: %w", err)
		}
		if err := s.exec(ctx, "DELETE FROM "+qualified(t.Namespace)+" AS d USING temp.main."+stage+" AS s WHERE "+keyMatch(t, "d", "s")); err != nil {
			return fmt.Errorf("delete %d keys: %w", len(tc.Deletes), err)
		}
	}

	var full []model.Row
	partial := map[string][]model.Row{} // by the columns they leave unchanged
	for _, row := range tc.Upserts {
		if len(row) != len(t.Columns) {
			return fmt.Errorf("upsert row has %d values for %d columns", len(row), len(t.Columns))
		}
		var unchanged []string
		for i, v := range row {
			if model.IsUnchanged(v) {
				unchanged = append(unchanged, t.Columns[i].Name)
			}
		}
		if len(unchanged) == 0 {
			full = append(full, row)
		} else {
			k := strings.Join(unchanged, "\x00")
			partial[k] = append(partial[k], row)
		}
	}
	if err := s.upsert(ctx, t, full); err != nil {
		return fmt.Errorf("upsert %d rows: %w", len(full), err)
	}
	for k, rows := range partial {
		if err := s.updatePartial(ctx, t, strings.Split(k, "\x00"), rows); err != nil {
			return err
		}
	}
	return nil
}

// updatePartial updates rows that leave the columns unchanged as they are:
// the rows are staged with those columns NULL, and one UPDATE sets the
// others. Every row must exist: without the unchanged values ferry cannot
// insert it.
func (s *session) updatePartial(ctx context.Context, t *model.Table, unchanged []string, rows []model.Row) error {
	skip := map[string]bool{}
	for _, name := range unchanged {
		skip[name] = true
	}
	for _, k := range t.PrimaryKey {
		if skip[k] {
			return fmt.Errorf("upsert row leaves key column %s unchanged", k)
		}
	}
	filled := make([]model.Row, len(rows))
	for i, row := range rows {
		r := make(model.Row, len(row))
		for j, v := range row {
			if !model.IsUnchanged(v) {
				r[j] = v
			}
		}
		filled[i] = r
	}
	stage, err := s.stageTable(ctx, t)
	if err != nil {
		return err
	}
	if err := s.appendRows(ctx, t, "temp", "main", stage, filled); err != nil {
		return err
	}
	var missing int64
	if err := s.conn.QueryRowContext(ctx, "SELECT count(*) FROM temp.main."+quoteIdent(stage)+" AS s WHERE NOT EXISTS (SELECT 1 FROM "+qualified(t.Namespace)+" AS d WHERE "+keyMatch(t, "d", "s")+")").Scan(&missing); err != nil {
		return fmt.Errorf("look up updated keys: %w", err)
	}
	if missing > 0 {
		return fmt.Errorf("%d row(s) do not exist at the destination and their change leaves column(s) %s unchanged, so ferry cannot insert them; restart the flow's copy of this table (ferry sync --restart)",
			missing, strings.Join(unchanged, ", "))
	}
	inKey := map[string]bool{}
	for _, k := range t.PrimaryKey {
		inKey[k] = true
	}
	var sets []string
	for _, col := range t.Columns {
		if !skip[col.Name] && !inKey[col.Name] {
			sets = append(sets, quoteIdent(col.Name)+" = s."+quoteIdent(col.Name))
		}
	}
	if len(sets) == 0 {
		return nil
	}
	if err := s.exec(ctx, "UPDATE "+qualified(t.Namespace)+" AS d SET "+strings.Join(sets, ", ")+" FROM temp.main."+quoteIdent(stage)+" AS s WHERE "+keyMatch(t, "d", "s")); err != nil {
		return fmt.Errorf("update %d rows: %w", len(rows), err)
	}
	return nil
}
