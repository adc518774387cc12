package mysql

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/model"
)

// TestCheckTables: MariaDB column names ignore case, so a table with "ID"
// and "Id" is refused before anything is created; a source type's text
// form becomes a text column, reported as a conversion.
func TestCheckTables(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "check")
	c := openConn(t, s.URL(db))
	ctx := context.Background()
	integer, text := model.Type{Kind: model.KindInt64}, model.Type{Kind: model.KindText}
	people := &model.Table{Namespace: model.Namespace{Schema: "public", Table: "people"}, PrimaryKey: []string{"ID"},
		Columns: []model.Column{{Name: "ID", Type: integer}, {Name: "Id", Type: text}}}
	for what, call := range map[string]func() error{
		"CheckTables":  func() error { _, err := c.CheckTables(ctx, []*model.Table{people}); return err },
		"CreateTables": func() error { return c.CreateTables(ctx, []*model.Table{people}) },
	} {
		err := call()
		if !connector.IsConfigError(err) || !strings.Contains(err.Error(), `columns "ID" and "Id"`) || !strings.Contains(err.Error(), "MySQL") {
			t.Fatalf("%s: want a configuration error naming both columns, got %v", what, err)
		}
	}
	var n int
	if err := c.db.QueryRowContext(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = ?", db).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the refused table left %d tables in %s (%v)", n, db, err)
	}

	tags := &model.Table{Namespace: model.Namespace{Schema: "public", Table: "tags"}, PrimaryKey: []string{"id"},
		Columns: []model.Column{{Name: "id", Type: integer}, {Name: "email", Type: model.Type{Kind: model.KindText, Native: "citext", TextForm: true}}}}
	conv, err := c.CheckTables(ctx, []*model.Table{tags})
	if err != nil {
		t.Fatal(err)
	}
	if len(conv) != 1 || conv[0].Column != "email" || conv[0].From != "citext" || !strings.Contains(strings.ToLower(conv[0].To), "text") ||
		!reflect.DeepEqual(conv[0].Table, model.Namespace{Schema: "public", Table: "tags"}) {
		t.Fatalf("conversions = %v", conv)
	}
}
