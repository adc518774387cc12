//go:build cgo && duckdb

package duckdb

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/ferrydb/ferry/model"
)

// TestWritersAndAppliersOnTheSameKeys: copied batches written again by key
// (an incremental snapshot's chunks) and change batches of the same keys,
// side by side on connections of their own, all succeed: the file's writes
// by key take turns instead of failing on DuckDB's transaction conflicts.
func TestWritersAndAppliersOnTheSameKeys(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "busy.duckdb")
	c := openPath(t, path)
	tbl, rows := seedTable(model.Namespace{Schema: "main", Table: "items"}, 300)
	writeTable(t, c, tbl, rows)
	var g errgroup.Group
	for w := 0; w < 2; w++ {
		g.Go(func() error {
			wr, err := c.OpenWriter(ctx)
			if err != nil {
				return err
			}
			defer wr.Close()
			for i := 0; i < 20; i++ {
				if err := wr.WriteRows(ctx, &model.RowBatch{Table: tbl, Partition: fmt.Sprintf("w%d", w), Rows: rows}); err != nil {
					return fmt.Errorf("writer %d, round %d: %w", w, i, err)
				}
			}
			return nil
		})
		g.Go(func() error {
			ap, err := c.OpenApplier(ctx)
			if err != nil {
				return err
			}
			defer ap.Close()
			for i := 0; i < 20; i++ {
				tc := &model.TableChanges{Table: tbl}
				for k := int64(1); k <= 300; k++ {
					if k%3 == 0 {
						tc.Deletes = append(tc.Deletes, model.Row{k})
					} else {
						tc.Upserts = append(tc.Upserts, model.Row{k, fmt.Sprintf("applier %d round %d", w, i)})
					}
				}
				if err := ap.ApplyChanges(ctx, &model.ApplyBatch{Tables: []*model.TableChanges{tc}}); err != nil {
					return fmt.Errorf("applier %d, round %d: %w", w, i, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}
