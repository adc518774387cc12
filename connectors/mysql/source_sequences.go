package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/connector"
)

var _ connector.SequenceReader = (*Conn)(nil)

// Sequences lists each AUTO_INCREMENT column of the databases' tables as a
// sequence owned by the column (named as autoIncrementSequence names it),
// whose next value is the table's: the larger of its AUTO_INCREMENT
// counter and the column's largest value plus one, since MySQL 8 may show
// a cached counter (information_schema_stats_expiry).
func (c *Conn) Sequences(ctx context.Context, schemas []string) ([]connector.Sequence, error) {
	if len(schemas) == 0 {
		return nil, nil
	}
	where := func(err error) error {
		return outage(err, fmt.Errorf("mysql %s: read AUTO_INCREMENT counters of %s: %w", c.host, strings.Join(schemas, ", "), c.scrubber.Err(err)))
	}
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return nil, where(err)
	}
	defer conn.Close()
	if !c.server.mariadb {
		// The counter as it is, not as cached; a server without the
		// variable (before 8.0) has no cache.
		conn.ExecContext(ctx, "SET SESSION information_schema_stats_expiry = 0") //nolint:errcheck // see above
	}
	ph := strings.TrimSuffix(strings.Repeat("?,", len(schemas)), ",")
	args := make([]any, len(schemas))
	for i, s := range schemas {
		args[i] = s
	}
	rows, err := conn.QueryContext(ctx, `SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, COALESCE(t.AUTO_INCREMENT, 1)
		FROM information_schema.COLUMNS c
		JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
		WHERE c.TABLE_SCHEMA IN (`+ph+`) AND t.TABLE_TYPE = 'BASE TABLE' AND LOWER(c.EXTRA) LIKE '%auto_increment%'
		ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME`, args...)
	if err != nil {
		return nil, where(err)
	}
	var out []connector.Sequence
	for rows.Next() {
		var s connector.Sequence
		var next uint64
		if err := rows.Scan(&s.Owner.Schema, &s.Owner.Table, &s.Column, &next); err != nil {
			rows.Close()
			return nil, where(err)
		}
		if s.Owner.Table == checkpointTable {
			continue
		}
		s.Name = autoIncrementSequence(s.Owner, s.Column)
		s.Value = int64(min(next, 1<<63-1))
		out = append(out, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, where(err)
	}
	for i := range out {
		s := &out[i]
		var max sql.NullInt64
		q := "SELECT MAX(" + quoteIdent(s.Column) + ") FROM " + quoteName(s.Owner)
		if err := conn.QueryRowContext(ctx, q).Scan(&max); err != nil {
			// BIGINT UNSIGNED beyond int64 cannot be a sequence's value
			// anywhere; the counter is all there is.
			if strings.Contains(err.Error(), "converting") {
				continue
			}
			return nil, where(err)
		}
		if max.Valid && max.Int64 >= s.Value {
			s.Value = max.Int64 + 1
		}
	}
	return out, nil
}
