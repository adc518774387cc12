package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// AlterTable follows a source's schema change: columns in to that from lacks
// are added (nullable: SQLite cannot add a NOT NULL column without a default,
// and rows already copied have no value for it). Any other change (a dropped,
// renamed or retyped column, a new key, a column that became nullable) is an
// error, since ferry would otherwise write wrong data.
func (c *Conn) AlterTable(ctx context.Context, from *model.Table, to model.SchemaChange) error {
	if len(to.Renamed) > 0 || len(to.Filled) > 0 {
		return fmt.Errorf("table %s: the source renamed a column or added one with a value for the existing rows, which this destination cannot follow yet; recreate the destination table and restart the flow (ferry sync --restart)", from.Namespace)
	}
	return c.alterTable(ctx, from, to.Table)
}

func (c *Conn) alterTable(ctx context.Context, from, to *model.Table) error {
	if from == nil || to == nil {
		return fmt.Errorf("sqlite file %s: alter table: missing table definition", c.path)
	}
	ns := to.Namespace
	if !strings.EqualFold(from.Namespace.Table, to.Namespace.Table) {
		return fmt.Errorf("table %s: renamed from %s; ferry cannot follow a table rename", ns, from.Namespace)
	}
	if err := to.Validate(); err != nil {
		return fmt.Errorf("alter table %s: %w", ns, err)
	}
	// A column added with the name of another in another case would be
	// taken for it. The flow is running: this stops it (exit 1), it is
	// not a usage error.
	if err := connector.CheckFoldedColumns(to, asciiLower, "SQLite"); err != nil {
		return fmt.Errorf("the source changed a table: %s", err.Error())
	}
	var problems []string
	newCols := map[string]model.Column{}
	for _, col := range to.Columns {
		newCols[strings.ToLower(col.Name)] = col
	}
	oldCols := map[string]bool{}
	for _, old := range from.Columns {
		oldCols[strings.ToLower(old.Name)] = true
		col, ok := newCols[strings.ToLower(old.Name)]
		if !ok {
			problems = append(problems, fmt.Sprintf("column %s was dropped", old.Name))
			continue
		}
		od, err := declType(old.Type)
		if err != nil {
			return fmt.Errorf("table %s, column %s: %w", ns, old.Name, err)
		}
		nd, err := declType(col.Type)
		if err != nil {
			return fmt.Errorf("table %s, column %s: %w", ns, col.Name, err)
		}
		if od != nd {
			problems = append(problems, fmt.Sprintf("column %s changed type from %s to %s", old.Name, old.Type, col.Type))
		}
		if !old.Nullable && col.Nullable {
			problems = append(problems, fmt.Sprintf("column %s became nullable, but the SQLite column is NOT NULL", old.Name))
		}
	}
	if strings.ToLower(strings.Join(from.PrimaryKey, "\x00")) != strings.ToLower(strings.Join(to.PrimaryKey, "\x00")) {
		problems = append(problems, fmt.Sprintf("primary key changed from (%s) to (%s)", strings.Join(from.PrimaryKey, ", "), strings.Join(to.PrimaryKey, ", ")))
	}
	if len(problems) > 0 {
		return fmt.Errorf("table %s: ferry can only add columns to a SQLite table, and the source changed it otherwise: %s; recreate the table and restart the flow (ferry sync --restart)", ns, strings.Join(problems, "; "))
	}
	db, err := c.writer(ctx)
	if err != nil {
		return err
	}
	// A column already there was added by an earlier run that stopped
	// before it recorded the new schema: adding it again would fail.
	present, err := tableColumns(ctx, db, ns.Table)
	if err != nil {
		return fmt.Errorf("table %s: read its columns: %w", ns, err)
	}
	for _, pc := range present {
		oldCols[strings.ToLower(pc.name)] = true
	}
	var adds []string
	for _, col := range to.Columns {
		if oldCols[strings.ToLower(col.Name)] {
			continue
		}
		decl, err := declType(col.Type)
		if err != nil {
			return fmt.Errorf("table %s, column %s: %w", ns, col.Name, err)
		}
		adds = append(adds, "ALTER TABLE "+quoteIdent(ns.Table)+" ADD COLUMN "+quoteIdent(col.Name)+" "+decl)
	}
	if len(adds) == 0 {
		return nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("table %s: begin alter: %w", ns, err)
	}
	for _, q := range adds {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return rollback(tx, fmt.Errorf("table %s: %s: %w", ns, q, err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("table %s: commit alter: %w", ns, err)
	}
	return nil
}
