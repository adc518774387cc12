//go:build cgo && duckdb

package duckdb

import (
	"context"
	"fmt"

	"github.com/ferrydb/ferry/model"
)

// Checkpoints live in the _ferry_checkpoints table of the file's main
// schema, written in the same transaction as the rows and changes they
// cover.

// LoadCheckpoints returns the flow's checkpoints by key.
func (c *Conn) LoadCheckpoints(ctx context.Context, flow string) (map[string]string, error) {
	h, err := c.writer(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := h.db.QueryContext(ctx, `SELECT key, value FROM `+checkpointTable+` WHERE flow = ?`, flow)
	if err != nil {
		return nil, fmt.Errorf("duckdb file %s: load checkpoints of flow %s: %w", c.path, flow, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("duckdb file %s: load checkpoints of flow %s: %w", c.path, flow, err)
		}
		out[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("duckdb file %s: load checkpoints of flow %s: %w", c.path, flow, err)
	}
	return out, nil
}

// ReplaceCheckpoints deletes the flow's checkpoints whose key starts with
// prefix and stores values, in one transaction.
func (c *Conn) ReplaceCheckpoints(ctx context.Context, flow, prefix string, values map[string]string) error {
	s, err := c.openSession(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	err = s.inTx(ctx, func() error {
		// starts_with, not LIKE: a prefix may hold % or _.
		if err := s.exec(ctx, `DELETE FROM `+checkpointTable+` WHERE flow = ? AND starts_with(key, ?)`, flow, prefix); err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		for k, v := range values {
			if err := s.saveCheckpoint(ctx, &model.Checkpoint{Flow: flow, Key: k, Value: v}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("duckdb file %s: replace checkpoints %q* of flow %s: %w", c.path, prefix, flow, err)
	}
	return nil
}

// DropCheckpoints forgets the flow.
func (c *Conn) DropCheckpoints(ctx context.Context, flow string) error {
	h, err := c.writer(ctx)
	if err != nil {
		return err
	}
	if _, err := h.db.ExecContext(ctx, `DELETE FROM `+checkpointTable+` WHERE flow = ?`, flow); err != nil {
		return fmt.Errorf("duckdb file %s: drop checkpoints of flow %s: %w", c.path, flow, err)
	}
	return nil
}

// EmptyTables deletes every row of the tables in one transaction, for a
// flow started over.
func (c *Conn) EmptyTables(ctx context.Context, tables []*model.Table) error {
	s, err := c.openSession(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	err = s.inTx(ctx, func() error {
		for _, t := range tables {
			if err := s.exec(ctx, "DELETE FROM "+qualified(t.Namespace)); err != nil {
				return fmt.Errorf("empty table %s: %w", t.Namespace, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("duckdb file %s: %w", c.path, err)
	}
	return nil
}
