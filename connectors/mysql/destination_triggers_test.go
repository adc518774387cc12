package mysql

import (
	"context"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/model"
)

// A destination table that exists with a trigger is refused before
// anything is written, naming the trigger and the statements that let the
// flow run; without the trigger it is accepted.
func TestDestinationRefusesTablesWithTriggers(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "trig")
	s.Exec(t, "USE `"+db+"`; CREATE TABLE people (id bigint PRIMARY KEY, name varchar(20)); CREATE TABLE audit (n int);"+
		" CREATE TRIGGER people_audit AFTER INSERT ON people FOR EACH ROW INSERT INTO audit VALUES (1)")
	c := openConn(t, s.URL(db))
	ctx := context.Background()
	people := &model.Table{Namespace: model.Namespace{Schema: "public", Table: "people"}, PrimaryKey: []string{"id"},
		Columns: []model.Column{{Name: "id", Type: model.Type{Kind: model.KindInt64}}, {Name: "name", Type: model.Type{Kind: model.KindText, Length: 20}, Nullable: true}}}
	for what, call := range map[string]func() error{
		"CheckTables":  func() error { _, err := c.CheckTables(ctx, []*model.Table{people}); return err },
		"CreateTables": func() error { return c.CreateTables(ctx, []*model.Table{people}) },
	} {
		err := call()
		if !errs.IsConfigError(err) || !strings.Contains(err.Error(), db+".people (trigger people_audit)") {
			t.Fatalf("%s: want a configuration error naming the table and its trigger, got %v", what, err)
		}
		if !strings.Contains(err.Error(), "DROP TRIGGER `"+db+"`.`people_audit`") {
			t.Fatalf("%s: the fix does not give the DROP TRIGGER: %v", what, err)
		}
	}
	s.Exec(t, "DROP TRIGGER `"+db+"`.`people_audit`")
	if _, err := c.CheckTables(ctx, []*model.Table{people}); err != nil {
		t.Fatalf("without its trigger: %v", err)
	}
}
