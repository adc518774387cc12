package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

var _ connector.QueryReader = (*Conn)(nil)

// querySQL wraps the user's query as a subquery, which is the only way its
// text enters ferry's SQL; a trailing semicolon is dropped and the closing
// parenthesis goes on its own line, after any trailing comment.
func querySQL(q connector.Query) string {
	s := strings.TrimRight(strings.TrimSpace(q.SQL), "; \t\r\n")
	return "SELECT * FROM (" + s + "\n) AS ferry_query"
}

// DescribeQuery prepares the query without running it and maps its result
// columns' types (OIDs and modifiers) as discovery maps a table's.
func (c *Conn) DescribeQuery(ctx context.Context, q connector.Query) (*model.Table, error) {
	pc, err := c.pool.Acquire(ctx)
	if err != nil {
		return nil, c.classify(err, "describe query "+q.Name.String())
	}
	defer pc.Release()
	sd, err := pc.Conn().PgConn().Prepare(ctx, "", querySQL(q), nil)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return nil, &errs.ConfigError{Msg: fmt.Sprintf("query %s does not run at the source: %s", q.Name, pe.Message),
				Fix: "check the query with psql against the source; ferry runs it as SELECT * FROM (query) AS ferry_query"}
		}
		return nil, c.classify(err, "describe query "+q.Name.String())
	}
	t := &model.Table{Namespace: q.Name}
	oids := make([]uint32, len(sd.Fields))
	mods := make([]int32, len(sd.Fields))
	seen := map[string]bool{}
	for i, f := range sd.Fields {
		oids[i], mods[i] = f.DataTypeOID, f.TypeModifier
		if seen[f.Name] {
			return nil, &errs.ConfigError{Msg: fmt.Sprintf("query %s returns two columns named %q", q.Name, f.Name), Fix: "give each column its own name with AS"}
		}
		seen[f.Name] = true
	}
	if err := c.types.load(ctx, c.pool, oids); err != nil {
		return nil, c.classify(err, "describe query "+q.Name.String())
	}
	natives := make([]string, 0, len(oids))
	rows, err := pc.Conn().Query(ctx, `SELECT format_type(o, m) FROM unnest($1::oid[], $2::int4[]) WITH ORDINALITY AS u(o, m, n) ORDER BY n`, oids, mods)
	if err != nil {
		return nil, c.classify(err, "describe query "+q.Name.String())
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return nil, c.classify(err, "describe query "+q.Name.String())
		}
		natives = append(natives, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, c.classify(err, "describe query "+q.Name.String())
	}
	for i, f := range sd.Fields {
		ct, err := c.types.mapType(oids[i], mods[i], natives[i])
		if err != nil {
			return nil, &errs.ConfigError{Msg: fmt.Sprintf("query %s, column %s: %v", q.Name, f.Name, err), Fix: "cast the column to a type ferry copies (text, for instance) in the query"}
		}
		t.Columns = append(t.Columns, model.Column{Name: f.Name, Type: ct.typ, Nullable: true})
	}
	return t, nil
}

// watermarkCast is the type a watermark's parameters are cast to.
func watermarkCast(k model.Kind) (string, error) {
	switch k {
	case model.KindInt16, model.KindInt32, model.KindInt64:
		return "bigint", nil
	case model.KindDate:
		return "date", nil
	case model.KindTimestamp:
		return "timestamp", nil
	case model.KindTimestampTZ:
		return "timestamptz", nil
	}
	return "", fmt.Errorf("a watermark is an integer, a date or a timestamp, not %s", k)
}

// watermarkParam is a watermark value as a text parameter.
func watermarkParam(col model.Column, v any) ([]byte, error) {
	s, err := model.FormatText(col.Type, v)
	return []byte(s), err
}

// QueryBounds reads the smallest and largest watermark above after.
func (c *Conn) QueryBounds(ctx context.Context, q connector.Query, t *model.Table, after any) (lo, hi any, err error) {
	wi := t.ColumnIndex(q.Watermark)
	if wi < 0 {
		return nil, nil, fmt.Errorf("query %s: no column %s", q.Name, q.Watermark)
	}
	col := t.Columns[wi]
	cast, err := watermarkCast(col.Type.Kind)
	if err != nil {
		return nil, nil, err
	}
	w := "ferry_query." + quoteIdent(q.Watermark)
	sql := "SELECT min(" + w + ")::text, max(" + w + ")::text FROM (" + querySQL(q) + ") AS ferry_query"
	var params [][]byte
	if after != nil {
		p, err := watermarkParam(col, after)
		if err != nil {
			return nil, nil, err
		}
		sql += " WHERE " + w + " > $1::text::" + cast
		params = append(params, p)
	}
	dec, err := decoderFor(col.Type)
	if err != nil {
		return nil, nil, err
	}
	pc, err := c.pool.Acquire(ctx)
	if err != nil {
		return nil, nil, c.classify(err, "bound query "+q.Name.String())
	}
	defer pc.Release()
	rr := pc.Conn().PgConn().ExecParams(ctx, sql, params, nil, nil, nil)
	var vals [][]byte
	for rr.NextRow() {
		for _, v := range rr.Values() {
			vals = append(vals, append([]byte(nil), v...))
		}
	}
	if _, err := rr.Close(); err != nil {
		return nil, nil, c.classify(err, "bound query "+q.Name.String())
	}
	if len(vals) != 2 || vals[0] == nil {
		return nil, nil, nil
	}
	if lo, err = dec(string(vals[0])); err != nil {
		return nil, nil, fmt.Errorf("query %s, watermark %s: %w", q.Name, q.Watermark, err)
	}
	if hi, err = dec(string(vals[1])); err != nil {
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
	col := t.Columns[wi]
	cast, err := watermarkCast(col.Type.Kind)
	if err != nil {
		return err
	}
	decs, err := tableDecoders(t)
	if err != nil {
		return fmt.Errorf("query %s: %w", q.Name, err)
	}
	w := "ferry_query." + quoteIdent(q.Watermark)
	upTo, err := watermarkParam(col, r.UpTo)
	if err != nil {
		return err
	}
	params := [][]byte{upTo}
	sql := querySQL(q) + " WHERE " + w + " <= $1::text::" + cast
	if r.After != nil {
		after, err := watermarkParam(col, r.After)
		if err != nil {
			return err
		}
		params = append(params, after)
		sql += " AND " + w + " > $2::text::" + cast
	}
	sql += " ORDER BY " + w
	bins := make([]binDecoder, len(decs))
	formats := make([]int16, len(decs))
	for i, col := range t.Columns {
		if bins[i], _ = binDecoderFor(col.Type); bins[i] != nil {
			formats[i] = 1
		}
	}
	pc, err := c.pool.Acquire(ctx)
	if err != nil {
		return c.classify(err, "read query "+q.Name.String())
	}
	defer pc.Release()
	where := "read query " + q.Name.String()
	rr := pc.Conn().PgConn().ExecParams(ctx, sql, params, nil, nil, formats)
	cut := connector.NewQueryBatcher(batchRows, emit)
	var slab model.Slab
	for rr.NextRow() {
		vals := rr.Values()
		row := slab.Row(len(decs))
		var size int64
		for i, d := range decs {
			if vals[i] == nil {
				continue
			}
			var v any
			var err error
			if bins[i] != nil {
				v, err = bins[i](&slab, vals[i])
			} else {
				v, err = d(string(vals[i]))
			}
			if err != nil {
				rr.Close() //nolint:errcheck // the decode error is the one to report
				return fmt.Errorf("query %s, column %s: %w", q.Name, t.Columns[i].Name, err)
			}
			row[i] = v
			size += int64(len(vals[i]))
		}
		if err := cut.Add(row, row[wi], size); err != nil {
			rr.Close() //nolint:errcheck // the emit error is the one to report
			return err
		}
	}
	if _, err := rr.Close(); err != nil {
		return c.classify(err, where)
	}
	return cut.Flush()
}
