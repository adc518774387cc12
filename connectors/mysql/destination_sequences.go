package mysql

import (
	"context"
	"fmt"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

var _ connector.SequenceWriter = (*Conn)(nil)

// SetSequences sets the AUTO_INCREMENT counter of each owned sequence's
// table, when its column is the table's AUTO_INCREMENT one, to the source's
// next value, so the application's next insert here gets the number the
// source would have given. MySQL has no other sequences (MariaDB's
// CREATE SEQUENCE aside): standalone ones, and columns that are not
// AUTO_INCREMENT here, are returned as missing. InnoDB never sets a
// counter below the column's largest value plus one, and running it again
// sets the same value.
func (c *Conn) SetSequences(ctx context.Context, seqs []connector.Sequence) ([]connector.Sequence, error) {
	var missing []connector.Sequence
	for _, s := range seqs {
		if !s.Owned() {
			missing = append(missing, s)
			continue
		}
		name, err := c.destName(s.Owner)
		if err != nil {
			return nil, err
		}
		auto, err := c.isAutoIncrement(ctx, name, s.Column)
		if err != nil {
			return nil, err
		}
		if !auto {
			missing = append(missing, s)
			continue
		}
		next := s.Value
		if s.Called {
			next++
		}
		if next < 1 {
			next = 1
		}
		q := fmt.Sprintf("ALTER TABLE %s AUTO_INCREMENT = %d", quoteName(name), next)
		if _, err := c.db.ExecContext(ctx, q); err != nil {
			return nil, outage(err, fmt.Errorf("mysql %s: set the AUTO_INCREMENT of %s to %d: %w", c.host, name, next, c.scrubber.Err(err)))
		}
	}
	return missing, nil
}

// isAutoIncrement tells whether column col of table name is AUTO_INCREMENT.
func (c *Conn) isAutoIncrement(ctx context.Context, name model.Namespace, col string) (bool, error) {
	var n int
	err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ? AND LOWER(EXTRA) LIKE '%auto_increment%'`, name.Schema, name.Table, col).Scan(&n)
	if err != nil {
		return false, outage(err, fmt.Errorf("mysql %s: read the columns of %s: %w", c.host, name, c.scrubber.Err(err)))
	}
	return n > 0, nil
}
