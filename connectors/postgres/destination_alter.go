package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// AlterTable follows a source's schema change in one transaction: columns
// dropped, renamed (keeping their values), added (the rows already there
// get to.Filled's value through a default, which PostgreSQL 11+ applies
// without rewriting the table; the column then gets the default CREATE
// TABLE would give it, none when the source's is unknown) and widened
// (connector.Widens). A type change that could lose values is refused with
// the table unchanged, unless the column has the new type already. What
// is done already is read from the table itself, so a change applied again
// by a resumed flow changes nothing.
func (c *Conn) AlterTable(ctx context.Context, from *model.Table, to model.SchemaChange) error {
	if from == nil || to.Table == nil {
		return fmt.Errorf("alter table: missing table definition")
	}
	ns := to.Table.Namespace
	if err := to.Table.Validate(); err != nil {
		return fmt.Errorf("alter table %s: %w", ns, err)
	}
	where := "alter table " + ns.String()
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return c.classify(err, where)
	}
	defer conn.Release()
	defer c.forgetDst(ns)
	return c.inTx(ctx, conn.Conn(), func(tx pgx.Tx) error {
		// The lock first: nothing changes the table between reading its
		// columns and altering it.
		if _, err := tx.Exec(ctx, "LOCK TABLE "+qualified(ns)+" IN ACCESS EXCLUSIVE MODE"); err != nil {
			return err
		}
		dt, err := loadDst(ctx, tx, ns)
		if err != nil {
			return err
		}
		if dt == nil {
			return fmt.Errorf("table %s does not exist at %s", ns, c.where())
		}
		present := make([]string, 0, len(dt.cols))
		for name := range dt.cols {
			present = append(present, name)
		}
		plan, err := connector.PlanAlter(from, to, present, nil)
		if err != nil {
			return err
		}
		stmts, err := c.alterStatements(ctx, tx, to.Table, plan)
		if err != nil {
			return err
		}
		for _, q := range stmts {
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("table %s: %s: %w", ns, q, err)
			}
		}
		return nil
	}, where)
}

// alterStatements turns plan into DDL, refusing (before any statement runs)
// what cannot be applied exactly.
func (c *Conn) alterStatements(ctx context.Context, tx pgx.Tx, to *model.Table, plan *connector.AlterPlan) ([]string, error) {
	ns := to.Namespace
	tbl := "ALTER TABLE " + qualified(ns)
	missing, err := c.missingFunctions(ctx, to)
	if err != nil {
		return nil, err
	}
	collations, err := c.missingCollations(ctx, to)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, st := range plan.Steps {
		col := quoteIdent(st.Column.Name)
		switch st.Op {
		case connector.AlterDrop:
			out = append(out, tbl+" DROP COLUMN IF EXISTS "+quoteIdent(st.Old.Name))
		case connector.AlterRename:
			out = append(out, tbl+" RENAME COLUMN "+quoteIdent(st.Old.Name)+" TO "+col)
		case connector.AlterAdd:
			typ, err := c.ddlType(ctx, st.Column.Type, ns.Schema)
			if err != nil {
				return nil, fmt.Errorf("table %s, column %s: %w", ns, st.Column.Name, err)
			}
			add := tbl + " ADD COLUMN " + col + " " + typ + collate(st.Column, collations)
			// The default CREATE TABLE would give the column, set after the
			// rows there got their value: SET DEFAULT touches no row.
			var tidy string
			if d := columnDefinition(to, st.Column, false, missing[st.Column.Name]); strings.HasPrefix(d, " DEFAULT ") && !strings.Contains(d, "nextval(") {
				tidy = tbl + " ALTER COLUMN " + col + " SET" + d
			}
			switch {
			case st.Filled:
				lit, err := appendText(nil, st.Column.Type, st.Fill)
				if err != nil {
					return nil, fmt.Errorf("table %s, column %s: the value the source gave the existing rows: %w", ns, st.Column.Name, err)
				}
				add += " DEFAULT " + quoteLiteral(string(lit))
				if !st.Column.Nullable {
					add += " NOT NULL"
				}
				if tidy == "" {
					tidy = tbl + " ALTER COLUMN " + col + " DROP DEFAULT"
				}
			case !st.Column.Nullable && !slices.Contains(to.PrimaryKey, st.Column.Name):
				var rows bool
				if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+qualified(ns)+")").Scan(&rows); err != nil {
					return nil, err
				}
				if rows {
					return nil, connector.NotNullRefusal(ns, st.Column.Name)
				}
				add += " NOT NULL"
			}
			out = append(out, add)
			if tidy != "" {
				out = append(out, tidy)
			}
		case connector.AlterRetype:
			typ, err := c.ddlType(ctx, st.Column.Type, ns.Schema)
			if err != nil {
				return nil, fmt.Errorf("table %s, column %s: %w", ns, st.Column.Name, err)
			}
			has, err := c.columnHasType(ctx, tx, ns, plan.CurrentName(st), typ, st.Column.Type)
			if err != nil {
				return nil, err
			}
			if !has {
				if !st.Widening {
					return nil, connector.RetypeRefusal(ns, st, typ)
				}
				// COLLATE again: a new type takes its default collation.
				out = append(out, tbl+" ALTER COLUMN "+col+" TYPE "+typ+collate(st.Column, collations)+" USING "+col+"::"+typ)
			}
			if slices.Contains(to.PrimaryKey, st.Column.Name) {
				continue
			}
			if st.Column.Nullable && !st.Old.Nullable {
				out = append(out, tbl+" ALTER COLUMN "+col+" DROP NOT NULL")
			} else if !st.Column.Nullable && st.Old.Nullable {
				out = append(out, tbl+" ALTER COLUMN "+col+" SET NOT NULL")
			}
		}
	}
	return out, nil
}

// columnHasType reports whether column name of ns is already of the
// destination type typ (canonical t): the same base type, and the same
// length, precision and scale.
func (c *Conn) columnHasType(ctx context.Context, tx pgx.Tx, ns model.Namespace, name, typ string, t model.Type) (bool, error) {
	var oid uint32
	var mod int32
	var native string
	var same *bool
	err := tx.QueryRow(ctx, `SELECT a.atttypid, a.atttypmod, format_type(a.atttypid, a.atttypmod), a.atttypid = to_regtype($3)::oid
		FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped`, qualified(ns), name, typ).Scan(&oid, &mod, &native, &same)
	if err != nil {
		return false, fmt.Errorf("table %s, column %s: read its type: %w", ns, name, err)
	}
	if same == nil || !*same {
		return false, nil
	}
	if err := c.types.load(ctx, c.pool, []uint32{oid}); err != nil {
		return false, fmt.Errorf("table %s, column %s: read its type: %w", ns, name, err)
	}
	ct, err := c.types.mapType(oid, mod, native)
	if err != nil {
		return false, nil
	}
	have := ct.typ
	return have.Length == t.Length && have.Precision == t.Precision && have.Scale == t.Scale, nil
}
