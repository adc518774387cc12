package mysql

import (
	"context"
	"fmt"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

var _ connector.UniqueReporter = (*Conn)(nil)

// UniqueTables names the tables that hold a unique index besides their
// primary key: tables that existed before the flow (ferry's own get theirs
// at cutover). Their changes are then applied in the source's order, so a
// value moving between rows never collides for a moment
// (docs/decisions/2026-12-05-existing-tables.md).
func (c *Conn) UniqueTables(ctx context.Context, tables []*model.Table) ([]model.Namespace, error) {
	var out []model.Namespace
	for _, t := range tables {
		name, err := c.destName(t.Namespace)
		if err != nil {
			return nil, err
		}
		var n int
		err = c.db.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.STATISTICS
			WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 AND INDEX_NAME <> 'PRIMARY'`, name.Schema, name.Table).Scan(&n)
		if err != nil {
			return nil, outage(err, fmt.Errorf("mysql %s: read the unique indexes of %s: %w", c.host, name, c.scrubber.Err(err)))
		}
		if n > 0 {
			out = append(out, t.Namespace)
		}
	}
	return out, nil
}
