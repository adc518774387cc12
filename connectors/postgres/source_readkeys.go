package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

var _ connector.KeyReader = (*Conn)(nil)

// ReadKeys reads the rows whose cols hold one of keys: one query of the
// keys as literals, each cast by the server to its column's type.
func (c *Conn) ReadKeys(ctx context.Context, t *model.Table, cols []string, keys []model.Row, emit func(*model.RowBatch) error) error {
	if len(keys) == 0 {
		return nil
	}
	decs, err := tableDecoders(t)
	if err != nil {
		return err
	}
	tuples, err := keyTuples(t, cols, keys, quoteLiteral)
	if err != nil {
		return err
	}
	sel := make([]string, 0, len(t.Columns)+1)
	for _, col := range t.Columns {
		sel = append(sel, quoteIdent(col.Name))
	}
	idents := make([]string, len(cols))
	for i, col := range cols {
		idents[i] = quoteIdent(col)
	}
	// keyed: the last column is the batch cursor, meaningless here.
	q := "SELECT " + strings.Join(sel, ", ") + ", ''::text FROM " + qualified(t.Namespace) +
		" WHERE (" + strings.Join(idents, ", ") + ") IN (" + strings.Join(tuples, ", ") + ")"
	p := model.Partition{ID: t.Namespace.String() + "/keys", Table: t.Namespace}
	return c.readQuery(ctx, t, p, q, true, decs, emit)
}

// keyTuples spells each key as a row of literals, "(l1, l2)", in its
// columns' text form.
func keyTuples(t *model.Table, cols []string, keys []model.Row, quote func(string) string) ([]string, error) {
	types := make([]model.Type, len(cols))
	for i, col := range cols {
		j := t.ColumnIndex(col)
		if j < 0 {
			return nil, fmt.Errorf("table %s has no column %s", t.Namespace, col)
		}
		types[i] = t.Columns[j].Type
	}
	out := make([]string, len(keys))
	for i, k := range keys {
		if len(k) != len(cols) {
			return nil, fmt.Errorf("table %s: a key of %d values for %d columns", t.Namespace, len(k), len(cols))
		}
		lits := make([]string, len(k))
		for j, v := range k {
			if v == nil {
				return nil, fmt.Errorf("table %s, column %s: a NULL key cannot be looked up", t.Namespace, cols[j])
			}
			s, err := model.FormatText(types[j], v)
			if err != nil {
				return nil, fmt.Errorf("table %s, column %s: %w", t.Namespace, cols[j], err)
			}
			lits[j] = quote(s)
		}
		out[i] = "(" + strings.Join(lits, ", ") + ")"
	}
	return out, nil
}
