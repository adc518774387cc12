package mysql

import (
	"context"
	"fmt"

	"github.com/ferrydb/ferry/model"
)

// EmptyTables truncates the tables, for a flow started over.
func (c *Conn) EmptyTables(ctx context.Context, tables []*model.Table) error {
	for _, t := range tables {
		name, err := c.destName(t.Namespace)
		if err != nil {
			return err
		}
		if _, err := c.db.ExecContext(ctx, "TRUNCATE TABLE "+quoteName(name)); err != nil {
			return fmt.Errorf("mysql %s: empty table %s: %w", c.host, name, c.scrubber.Err(err))
		}
	}
	return nil
}
