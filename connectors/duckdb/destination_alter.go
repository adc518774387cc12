//go:build cgo && duckdb

package duckdb

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

var _ connector.SchemaChanger = (*Conn)(nil)

// AlterTable follows a source's schema change with DuckDB's own ALTER
// TABLE, a statement at a time (see alter): columns dropped, renamed (keeping their
// values), added (the rows already there get to.Filled's value, given as
// the column's default and then dropped from it) and widened
// (connector.Widens, ALTER COLUMN ... TYPE). A type change that could lose
// values is refused with the table unchanged, unless the column has the
// new type already. What is done already is read from the table itself,
// so a change applied again by a resumed flow changes nothing.
func (c *Conn) AlterTable(ctx context.Context, from *model.Table, to model.SchemaChange) error {
	if from == nil || to.Table == nil {
		return fmt.Errorf("duckdb file %s: alter table: missing table definition", c.path)
	}
	ns := to.Table.Namespace
	if !strings.EqualFold(from.Namespace.Table, ns.Table) || !strings.EqualFold(schemaOf(from.Namespace), schemaOf(ns)) {
		return fmt.Errorf("table %s: renamed from %s; ferry cannot follow a table rename", ns, from.Namespace)
	}
	if err := to.Table.Validate(); err != nil {
		return fmt.Errorf("alter table %s: %w", ns, err)
	}
	if err := connector.CheckFoldedColumns(to.Table, strings.ToLower, "DuckDB"); err != nil {
		return fmt.Errorf("the source changed a table: %s", err.Error())
	}
	s, err := c.openSession(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	stmts, err := s.alter(ctx, from, to)
	for _, q := range stmts {
		if err != nil {
			break
		}
		if err = s.exec(ctx, q); err != nil {
			err = fmt.Errorf("table %s: %s: %w", ns, q, err)
		}
	}
	if err != nil {
		return fmt.Errorf("duckdb file %s: %w", c.path, err)
	}
	return nil
}

// alter returns the statements that follow the change, each to run in a
// transaction of its own, as MySQL's DDL runs: DuckDB fails the commit of
// a transaction that alters a table twice after rows were appended to it
// ("another transaction has altered this table"), and cannot make a column
// NOT NULL in the transaction that filled it. connector.PlanAlter reads
// what is done from the table, so a flow stopped half-way finishes the
// change when it runs again.
func (s *session) alter(ctx context.Context, from *model.Table, to model.SchemaChange) ([]string, error) {
	ns := to.Table.Namespace
	present, err := describeTable(ctx, s.conn, ns)
	if err != nil {
		return nil, err
	}
	if present == nil {
		return nil, fmt.Errorf("table %s does not exist", ns)
	}
	names := make([]string, len(present.Columns))
	byName := map[string]model.Column{}
	for i, pc := range present.Columns {
		names[i] = pc.Name
		byName[strings.ToLower(pc.Name)] = pc
	}
	inKey := map[string]bool{}
	for _, k := range present.PrimaryKey {
		inKey[strings.ToLower(k)] = true
	}
	plan, err := connector.PlanAlter(from, to, names, strings.ToLower)
	if err != nil {
		return nil, err
	}
	tbl := "ALTER TABLE " + qualified(ns)
	var stmts []string
	comment := func(col model.Column, marker string) {
		if marker != "" {
			stmts = append(stmts, "COMMENT ON COLUMN "+qualified(ns)+"."+quoteIdent(col.Name)+" IS "+quoteLit(commentPrefix+marker))
		}
	}
	for _, st := range plan.Steps {
		col := quoteIdent(st.Column.Name)
		switch st.Op {
		case connector.AlterDrop:
			stmts = append(stmts, tbl+" DROP COLUMN "+quoteIdent(st.Old.Name))
		case connector.AlterRename:
			stmts = append(stmts, tbl+" RENAME COLUMN "+quoteIdent(st.Old.Name)+" TO "+col)
		case connector.AlterAdd:
			decl, marker, err := colType(st.Column.Type)
			if err != nil {
				return nil, fmt.Errorf("table %s, column %s: %w", ns, st.Column.Name, err)
			}
			switch {
			case st.Filled:
				lit, err := literal(st.Column.Type, st.Fill)
				if err != nil {
					return nil, fmt.Errorf("table %s, column %s: the value the source gave the existing rows: %w", ns, st.Column.Name, err)
				}
				stmts = append(stmts, tbl+" ADD COLUMN "+col+" "+decl+" DEFAULT "+lit, tbl+" ALTER COLUMN "+col+" DROP DEFAULT")
			default:
				stmts = append(stmts, tbl+" ADD COLUMN "+col+" "+decl)
				if !st.Column.Nullable {
					var rows bool
					if err := s.conn.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM "+qualified(ns)+")").Scan(&rows); err != nil {
						return nil, fmt.Errorf("table %s: %w", ns, err)
					}
					if rows {
						return nil, connector.NotNullRefusal(ns, st.Column.Name)
					}
				}
			}
			if !st.Column.Nullable {
				stmts = append(stmts, tbl+" ALTER COLUMN "+col+" SET NOT NULL")
			}
			comment(st.Column, marker)
		case connector.AlterRetype:
			decl, marker, err := colType(st.Column.Type)
			if err != nil {
				return nil, fmt.Errorf("table %s, column %s: %w", ns, st.Column.Name, err)
			}
			cur := plan.CurrentName(st)
			pc := byName[strings.ToLower(cur)]
			same := strings.EqualFold(pc.Type.Native, decl)
			if !same && !st.Widening {
				return nil, connector.RetypeRefusal(ns, st, decl)
			}
			if !same {
				stmts = append(stmts, tbl+" ALTER COLUMN "+quoteIdent(cur)+" TYPE "+decl)
				comment(model.Column{Name: cur}, marker)
			}
			if !pc.Nullable && st.Column.Nullable && !inKey[strings.ToLower(cur)] {
				stmts = append(stmts, tbl+" ALTER COLUMN "+quoteIdent(cur)+" DROP NOT NULL")
			}
		}
	}
	return stmts, nil
}

// literal is v as a DuckDB constant of t's column type, for a column's
// default: a cast of its text form, a list of its elements.
func literal(t model.Type, v any) (string, error) {
	if v == nil {
		return "NULL", nil
	}
	if _, err := toDuck(t, v); err != nil {
		return "", err // what a row could not hold, a default cannot either
	}
	decl, _, err := colType(t)
	if err != nil {
		return "", err
	}
	switch t.Kind {
	case model.KindBytes:
		return "from_base64(" + quoteLit(base64.StdEncoding.EncodeToString(v.([]byte))) + ")", nil
	case model.KindInterval:
		iv := v.(model.Interval)
		return fmt.Sprintf("(to_months(%d) + to_days(%d) + to_microseconds(%d))", iv.Months, iv.Days, iv.Micros), nil
	case model.KindArray:
		arr := v.([]any)
		parts := make([]string, len(arr))
		for i, e := range arr {
			if parts[i], err = literal(*t.Elem, e); err != nil {
				return "", fmt.Errorf("element %d: %w", i, err)
			}
		}
		return "CAST([" + strings.Join(parts, ", ") + "] AS " + decl + ")", nil
	}
	s, err := model.FormatText(t, v)
	if err != nil {
		return "", err
	}
	return "CAST(" + quoteLit(s) + " AS " + decl + ")", nil
}
