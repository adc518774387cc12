package file

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connector/conformance"
	"github.com/ferrydb/ferry/model"
)

// seedDir writes the conformance suite's source table (ids 1..n, v =
// "v<id>") into dir through the connector's own destination.
func seedDir(t *testing.T, dir, format string, n int) model.Namespace {
	t.Helper()
	ctx := context.Background()
	tbl := &model.Table{
		Namespace:  model.Namespace{Schema: "public", Table: "items"},
		PrimaryKey: []string{"id"},
		Columns: []model.Column{
			{Name: "id", Type: typ(model.KindInt64)},
			{Name: "v", Type: typ(model.KindText), Nullable: true},
		},
	}
	rows := make([]model.Row, n)
	for i := range rows {
		rows[i] = model.Row{int64(i + 1), fmt.Sprintf("v%d", i+1)}
	}
	c := openDir(t, dir, format)
	defer c.Close()
	if err := c.CreateTables(ctx, []*model.Table{tbl}); err != nil {
		t.Fatal(err)
	}
	w, err := c.OpenWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRows(ctx, &model.RowBatch{Table: tbl, Partition: "seed", Rows: rows, Cursor: "end"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.FinishTable(ctx, tbl); err != nil {
		t.Fatal(err)
	}
	return tbl.Namespace
}

func TestConformance(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			conformance.Source(t, conformance.SourceHarness{
				Open: func(t *testing.T, n int) (connector.Source, model.Namespace) {
					dir := filepath.Join(t.TempDir(), "src")
					ns := seedDir(t, dir, format, n)
					return openDir(t, dir, format), ns
				},
			})
			dir := filepath.Join(t.TempDir(), "dst")
			conformance.Destination(t, conformance.DestinationHarness{
				Schema: "public",
				Open:   func(t *testing.T) connector.Destination { return openDir(t, dir, format) },
			})
			// With changes=files the connector is an event destination too;
			// its copy path is the same.
			cdir := filepath.Join(t.TempDir(), "dst-changes")
			conformance.Destination(t, conformance.DestinationHarness{
				Schema: "public",
				Open:   func(t *testing.T) connector.Destination { return openChanges(t, cdir, format) },
			})
		})
	}
}
