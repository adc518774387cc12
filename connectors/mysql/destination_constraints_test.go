package mysql

import (
	"context"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/model"
)

// BuildConstraints refuses a row that breaks a constraint, naming the
// table, the constraint and the key, and builds nothing; once the row is
// fixed it builds each (a unique key in place of the non-unique index of
// its name), lists what MySQL cannot build, and a second call finds them
// all there.
func TestBuildConstraintsRefusesAViolationAndBuildsNothing(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "cons")
	s.Exec(t, "USE `"+db+"`; CREATE TABLE parent (id bigint PRIMARY KEY, code varchar(20), KEY code_key (code));"+
		" CREATE TABLE child (id bigint PRIMARY KEY, parent_id bigint, qty int);"+
		" INSERT INTO parent VALUES (1, 'a'), (2, 'b'), (3, 'a'); INSERT INTO child VALUES (10, 1, 5), (11, 2, 6)")
	c := openConn(t, s.URL(db))
	ctx := context.Background()
	parent, child := model.Namespace{Schema: "app", Table: "parent"}, model.Namespace{Schema: "app", Table: "child"}
	cons := []model.Constraint{
		{Kind: model.ConstraintUnique, Table: parent, Name: "code_key", Columns: []string{"code"}},
		{Kind: model.ConstraintForeignKey, Table: child, Name: "child_parent", Columns: []string{"parent_id"}, RefTable: parent, RefColumns: []string{"id"}, OnDelete: "CASCADE"},
		{Kind: model.ConstraintCheck, Table: child, Name: "qty_positive", PortableCheck: `"qty" > 0`},
		{Kind: model.ConstraintCheck, Table: child, Name: "qty_even", Check: "((qty % 2) = 0)", Definition: "CHECK (((qty % 2) = 0))"},
	}
	catalog := func() string {
		var out string
		if err := c.db.QueryRowContext(ctx, `SELECT GROUP_CONCAT(x ORDER BY x SEPARATOR '; ') FROM (
			SELECT DISTINCT CONCAT(TABLE_NAME, '.', INDEX_NAME, ' unique=', 1 - NON_UNIQUE) AS x FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ?
			UNION ALL SELECT CONCAT(TABLE_NAME, '.', CONSTRAINT_NAME, ' ', CONSTRAINT_TYPE) FROM information_schema.TABLE_CONSTRAINTS
				WHERE TABLE_SCHEMA = ? AND CONSTRAINT_TYPE <> 'PRIMARY KEY') s`, db, db).Scan(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := catalog()
	_, err := c.BuildConstraints(ctx, cons)
	if !errs.IsConfigError(err) || !strings.Contains(err.Error(), "table "+db+".parent: constraint code_key cannot be built: (code)=(a) is held by more than one row") {
		t.Fatalf("want the duplicate named, got %v", err)
	}
	if after := catalog(); after != before {
		t.Fatalf("after the refusal:\n%s\nbefore:\n%s", after, before)
	}
	s.Exec(t, "UPDATE `"+db+"`.parent SET code = 'c' WHERE id = 3; INSERT INTO `"+db+"`.child VALUES (12, 99, 1)")
	_, err = c.BuildConstraints(ctx, cons)
	if !errs.IsConfigError(err) || !strings.Contains(err.Error(), "constraint child_parent cannot be built: the row (id)=(12) has (parent_id)=(99), which "+db+".parent does not have") {
		t.Fatalf("want the orphan named, got %v", err)
	}
	s.Exec(t, "DELETE FROM `"+db+"`.child WHERE id = 12")
	done, err := c.BuildConstraints(ctx, cons)
	if err != nil {
		t.Fatal(err)
	}
	if done.Built != 3 || done.Present != 0 || len(done.Skipped) != 1 || !strings.Contains(done.Skipped[0], "app.child.qty_even (CHECK (((qty % 2) = 0)))") {
		t.Fatalf("built %+v", done)
	}
	for _, want := range []string{"parent.code_key unique=1", "child.child_parent FOREIGN KEY", "child.qty_positive CHECK"} {
		if got := catalog(); !strings.Contains(got, want) {
			t.Errorf("the destination lacks %s: %s", want, got)
		}
	}
	if _, err := c.db.ExecContext(ctx, "INSERT INTO `"+db+"`.child VALUES (13, 1, 0)"); err == nil || !strings.Contains(err.Error(), "qty_positive") {
		t.Errorf("a row failing the check: %v", err)
	}
	if done, err = c.BuildConstraints(ctx, cons); err != nil || done.Built != 0 || done.Present != 3 {
		t.Fatalf("a second build: %+v, %v", done, err)
	}
}

// A check in the portable SQL reads the same in MySQL's.
func TestCheckSQL(t *testing.T) {
	for in, want := range map[string]string{
		`"qty" > 0 AND "qty" <= 1000`: "`qty` > 0 AND `qty` <= 1000",
		`"we""ird" <> 'it''s "x"'`:    "`we\"ird` <> 'it''s \"x\"'",
		"\"a`b\" IS NOT NULL":         "`a``b` IS NOT NULL",
		`( "code" <> 'gone' )`:        "( `code` <> 'gone' )",
	} {
		if got := checkSQL(in); got != want {
			t.Errorf("checkSQL(%q) = %q, want %q", in, got, want)
		}
	}
}
