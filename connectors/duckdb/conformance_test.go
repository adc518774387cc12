//go:build cgo && duckdb

package duckdb

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connector/conformance"
	"github.com/ferrydb/ferry/model"
)

// openPath opens the connector on path and closes it with the test.
func openPath(t testing.TB, path string) *Conn {
	t.Helper()
	c, err := Open(context.Background(), &url.URL{Scheme: "duckdb", Path: path})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close %s: %v", path, err)
		}
	})
	return c
}

// writeTable creates tbl and writes rows in one batch.
func writeTable(t testing.TB, c *Conn, tbl *model.Table, rows []model.Row) {
	t.Helper()
	ctx := context.Background()
	if err := c.CreateTables(ctx, []*model.Table{tbl}); err != nil {
		t.Fatalf("create %s: %v", tbl.Namespace, err)
	}
	w, err := c.OpenWriter(ctx)
	if err != nil {
		t.Fatalf("open writer: %v", err)
	}
	if err := w.WriteRows(ctx, &model.RowBatch{Table: tbl, Partition: "test", Rows: rows}); err != nil {
		t.Fatalf("write %s: %v", tbl.Namespace, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close writer: %v", err)
	}
}

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
			path := filepath.Join(t.TempDir(), "src.duckdb")
			tbl, rows := seedTable(model.Namespace{Schema: "main", Table: "items"}, n)
			writeTable(t, openPath(t, path), tbl, rows)
			c, err := Open(t.Context(), &url.URL{Scheme: "duckdb", Path: path})
			if err != nil {
				t.Fatal(err)
			}
			return c, tbl.Namespace
		},
	})
}

func TestConformanceDestination(t *testing.T) {
	// Named like the suite's schema: DuckDB would call the file's catalog "shop" too.
	path := filepath.Join(t.TempDir(), "shop.duckdb")
	conformance.Destination(t, conformance.DestinationHarness{
		Schema: "shop",
		Open: func(t *testing.T) connector.Destination {
			c, err := Open(t.Context(), &url.URL{Scheme: "duckdb", Path: path})
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
	})
}
