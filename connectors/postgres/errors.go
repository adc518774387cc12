package postgres

import "github.com/ferrydb/ferry/model"

// keyText renders a row's key for an error message, (id=5, code=ab), so a
// refused value can be found at the source; () for a table without a key.
func keyText(t *model.Table, row model.Row) string {
	if k := model.KeyText(t, row); k != "" {
		return k
	}
	return "()"
}
