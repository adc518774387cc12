package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// AlterTable follows a source's schema change in one transaction: columns
// dropped, renamed (keeping their values), added (the rows already there
// get to.Filled's value as the column's default, which SQLite cannot drop
// again and which matches the source's constant default) and widened
// (connector.Widens). A column's declared type is what ferry reads back, and
// SQLite cannot change it in place: a widening or a column becoming
// nullable rebuilds the table (a new table, the rows copied, the old one
// dropped), as SQLite's documentation describes. A type change that could
// lose values is refused with the table unchanged, unless the column has
// the new declared type already. What is done already is read from the
// table itself, so a change applied again by a resumed flow changes
// nothing.
func (c *Conn) AlterTable(ctx context.Context, from *model.Table, to model.SchemaChange) error {
	if from == nil || to.Table == nil {
		return fmt.Errorf("sqlite file %s: alter table: missing table definition", c.path)
	}
	ns := to.Table.Namespace
	if !strings.EqualFold(from.Namespace.Table, ns.Table) {
		return fmt.Errorf("table %s: renamed from %s; ferry cannot follow a table rename", ns, from.Namespace)
	}
	if err := to.Table.Validate(); err != nil {
		return fmt.Errorf("alter table %s: %w", ns, err)
	}
	// A column added with the name of another in another case would be
	// taken for it. The flow is running: this stops it (exit 1), it is
	// not a usage error.
	if err := connector.CheckFoldedColumns(to.Table, asciiLower, "SQLite"); err != nil {
		return fmt.Errorf("the source changed a table: %s", err.Error())
	}
	db, err := c.writer(ctx)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("table %s: begin alter: %w", ns, err)
	}
	if err := alterInTx(ctx, tx, from, to); err != nil {
		return rollback(tx, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("table %s: commit alter: %w", ns, err)
	}
	return nil
}

func alterInTx(ctx context.Context, tx *sql.Tx, from *model.Table, to model.SchemaChange) error {
	ns := to.Table.Namespace
	present, err := tableColumns(ctx, tx, ns.Table)
	if err != nil {
		return fmt.Errorf("table %s: read its columns: %w", ns, err)
	}
	if len(present) == 0 {
		return fmt.Errorf("table %s does not exist", ns)
	}
	names := make([]string, len(present))
	byName := map[string]tableColumn{}
	for i, pc := range present {
		names[i] = pc.name
		byName[asciiLower(pc.name)] = pc
	}
	plan, err := connector.PlanAlter(from, to, names, asciiLower)
	if err != nil {
		return err
	}
	tbl := "ALTER TABLE " + quoteIdent(ns.Table)
	var stmts []string
	rebuild := false
	for _, st := range plan.Steps {
		col := quoteIdent(st.Column.Name)
		switch st.Op {
		case connector.AlterDrop:
			stmts = append(stmts, tbl+" DROP COLUMN "+quoteIdent(st.Old.Name))
		case connector.AlterRename:
			stmts = append(stmts, tbl+" RENAME COLUMN "+quoteIdent(st.Old.Name)+" TO "+col)
		case connector.AlterAdd:
			decl, err := declType(st.Column.Type)
			if err != nil {
				return fmt.Errorf("table %s, column %s: %w", ns, st.Column.Name, err)
			}
			add := tbl + " ADD COLUMN " + col + " " + decl
			switch {
			case st.Filled:
				lit, err := literal(st.Column.Type, st.Fill)
				if err != nil {
					return fmt.Errorf("table %s, column %s: the value the source gave the existing rows: %w", ns, st.Column.Name, err)
				}
				add += " DEFAULT " + lit
				if !st.Column.Nullable {
					add += " NOT NULL"
				}
			case !st.Column.Nullable:
				// SQLite adds no NOT NULL column without a default, even
				// to an empty table: it is added nullable (the source
				// keeps it from holding NULL).
				var rows bool
				if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM "+quoteIdent(ns.Table)+")").Scan(&rows); err != nil {
					return fmt.Errorf("table %s: %w", ns, err)
				}
				if rows {
					return connector.NotNullRefusal(ns, st.Column.Name)
				}
			}
			stmts = append(stmts, add)
		case connector.AlterRetype:
			decl, err := declType(st.Column.Type)
			if err != nil {
				return fmt.Errorf("table %s, column %s: %w", ns, st.Column.Name, err)
			}
			pc := byName[asciiLower(plan.CurrentName(st))]
			same := strings.EqualFold(pc.decl, decl)
			if !same && !st.Widening {
				return connector.RetypeRefusal(ns, st, decl)
			}
			if !same || pc.notNull && st.Column.Nullable && pc.pk == 0 {
				rebuild = true
			}
		}
	}
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("table %s: %s: %w", ns, q, err)
		}
	}
	if rebuild {
		return rebuildTable(ctx, tx, to.Table)
	}
	return nil
}

// rebuildTable makes table t again with t's declared types and copies its
// rows, for a change SQLite's ALTER TABLE cannot make. Rows keep their
// stored values: each widening keeps the storage class.
func rebuildTable(ctx context.Context, tx *sql.Tx, t *model.Table) error {
	ns := t.Namespace
	var others int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE tbl_name = ? AND type IN ('index', 'trigger') AND sql IS NOT NULL`, ns.Table).Scan(&others); err != nil {
		return fmt.Errorf("table %s: %w", ns, err)
	}
	if others > 0 {
		return fmt.Errorf("table %s: the source widened a column's type, which SQLite can only follow by making the table again, and the table has indexes or triggers ferry did not make; change the column's declared type by hand and run the flow again", ns)
	}
	tmp := *t
	tmp.Namespace.Table = "_ferry_rebuild_" + ns.Table
	ddl, err := createTableSQL(&tmp)
	if err != nil {
		return err
	}
	cols := make([]string, len(t.Columns))
	for i, col := range t.Columns {
		cols[i] = quoteIdent(col.Name)
	}
	list := strings.Join(cols, ", ")
	for _, q := range []string{
		"DROP TABLE IF EXISTS " + quoteIdent(tmp.Namespace.Table),
		ddl,
		"INSERT INTO " + quoteIdent(tmp.Namespace.Table) + " (" + list + ") SELECT " + list + " FROM " + quoteIdent(ns.Table),
		"DROP TABLE " + quoteIdent(ns.Table),
		"ALTER TABLE " + quoteIdent(tmp.Namespace.Table) + " RENAME TO " + quoteIdent(ns.Table),
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("table %s: make it again with the new column types: %s: %w", ns, q, err)
		}
	}
	return nil
}

// literal is v as a SQL constant that stores exactly what toSQLite binds
// for it.
func literal(t model.Type, v any) (string, error) {
	b, err := toSQLite(t, v)
	if err != nil {
		return "", err
	}
	switch x := b.(type) {
	case nil:
		return "NULL", nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		switch {
		case math.IsInf(x, 1):
			return "9e999", nil
		case math.IsInf(x, -1):
			return "-9e999", nil
		}
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eEn") {
			s += ".0" // a REAL, as the bound float64 is stored
		}
		return s, nil
	case string:
		return "'" + strings.ReplaceAll(x, "'", "''") + "'", nil
	case []byte:
		return "X'" + hex.EncodeToString(x) + "'", nil
	}
	return "", fmt.Errorf("value of Go type %T has no SQLite constant", b)
}
