package mysql

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

var _ connector.TableFinisher = (*Conn)(nil)

// FinishTable builds a copied table's secondary indexes, once its rows are
// in (building them with the table would slow every copied row down). A
// unique index is built without UNIQUE: changes are applied in parallel
// across keys, so two rows may hold one value for a moment; the cutover
// makes it unique (BuildConstraints). Indexes MySQL cannot build as the
// source has them are listed by CheckTables and skipped here. An index the
// table has (by name) is left alone, so finishing again is harmless.
func (c *Conn) FinishTable(ctx context.Context, t *model.Table) error {
	if len(t.Indexes) == 0 {
		return nil
	}
	planned, err := c.planTables([]*model.Table{t})
	if err != nil {
		return err
	}
	p := planned[0]
	have, err := c.indexNames(ctx, p.name)
	if err != nil {
		return err
	}
	for _, ix := range t.Indexes {
		parts, why := indexParts(p, ix)
		if why != "" || have[ix.Name] {
			continue
		}
		q := "ALTER TABLE " + quoteName(p.name) + " ADD INDEX " + quoteIdent(ix.Name) + " (" + strings.Join(parts, ", ") + ")"
		if _, err := c.db.ExecContext(ctx, q); err != nil {
			return outage(err, fmt.Errorf("mysql %s: table %s: build index %s (%s): %w; the copy resumes here when run again", c.host, p.name, ix.Name, q, c.scrubber.Err(err)))
		}
	}
	return nil
}

// indexNames are the names of the indexes table name has.
func (c *Conn) indexNames(ctx context.Context, name model.Namespace) (map[string]bool, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, name.Schema, name.Table)
	if err != nil {
		return nil, outage(err, fmt.Errorf("mysql %s: read indexes of %s: %w", c.host, name, c.scrubber.Err(err)))
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out[n] = true
	}
	return out, rows.Err()
}
