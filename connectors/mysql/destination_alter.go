package mysql

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// AlterTable follows a source's schema change: columns dropped, renamed
// (keeping their values), added (the rows already there get to.Filled's
// value through a default; MariaDB 10.3+ and MySQL 8.0+ add a column
// without copying the table; the column then gets the default CREATE TABLE
// would give it, none when the source's is unknown) and widened
// (connector.Widens). A type change that could lose values is refused with
// the table unchanged, unless the column has the new type already.
//
// MySQL commits each DDL statement on its own, so the change runs as a few
// statements, each atomic, in an order whose every prefix the next run
// recognises from the table's columns: drops, renames, then adds and type
// changes together, then the defaults dropped. A flow stopped between two
// of them, or resumed before its checkpoint, applies the change again and
// does only what is missing.
func (c *Conn) AlterTable(ctx context.Context, from *model.Table, to model.SchemaChange) error {
	if from == nil || to.Table == nil {
		return fmt.Errorf("mysql %s: alter table: missing table definition", c.host)
	}
	if err := to.Table.Validate(); err != nil {
		return fmt.Errorf("alter table %s: %w", to.Table.Namespace, err)
	}
	// A column added with the name of another in another case would be
	// taken for it. The flow is running: this stops it (exit 1), it is
	// not a usage error.
	if err := connector.CheckFoldedColumns(to.Table, strings.ToLower, "MySQL"); err != nil {
		return fmt.Errorf("the source changed a table: %s", err.Error())
	}
	name, err := c.destName(to.Table.Namespace)
	if err != nil {
		return err
	}
	defer c.dest.forgetTargets(name)
	existing, err := c.destColumns(ctx, name)
	if err != nil {
		return err
	}
	if len(existing) == 0 {
		return fmt.Errorf("mysql %s: table %s does not exist", c.host, name)
	}
	byName := map[string]destColumn{}
	present := make([]string, len(existing))
	for i, ec := range existing {
		present[i] = ec.name
		byName[strings.ToLower(ec.name)] = ec
	}
	plan, err := connector.PlanAlter(from, to, present, strings.ToLower)
	if err != nil {
		return fmt.Errorf("mysql %s: %w", c.host, err)
	}
	stmts, err := c.alterStatements(ctx, name, to.Table, plan, byName)
	if err != nil {
		return err
	}
	for _, q := range stmts {
		if _, err := c.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("mysql %s: table %s: %s: %w", c.host, name, q, c.scrubber.Err(err))
		}
	}
	return nil
}

// alterStatements turns plan into DDL, refusing (before any statement runs)
// what cannot be applied exactly. Column types come from tableColumnTypes,
// as CreateTables picks them.
func (c *Conn) alterStatements(ctx context.Context, name model.Namespace, to *model.Table, plan *connector.AlterPlan, existing map[string]destColumn) ([]string, error) {
	types, err := tableColumnTypes(to)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", name, err)
	}
	typeOf := func(col string) colType { return types[to.ColumnIndex(col)] }
	notNull := func(col model.Column) bool { return !col.Nullable || inKey(to, col.Name) }
	// As createTableSQL: a TIMESTAMP column gets an explicit default, which
	// keeps MySQL from giving it ON UPDATE CURRENT_TIMESTAMP.
	nullSQL := func(col model.Column, ct colType) string {
		switch {
		case notNull(col) && ct.name == "timestamp":
			return " NOT NULL DEFAULT " + epochTimestamp
		case notNull(col):
			return " NOT NULL"
		}
		return " NULL DEFAULT NULL"
	}
	var drops, renames, changes, tidy []string
	for _, st := range plan.Steps {
		col := quoteIdent(st.Column.Name)
		switch st.Op {
		case connector.AlterDrop:
			drops = append(drops, "DROP COLUMN "+quoteIdent(st.Old.Name))
		case connector.AlterRename:
			if ec := existing[strings.ToLower(st.Old.Name)]; ec.ct.json {
				// MariaDB's JSON is longtext with a check named after the
				// column: RENAME COLUMN would keep the old name on the check,
				// and the column would no longer be known as JSON.
				renames = append(renames, "CHANGE COLUMN "+quoteIdent(st.Old.Name)+" "+col+" json"+nullSQL(st.Old, ec.ct))
				continue
			}
			renames = append(renames, "RENAME COLUMN "+quoteIdent(st.Old.Name)+" TO "+col)
		case connector.AlterAdd:
			ct := typeOf(st.Column.Name)
			def := "ADD COLUMN " + col + " " + ct.String() + nullSQL(st.Column, ct)
			switch {
			case st.Filled:
				lit, err := appendLiteral(nil, &target{name: st.Column.Name, typ: st.Column.Type, ct: ct}, st.Fill)
				if err != nil {
					return nil, fmt.Errorf("table %s, column %s: the value the source gave the existing rows: %w", name, st.Column.Name, err)
				}
				def = "ADD COLUMN " + col + " " + ct.String()
				if notNull(st.Column) {
					def += " NOT NULL"
				} else {
					def += " NULL"
				}
				def += " DEFAULT " + string(lit)
			case !st.Column.Nullable && !inKey(to, st.Column.Name):
				var rows bool
				if err := c.db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM "+quoteName(name)+")").Scan(&rows); err != nil {
					return nil, fmt.Errorf("mysql %s: table %s: %w", c.host, name, c.scrubber.Err(err))
				}
				if rows {
					return nil, connector.NotNullRefusal(name, st.Column.Name)
				}
			}
			changes = append(changes, def)
		case connector.AlterRetype:
			ct := typeOf(st.Column.Name)
			ec := existing[strings.ToLower(plan.CurrentName(st))]
			if sameColType(ec.ct, ct) && ec.nullable == !notNull(st.Column) {
				continue // as the change wants it already
			}
			if !sameColType(ec.ct, ct) && !st.Widening {
				return nil, connector.RetypeRefusal(name, st, ct.String())
			}
			changes = append(changes, "MODIFY COLUMN "+col+" "+ct.String()+nullSQL(st.Column, ct))
		}
	}
	// The default did its work: the column gets the one CREATE TABLE would
	// give it, or none. Also after an earlier run that stopped before.
	for _, st := range plan.Added {
		ct := typeOf(st.Column.Name)
		d := definitionSQL(to, st.Column, ct)
		switch {
		case strings.HasPrefix(d, " DEFAULT "):
			// The default CREATE TABLE would give the column.
			tidy = append(tidy, "ALTER COLUMN "+quoteIdent(st.Column.Name)+" SET"+d)
		case !st.Filled:
		case notNull(st.Column) && ct.name == "timestamp":
			tidy = append(tidy, "ALTER COLUMN "+quoteIdent(st.Column.Name)+" SET DEFAULT "+epochTimestamp)
		default:
			tidy = append(tidy, "ALTER COLUMN "+quoteIdent(st.Column.Name)+" DROP DEFAULT")
		}
	}
	var out []string
	for _, clauses := range [][]string{drops, renames, changes, tidy} {
		if len(clauses) > 0 {
			out = append(out, "ALTER TABLE "+quoteName(name)+" "+strings.Join(clauses, ", "))
		}
	}
	return out, nil
}

// epochTimestamp is the default createTableSQL gives a NOT NULL TIMESTAMP.
const epochTimestamp = "'1970-01-01 00:00:01'"

// sameColType reports whether an existing column's type is ct, spelled
// either way (MariaDB shows int as int(11)).
func sameColType(have, want colType) bool {
	if have.String() == want.String() {
		return true
	}
	h, err1 := have.canonical()
	w, err2 := want.canonical()
	return err1 == nil && err2 == nil && h.Kind == w.Kind && h.Length == w.Length &&
		h.Precision == w.Precision && h.Scale == w.Scale && strings.Join(h.EnumValues, "\x00") == strings.Join(w.EnumValues, "\x00")
}
