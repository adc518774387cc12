package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

var _ connector.KeyReader = (*Conn)(nil)

// readKeysChunk bounds the keys looked up by one query (SQLite allows
// 32,766 parameters).
const readKeysChunk = 500

// ReadKeys reads the rows whose cols hold one of keys, a query per
// readKeysChunk keys.
func (c *Conn) ReadKeys(ctx context.Context, t *model.Table, cols []string, keys []model.Row, emit func(*model.RowBatch) error) error {
	db, err := c.reader(ctx)
	if err != nil {
		return err
	}
	types := make([]model.Type, len(cols))
	idents := make([]string, len(cols))
	for i, col := range cols {
		j := t.ColumnIndex(col)
		if j < 0 {
			return fmt.Errorf("table %s has no column %s", t.Namespace, col)
		}
		types[i], idents[i] = t.Columns[j].Type, quoteIdent(col)
	}
	sel := make([]string, len(t.Columns))
	for i, col := range t.Columns {
		sel[i] = "+" + quoteIdent(col.Name) // + hides the declared type: see sampleBounds
	}
	vals := make([]any, len(sel))
	ptrs := make([]any, len(sel))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	for len(keys) > 0 {
		n := min(len(keys), readKeysChunk)
		var args []any
		for _, k := range keys[:n] {
			if len(k) != len(cols) {
				return fmt.Errorf("table %s: a key of %d values for %d columns", t.Namespace, len(k), len(cols))
			}
			for i, v := range k {
				a, err := toSQLite(types[i], v)
				if err != nil {
					return fmt.Errorf("table %s, column %s: %w", t.Namespace, cols[i], err)
				}
				args = append(args, a)
			}
		}
		q := "SELECT " + strings.Join(sel, ", ") + " FROM " + quoteIdent(t.Namespace.Table) + " WHERE (" + strings.Join(idents, ", ") + ") IN (VALUES " +
			strings.TrimSuffix(strings.Repeat(tuple+", ", n), ", ") + ")"
		b := &model.RowBatch{Table: t, Partition: t.Namespace.String() + "/keys"}
		if _, err := readBatch(ctx, db, q, args, t, 0, nil, vals, ptrs, b); err != nil {
			return fmt.Errorf("read keys of %s: %w", t.Namespace, err)
		}
		if len(b.Rows) > 0 {
			if err := emit(b); err != nil {
				return err
			}
		}
		keys = keys[n:]
	}
	return nil
}
