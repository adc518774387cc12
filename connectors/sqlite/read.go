package sqlite

import (
	"context"
	"database/sql"
	"errors"
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
)

// Plan partitions each table into primary-key ranges (rowid ranges for a
// table without a primary key) of about opts.PartitionRows rows. SQLite has no
// change stream, so a plan for CDC is refused.
func (c *Conn) Plan(ctx context.Context, tables []*model.Table, opts connector.PlanOptions) (*model.Plan, error) {
	if opts.CDC {
		return nil, errs.BadConfig("sqlite has no change data capture", "use --mode snapshot")
	}
	db, err := c.reader(ctx)
	if err != nil {
		return nil, err
	}
	if opts.BatchRows > 0 {
		c.batchRows.Store(int64(opts.BatchRows))
	}
	partRows := opts.PartitionRows
	if partRows <= 0 {
		partRows = defaultPartitionRows
	}
	plan := &model.Plan{Tables: tables, CreatedAt: time.Now().UTC()}
	for _, t := range tables {
		parts, err := planTable(ctx, db, t, opts.RowsFor(t.Namespace, partRows))
		if err != nil {
			return nil, err
		}
		plan.Partitions = append(plan.Partitions, parts...)
	}
	return plan, nil
}

func planTable(ctx context.Context, db *sql.DB, t *model.Table, partRows int64) ([]model.Partition, error) {
	name := t.Namespace.Table
	ks, err := keysetFor(t)
	if err != nil {
		return nil, err
	}
	if err := checkKeyNotNull(ctx, db, t); err != nil {
		return nil, err
	}
	var rows int64
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+quoteIdent(name)).Scan(&rows); err != nil {
		return nil, fmt.Errorf("table %s: count rows: %w", t.Namespace, err)
	}
	nparts := (rows + partRows - 1) / partRows
	var bounds []string
	if nparts > 1 {
		step := (rows + nparts - 1) / nparts
		if bounds, err = sampleBounds(ctx, db, name, ks, step); err != nil {
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

// sampleBounds returns the keys at rows step+1, 2*step+1, ... in key order,
// each the lower bound of a partition, in one pass over the key.
func sampleBounds(ctx context.Context, db *sql.DB, table string, ks keyset, step int64) ([]string, error) {
	inner := make([]string, len(ks.exprs))
	outer := make([]string, len(ks.exprs))
	for i, e := range ks.exprs {
		// The unary + hides the declared type, so the driver returns the
		// stored value instead of parsing DATE-like columns into time.Time.
		inner[i] = fmt.Sprintf("+%s AS k%d", e, i)
		outer[i] = fmt.Sprintf("k%d", i)
	}
	q := fmt.Sprintf(`SELECT %s FROM (SELECT %s, row_number() OVER (ORDER BY %s) AS rn FROM %s) WHERE rn > 1 AND rn %% ? = 1 ORDER BY rn`,
		strings.Join(outer, ", "), strings.Join(inner, ", "), ks.orderBy(), quoteIdent(table))
	rows, err := db.QueryContext(ctx, q, step)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var bounds []string
	vals := make([]any, len(ks.exprs))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		b, err := encodeKey(vals)
		if err != nil {
			return nil, err
		}
		bounds = append(bounds, b)
	}
	return bounds, rows.Err()
}

// checkKeyNotNull refuses a table whose primary key holds a NULL: SQLite
// allows it in tables with a rowid (a legacy quirk), and such a row can be
// neither ordered by key nor written by key anywhere else.
func checkKeyNotNull(ctx context.Context, db *sql.DB, t *model.Table) error {
	if len(t.PrimaryKey) == 0 {
		return nil
	}
	cols, err := tableColumns(ctx, db, t.Namespace.Table)
	if err != nil {
		return fmt.Errorf("table %s: read columns: %w", t.Namespace, err)
	}
	if len(cols) == 0 {
		return fmt.Errorf("table %s does not exist in the sqlite file", t.Namespace)
	}
	var pk []tableColumn
	for _, tc := range cols {
		if tc.pk > 0 {
			pk = append(pk, tc)
		}
	}
	if len(pk) == 1 && strings.EqualFold(strings.TrimSpace(pk[0].decl), "INTEGER") {
		return nil // the rowid itself: never NULL
	}
	var conds []string
	for _, tc := range pk {
		if !tc.notNull {
			conds = append(conds, quoteIdent(tc.name)+" IS NULL")
		}
	}
	if len(conds) == 0 {
		return nil
	}
	var one int
	err = db.QueryRowContext(ctx, "SELECT 1 FROM "+quoteIdent(t.Namespace.Table)+" WHERE "+strings.Join(conds, " OR ")+" LIMIT 1").Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("table %s: look for NULL primary keys: %w", t.Namespace, err)
	}
	return fmt.Errorf("table %s has rows whose primary key (%s) is NULL, which SQLite allows but no key can address; delete or fix them first", t.Namespace, strings.Join(t.PrimaryKey, ", "))
}

// ReadPartition reads p in key order after from, one keyset-paginated query
// per batch, so no lock is held on the file while emit runs.
func (c *Conn) ReadPartition(ctx context.Context, t *model.Table, p model.Partition, from model.Cursor, emit func(*model.RowBatch) error) error {
	db, err := c.reader(ctx)
	if err != nil {
		return err
	}
	ks, err := keysetFor(t)
	if err != nil {
		return err
	}
	nk := len(ks.exprs)
	lower, err := decodeKey(p.Lower, nk)
	if err != nil {
		return fmt.Errorf("table %s, partition %s: lower bound: %w", t.Namespace, p.ID, err)
	}
	upper, err := decodeKey(p.Upper, nk)
	if err != nil {
		return fmt.Errorf("table %s, partition %s: upper bound: %w", t.Namespace, p.ID, err)
	}
	cursor, err := decodeKey(string(from), nk)
	if err != nil {
		return fmt.Errorf("table %s, partition %s: cursor: %w", t.Namespace, p.ID, err)
	}
	batchRows := int(c.batchRows.Load())
	if batchRows <= 0 {
		batchRows = defaultBatchRows
	}

	sel := make([]string, 0, len(t.Columns)+1)
	if ks.rowid {
		sel = append(sel, ks.exprs[0])
	}
	for _, col := range t.Columns {
		sel = append(sel, "+"+quoteIdent(col.Name)) // + hides the declared type: see sampleBounds
	}
	off := len(sel) - len(t.Columns)
	if !ks.rowid {
		for i := range ks.idx {
			ks.idx[i] += off
		}
	}
	head := "SELECT " + strings.Join(sel, ", ") + " FROM " + quoteIdent(t.Namespace.Table)
	tail := " ORDER BY " + ks.orderBy() + " LIMIT ?"

	vals := make([]any, len(sel))
	ptrs := make([]any, len(sel))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for {
		var conds []string
		var args []any
		switch {
		case cursor != nil:
			conds = append(conds, ks.cond(">"))
			args = append(args, cursor...)
		case lower != nil:
			conds = append(conds, ks.cond(">="))
			args = append(args, lower...)
		}
		if upper != nil {
			conds = append(conds, ks.cond("<"))
			args = append(args, upper...)
		}
		q := head
		if len(conds) > 0 {
			q += " WHERE " + strings.Join(conds, " AND ")
		}
		args = append(args, batchRows)
		b := &model.RowBatch{Table: t, Partition: p.ID, Rows: make([]model.Row, 0, batchRows)}
		last, err := readBatch(ctx, db, q+tail, args, t, off, ks.idx, vals, ptrs, b)
		if err != nil {
			return fmt.Errorf("table %s, partition %s: %w", t.Namespace, p.ID, err)
		}
		if len(b.Rows) == 0 {
			return nil
		}
		cur, err := encodeKey(last)
		if err != nil {
			return fmt.Errorf("table %s, partition %s: cursor: %w", t.Namespace, p.ID, err)
		}
		b.Cursor = model.Cursor(cur)
		cursor = last
		if err := emit(b); err != nil {
			return err
		}
		if len(b.Rows) < batchRows {
			return nil
		}
	}
}

// readBatch runs one page query into b and returns the stored key values of
// its last row.
func readBatch(ctx context.Context, db *sql.DB, q string, args []any, t *model.Table, off int, keyIdx []int, vals, ptrs []any, b *model.RowBatch) ([]any, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	last := make([]any, len(keyIdx))
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := make(model.Row, len(t.Columns))
		for i, col := range t.Columns {
			v, err := fromSQLite(col.Type, vals[off+i])
			if err != nil {
				return nil, fmt.Errorf("column %s (%s): %w", col.Name, col.Type, err)
			}
			row[i] = v
			b.Bytes += valueSize(v)
		}
		for i, ki := range keyIdx {
			last[i] = vals[ki]
		}
		b.Rows = append(b.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return last, nil
}

// valueSize approximates a canonical value's size in bytes.
func valueSize(v any) int64 {
	switch x := v.(type) {
	case nil:
		return 1
	case string:
		return int64(len(x))
	case []byte:
		return int64(len(x))
	case []any:
		n := int64(2)
		for _, e := range x {
			n += valueSize(e) + 1
		}
		return n
	}
	return 8
}
