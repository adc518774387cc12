package mysql

import (
	"errors"
	"fmt"

	"github.com/ferrydb/ferry/model"
)

// columnErr names the column of a value that cannot be read or written and,
// when row is given, the row's key; for a value no MySQL column can hold or
// a zero date, it says how to go on.
func columnErr(t *model.Table, col string, row model.Row, err error) error {
	msg := "column " + col
	if row != nil && len(t.PrimaryKey) > 0 {
		msg += ", key " + formatKey(t, row)
	}
	if errors.As(err, new(cannotHold)) || errors.Is(err, model.ErrMultiDimJSONArray) {
		return fmt.Errorf("%s: %w; exclude the table with --tables '!%s' or copy it to another destination", msg, err, t.Namespace)
	}
	if errors.Is(err, errZeroDate) {
		return fmt.Errorf("%s: %w, which no date or timestamp can represent; add zero_dates=null to the source URL to read zero dates as NULL, or fix the rows", msg, err)
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// cannotHold marks a value no MySQL column of its type can hold.
type cannotHold struct{ error }

func (e cannotHold) Unwrap() error { return e.error }

// formatKey renders a row's key for an error message: (id=5, code=ab); ()
// for a table without a key.
func formatKey(t *model.Table, row model.Row) string {
	if k := model.KeyText(t, row); k != "" {
		return k
	}
	return "()"
}
