package mysql

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/ferrydb/ferry/model"
)

// Checkpoints live in _ferry_checkpoints in the destination URL's database
// (in database _ferry when the URL names none), written in the same
// transaction as the rows and changes they cover.

func (c *Conn) ensureCheckpointTable(ctx context.Context) error {
	if c.dest.checkpointTableEnsured(c.checkpointDB()) {
		return nil
	}
	if err := c.createDatabase(ctx, c.checkpointDB()); err != nil {
		return err
	}
	ddl := "CREATE TABLE IF NOT EXISTS " + c.checkpointName() + ` (
		flow VARCHAR(128) NOT NULL,
		` + "`key`" + ` VARCHAR(255) NOT NULL,
		value MEDIUMTEXT NOT NULL,
		PRIMARY KEY (flow, ` + "`key`" + `)
	)` + c.tableOptions()
	if _, err := c.db.ExecContext(ctx, ddl); err != nil {
		return fmt.Errorf("mysql %s: create %s: %w", c.host, c.checkpointName(), c.scrubber.Err(err))
	}
	c.dest.markCheckpointTable(c.checkpointDB())
	return nil
}

// checkpointTableExists reports whether the checkpoint table exists, so that
// reading or dropping checkpoints creates nothing.
func (c *Conn) checkpointTableExists(ctx context.Context) (bool, error) {
	var n int
	err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, c.checkpointDB(), checkpointTable).Scan(&n)
	if err != nil {
		return false, outage(err, fmt.Errorf("mysql %s: look for %s: %w", c.host, c.checkpointName(), c.scrubber.Err(err)))
	}
	return n > 0, nil
}

// LoadCheckpoints returns the flow's checkpoints by key.
func (c *Conn) LoadCheckpoints(ctx context.Context, flow string) (map[string]string, error) {
	out := map[string]string{}
	if ok, err := c.checkpointTableExists(ctx); err != nil || !ok {
		return out, err
	}
	rows, err := c.db.QueryContext(ctx, "SELECT `key`, value FROM "+c.checkpointName()+" WHERE flow = ?", flow)
	if err != nil {
		return nil, outage(err, fmt.Errorf("mysql %s: load checkpoints of flow %s: %w", c.host, flow, c.scrubber.Err(err)))
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("mysql %s: load checkpoints of flow %s: %w", c.host, flow, c.scrubber.Err(err))
		}
		out[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, outage(err, fmt.Errorf("mysql %s: load checkpoints of flow %s: %w", c.host, flow, c.scrubber.Err(err)))
	}
	return out, nil
}

// ReplaceCheckpoints deletes the flow's checkpoints whose key starts with
// prefix and stores values, in one transaction.
func (c *Conn) ReplaceCheckpoints(ctx context.Context, flow, prefix string, values map[string]string) error {
	if err := c.ensureCheckpointTable(ctx); err != nil {
		return err
	}
	return c.inTx(ctx, fmt.Sprintf("mysql %s: replace checkpoints %q* of flow %s", c.host, prefix, flow), func(tx *sql.Tx) error {
		// LEFT, not LIKE: a prefix may hold % or _.
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+c.checkpointName()+" WHERE flow = ? AND LEFT(`key`, CHAR_LENGTH(?)) = ?", flow, prefix, prefix); err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		for k, v := range values {
			if _, err := tx.ExecContext(ctx, "INSERT INTO "+c.checkpointName()+" (flow, `key`, value) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value)", flow, k, v); err != nil {
				return fmt.Errorf("store %s: %w", k, err)
			}
		}
		return nil
	})
}

// DropCheckpoints forgets the flow.
func (c *Conn) DropCheckpoints(ctx context.Context, flow string) error {
	if ok, err := c.checkpointTableExists(ctx); err != nil || !ok {
		return err
	}
	if _, err := c.db.ExecContext(ctx, "DELETE FROM "+c.checkpointName()+" WHERE flow = ?", flow); err != nil {
		return fmt.Errorf("mysql %s: drop checkpoints of flow %s: %w", c.host, flow, c.scrubber.Err(err))
	}
	return nil
}

// saveCheckpoint stores cp inside tx.
func (c *Conn) saveCheckpoint(ctx context.Context, tx *sql.Tx, cp *model.Checkpoint) error {
	if cp == nil {
		return nil
	}
	q := "INSERT INTO " + c.checkpointName() + " (flow, `key`, value) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value)"
	if _, err := tx.ExecContext(ctx, q, cp.Flow, cp.Key, cp.Value); err != nil {
		return fmt.Errorf("save checkpoint %s of flow %s: %w", cp.Key, cp.Flow, err)
	}
	return nil
}
