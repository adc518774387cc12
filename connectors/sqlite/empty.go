package sqlite

import (
	"context"
	"fmt"

	"github.com/ferrydb/ferry/model"
)

// EmptyTables deletes every row of the tables in one transaction, for a flow
// started over.
func (c *Conn) EmptyTables(ctx context.Context, tables []*model.Table) error {
	db, err := c.writer(ctx)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite file %s: begin: %w", c.path, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	for _, t := range tables {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+quoteIdent(t.Namespace.Table)); err != nil {
			return fmt.Errorf("sqlite file %s: empty table %s: %w", c.path, t.Namespace.Table, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite file %s: commit: %w", c.path, err)
	}
	return nil
}
