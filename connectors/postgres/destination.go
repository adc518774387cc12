package postgres

import (
	"context"
	"strings"

	"github.com/ferrydb/ferry/model"
)

// EmptyTables truncates the tables in one statement, for a flow started over.
func (c *Conn) EmptyTables(ctx context.Context, tables []*model.Table) error {
	if len(tables) == 0 {
		return nil
	}
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = qualified(t.Namespace)
	}
	if _, err := c.pool.Exec(ctx, "TRUNCATE TABLE "+strings.Join(names, ", ")); err != nil {
		return c.classify(err, "empty the destination tables")
	}
	return nil
}
