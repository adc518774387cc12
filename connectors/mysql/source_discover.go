package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// tableInfo is a discovered table: its canonical schema plus what reading it
// needs beyond the model.
type tableInfo struct {
	table *model.Table
	// charsets are the columns' character sets ("" for none), in column order.
	charsets []string
	// problems name the columns ferry cannot read, by column.
	problems map[string]error
	// defaults are the columns' defaults as information_schema spells them
	// (nil: no default or DEFAULT NULL).
	defaults []*string
	// generated marks computed columns.
	generated []bool
	// extras are the columns' EXTRA (auto_increment, on update ...).
	extras []string
	// generation are the generated columns' expressions, "" for others.
	generation []string
}

// problem returns the first column problem of the table, as an error naming
// table and column.
func (ti *tableInfo) problem() error {
	if len(ti.problems) == 0 {
		return nil
	}
	var cols []string
	for c := range ti.problems {
		cols = append(cols, c)
	}
	sort.Strings(cols)
	return fmt.Errorf("table %s, column %s (%s): %w", ti.table.Namespace, cols[0], ti.table.Columns[ti.table.ColumnIndex(cols[0])].Type.Native, ti.problems[cols[0]])
}

// Tables lists the base tables of the URL's database, or of every user
// database when the URL names none.
func (c *Conn) Tables(ctx context.Context) ([]*model.Table, error) {
	dbs, err := c.sourceDatabases(ctx)
	if err != nil {
		return nil, err
	}
	infos, err := c.describe(ctx, dbs, nil)
	if err != nil {
		return nil, err
	}
	out := make([]*model.Table, 0, len(infos))
	for _, ti := range infos {
		out = append(out, ti.table)
	}
	return out, nil
}

// sourceDatabases is the list of databases a source reads.
func (c *Conn) sourceDatabases(ctx context.Context) ([]string, error) {
	if c.database != "" {
		var n int
		if err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?`, c.database).Scan(&n); err != nil {
			return nil, fmt.Errorf("mysql %s: look up database %s: %w", c.host, c.database, c.scrubber.Err(err))
		}
		if n == 0 {
			return nil, &errs.ConfigError{Msg: fmt.Sprintf("mysql %s: database %q does not exist (or user %q may not see it)", c.host, c.database, c.user),
				Fix: "check the database name in the URL, or grant the user SELECT on it"}
		}
		return []string{c.database}, nil
	}
	rows, err := c.db.QueryContext(ctx, `SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME`)
	if err != nil {
		return nil, fmt.Errorf("mysql %s: list databases: %w", c.host, c.scrubber.Err(err))
	}
	defer rows.Close()
	var dbs []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("mysql %s: list databases: %w", c.host, c.scrubber.Err(err))
		}
		if !systemDBs[strings.ToLower(name)] {
			dbs = append(dbs, name)
		}
	}
	return dbs, rows.Err()
}

// describe reads the definitions of the base tables of dbs (only those in
// only, when given), in database and table order.
func (c *Conn) describe(ctx context.Context, dbs []string, only map[model.Namespace]bool) ([]*tableInfo, error) {
	if len(dbs) == 0 {
		return nil, nil
	}
	ph := strings.TrimSuffix(strings.Repeat("?,", len(dbs)), ",")
	args := make([]any, len(dbs))
	for i, d := range dbs {
		args[i] = d
	}
	where := func(err error) error {
		return fmt.Errorf("mysql %s: read table definitions of %s: %w", c.host, strings.Join(dbs, ", "), c.scrubber.Err(err))
	}

	byNS := map[model.Namespace]*tableInfo{}
	var order []*tableInfo
	rows, err := c.db.QueryContext(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME, COALESCE(TABLE_ROWS, 0), COALESCE(DATA_LENGTH, 0)
		FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA IN (`+ph+`)
		ORDER BY TABLE_SCHEMA, TABLE_NAME`, args...)
	if err != nil {
		return nil, where(err)
	}
	for rows.Next() {
		var ns model.Namespace
		var est, bytes int64
		if err := rows.Scan(&ns.Schema, &ns.Table, &est, &bytes); err != nil {
			rows.Close()
			return nil, where(err)
		}
		if ns.Table == checkpointTable || (only != nil && !only[ns]) {
			continue
		}
		ti := &tableInfo{table: &model.Table{Namespace: ns, EstimatedRows: est, EstimatedBytes: bytes,
			FullRowIdentity: c.server.rowImage == "FULL"}, problems: map[string]error{}}
		byNS[ns] = ti
		order = append(order, ti)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, where(err)
	}

	jsonCols := map[model.Namespace]map[string]bool{}
	if c.server.mariadb {
		// MariaDB's JSON is an alias of LONGTEXT with a json_valid check.
		rows, err := c.db.QueryContext(ctx, `SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE
			FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA IN (`+ph+`)`, args...)
		if err != nil {
			return nil, where(err)
		}
		for rows.Next() {
			var ns model.Namespace
			var name, clause string
			if err := rows.Scan(&ns.Schema, &ns.Table, &name, &clause); err != nil {
				rows.Close()
				return nil, where(err)
			}
			if clause == "json_valid("+quoteIdent(name)+")" {
				if jsonCols[ns] == nil {
					jsonCols[ns] = map[string]bool{}
				}
				jsonCols[ns][name] = true
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, where(err)
		}
	}

	rows, err = c.db.QueryContext(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE,
			COALESCE(CHARACTER_SET_NAME, ''), EXTRA, COLUMN_DEFAULT, COALESCE(GENERATION_EXPRESSION, '')
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN (`+ph+`)
		ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`, args...)
	if err != nil {
		return nil, where(err)
	}
	for rows.Next() {
		var ns model.Namespace
		var r columnRow
		if err := rows.Scan(&ns.Schema, &ns.Table, &r.name, &r.colType, &r.nullable, &r.charset, &r.extra, &r.def, &r.generation); err != nil {
			rows.Close()
			return nil, where(err)
		}
		ti := byNS[ns]
		if ti == nil {
			continue // a view, or not asked for
		}
		r.json = jsonCols[ns][r.name]
		c.addColumn(ctx, ti, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, where(err)
	}

	indexes, err := c.readIndexes(ctx, ph, args)
	if err != nil {
		return nil, where(err)
	}
	for ns, ti := range byNS {
		ti.table.PrimaryKey = keyOf(indexes[ns])
		c.readDefinitions(ti, indexes[ns])
	}
	return order, nil
}

// columnRow is a column as information_schema.COLUMNS describes it.
type columnRow struct {
	name, colType, nullable, charset, extra, generation string
	def                                                 sql.NullString
	// json: MariaDB's JSON, a LONGTEXT with a json_valid check.
	json bool
}

// addColumn appends column r to ti: discovery reads tables and a table
// created during CDC (createdTable) alike.
func (c *Conn) addColumn(ctx context.Context, ti *tableInfo, r columnRow) {
	ns := ti.table.Namespace
	col := model.Column{Name: r.name, Nullable: r.nullable == "YES"}
	ex := strings.ToUpper(r.extra)
	col.Generated = strings.Contains(ex, "VIRTUAL GENERATED") || strings.Contains(ex, "STORED GENERATED") || strings.Contains(ex, "PERSISTENT GENERATED")
	ct, err := parseColType(r.colType)
	if err == nil && c.server.mariadb && (ct.name == "enum" || ct.name == "set") && strings.Contains(r.colType, "?") {
		// MariaDB's metadata is utf8mb3: a label with a character outside
		// the Basic Multilingual Plane (an emoji) shows as '?'.
		ct.args, err = c.probeLabels(ctx, ns, r.name, ct)
	}
	if err == nil {
		ct.json = r.json
		col.Type, err = ct.canonical()
	}
	if err != nil {
		ti.problems[r.name] = err
		col.Type = model.Type{Kind: model.KindUnknown, Native: r.colType}
	}
	if c.opts.zeroNull {
		switch col.Type.Kind {
		case model.KindDate, model.KindTimestamp, model.KindTimestampTZ:
			col.Nullable = true // a zero date reads as NULL
		}
	}
	var d *string
	if r.def.Valid && !strings.EqualFold(r.def.String, "NULL") {
		s := r.def.String
		d = &s
	}
	ti.table.Columns = append(ti.table.Columns, col)
	ti.charsets = append(ti.charsets, r.charset)
	ti.defaults = append(ti.defaults, d)
	ti.generated = append(ti.generated, col.Generated)
	ti.extras = append(ti.extras, r.extra)
	ti.generation = append(ti.generation, r.generation)
}

// keyOf is a table's primary key from its indexes: the PRIMARY index, or
// else the first unique index (by name) whose columns are all NOT NULL,
// which InnoDB itself would cluster on.
func keyOf(indexes []*sourceIndex) []string {
	list := append([]*sourceIndex(nil), indexes...)
	sort.SliceStable(list, func(i, j int) bool {
		if (list[i].name == "PRIMARY") != (list[j].name == "PRIMARY") {
			return list[i].name == "PRIMARY"
		}
		return list[i].name < list[j].name
	})
	for _, ix := range list {
		if ix.unique && !ix.nullable && len(ix.cols) > 0 && len(ix.cols) == len(ix.parts) {
			return ix.cols
		}
	}
	return nil
}

// describeTables re-reads the current definitions of the given tables.
func (c *Conn) describeTables(ctx context.Context, tables []*model.Table) (map[model.Namespace]*tableInfo, error) {
	only := map[model.Namespace]bool{}
	dbSet := map[string]bool{}
	var dbs []string
	for _, t := range tables {
		only[t.Namespace] = true
		if !dbSet[t.Namespace.Schema] {
			dbSet[t.Namespace.Schema] = true
			dbs = append(dbs, t.Namespace.Schema)
		}
	}
	infos, err := c.describe(ctx, dbs, only)
	if err != nil {
		return nil, err
	}
	out := make(map[model.Namespace]*tableInfo, len(infos))
	for _, ti := range infos {
		out[ti.table.Namespace] = ti
	}
	return out, nil
}

// probeLabels reads the true labels of an ENUM or SET column by storing each
// index (or bit) in a temporary copy of the column and reading it back.
func (c *Conn) probeLabels(ctx context.Context, ns model.Namespace, col string, ct colType) ([]string, error) {
	fail := func(err error) ([]string, error) {
		return nil, fmt.Errorf("its labels hold characters MariaDB's metadata shows as '?', and reading them through a temporary table failed (%v); grant CREATE TEMPORARY TABLES on the database, or use labels without emoji", c.scrubber.Err(err))
	}
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	tmp := quoteIdent(ns.Schema) + "." + quoteIdent(fmt.Sprintf("_ferry_labels_%d", time.Now().UnixNano()))
	if _, err := conn.ExecContext(ctx, "CREATE TEMPORARY TABLE "+tmp+" AS SELECT "+quoteIdent(col)+" AS v FROM "+quoteName(ns)+" LIMIT 0"); err != nil {
		return fail(err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "DROP TEMPORARY TABLE IF EXISTS "+tmp) //nolint:errcheck // the session's end drops it too
	var vals []string
	for i := range ct.args {
		n := uint64(i + 1)
		if ct.name == "set" {
			n = 1 << uint(i)
		}
		vals = append(vals, fmt.Sprintf("(%d)", n))
	}
	if _, err := conn.ExecContext(ctx, "INSERT INTO "+tmp+" (v) VALUES "+strings.Join(vals, ",")); err != nil {
		return fail(err)
	}
	rows, err := conn.QueryContext(ctx, "SELECT CAST(v AS CHAR CHARACTER SET utf8mb4) FROM "+tmp+" ORDER BY v+0")
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	var labels []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			return fail(err)
		}
		labels = append(labels, l)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	if len(labels) != len(ct.args) {
		return fail(fmt.Errorf("read %d labels of %d", len(labels), len(ct.args)))
	}
	return labels, nil
}
