package sqlite

import (
	"context"
	"fmt"
)

// Checkpoints live in the _ferry_checkpoints table of the destination file,
// written in the same transaction as the rows and changes they cover.

// LoadCheckpoints returns the flow's checkpoints by key.
func (c *Conn) LoadCheckpoints(ctx context.Context, flow string) (map[string]string, error) {
	db, err := c.writer(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `SELECT key, value FROM `+checkpointTable+` WHERE flow = ?`, flow)
	if err != nil {
		return nil, fmt.Errorf("sqlite file %s: load checkpoints of flow %s: %w", c.path, flow, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("sqlite file %s: load checkpoints of flow %s: %w", c.path, flow, err)
		}
		out[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite file %s: load checkpoints of flow %s: %w", c.path, flow, err)
	}
	return out, nil
}

// ReplaceCheckpoints deletes the flow's checkpoints whose key starts with
// prefix and stores values, in one transaction.
func (c *Conn) ReplaceCheckpoints(ctx context.Context, flow, prefix string, values map[string]string) error {
	db, err := c.writer(ctx)
	if err != nil {
		return err
	}
	where := fmt.Sprintf("sqlite file %s: replace checkpoints %q* of flow %s", c.path, prefix, flow)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", where, err)
	}
	// substr, not LIKE: a prefix may hold % or _.
	if _, err := tx.ExecContext(ctx, `DELETE FROM `+checkpointTable+` WHERE flow = ? AND substr(key, 1, length(?)) = ?`, flow, prefix, prefix); err != nil {
		return rollback(tx, fmt.Errorf("%s: delete: %w", where, err))
	}
	if len(values) > 0 {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO `+checkpointTable+` (flow, key, value) VALUES (?, ?, ?)
			ON CONFLICT (flow, key) DO UPDATE SET value = excluded.value`)
		if err != nil {
			return rollback(tx, fmt.Errorf("%s: prepare: %w", where, err))
		}
		for k, v := range values {
			if _, err := stmt.ExecContext(ctx, flow, k, v); err != nil {
				return rollback(tx, fmt.Errorf("%s: store %s: %w", where, k, err))
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", where, err)
	}
	return nil
}

// DropCheckpoints forgets the flow.
func (c *Conn) DropCheckpoints(ctx context.Context, flow string) error {
	db, err := c.writer(ctx)
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM `+checkpointTable+` WHERE flow = ?`, flow); err != nil {
		return fmt.Errorf("sqlite file %s: drop checkpoints of flow %s: %w", c.path, flow, err)
	}
	return nil
}
