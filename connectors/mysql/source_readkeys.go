package mysql

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

var _ connector.KeyReader = (*Conn)(nil)

// readKeysChunk bounds the keys looked up by one query.
const readKeysChunk = 500

// ReadKeys reads the rows whose cols hold one of keys, a query per
// readKeysChunk keys, the values bound as parameters.
func (c *Conn) ReadKeys(ctx context.Context, t *model.Table, cols []string, keys []model.Row, emit func(*model.RowBatch) error) error {
	codecs, err := c.codecs(t)
	if err != nil {
		return err
	}
	idents := make([]string, len(cols))
	for i, col := range cols {
		if t.ColumnIndex(col) < 0 {
			return fmt.Errorf("table %s has no column %s", t.Namespace, col)
		}
		idents[i] = quoteIdent(col)
	}
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	for len(keys) > 0 {
		n := min(len(keys), readKeysChunk)
		var args []any
		for _, k := range keys[:n] {
			if len(k) != len(cols) {
				return fmt.Errorf("table %s: a key of %d values for %d columns", t.Namespace, len(k), len(cols))
			}
			args = append(args, k...)
		}
		q := "SELECT " + selectList(t) + " FROM " + quoteName(t.Namespace) + " WHERE (" + strings.Join(idents, ", ") + ") IN (" +
			strings.TrimSuffix(strings.Repeat(tuple+", ", n), ", ") + ")"
		b := &model.RowBatch{Table: t, Partition: t.Namespace.String() + "/keys"}
		if err := c.queryRows(ctx, q, args, t, codecs, b); err != nil {
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
