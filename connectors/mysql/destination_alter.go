package mysql

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// AlterTable follows a source's schema change: columns of to that the
// destination table lacks are added, as nullable columns (the rows already
// there have no value for them). A column that exists already is left
// alone, so a replayed change is harmless. Any other change (a dropped,
// renamed or retyped column, another key) is an error.
func (c *Conn) AlterTable(ctx context.Context, from *model.Table, to model.SchemaChange) error {
	if len(to.Renamed) > 0 || len(to.Filled) > 0 {
		return fmt.Errorf("table %s: the source renamed a column or added one with a value for the existing rows, which this destination cannot follow yet; recreate the destination table and restart the flow (ferry sync --restart)", from.Namespace)
	}
	return c.alterTable(ctx, from, to.Table)
}

func (c *Conn) alterTable(ctx context.Context, from, to *model.Table) error {
	if from == nil || to == nil {
		return fmt.Errorf("mysql %s: alter table: missing table definition", c.host)
	}
	if err := to.Validate(); err != nil {
		return fmt.Errorf("alter table %s: %w", to.Namespace, err)
	}
	// A column added with the name of another in another case would be
	// taken for it. The flow is running: this stops it (exit 1), it is
	// not a usage error.
	if err := connector.CheckFoldedColumns(to, strings.ToLower, "MySQL"); err != nil {
		return fmt.Errorf("the source changed a table: %s", err.Error())
	}
	name, err := c.destName(to.Namespace)
	if err != nil {
		return err
	}
	var problems []string
	for _, old := range from.Columns {
		i := to.ColumnIndex(old.Name)
		if i < 0 {
			problems = append(problems, fmt.Sprintf("column %s was dropped", old.Name))
			continue
		}
		oc, err1 := columnType(old.Type, inKey(from, old.Name))
		nc, err2 := columnType(to.Columns[i].Type, inKey(to, old.Name))
		if err1 != nil || err2 != nil || oc.String() != nc.String() {
			problems = append(problems, fmt.Sprintf("column %s changed type from %s to %s", old.Name, old.Type, to.Columns[i].Type))
		}
	}
	if strings.Join(from.PrimaryKey, "\x00") != strings.Join(to.PrimaryKey, "\x00") {
		problems = append(problems, fmt.Sprintf("primary key changed from (%s) to (%s)", strings.Join(from.PrimaryKey, ", "), strings.Join(to.PrimaryKey, ", ")))
	}
	if len(problems) > 0 {
		return fmt.Errorf("table %s: ferry can only add columns to a MySQL table, and the source changed it otherwise: %s; recreate the table and restart the flow (ferry sync --restart)", name, strings.Join(problems, "; "))
	}
	existing, err := c.destColumns(ctx, name)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, ec := range existing {
		have[strings.ToLower(ec.name)] = true
	}
	var adds []string
	for _, col := range to.Columns {
		if have[strings.ToLower(col.Name)] {
			continue
		}
		ct, err := columnType(col.Type, false)
		if err != nil {
			return fmt.Errorf("table %s, column %s: %w", name, col.Name, err)
		}
		adds = append(adds, "ADD COLUMN "+quoteIdent(col.Name)+" "+ct.String()+" NULL DEFAULT NULL")
	}
	if len(adds) > 0 {
		q := "ALTER TABLE " + quoteName(name) + " " + strings.Join(adds, ", ")
		if _, err := c.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("mysql %s: %s: %w", c.host, q, c.scrubber.Err(err))
		}
	}
	c.dest.forgetTargets(name)
	return nil
}
