package postgres

import (
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/model"
)

// keyText renders a row's key for an error message, (id=5, code=ab), so a
// refused value can be found at the source.
func keyText(t *model.Table, row model.Row) string {
	parts := make([]string, 0, len(t.PrimaryKey))
	for _, name := range t.PrimaryKey {
		i := t.ColumnIndex(name)
		if i < 0 || i >= len(row) {
			continue
		}
		v := row[i]
		s := "NULL"
		if v != nil {
			var err error
			if s, err = model.FormatText(t.Columns[i].Type, v); err != nil {
				s = fmt.Sprint(v)
			}
		}
		parts = append(parts, name+"="+s)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
