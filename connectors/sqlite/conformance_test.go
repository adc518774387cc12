package sqlite

import (
	"fmt"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connector/conformance"
	"github.com/ferrydb/ferry/model"
)

// seedTable is the conformance suite's source table: ids 1..n, v = "v<id>".
func seedTable(ns model.Namespace, n int) (*model.Table, []model.Row) {
	tbl := &model.Table{
		Namespace:  ns,
		PrimaryKey: []string{"id"},
		Columns: []model.Column{
			{Name: "id", Type: model.Type{Kind: model.KindInt64}},
			{Name: "v", Type: model.Type{Kind: model.KindText}, Nullable: true},
		},
	}
	rows := make([]model.Row, n)
	for i := range rows {
		rows[i] = model.Row{int64(i + 1), fmt.Sprintf("v%d", i+1)}
	}
	return tbl, rows
}

func TestConformanceSource(t *testing.T) {
	conformance.Source(t, conformance.SourceHarness{
		Open: func(t *testing.T, n int) (connector.Source, model.Namespace) {
			path := filepath.Join(t.TempDir(), "src.db")
			tbl, rows := seedTable(model.Namespace{Schema: mainSchema, Table: "items"}, n)
			writeTable(t, openPath(t, path), tbl, rows)
			c, err := Open(t.Context(), &url.URL{Scheme: "sqlite", Path: path})
			if err != nil {
				t.Fatal(err)
			}
			return c, tbl.Namespace
		},
	})
}

func TestConformanceDestination(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dst.db")
	conformance.Destination(t, conformance.DestinationHarness{
		Schema: mainSchema,
		Open: func(t *testing.T) connector.Destination {
			c, err := Open(t.Context(), &url.URL{Scheme: "sqlite", Path: path})
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
	})
}
