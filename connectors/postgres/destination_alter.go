package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/model"
)

// AlterTable follows a source's schema change: columns in to that from lacks
// are added (nullable: rows already copied have no value for them). Any
// other change (a dropped, renamed or retyped column, another key) is an
// error that stops the flow, since ferry would otherwise write wrong data.
func (c *Conn) AlterTable(ctx context.Context, from *model.Table, to model.SchemaChange) error {
	if len(to.Renamed) > 0 || len(to.Filled) > 0 {
		return fmt.Errorf("table %s: the source renamed a column or added one with a value for the existing rows, which this destination cannot follow yet; recreate the destination table and restart the flow (ferry sync --restart)", from.Namespace)
	}
	return c.alterTable(ctx, from, to.Table)
}

func (c *Conn) alterTable(ctx context.Context, from, to *model.Table) error {
	if from == nil || to == nil {
		return fmt.Errorf("alter table: missing table definition")
	}
	ns := to.Namespace
	if err := to.Validate(); err != nil {
		return fmt.Errorf("alter table %s: %w", ns, err)
	}
	var problems []string
	newCols := map[string]model.Column{}
	for _, col := range to.Columns {
		newCols[col.Name] = col
	}
	oldCols := map[string]bool{}
	for _, old := range from.Columns {
		oldCols[old.Name] = true
		col, ok := newCols[old.Name]
		if !ok {
			problems = append(problems, fmt.Sprintf("column %s was dropped", old.Name))
			continue
		}
		if col.Type.String() != old.Type.String() || col.Type.Native != old.Type.Native {
			problems = append(problems, fmt.Sprintf("column %s changed type from %s to %s", old.Name, nativeOr(old.Type), nativeOr(col.Type)))
		}
	}
	if strings.Join(from.PrimaryKey, "\x00") != strings.Join(to.PrimaryKey, "\x00") {
		problems = append(problems, fmt.Sprintf("primary key changed from (%s) to (%s)", strings.Join(from.PrimaryKey, ", "), strings.Join(to.PrimaryKey, ", ")))
	}
	if len(problems) > 0 {
		return fmt.Errorf("table %s: ferry can only add columns, and the source changed it otherwise: %s; change the destination table to match and restart the flow (ferry sync --restart)", ns, strings.Join(problems, "; "))
	}
	var adds []string
	for _, col := range to.Columns {
		if oldCols[col.Name] {
			continue
		}
		typ, err := c.ddlType(ctx, col.Type, ns.Schema)
		if err != nil {
			return fmt.Errorf("table %s, column %s: %w", ns, col.Name, err)
		}
		adds = append(adds, "ALTER TABLE "+qualified(ns)+" ADD COLUMN IF NOT EXISTS "+quoteIdent(col.Name)+" "+typ)
	}
	if len(adds) == 0 {
		return nil
	}
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return c.classify(err, "alter table "+ns.String())
	}
	defer conn.Release()
	defer c.forgetDst(ns)
	return c.inTx(ctx, conn.Conn(), func(tx pgx.Tx) error {
		for _, q := range adds {
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	}, "alter table "+ns.String())
}

func nativeOr(t model.Type) string {
	if t.Native != "" {
		return t.Native
	}
	return t.String()
}
