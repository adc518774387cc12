//go:build cgo && duckdb

package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/model"
)

// queryer is what discovery needs: a pool, a connection or a transaction.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Tables lists the file's tables (not views, temporary tables or ferry's
// own) with their schemas and row counts.
func (c *Conn) Tables(ctx context.Context) ([]*model.Table, error) {
	h, err := c.reader(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := h.db.QueryContext(ctx, `SELECT schema_name, table_name FROM duckdb_tables()
		WHERE database_name = '`+catalog+`' AND NOT internal AND NOT temporary ORDER BY schema_name, table_name`)
	if err != nil {
		return nil, fmt.Errorf("duckdb file %s: list tables: %w", c.path, err)
	}
	var names []model.Namespace
	for rows.Next() {
		var ns model.Namespace
		if err := rows.Scan(&ns.Schema, &ns.Table); err != nil {
			rows.Close()
			return nil, fmt.Errorf("duckdb file %s: list tables: %w", c.path, err)
		}
		if !strings.HasPrefix(strings.ToLower(ns.Table), "_ferry_") {
			names = append(names, ns)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("duckdb file %s: list tables: %w", c.path, err)
	}
	out := make([]*model.Table, 0, len(names))
	for _, ns := range names {
		t, err := describeTable(ctx, h.db, ns)
		if err != nil {
			return nil, err
		}
		if t == nil {
			continue // dropped meanwhile
		}
		if err := h.db.QueryRowContext(ctx, "SELECT count(*) FROM "+qualified(t.Namespace)).Scan(&t.EstimatedRows); err != nil {
			return nil, fmt.Errorf("table %s: count rows: %w", t.Namespace, err)
		}
		t.EstimatedBytes = t.EstimatedRows * int64(len(t.Columns)) * 8
		out = append(out, t)
	}
	return out, nil
}

// describeTable reads one table's canonical schema; nil when the file has
// no such table.
func describeTable(ctx context.Context, db queryer, ns model.Namespace) (*model.Table, error) {
	rows, err := db.QueryContext(ctx, `SELECT schema_name, table_name, column_name, data_type, is_nullable, coalesce(comment, '')
		FROM duckdb_columns() WHERE database_name = '`+catalog+`' AND lower(schema_name) = lower(?) AND lower(table_name) = lower(?)
		ORDER BY column_index`, schemaOf(ns), ns.Table)
	if err != nil {
		return nil, fmt.Errorf("table %s: read columns: %w", ns, err)
	}
	defer rows.Close()
	var t *model.Table
	for rows.Next() {
		var schema, table, name, decl, comment string
		var nullable bool
		if err := rows.Scan(&schema, &table, &name, &decl, &nullable, &comment); err != nil {
			return nil, fmt.Errorf("table %s: read columns: %w", ns, err)
		}
		if t == nil {
			t = &model.Table{Namespace: model.Namespace{Schema: schema, Table: table}}
		}
		typ, _ := parseColType(decl, comment)
		t.Columns = append(t.Columns, model.Column{Name: name, Type: typ, Nullable: nullable})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("table %s: read columns: %w", ns, err)
	}
	if t == nil {
		return nil, nil
	}
	var keys []any
	err = queryRow(ctx, db, `SELECT constraint_column_names FROM duckdb_constraints()
		WHERE database_name = '`+catalog+`' AND schema_name = ? AND table_name = ? AND constraint_type = 'PRIMARY KEY'`,
		[]any{t.Namespace.Schema, t.Namespace.Table}, &keys)
	if err != nil && err != sql.ErrNoRows {
		return nil, fmt.Errorf("table %s: read primary key: %w", ns, err)
	}
	for _, k := range keys {
		name := fmt.Sprint(k)
		t.PrimaryKey = append(t.PrimaryKey, name)
		if i := t.ColumnIndex(name); i >= 0 {
			t.Columns[i].Nullable = false
		}
	}
	return t, nil
}

func queryRow(ctx context.Context, db queryer, q string, args []any, dest ...any) error {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Close()
}
