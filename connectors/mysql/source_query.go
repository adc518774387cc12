package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

var _ connector.QueryReader = (*Conn)(nil)

// describeTable is the session's temporary table that DescribeQuery
// creates empty from the query, to read its columns' types as discovery
// reads a table's.
const describeTable = "_ferry_query_describe"

// querySQL wraps the user's query as a subquery, which is the only way its
// text enters ferry's SQL.
func querySQL(q connector.Query) string {
	s := strings.TrimRight(strings.TrimSpace(q.SQL), "; \t\r\n")
	return "SELECT * FROM (" + s + "\n) AS ferry_query"
}

// DescribeQuery creates an empty temporary table from the query (no row is
// read: LIMIT 0) and maps its columns as discovery maps a table's: the
// server spells each column's type (enum labels, unsigned, fractional
// seconds) exactly as for a table.
func (c *Conn) DescribeQuery(ctx context.Context, q connector.Query) (*model.Table, error) {
	if c.database == "" {
		return nil, errs.BadConfig(fmt.Sprintf("query %s: the source URL names no database", q.Name), "give one: mysql://user@host:3306/DATABASE")
	}
	conn, err := c.queryConn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "DROP TEMPORARY TABLE IF EXISTS "+quoteIdent(describeTable)); err != nil {
		return nil, c.scrubber.Err(err)
	}
	if _, err := conn.ExecContext(ctx, "CREATE TEMPORARY TABLE "+quoteIdent(describeTable)+" AS "+querySQL(q)+" LIMIT 0"); err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) {
			return nil, &errs.ConfigError{Msg: fmt.Sprintf("query %s does not run at the source: %s", q.Name, me.Message),
				Fix: "check the query with mysql against the source; ferry runs it as SELECT * FROM (query) AS ferry_query"}
		}
		return nil, c.scrubber.Err(err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "DROP TEMPORARY TABLE IF EXISTS "+quoteIdent(describeTable)) //nolint:errcheck // the session's own table; it ends with the session anyway
	rows, err := conn.QueryContext(ctx, "SHOW COLUMNS FROM "+quoteIdent(describeTable))
	if err != nil {
		return nil, c.scrubber.Err(err)
	}
	defer rows.Close()
	t := &model.Table{Namespace: q.Name}
	for rows.Next() {
		var field, typ, null, key string
		var def, extra sql.NullString
		if err := rows.Scan(&field, &typ, &null, &key, &def, &extra); err != nil {
			return nil, c.scrubber.Err(err)
		}
		ct, err := parseColType(typ)
		var mt model.Type
		if err == nil {
			mt, err = ct.canonical()
		}
		if err != nil {
			return nil, &errs.ConfigError{Msg: fmt.Sprintf("query %s, column %s: %v", q.Name, field, err), Fix: "cast the column to a type ferry copies in the query"}
		}
		t.Columns = append(t.Columns, model.Column{Name: field, Type: mt, Nullable: true})
	}
	if err := rows.Err(); err != nil {
		return nil, c.scrubber.Err(err)
	}
	return t, nil
}

// queryConn is a connection in the URL's database, where the user's query
// names its tables. ferry's own statements qualify every name, so the
// connection may go back to the pool so.
func (c *Conn) queryConn(ctx context.Context) (*sql.Conn, error) {
	if c.database == "" {
		return nil, errs.BadConfig("query replication needs a database in the source URL", "give one: mysql://user@host:3306/DATABASE")
	}
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return nil, c.scrubber.Err(err)
	}
	if _, err := conn.ExecContext(ctx, "USE "+quoteIdent(c.database)); err != nil {
		conn.Close()
		return nil, c.scrubber.Err(err)
	}
	return conn, nil
}

// queryIn runs a read on conn through a prepared statement (the binary
// protocol, as query does).
func (c *Conn) queryIn(ctx context.Context, conn *sql.Conn, q string, args ...any) (*sql.Rows, func(), error) {
	stmt, err := conn.PrepareContext(ctx, q)
	if err != nil {
		return nil, nil, c.scrubber.Err(err)
	}
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		stmt.Close()
		return nil, nil, c.scrubber.Err(err)
	}
	return rows, func() { rows.Close(); stmt.Close(); conn.Close() }, nil
}

// watermarkArg is a watermark value as a statement argument.
func watermarkArg(k model.Kind, v any) (any, error) {
	switch x := v.(type) {
	case int64:
		if k.IsInteger() {
			return x, nil
		}
	case time.Time:
		switch k {
		case model.KindDate:
			return x.UTC().Format("2006-01-02"), nil
		case model.KindTimestamp, model.KindTimestampTZ:
			// The session's time_zone is +00:00.
			return x.UTC().Format("2006-01-02 15:04:05.999999"), nil
		}
	}
	return nil, fmt.Errorf("a watermark is an integer, a date or a timestamp, not %s (%T)", k, v)
}

// QueryBounds reads the smallest and largest watermark above after.
func (c *Conn) QueryBounds(ctx context.Context, q connector.Query, t *model.Table, after any) (lo, hi any, err error) {
	wi := t.ColumnIndex(q.Watermark)
	if wi < 0 {
		return nil, nil, fmt.Errorf("query %s: no column %s", q.Name, q.Watermark)
	}
	codecs, err := c.codecs(t)
	if err != nil {
		return nil, nil, err
	}
	w := "ferry_query." + quoteIdent(q.Watermark)
	stmt := "SELECT MIN(" + w + "), MAX(" + w + ") FROM (" + querySQL(q) + ") AS ferry_query"
	var args []any
	if after != nil {
		a, err := watermarkArg(t.Columns[wi].Type.Kind, after)
		if err != nil {
			return nil, nil, err
		}
		stmt += " WHERE " + w + " > ?"
		args = append(args, a)
	}
	conn, err := c.queryConn(ctx)
	if err != nil {
		return nil, nil, err
	}
	rows, done, err := c.queryIn(ctx, conn, stmt, args...)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	defer done()
	cd := codecs[wi]
	sc := newRowScanner([]*codec{cd, cd})
	if !rows.Next() {
		return nil, nil, c.scrubber.Err(rows.Err())
	}
	raw, err := sc.scan(rows)
	if err != nil {
		return nil, nil, c.scrubber.Err(err)
	}
	if lo, err = cd.decode(raw[0], false); err != nil {
		return nil, nil, fmt.Errorf("query %s, watermark %s: %w", q.Name, q.Watermark, err)
	}
	if hi, err = cd.decode(raw[1], false); err != nil {
		return nil, nil, fmt.Errorf("query %s, watermark %s: %w", q.Name, q.Watermark, err)
	}
	return lo, hi, nil
}

// ReadQuery reads the rows of r in watermark order in one statement,
// cutting batches only where the watermark changes.
func (c *Conn) ReadQuery(ctx context.Context, q connector.Query, t *model.Table, r connector.QueryRange, batchRows int, emit func(*connector.QueryBatch) error) error {
	wi := t.ColumnIndex(q.Watermark)
	if wi < 0 {
		return fmt.Errorf("query %s: no column %s", q.Name, q.Watermark)
	}
	codecs, err := c.codecs(t)
	if err != nil {
		return err
	}
	kind := t.Columns[wi].Type.Kind
	w := "ferry_query." + quoteIdent(q.Watermark)
	upTo, err := watermarkArg(kind, r.UpTo)
	if err != nil {
		return err
	}
	stmt := querySQL(q) + " WHERE " + w + " <= ?"
	args := []any{upTo}
	if r.After != nil {
		after, err := watermarkArg(kind, r.After)
		if err != nil {
			return err
		}
		stmt += " AND " + w + " > ?"
		args = append(args, after)
	}
	stmt += " ORDER BY " + w
	conn, err := c.queryConn(ctx)
	if err != nil {
		return err
	}
	rows, done, err := c.queryIn(ctx, conn, stmt, args...)
	if err != nil {
		conn.Close()
		return err
	}
	defer done()
	sc := newRowScanner(codecs)
	cut := connector.NewQueryBatcher(batchRows, emit)
	for rows.Next() {
		raw, err := sc.scan(rows)
		if err != nil {
			return c.scrubber.Err(err)
		}
		row, err := decodeRow(t, codecs, raw, false)
		if err != nil {
			return fmt.Errorf("query %s: %w", q.Name, err)
		}
		if err := cut.Add(row, row[wi], rowSize(row)); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return c.scrubber.Err(err)
	}
	return cut.Flush()
}
