package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/model"
)

// Checkpoints live in _ferry.checkpoints at the destination, written in the
// same transaction as the rows and changes they cover.

// LoadCheckpoints returns the flow's checkpoints by key.
func (c *Conn) LoadCheckpoints(ctx context.Context, flow string) (map[string]string, error) {
	if err := c.ensureMeta(ctx); err != nil {
		return nil, err
	}
	rows, err := c.pool.Query(ctx, `SELECT key, value FROM _ferry.checkpoints WHERE flow = $1`, flow)
	if err != nil {
		return nil, c.classify(err, "load checkpoints of flow "+flow)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, c.classify(err, "load checkpoints of flow "+flow)
		}
		out[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, c.classify(err, "load checkpoints of flow "+flow)
	}
	return out, nil
}

// ReplaceCheckpoints deletes the flow's checkpoints whose key starts with
// prefix and stores values, in one transaction.
func (c *Conn) ReplaceCheckpoints(ctx context.Context, flow, prefix string, values map[string]string) error {
	if err := c.ensureMeta(ctx); err != nil {
		return err
	}
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return c.classify(err, "replace checkpoints")
	}
	defer conn.Release()
	return c.inTx(ctx, conn.Conn(), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM _ferry.checkpoints WHERE flow = $1 AND left(key, length($2)) = $2`, flow, prefix); err != nil {
			return err
		}
		for k, v := range values {
			if _, err := tx.Exec(ctx, `INSERT INTO _ferry.checkpoints (flow, key, value) VALUES ($1, $2, $3)
				ON CONFLICT (flow, key) DO UPDATE SET value = EXCLUDED.value`, flow, k, v); err != nil {
				return err
			}
		}
		return nil
	}, fmt.Sprintf("replace checkpoints %q* of flow %s", prefix, flow))
}

// DropCheckpoints forgets the flow.
func (c *Conn) DropCheckpoints(ctx context.Context, flow string) error {
	if err := c.ensureMeta(ctx); err != nil {
		return err
	}
	if _, err := c.pool.Exec(ctx, `DELETE FROM _ferry.checkpoints WHERE flow = $1`, flow); err != nil {
		return c.classify(err, "drop checkpoints of flow "+flow)
	}
	return nil
}

// checkpointSQL saves one checkpoint: $1 flow, $2 key, $3 value.
const checkpointSQL = `INSERT INTO _ferry.checkpoints (flow, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (flow, key) DO UPDATE SET value = EXCLUDED.value`

func saveCheckpoint(ctx context.Context, tx pgx.Tx, cp *model.Checkpoint) error {
	if cp == nil {
		return nil
	}
	_, err := tx.Exec(ctx, checkpointSQL, cp.Flow, cp.Key, cp.Value)
	if err != nil {
		return fmt.Errorf("save checkpoint %s of flow %s: %w", cp.Key, cp.Flow, err)
	}
	return nil
}
