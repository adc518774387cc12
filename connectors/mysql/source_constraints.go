package mysql

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

var _ connector.ConstraintReader = (*Conn)(nil)

// Constraints lists the unique keys (but the one that is the table's key),
// foreign keys with their actions and checks of tables, in the portable
// form (model/portable.go): MySQL's own SQL is no other engine's. A unique
// prefix key, or a check using more than comparisons and logic (a
// function, MySQL's || or &&), keeps its MySQL definition in Unportable.
// They are read at cutover, so a constraint added while the flow ran is
// included.
func (c *Conn) Constraints(ctx context.Context, tables []model.Namespace) ([]model.Constraint, error) {
	if len(tables) == 0 {
		return nil, nil
	}
	want := map[model.Namespace]bool{}
	var dbs []string
	for _, t := range tables {
		if !want[model.Namespace{Schema: t.Schema}] {
			want[model.Namespace{Schema: t.Schema}] = true
			dbs = append(dbs, t.Schema)
		}
		want[t] = true
	}
	ph := strings.TrimSuffix(strings.Repeat("?,", len(dbs)), ",")
	args := make([]any, len(dbs))
	for i, d := range dbs {
		args[i] = d
	}
	where := func(err error) error {
		return outage(err, fmt.Errorf("mysql %s: read constraints of %s: %w", c.host, strings.Join(dbs, ", "), c.scrubber.Err(err)))
	}
	var out []model.Constraint
	indexes, err := c.readIndexes(ctx, ph, args)
	if err != nil {
		return nil, where(err)
	}
	for _, t := range tables {
		key := keyIndex(indexes[t])
		for _, ix := range indexes[t] {
			if !ix.unique || ix == key {
				continue
			}
			k := model.Constraint{Kind: model.ConstraintUnique, Table: t, Name: ix.name, Columns: ix.cols}
			if !ix.portable {
				k.Columns, k.Unportable = nil, ix.sourceDDL(t)
			}
			out = append(out, k)
		}
	}
	fks, err := c.foreignKeys(ctx, ph, args, want)
	if err != nil {
		return nil, where(err)
	}
	checks, err := c.checks(ctx, ph, args, want)
	if err != nil {
		return nil, where(err)
	}
	return append(append(out, fks...), checks...), nil
}

// keyIndex is the index the table's primary key is: PRIMARY, else the
// first unique index (by name) of NOT NULL columns, as readKeys takes it.
func keyIndex(list []*sourceIndex) *sourceIndex {
	for _, ix := range list {
		if ix.name == "PRIMARY" {
			return ix
		}
	}
	for _, ix := range list {
		if ix.unique && !ix.nullable && len(ix.cols) > 0 {
			return ix
		}
	}
	return nil
}

// foreignKeys reads the foreign keys of the wanted tables.
func (c *Conn) foreignKeys(ctx context.Context, ph string, args []any, want map[model.Namespace]bool) ([]model.Constraint, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT rc.CONSTRAINT_SCHEMA, rc.TABLE_NAME, rc.CONSTRAINT_NAME, rc.UPDATE_RULE, rc.DELETE_RULE,
			k.COLUMN_NAME, k.REFERENCED_TABLE_SCHEMA, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME
		FROM information_schema.REFERENTIAL_CONSTRAINTS rc
		JOIN information_schema.KEY_COLUMN_USAGE k ON k.CONSTRAINT_SCHEMA = rc.CONSTRAINT_SCHEMA
			AND k.CONSTRAINT_NAME = rc.CONSTRAINT_NAME AND k.TABLE_NAME = rc.TABLE_NAME
		WHERE rc.CONSTRAINT_SCHEMA IN (`+ph+`) AND k.REFERENCED_COLUMN_NAME IS NOT NULL
		ORDER BY rc.CONSTRAINT_SCHEMA, rc.TABLE_NAME, rc.CONSTRAINT_NAME, k.ORDINAL_POSITION`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []model.Constraint
	for rows.Next() {
		var ns, ref model.Namespace
		var name, onUpdate, onDelete, col, refCol string
		if err := rows.Scan(&ns.Schema, &ns.Table, &name, &onUpdate, &onDelete, &col, &ref.Schema, &ref.Table, &refCol); err != nil {
			return nil, err
		}
		if !want[ns] {
			continue
		}
		if n := len(out); n == 0 || out[n-1].Table != ns || out[n-1].Name != name {
			out = append(out, model.Constraint{Kind: model.ConstraintForeignKey, Table: ns, Name: name, RefTable: ref,
				OnDelete: strings.ToUpper(onDelete), OnUpdate: strings.ToUpper(onUpdate)})
		}
		k := &out[len(out)-1]
		k.Columns = append(k.Columns, col)
		k.RefColumns = append(k.RefColumns, refCol)
	}
	return out, rows.Err()
}

// checks reads the CHECK constraints of the wanted tables (MariaDB 10.2
// and MySQL 8.0.16 on; older servers have none), but MariaDB's json_valid
// checks, which are its JSON type.
func (c *Conn) checks(ctx context.Context, ph string, args []any, want map[model.Namespace]bool) ([]model.Constraint, error) {
	q := `SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
		WHERE CONSTRAINT_SCHEMA IN (` + ph + `) ORDER BY 1, 2, 3`
	if !c.server.mariadb {
		q = `SELECT tc.CONSTRAINT_SCHEMA, tc.TABLE_NAME, tc.CONSTRAINT_NAME, cc.CHECK_CLAUSE
			FROM information_schema.TABLE_CONSTRAINTS tc JOIN information_schema.CHECK_CONSTRAINTS cc
				ON cc.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA AND cc.CONSTRAINT_NAME = tc.CONSTRAINT_NAME
			WHERE tc.CONSTRAINT_TYPE = 'CHECK' AND tc.CONSTRAINT_SCHEMA IN (` + ph + `) ORDER BY 1, 2, 3`
	}
	rows, err := c.db.QueryContext(ctx, q, args...)
	if err != nil {
		if code := driverErrCode(err); code == 1109 || code == 1146 {
			return nil, nil // no CHECK_CONSTRAINTS table: no checks
		}
		return nil, err
	}
	defer rows.Close()
	var out []model.Constraint
	for rows.Next() {
		var ns model.Namespace
		var name, clause string
		if err := rows.Scan(&ns.Schema, &ns.Table, &name, &clause); err != nil {
			return nil, err
		}
		if !want[ns] || clause == "json_valid("+quoteIdent(name)+")" {
			continue
		}
		k := model.Constraint{Kind: model.ConstraintCheck, Table: ns, Name: name}
		if expr, ok := portableCheck(clause); ok {
			k.PortableCheck = expr
		} else {
			k.Unportable = "CHECK (" + clause + ")"
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// checkWords are the words a portable check may use.
var checkWords = map[string]bool{"AND": true, "OR": true, "NOT": true, "IS": true, "NULL": true, "IN": true,
	"BETWEEN": true, "LIKE": true, "TRUE": true, "FALSE": true}

// portableCheck rewrites a MySQL check expression into standard SQL
// (model/portable.go), or says it cannot: only quoted column names, string
// literals, numbers, comparisons, arithmetic and the logic of checkWords
// pass; a function call, a bare word, || and && (logic in MySQL, not
// elsewhere) do not.
func portableCheck(clause string) (string, bool) {
	var out []string
	punct := map[int]bool{} // positions in out of single punctuation
	for _, t := range tokenize(clause) {
		switch t.kind {
		case tokQuoted:
			out = append(out, `"`+strings.ReplaceAll(t.text, `"`, `""`)+`"`)
		case tokString:
			if strings.ContainsRune(t.text, '\\') {
				return "", false
			}
			out = append(out, "'"+strings.ReplaceAll(t.text, "'", "''")+"'")
		case tokNumber:
			if _, err := strconv.ParseFloat(t.text, 64); err != nil {
				return "", false
			}
			out = append(out, t.text)
		case tokWord:
			w := strings.ToUpper(t.text)
			if !checkWords[w] {
				return "", false
			}
			out = append(out, w)
		case tokPunct:
			if !strings.Contains("()<>=!+-*/,", t.text) {
				return "", false
			}
			punct[len(out)] = true
			out = append(out, t.text)
		}
	}
	// Operators of two characters come as two tokens.
	var merged []string
	for i := 0; i < len(out); i++ {
		o := out[i]
		if punct[i] && i+1 < len(out) && punct[i+1] {
			switch pair := o + out[i+1]; pair {
			case "<=", ">=", "<>", "!=":
				if i+2 < len(out) && punct[i+2] && out[i+2] == ">" {
					return "", false // <=>, MySQL's null-safe equality
				}
				merged = append(merged, pair)
				i++
				continue
			case "->":
				return "", false // MySQL's JSON path operator
			}
		}
		if o == "!" {
			return "", false // MySQL's NOT
		}
		merged = append(merged, o)
	}
	return strings.Join(merged, " "), len(merged) > 0
}
