package postgres_test

import (
	"context"
	"testing"

	"github.com/ferrydb/ferry/model"
)

// TestCheckTablesTextForm: hstore and citext are read as their text form
// (TextForm); a PostgreSQL destination keeps the types, creating the
// extensions it lacks (destination_extensions_test.go), and says nothing.
func TestCheckTablesTextForm(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	p.srv.Exec(t, p.src, `CREATE EXTENSION hstore; CREATE EXTENSION citext;
		CREATE TABLE tags (id int PRIMARY KEY, attrs hstore, emails citext[], note varchar(20))`)
	tables, err := open(t, p.srcURL()).Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var tags *model.Table
	for _, tb := range tables {
		if tb.Namespace.Table == "tags" {
			tags = tb
		}
	}
	if tags == nil {
		t.Fatalf("no table tags among %d", len(tables))
	}
	for _, c := range tags.Columns {
		if want := c.Name == "attrs" || c.Name == "emails"; c.Type.TextForm != want {
			t.Errorf("column %s (%s): TextForm = %v", c.Name, c.Type.Native, c.Type.TextForm)
		}
	}
	if conv, err := open(t, p.dstURL()).CheckTables(ctx, []*model.Table{tags}); err != nil || len(conv) != 0 {
		t.Fatalf("without the extensions: conversions = %v, %v", conv, err)
	}
	p.srv.Exec(t, p.dst, `CREATE EXTENSION hstore; CREATE EXTENSION citext`)
	if conv, err := open(t, p.dstURL()).CheckTables(ctx, []*model.Table{tags}); err != nil || len(conv) != 0 {
		t.Fatalf("with the extensions: conversions = %v, %v", conv, err)
	}
}
