//go:build cgo && duckdb

package duckdb

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

const (
	defaultPartitionRows = 100000
	defaultBatchRows     = 10000
	// readKeysChunk bounds the keys looked up by one query.
	readKeysChunk = 500
)

// Plan partitions each table into primary-key ranges (rowid ranges for a
// table without a primary key) of about opts.PartitionRows rows. DuckDB
// has no change stream, so a plan for CDC is refused.
func (c *Conn) Plan(ctx context.Context, tables []*model.Table, opts connector.PlanOptions) (*model.Plan, error) {
	if opts.CDC {
		return nil, errs.BadConfig("duckdb has no change data capture", "use --mode snapshot")
	}
	h, err := c.reader(ctx)
	if err != nil {
		return nil, err
	}
	if opts.BatchRows > 0 {
		c.batchRows.Store(int64(opts.BatchRows))
	}
	plan := &model.Plan{Tables: tables, CreatedAt: time.Now().UTC()}
	for _, t := range tables {
		parts, err := planTable(ctx, h.db, t, opts.RowsFor(t.Namespace, defaultPartitionRows))
		if err != nil {
			return nil, err
		}
		for i := range parts {
			parts[i].BatchRows = opts.BatchRows
		}
		plan.Partitions = append(plan.Partitions, parts...)
	}
	return plan, nil
}

// keyset says how a table is ordered for partitioning and resuming: by its
// primary key, or by rowid when it has none.
type keyset struct {
	cols  []string     // quoted key expressions
	types []model.Type // their canonical types
	rowid bool
}

func keysetFor(t *model.Table) (keyset, error) {
	if len(t.PrimaryKey) == 0 {
		return keyset{cols: []string{"rowid"}, types: []model.Type{{Kind: model.KindInt64}}, rowid: true}, nil
	}
	var ks keyset
	for _, k := range t.PrimaryKey {
		i := t.ColumnIndex(k)
		if i < 0 {
			return keyset{}, fmt.Errorf("table %s: primary key column %q is not a column", t.Namespace, k)
		}
		ks.cols = append(ks.cols, quoteIdent(k))
		ks.types = append(ks.types, t.Columns[i].Type)
	}
	return ks, nil
}

// param renders one bound key value: its text form cast to the column's
// type, so it compares in DuckDB as the column does.
func param(t model.Type, v any) (string, any, error) {
	if v == nil {
		return "NULL", nil, nil
	}
	if t.Kind == model.KindBytes {
		return "?", v, nil
	}
	s, err := model.FormatText(t, v)
	if err != nil {
		return "", nil, err
	}
	decl, _, err := colType(t)
	if err != nil {
		return "", nil, err
	}
	return "CAST(? AS " + decl + ")", s, nil
}

// cond renders "key op bound" over the keyset, expanded column by column.
func (ks keyset) cond(op string, key []any) (string, []any, error) {
	ph := make([]string, len(key))
	var args []any
	vals := make([][]any, len(key))
	for i, v := range key {
		p, a, err := param(ks.types[i], v)
		if err != nil {
			return "", nil, err
		}
		ph[i] = p
		if p != "NULL" {
			vals[i] = []any{a}
		}
	}
	strict := strings.TrimSuffix(op, "=")
	var ors []string
	for i := range ks.cols {
		var ands []string
		for j := 0; j < i; j++ {
			ands = append(ands, ks.cols[j]+" = "+ph[j])
			args = append(args, vals[j]...)
		}
		o := strict
		if i == len(ks.cols)-1 {
			o = op
		}
		ands = append(ands, ks.cols[i]+" "+o+" "+ph[i])
		args = append(args, vals[i]...)
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	return "(" + strings.Join(ors, " OR ") + ")", args, nil
}

func planTable(ctx context.Context, db *sql.DB, t *model.Table, partRows int64) ([]model.Partition, error) {
	ks, err := keysetFor(t)
	if err != nil {
		return nil, err
	}
	var rows int64
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+qualified(t.Namespace)).Scan(&rows); err != nil {
		return nil, fmt.Errorf("table %s: count rows: %w", t.Namespace, err)
	}
	nparts := (rows + partRows - 1) / partRows
	var bounds []string
	if nparts > 1 {
		step := (rows + nparts - 1) / nparts
		q := fmt.Sprintf(`SELECT %s FROM (SELECT %s, row_number() OVER (ORDER BY %s) AS _ferry_rn FROM %s) WHERE _ferry_rn > 1 AND _ferry_rn %% ? = 1 ORDER BY _ferry_rn`,
			strings.Join(ks.cols, ", "), strings.Join(ks.cols, ", "), strings.Join(ks.cols, ", "), qualified(t.Namespace))
		r, err := db.QueryContext(ctx, q, step)
		if err != nil {
			return nil, fmt.Errorf("table %s: choose partition bounds: %w", t.Namespace, err)
		}
		vals := make([]any, len(ks.cols))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for r.Next() {
			if err := r.Scan(ptrs...); err != nil {
				r.Close()
				return nil, fmt.Errorf("table %s: choose partition bounds: %w", t.Namespace, err)
			}
			b, err := ks.encode(vals)
			if err != nil {
				r.Close()
				return nil, fmt.Errorf("table %s: %w", t.Namespace, err)
			}
			bounds = append(bounds, b)
		}
		r.Close()
		if err := r.Err(); err != nil {
			return nil, fmt.Errorf("table %s: choose partition bounds: %w", t.Namespace, err)
		}
	}
	n := int64(len(bounds) + 1)
	parts := make([]model.Partition, 0, n)
	for i := 0; i < int(n); i++ {
		p := model.Partition{
			ID:             fmt.Sprintf("%s/%04d", t.Namespace, i),
			Table:          t.Namespace,
			Index:          i,
			EstimatedRows:  rows / n,
			EstimatedBytes: t.EstimatedBytes / n,
		}
		if i > 0 {
			p.Lower = bounds[i-1]
		}
		if i < len(bounds) {
			p.Upper = bounds[i]
		}
		parts = append(parts, p)
	}
	return parts, nil
}

// Bounds and cursors are a JSON array of the key's values in ferry's text
// form (model.FormatText; bytes as {"b64": ...}), null for NULL.

func (ks keyset) encode(raw []any) (string, error) {
	out := make([]any, len(raw))
	for i, r := range raw {
		v, err := fromDuck(ks.types[i], r)
		if err != nil {
			return "", fmt.Errorf("key column %s: %w", ks.cols[i], err)
		}
		switch {
		case v == nil:
		case ks.types[i].Kind == model.KindBytes:
			out[i] = map[string]string{"b64": base64.StdEncoding.EncodeToString(v.([]byte))}
		default:
			s, err := model.FormatText(ks.types[i], v)
			if err != nil {
				return "", fmt.Errorf("key column %s: %w", ks.cols[i], err)
			}
			out[i] = s
		}
	}
	b, err := json.Marshal(out)
	return string(b), err
}

func (ks keyset) decode(s string) ([]any, error) {
	if s == "" {
		return nil, nil
	}
	var raw []any
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("key %q: %w", s, err)
	}
	if len(raw) != len(ks.cols) {
		return nil, fmt.Errorf("key %q has %d values, the table's key has %d", s, len(raw), len(ks.cols))
	}
	out := make([]any, len(raw))
	for i, r := range raw {
		switch x := r.(type) {
		case nil:
		case string:
			v, err := model.ParseText(ks.types[i], x)
			if err != nil {
				return nil, fmt.Errorf("key %q value %d: %w", s, i, err)
			}
			out[i] = v
		case map[string]any:
			b, err := base64.StdEncoding.DecodeString(fmt.Sprint(x["b64"]))
			if err != nil {
				return nil, fmt.Errorf("key %q value %d: %w", s, i, err)
			}
			out[i] = b
		default:
			return nil, fmt.Errorf("key %q value %d: unexpected %T", s, i, r)
		}
	}
	return out, nil
}

// ReadPartition reads p in key order after from, one keyset-paginated
// query per batch.
func (c *Conn) ReadPartition(ctx context.Context, t *model.Table, p model.Partition, from model.Cursor, emit func(*model.RowBatch) error) error {
	h, err := c.reader(ctx)
	if err != nil {
		return err
	}
	ks, err := keysetFor(t)
	if err != nil {
		return err
	}
	where := fmt.Sprintf("table %s, partition %s", t.Namespace, p.ID)
	lower, err := ks.decode(p.Lower)
	if err != nil {
		return fmt.Errorf("%s: lower bound: %w", where, err)
	}
	upper, err := ks.decode(p.Upper)
	if err != nil {
		return fmt.Errorf("%s: upper bound: %w", where, err)
	}
	cursor, err := ks.decode(string(from))
	if err != nil {
		return fmt.Errorf("%s: cursor: %w", where, err)
	}
	batchRows := p.BatchRows
	if batchRows <= 0 {
		batchRows = int(c.batchRows.Load())
	}
	if batchRows <= 0 {
		batchRows = defaultBatchRows
	}
	sel := selectList(t)
	off := 0
	if ks.rowid {
		sel = "rowid, " + sel
		off = 1
	}
	for {
		var conds []string
		var args []any
		add := func(op string, key []any) error {
			c, a, err := ks.cond(op, key)
			conds, args = append(conds, c), append(args, a...)
			return err
		}
		switch {
		case cursor != nil:
			err = add(">", cursor)
		case lower != nil:
			err = add(">=", lower)
		}
		if err == nil && upper != nil {
			err = add("<", upper)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		q := "SELECT " + sel + " FROM " + qualified(t.Namespace)
		if len(conds) > 0 {
			q += " WHERE " + strings.Join(conds, " AND ")
		}
		q += " ORDER BY " + strings.Join(ks.cols, ", ") + fmt.Sprintf(" LIMIT %d", batchRows)
		b := &model.RowBatch{Table: t, Partition: p.ID, Rows: make([]model.Row, 0, batchRows)}
		last, err := readRows(ctx, h.db, q, args, t, off, ks, b)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if len(b.Rows) == 0 {
			return nil
		}
		cur, err := ks.encode(last)
		if err != nil {
			return fmt.Errorf("%s: cursor: %w", where, err)
		}
		b.Cursor = model.Cursor(cur)
		if cursor, err = ks.decode(cur); err != nil {
			return fmt.Errorf("%s: cursor: %w", where, err)
		}
		if err := emit(b); err != nil {
			return err
		}
		if len(b.Rows) < batchRows {
			return nil
		}
	}
}

func selectList(t *model.Table) string {
	cols := make([]string, len(t.Columns))
	for i, col := range t.Columns {
		cols[i] = quoteIdent(col.Name)
	}
	return strings.Join(cols, ", ")
}

// readRows runs q into b and returns the raw key values of its last row.
func readRows(ctx context.Context, db *sql.DB, q string, args []any, t *model.Table, off int, ks keyset, b *model.RowBatch) ([]any, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	n := off + len(t.Columns)
	vals := make([]any, n)
	ptrs := make([]any, n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	keyIdx := t.KeyIndexes()
	last := make([]any, len(ks.cols))
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := make(model.Row, len(t.Columns))
		for i, col := range t.Columns {
			v, err := fromDuck(col.Type, vals[off+i])
			if err != nil {
				return nil, fmt.Errorf("column %s (%s): %w", col.Name, col.Type, err)
			}
			row[i] = v
			b.Bytes += model.ValueSize(v)
		}
		if ks.rowid {
			last[0] = vals[0]
		} else {
			for i, ki := range keyIdx {
				last[i] = vals[off+ki]
			}
		}
		b.Rows = append(b.Rows, row)
	}
	return last, rows.Err()
}

// ReadKeys reads the rows whose cols hold one of keys, a query per
// readKeysChunk keys.
func (c *Conn) ReadKeys(ctx context.Context, t *model.Table, cols []string, keys []model.Row, emit func(*model.RowBatch) error) error {
	h, err := c.reader(ctx)
	if err != nil {
		return err
	}
	ks := keyset{}
	for _, col := range cols {
		j := t.ColumnIndex(col)
		if j < 0 {
			return fmt.Errorf("table %s has no column %s", t.Namespace, col)
		}
		ks.cols = append(ks.cols, quoteIdent(col))
		ks.types = append(ks.types, t.Columns[j].Type)
	}
	for len(keys) > 0 {
		n := min(len(keys), readKeysChunk)
		var ors []string
		var args []any
		for _, k := range keys[:n] {
			if len(k) != len(cols) {
				return fmt.Errorf("table %s: a key of %d values for %d columns", t.Namespace, len(k), len(cols))
			}
			var ands []string
			for i, v := range k {
				p, a, err := param(ks.types[i], v)
				if err != nil {
					return fmt.Errorf("table %s, column %s: %w", t.Namespace, cols[i], err)
				}
				if p == "NULL" {
					ands = append(ands, ks.cols[i]+" IS NULL")
					continue
				}
				ands = append(ands, ks.cols[i]+" = "+p)
				args = append(args, a)
			}
			ors = append(ors, "("+strings.Join(ands, " AND ")+")")
		}
		q := "SELECT " + selectList(t) + " FROM " + qualified(t.Namespace) + " WHERE " + strings.Join(ors, " OR ")
		b := &model.RowBatch{Table: t, Partition: t.Namespace.String() + "/keys"}
		pk, _ := keysetFor(t)
		if _, err := readRows(ctx, h.db, q, args, t, 0, pk, b); err != nil {
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
