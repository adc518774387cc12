package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

var _ connector.ConstraintBuilder = (*Conn)(nil)

// Constraints are built at cutover, once changes no longer arrive in
// parallel by key (docs/decisions/2026-12-05-constraints-at-cutover.md),
// from their portable fields (model/portable.go): a unique key over plain
// columns (replacing the non-unique index FinishTable built under its
// name, in one ALTER TABLE, so a failure keeps the old index), a foreign
// key with its actions, built by a session with foreign_key_checks on so
// MySQL checks the rows it holds, and a check in the portable SQL. Rows
// that break one are looked for first, so the common failure names the
// table, the constraint and a key before anything is built.

// mysqlConstraint is a constraint to build here, in MySQL's SQL.
type mysqlConstraint struct {
	model.Constraint
	table model.Namespace // the MySQL table
	// add is what follows ALTER TABLE to build it, undo what drops it again.
	add, undo string
	// violation is a query for one row that breaks it (its key), what
	// says what that row does.
	violation, what string
}

// BuildConstraints builds the constraints this destination lacks; those
// MySQL cannot build as the source has them are returned in Skipped with
// what to run, and on failure what this call built is dropped again.
func (c *Conn) BuildConstraints(ctx context.Context, cons []model.Constraint) (connector.ConstraintsBuilt, error) {
	var done connector.ConstraintsBuilt
	var todo []*mysqlConstraint
	for _, kind := range []model.ConstraintKind{model.ConstraintUnique, model.ConstraintUniqueIndex, model.ConstraintForeignKey, model.ConstraintCheck} {
		for _, k := range cons {
			if k.Kind != kind {
				continue
			}
			m, skip, err := c.planConstraint(ctx, k)
			if err != nil {
				return done, err
			}
			if skip != "" {
				done.Skipped = append(done.Skipped, skip)
				continue
			}
			present, err := c.hasConstraint(ctx, m)
			if err != nil {
				return done, err
			}
			if present {
				done.Present++
				continue
			}
			todo = append(todo, m)
		}
	}
	for _, m := range todo {
		if err := c.findViolation(ctx, m); err != nil {
			return done, err
		}
	}
	if err := c.buildConstraints(ctx, todo); err != nil {
		return done, err
	}
	done.Built = len(todo)
	return done, nil
}

// planConstraint spells k in MySQL's SQL, or says why it cannot be built
// here and what to run instead.
func (c *Conn) planConstraint(ctx context.Context, k model.Constraint) (*mysqlConstraint, string, error) {
	table, err := c.destName(k.Table)
	if err != nil {
		return nil, "", err
	}
	m := &mysqlConstraint{Constraint: k, table: table}
	source := k.Definition
	switch {
	case source == "" && k.Index != "":
		source = "UNIQUE INDEX USING " + k.Index
	case source == "" && k.PortableCheck != "":
		source = "CHECK (" + k.PortableCheck + ")"
	case source == "":
		source = "(" + strings.Join(k.Columns, ", ") + ")"
	}
	skip := func(why string) (*mysqlConstraint, string, error) {
		return nil, fmt.Sprintf("%s.%s (%s): %s; write it in MySQL's SQL and run ALTER TABLE %s ADD CONSTRAINT %s ... there",
			k.Table, k.Name, source, why, quoteName(table), quoteIdent(k.Name)), nil
	}
	if k.Partition.Table != "" {
		// The source's table is partitioned and this constraint is one
		// partition's own; here the table is one table.
		return skip(fmt.Sprintf("it belongs to the source's partition %s alone, and the table is not partitioned here", k.Partition.Table))
	}
	cols, err := c.destColumns(ctx, table)
	if err != nil {
		return nil, "", err
	}
	if len(cols) == 0 {
		return nil, "", errs.BadConfig(fmt.Sprintf("constraint %s: table %s does not exist at the destination", k.Name, table),
			"create the table (or leave it out of the flow with --tables) and run ferry cutover again")
	}
	key := rowKey(cols)
	switch k.Kind {
	case model.ConstraintUnique, model.ConstraintUniqueIndex:
		switch {
		case len(k.Columns) == 0:
			return skip("it is on expressions, which MySQL indexes only through a generated column")
		case k.Predicate != "":
			return skip("MySQL has no partial index")
		case k.NullsEqual:
			return skip("MySQL has no NULLS NOT DISTINCT")
		}
		for _, name := range k.Columns {
			if ct, ok := columnOf(cols, name); !ok || ct.isLOB() {
				return skip("column " + name + " is a type MySQL indexes only by a prefix, which makes another key")
			}
		}
		parts := quoteIdents(k.Columns)
		list := strings.Join(parts, ", ")
		m.add = "ADD UNIQUE INDEX " + quoteIdent(k.Name) + " (" + list + ")"
		m.undo = "DROP INDEX " + quoteIdent(k.Name)
		have, err := c.indexNames(ctx, table)
		if err != nil {
			return nil, "", err
		}
		if have[k.Name] {
			// FinishTable's non-unique index goes in the same statement.
			m.add = "DROP INDEX " + quoteIdent(k.Name) + ", " + m.add
			m.undo += ", ADD INDEX " + quoteIdent(k.Name) + " (" + list + ")"
		}
		var notNull []string
		for _, p := range parts {
			notNull = append(notNull, p+" IS NOT NULL")
		}
		m.violation = "SELECT CONCAT('(', CONCAT_WS(', ', " + list + "), ')') FROM " + quoteName(table) + " WHERE " + strings.Join(notNull, " AND ") +
			" GROUP BY " + list + " HAVING COUNT(*) > 1 LIMIT 1"
		m.what = "(" + strings.Join(k.Columns, ", ") + ")=%s is held by more than one row"
	case model.ConstraintForeignKey:
		ref, err := c.destName(k.RefTable)
		if err != nil {
			return nil, "", err
		}
		switch {
		case len(k.Columns) == 0 || len(k.Columns) != len(k.RefColumns):
			return skip("its columns are not known")
		case k.MatchFull:
			return skip("MySQL does not enforce MATCH FULL")
		case k.OnDelete == "SET DEFAULT" || k.OnUpdate == "SET DEFAULT":
			return skip("InnoDB has no SET DEFAULT action")
		}
		def := "FOREIGN KEY (" + strings.Join(quoteIdents(k.Columns), ", ") + ") REFERENCES " + quoteName(ref) + " (" + strings.Join(quoteIdents(k.RefColumns), ", ") + ")"
		if k.OnDelete != "" {
			def += " ON DELETE " + k.OnDelete
		}
		if k.OnUpdate != "" {
			def += " ON UPDATE " + k.OnUpdate
		}
		m.add = "ADD CONSTRAINT " + quoteIdent(k.Name) + " " + def
		m.undo = "DROP FOREIGN KEY " + quoteIdent(k.Name)
		var all, match []string
		for i, col := range k.Columns {
			all = append(all, "c."+quoteIdent(col)+" IS NOT NULL")
			match = append(match, "r."+quoteIdent(k.RefColumns[i])+" = c."+quoteIdent(col))
		}
		m.violation = "SELECT CONCAT(" + key + ", ' has (" + strings.ReplaceAll(strings.Join(k.Columns, ", "), "'", "''") + ")=(', CONCAT_WS(', ', c." +
			strings.Join(quoteIdents(k.Columns), ", c.") + "), ')') FROM " + quoteName(table) + " c WHERE " + strings.Join(all, " AND ") +
			" AND NOT EXISTS (SELECT 1 FROM " + quoteName(ref) + " r WHERE " + strings.Join(match, " AND ") + ") LIMIT 1"
		m.what = "the row %s, which " + ref.String() + " does not have"
	case model.ConstraintCheck:
		if k.PortableCheck == "" {
			return skip("its expression uses more than MySQL reads the same way (a function, a cast)")
		}
		expr := checkSQL(k.PortableCheck)
		m.add = "ADD CONSTRAINT " + quoteIdent(k.Name) + " CHECK (" + expr + ")"
		m.undo = "DROP CONSTRAINT " + quoteIdent(k.Name)
		m.violation = "SELECT " + key + " FROM " + quoteName(table) + " c WHERE NOT (" + expr + ") LIMIT 1"
		m.what = "the row %s fails " + expr
	default:
		return skip("an unknown kind of constraint")
	}
	return m, "", nil
}

// hasConstraint tells whether the table has m under its name already (a
// unique index must be unique).
func (c *Conn) hasConstraint(ctx context.Context, m *mysqlConstraint) (bool, error) {
	var n int
	var err error
	switch m.Kind {
	case model.ConstraintUnique, model.ConstraintUniqueIndex:
		err = c.db.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.STATISTICS
			WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = ? AND NON_UNIQUE = 0`, m.table.Schema, m.table.Table, m.Name).Scan(&n)
	default:
		err = c.db.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.TABLE_CONSTRAINTS
			WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = ? AND CONSTRAINT_TYPE IN ('FOREIGN KEY', 'CHECK')`, m.table.Schema, m.table.Table, m.Name).Scan(&n)
	}
	if err != nil {
		return false, outage(err, fmt.Errorf("mysql %s: read the constraints of %s: %w", c.host, m.table, c.scrubber.Err(err)))
	}
	return n > 0, nil
}

// findViolation refuses with the table, the constraint and a key when a
// row breaks m.
func (c *Conn) findViolation(ctx context.Context, m *mysqlConstraint) error {
	var key string
	err := c.db.QueryRowContext(ctx, m.violation).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return outage(err, fmt.Errorf("mysql %s: table %s: look for rows that break %s: %w", c.host, m.table, m.Name, c.scrubber.Err(err)))
	}
	return errs.BadConfig(fmt.Sprintf("table %s: constraint %s cannot be built: %s", m.table, m.Name, fmt.Sprintf(m.what, key)),
		"the destination holds rows the source does not allow (written there directly?): fix or delete them at the destination (ferry verify lists the differences), then run ferry cutover again; nothing was built")
}

// buildConstraints builds todo in order on one session with foreign key
// checks on, and drops what it built when one fails.
func (c *Conn) buildConstraints(ctx context.Context, todo []*mysqlConstraint) (err error) {
	if len(todo) == 0 {
		return nil
	}
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return outage(err, fmt.Errorf("mysql %s: build constraints: %w", c.host, c.scrubber.Err(err)))
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET SESSION foreign_key_checks = 1"); err != nil {
		return outage(err, fmt.Errorf("mysql %s: build constraints: %w", c.host, c.scrubber.Err(err)))
	}
	var built []*mysqlConstraint
	defer func() {
		if err == nil {
			return
		}
		undo, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		var failed []error
		for i := len(built) - 1; i >= 0; i-- {
			q := "ALTER TABLE " + quoteName(built[i].table) + " " + built[i].undo
			if _, uerr := conn.ExecContext(undo, q); uerr != nil {
				failed = append(failed, fmt.Errorf("%s: %w", q, c.scrubber.Err(uerr)))
			}
		}
		if len(failed) > 0 {
			err = fmt.Errorf("%w; and dropping what this cutover had built failed: %v", err, errors.Join(failed...))
		}
	}()
	for _, m := range todo {
		q := "ALTER TABLE " + quoteName(m.table) + " " + m.add
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return outage(err, fmt.Errorf("mysql %s: table %s: build constraint %s (%s): %w; fix what the error names and run ferry cutover again (what this cutover built was dropped)",
				c.host, m.table, m.Name, q, c.scrubber.Err(err)))
		}
		built = append(built, m)
	}
	return nil
}

// checkSQL is a check in the portable SQL (double-quoted names) in MySQL's
// (backquoted names; string literals stay, ferry's sessions read them
// without backslash escapes).
func checkSQL(portable string) string {
	var b strings.Builder
	for i := 0; i < len(portable); i++ {
		ch := portable[i]
		if ch != '"' && ch != '\'' {
			b.WriteByte(ch)
			continue
		}
		var lit strings.Builder
		for i++; i < len(portable); i++ {
			if portable[i] == ch {
				if i+1 < len(portable) && portable[i+1] == ch {
					lit.WriteByte(ch)
					i++
					continue
				}
				break
			}
			lit.WriteByte(portable[i])
		}
		if ch == '"' {
			b.WriteString(quoteIdent(lit.String()))
		} else {
			b.WriteString(quoteString(lit.String()))
		}
	}
	return b.String()
}

// rowKey is an expression naming a row c of a table with columns cols by
// its primary key, "(id)=(7)", for messages.
func rowKey(cols []destColumn) string {
	var names, vals []string
	for _, col := range cols {
		if col.key {
			names = append(names, col.name)
			vals = append(vals, "c."+quoteIdent(col.name))
		}
	}
	if len(names) == 0 {
		return "'a row'"
	}
	return "CONCAT(" + quoteString("("+strings.Join(names, ", ")+")=(") + ", CONCAT_WS(', ', " + strings.Join(vals, ", ") + "), ')')"
}

func columnOf(cols []destColumn, name string) (colType, bool) {
	for _, col := range cols {
		if strings.EqualFold(col.name, name) {
			return col.ct, true
		}
	}
	return colType{}, false
}

func quoteIdents(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = quoteIdent(n)
	}
	return out
}
