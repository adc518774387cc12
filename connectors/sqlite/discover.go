package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"

	"github.com/ferrydb/ferry/model"
)

// mainSchema is the schema of every table in a SQLite file.
const mainSchema = "main"

// queryer is what discovery needs: a pool or a transaction.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Tables lists the file's tables (not views, virtual tables, SQLite's own or
// ferry's) with their schemas, row counts and sizes.
func (c *Conn) Tables(ctx context.Context) ([]*model.Table, error) {
	db, err := c.reader(ctx)
	if err != nil {
		return nil, err
	}
	names, err := listTables(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("sqlite file %s: list tables: %w", c.path, err)
	}
	out := make([]*model.Table, 0, len(names))
	for _, name := range names {
		t, err := describeTable(ctx, db, name)
		if err != nil {
			return nil, err
		}
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+quoteIdent(name)).Scan(&t.EstimatedRows); err != nil {
			return nil, fmt.Errorf("table %s: count rows: %w", t.Namespace, err)
		}
		if t.EstimatedBytes, err = tableBytes(ctx, db, name, t.EstimatedRows, len(t.Columns)); err != nil {
			return nil, fmt.Errorf("table %s: estimate size: %w", t.Namespace, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// listTables returns the names of the ordinary tables of the main schema.
func listTables(ctx context.Context, db queryer) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		lower := strings.ToLower(name)
		if strings.HasPrefix(lower, "sqlite_") || strings.HasPrefix(lower, "_ferry_") {
			continue
		}
		names = append(names, name)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

// tableColumn is one row of pragma table_xinfo.
type tableColumn struct {
	name, decl string
	notNull    bool
	hasDefault bool
	pk         int // position in the primary key, 1-based; 0 if not in it
	hidden     int // 0 normal, 1 hidden (virtual tables), 2/3 generated
}

func tableColumns(ctx context.Context, db queryer, name string) ([]tableColumn, error) {
	rows, err := db.QueryContext(ctx, `SELECT name, type, "notnull", dflt_value IS NOT NULL, pk, hidden FROM pragma_table_xinfo(?)`, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []tableColumn
	for rows.Next() {
		var tc tableColumn
		if err := rows.Scan(&tc.name, &tc.decl, &tc.notNull, &tc.hasDefault, &tc.pk, &tc.hidden); err != nil {
			return nil, err
		}
		if tc.hidden == 1 {
			continue
		}
		cols = append(cols, tc)
	}
	return cols, rows.Err()
}

// describeTable reads one table's canonical schema.
func describeTable(ctx context.Context, db queryer, name string) (*model.Table, error) {
	ns := model.Namespace{Schema: mainSchema, Table: name}
	cols, err := tableColumns(ctx, db, name)
	if err != nil {
		return nil, fmt.Errorf("table %s: read columns: %w", ns, err)
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("table %s: no columns (was it dropped?)", ns)
	}
	t := &model.Table{Namespace: ns}
	var pk []tableColumn
	for _, tc := range cols {
		t.Columns = append(t.Columns, model.Column{
			Name:      tc.name,
			Type:      parseDeclType(tc.decl),
			Nullable:  !tc.notNull && tc.pk == 0,
			Generated: tc.hidden >= 2,
		})
		if tc.pk > 0 {
			pk = append(pk, tc)
		}
	}
	sort.Slice(pk, func(i, j int) bool { return pk[i].pk < pk[j].pk })
	for _, tc := range pk {
		t.PrimaryKey = append(t.PrimaryKey, tc.name)
	}
	return t, nil
}

// tableBytes estimates a table's size: its pages from dbstat when the build
// has it, else its share of the file by row count.
func tableBytes(ctx context.Context, db *sql.DB, name string, rows int64, ncols int) (int64, error) {
	var n sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT sum(pgsize) FROM dbstat WHERE name = ? AND aggregate = TRUE`, name).Scan(&n)
	switch {
	case err == nil && n.Valid:
		return n.Int64, nil
	case ctx.Err() != nil:
		return 0, ctx.Err()
	}
	// No dbstat in this build (or nothing in it): a row at 16 bytes a column.
	return rows * int64(ncols) * 16, nil
}
