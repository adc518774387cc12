package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

func (c *Conn) tableOptions() string {
	return " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=" + c.server.noPadBinColl
}

// plannedTable is a table to create and its MySQL name.
type plannedTable struct {
	t     *model.Table
	name  model.Namespace
	types []colType
}

// CheckTables says, without writing, whether MySQL can hold the tables:
// each needs a database, table names must not collide (they ignore case
// here) nor be reserved, column names must not differ only in case, and
// every column needs a MySQL type; a table that exists with triggers is
// refused. Columns holding a source type's text form, and definitions
// MySQL is not given as the source has them, are returned as conversions.
func (c *Conn) CheckTables(ctx context.Context, tables []*model.Table) ([]connector.Conversion, error) {
	planned, err := c.planTables(tables)
	if err != nil {
		return nil, err
	}
	if err := c.refuseTriggers(ctx, planned); err != nil { // destination_triggers.go
		return nil, err
	}
	var out []connector.Conversion
	for _, p := range planned {
		for i, col := range p.t.Columns {
			if col.Type.TextForm {
				out = append(out, connector.Conversion{Table: p.t.Namespace, Column: col.Name, From: col.Type.Native, To: p.types[i].String()})
			}
		}
		out = append(out, unmadeDefinitions(p)...) // destination_definitions.go
	}
	return out, nil
}

func (c *Conn) planTables(tables []*model.Table) ([]plannedTable, error) {
	seen := map[model.Namespace]model.Namespace{}
	var planned []plannedTable
	for _, t := range tables {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("mysql %s: %w", c.host, err)
		}
		name, err := c.destName(t.Namespace)
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(name.Table, checkpointTable) {
			return nil, errs.BadConfig(fmt.Sprintf("table name %s is reserved for ferry's checkpoints", checkpointTable), "rename the table (--rename)")
		}
		key := lowerNS(name)
		if prev, dup := seen[key]; dup {
			return nil, errs.BadConfig(fmt.Sprintf("tables %s and %s both map to MySQL table %s", prev, t.Namespace, name), "rename one of them (--rename) or give the destination URL no database so each schema gets its own")
		}
		seen[key] = t.Namespace
		// MySQL compares column names without case.
		if err := connector.CheckFoldedColumns(t, strings.ToLower, "MySQL"); err != nil {
			return nil, err
		}
		types, err := tableColumnTypes(t)
		if err != nil {
			return nil, &errs.ConfigError{Msg: fmt.Sprintf("table %s: %v", t.Namespace, err),
				Fix: fmt.Sprintf("exclude the table with --tables '!%s'", t.Namespace)}
		}
		planned = append(planned, plannedTable{t, name, types})
	}
	return planned, nil
}

// CreateTables creates the databases and tables that do not exist, in
// utf8mb4 with a binary collation without padding, so text keys compare
// byte for byte ('a', 'A' and 'a ' are three keys, as in PostgreSQL). An
// existing table is kept if ferry can write its columns exactly. Nothing
// is written unless CheckTables accepts every table.
func (c *Conn) CreateTables(ctx context.Context, tables []*model.Table) error {
	planned, err := c.planTables(tables)
	if err != nil {
		return err
	}
	if err := c.refuseTriggers(ctx, planned); err != nil {
		return err
	}
	dbs := map[string]bool{}
	for _, p := range planned {
		dbs[p.name.Schema] = true
	}
	dbs[c.checkpointDB()] = true
	for db := range dbs {
		if err := c.createDatabase(ctx, db); err != nil {
			return err
		}
	}
	if err := c.ensureCheckpointTable(ctx); err != nil {
		return err
	}
	for _, p := range planned {
		existing, err := c.destColumns(ctx, p.name)
		if err != nil {
			return err
		}
		if len(existing) > 0 {
			if err := checkCompatible(p.t, p.name, existing); err != nil {
				return err
			}
			continue
		}
		ddl, err := c.createTableSQL(p.t, p.name)
		if err != nil {
			return err
		}
		if _, err := c.db.ExecContext(ctx, ddl); err != nil {
			return fmt.Errorf("mysql %s: create table %s: %w", c.host, p.name, c.scrubber.Err(err))
		}
	}
	return nil
}

func (c *Conn) createDatabase(ctx context.Context, db string) error {
	q := "CREATE DATABASE IF NOT EXISTS " + quoteIdent(db) + " CHARACTER SET utf8mb4 COLLATE " + c.server.noPadBinColl
	if _, err := c.db.ExecContext(ctx, q); err != nil {
		if code := driverErrCode(err); code == 1044 || code == 1227 {
			return &errs.ConfigError{Msg: fmt.Sprintf("mysql %s: user %q may not create database %s: %s", c.host, c.user, db, c.scrubber.Err(err)),
				Fix: fmt.Sprintf("create the database first, or GRANT CREATE, ALTER, SELECT, INSERT, UPDATE, DELETE ON %s.* TO %s", quoteIdent(db), quoteString(c.user))}
		}
		return fmt.Errorf("mysql %s: create database %s: %w", c.host, db, c.scrubber.Err(err))
	}
	return nil
}

func (c *Conn) createTableSQL(t *model.Table, name model.Namespace) (string, error) {
	types, err := tableColumnTypes(t)
	if err != nil {
		return "", fmt.Errorf("table %s: %w", t.Namespace, err)
	}
	defs := make([]string, 0, len(t.Columns)+1)
	for i, col := range t.Columns {
		key := inKey(t, col.Name)
		ct := types[i]
		d := quoteIdent(col.Name) + " " + ct.String()
		ext := definitionSQL(t, col, ct) // destination_definitions.go
		switch {
		case (!col.Nullable || key) && ct.name == "timestamp" && ext == "":
			// An explicit default keeps MySQL from adding ON UPDATE
			// CURRENT_TIMESTAMP, which would rewrite values ferry updates.
			d += " NOT NULL DEFAULT '1970-01-01 00:00:01'"
		case !col.Nullable || key:
			d += " NOT NULL"
		case ct.name == "timestamp" && ext == "":
			d += " NULL DEFAULT NULL"
		case ct.name == "timestamp":
			d += " NULL"
		}
		defs = append(defs, d+ext)
	}
	if len(t.PrimaryKey) > 0 {
		keys := make([]string, len(t.PrimaryKey))
		for i, k := range t.PrimaryKey {
			keys[i] = quoteIdent(k)
		}
		defs = append(defs, "PRIMARY KEY ("+strings.Join(keys, ", ")+")")
	}
	return "CREATE TABLE IF NOT EXISTS " + quoteName(name) + " (\n\t" + strings.Join(defs, ",\n\t") + "\n)" + c.tableOptions(), nil
}

// destColumn is a column of an existing destination table.
type destColumn struct {
	name     string
	ct       colType
	nullable bool
	key      bool
	hasDef   bool
	computed bool
}

func (c *Conn) destColumns(ctx context.Context, name model.Namespace) ([]destColumn, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY, COLUMN_DEFAULT, EXTRA
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, name.Schema, name.Table)
	if err != nil {
		return nil, fmt.Errorf("mysql %s: read columns of %s: %w", c.host, name, c.scrubber.Err(err))
	}
	defer rows.Close()
	var out []destColumn
	for rows.Next() {
		var col, typ, nullable, key, extra string
		var def sql.NullString
		if err := rows.Scan(&col, &typ, &nullable, &key, &def, &extra); err != nil {
			return nil, fmt.Errorf("mysql %s: read columns of %s: %w", c.host, name, c.scrubber.Err(err))
		}
		ct, err := parseColType(typ)
		if err != nil {
			ct = colType{name: strings.ToLower(typ)}
		}
		ex := strings.ToUpper(extra)
		out = append(out, destColumn{name: col, ct: ct, nullable: nullable == "YES", key: key == "PRI",
			hasDef:   def.Valid || nullable == "YES" || strings.Contains(ex, "AUTO_INCREMENT"),
			computed: strings.Contains(ex, "VIRTUAL GENERATED") || strings.Contains(ex, "STORED GENERATED") || strings.Contains(ex, "PERSISTENT GENERATED")})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if c.server.mariadb && len(out) > 0 {
		// MariaDB's JSON columns are LONGTEXT with a json_valid check.
		crow, err := c.db.QueryContext(ctx, `SELECT CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`, name.Schema, name.Table)
		if err != nil {
			return nil, fmt.Errorf("mysql %s: read checks of %s: %w", c.host, name, c.scrubber.Err(err))
		}
		defer crow.Close()
		for crow.Next() {
			var cn, clause string
			if err := crow.Scan(&cn, &clause); err != nil {
				return nil, err
			}
			for i := range out {
				if out[i].name == cn && clause == "json_valid("+quoteIdent(cn)+")" {
					out[i].ct.json = true
				}
			}
		}
		if err := crow.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkCompatible says whether ferry can write t's rows into an existing
// table exactly.
func checkCompatible(t *model.Table, name model.Namespace, existing []destColumn) error {
	have := map[string]destColumn{}
	for _, ec := range existing {
		have[strings.ToLower(ec.name)] = ec
	}
	want := map[string]bool{}
	var missing, mismatched []string
	for _, col := range t.Columns {
		want[strings.ToLower(col.Name)] = true
		ec, ok := have[strings.ToLower(col.Name)]
		switch {
		case !ok:
			missing = append(missing, col.Name)
		case ec.computed:
			mismatched = append(mismatched, fmt.Sprintf("%s is a generated column", col.Name))
		case !compatible(col.Type, ec.ct):
			mismatched = append(mismatched, fmt.Sprintf("%s is %s, which cannot hold %s values exactly", col.Name, ec.ct, col.Type))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("table %s already exists without column(s) %s; drop the table or add the column(s)", name, strings.Join(missing, ", "))
	}
	if len(mismatched) > 0 {
		return fmt.Errorf("table %s already exists and is incompatible: %s; drop the table or fix the column types", name, strings.Join(mismatched, "; "))
	}
	var extra, haveKey []string
	for _, ec := range existing {
		if !want[strings.ToLower(ec.name)] && !ec.hasDef && !ec.computed {
			extra = append(extra, ec.name)
		}
		if ec.key {
			haveKey = append(haveKey, strings.ToLower(ec.name))
		}
	}
	if len(extra) > 0 {
		return fmt.Errorf("table %s already exists with NOT NULL column(s) %s that ferry does not write and that have no default; drop the table or give the column(s) a default", name, strings.Join(extra, ", "))
	}
	if len(t.PrimaryKey) > 0 {
		wantKey := make([]string, len(t.PrimaryKey))
		for i, k := range t.PrimaryKey {
			wantKey[i] = strings.ToLower(k)
		}
		if strings.Join(sortedCopy(haveKey), ",") != strings.Join(sortedCopy(wantKey), ",") {
			return fmt.Errorf("table %s already exists with primary key (%s), but ferry writes by key (%s); drop the table or change its key", name, strings.Join(haveKey, ", "), strings.Join(t.PrimaryKey, ", "))
		}
	}
	return nil
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
