package sqlite

import (
	"context"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// TestCheckTables: SQLite compares column names without ASCII case, so
// "ID" and "Id" are refused before the file exists, while "É" and "é" are
// two columns; a source type's text form becomes TEXT, with a conversion.
func TestCheckTables(t *testing.T) {
	ctx := context.Background()
	col := func(name string, typ model.Type) model.Column { return model.Column{Name: name, Type: typ} }
	integer, text := model.Type{Kind: model.KindInt64}, model.Type{Kind: model.KindText}
	t.Run("columns differing in case", func(t *testing.T) {
		c, path := newFile(t)
		tbl := &model.Table{Namespace: model.Namespace{Schema: "public", Table: "people"}, PrimaryKey: []string{"ID"},
			Columns: []model.Column{col("ID", integer), col("name", text), col("Id", text)}}
		for what, call := range map[string]func() error{
			"CheckTables":  func() error { _, err := c.CheckTables(ctx, []*model.Table{tbl}); return err },
			"CreateTables": func() error { return c.CreateTables(ctx, []*model.Table{tbl}) },
		} {
			err := call()
			if !errs.IsConfigError(err) {
				t.Fatalf("%s: want a configuration error, got %v", what, err)
			}
			for _, w := range []string{"public.people", `"ID" and "Id"`, "--tables '!public.people'"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: error lacks %q: %v", what, w, err)
				}
			}
		}
		if _, err := os.Stat(path); err == nil {
			t.Fatal("the refused tables created the file")
		}
	})
	t.Run("non-ASCII case is two columns", func(t *testing.T) {
		c, _ := newFile(t)
		tbl := &model.Table{Namespace: model.Namespace{Table: "accents"}, PrimaryKey: []string{"id"},
			Columns: []model.Column{col("id", integer), col("É", text), col("é", text)}}
		writeTable(t, c, tbl, []model.Row{{int64(1), "upper", "lower"}})
		if got := rowsOf(t, c, "accents")[1]; !reflect.DeepEqual(got, model.Row{int64(1), "upper", "lower"}) {
			t.Fatalf("row = %v", got)
		}
	})
	t.Run("text form", func(t *testing.T) {
		c, _ := newFile(t)
		hstore := model.Type{Kind: model.KindText, Native: "hstore", TextForm: true}
		tbl := &model.Table{Namespace: model.Namespace{Schema: "public", Table: "tags"}, PrimaryKey: []string{"id"},
			Columns: []model.Column{col("id", integer), col("attrs", hstore), col("note", model.Type{Kind: model.KindText, Native: "text"})}}
		conv, err := c.CheckTables(ctx, []*model.Table{tbl})
		if err != nil {
			t.Fatal(err)
		}
		want := []connector.Conversion{{Table: tbl.Namespace, Column: "attrs", From: "hstore", To: "TEXT"}}
		if !reflect.DeepEqual(conv, want) {
			t.Fatalf("conversions = %v, want %v", conv, want)
		}
	})
}

// TestAlterTableRefusesAColumnDifferingInCase: a column "NAME" added at the
// source next to "name" would be taken for it; the flow stops naming both
// (a failure of the running flow, not a usage error).
func TestAlterTableRefusesAColumnDifferingInCase(t *testing.T) {
	c, _ := newFile(t)
	from, rows := intTable("items", 3)
	writeTable(t, c, from, rows)
	to := from.Clone()
	to.Columns = append(to.Columns, model.Column{Name: "NAME", Type: from.Columns[1].Type, Nullable: true})
	err := c.AlterTable(context.Background(), from, model.SchemaChange{Table: to})
	if err == nil || errs.IsConfigError(err) || !strings.Contains(err.Error(), `columns "name" and "NAME"`) {
		t.Fatalf("alter adding NAME next to name: %v", err)
	}
}
