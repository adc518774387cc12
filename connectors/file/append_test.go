package file

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// AppendTable adds each run's parts to the table's file once, in every
// format, including after a crash at each step of an append: before its
// marker, after the marker and before the rename, after the rename and
// before the parts were deleted.
func TestAppendTableAppendsEachPartOnce(t *testing.T) {
	ctx := context.Background()
	crashes := []string{"none", "staged without marker", "marker before rename", "renamed, parts left"}
	for _, format := range []string{"jsonl", "csv", "parquet"} {
		for _, crash := range crashes {
			t.Run(format+"/"+crash, func(t *testing.T) {
				dir := t.TempDir()
				c := openDir(t, dir, format)
				tbl := &model.Table{Namespace: model.Namespace{Table: "log"}, Columns: []model.Column{
					{Name: "id", Type: typ(model.KindInt64)}, {Name: "note", Type: typ(model.KindText), Nullable: true}}}
				if err := c.CreateTables(ctx, []*model.Table{tbl}); err != nil {
					t.Fatal(err)
				}
				next := int64(1)
				run := func(name string, ranges, rows int) {
					t.Helper()
					w, err := c.OpenWriter(ctx)
					if err != nil {
						t.Fatal(err)
					}
					for r := range ranges {
						var b []model.Row
						for range rows {
							b = append(b, model.Row{next, fmt.Sprintf("row %d", next)})
							next++
						}
						if err := w.WriteRows(ctx, &model.RowBatch{Table: tbl, Partition: fmt.Sprintf("log/%s/%d", name, r), Rows: b}); err != nil {
							t.Fatal(err)
						}
					}
				}
				run("a", 2, 3)
				if err := c.AppendTable(ctx, tbl); err != nil {
					t.Fatal(err)
				}
				run("b", 3, 2)
				data := c.dataFile(tbl.Namespace)
				final := filepath.Join(dir, data)
				marker := filepath.Join(dir, "."+data+appendSuffix)
				staged := filepath.Join(dir, "."+data+stagedSuffix)
				if crash != "none" {
					names, err := fileNames(dir)
					if err != nil {
						t.Fatal(err)
					}
					parts := listParts(names, data)
					if err := c.stage(ctx, tbl, staged, final, true, parts); err != nil {
						t.Fatal(err)
					}
					if crash != "staged without marker" {
						m := appendMarker{Staged: filepath.Base(staged)}
						for _, p := range parts {
							m.Parts = append(m.Parts, p.name)
						}
						b, _ := json.Marshal(m)
						if err := writeFileAtomic(marker, b); err != nil {
							t.Fatal(err)
						}
					}
					if crash == "renamed, parts left" {
						if err := os.Rename(staged, final); err != nil {
							t.Fatal(err)
						}
					}
					c = openDir(t, dir, format) // the process that crashed is gone
				}
				if err := c.AppendTable(ctx, tbl); err != nil {
					t.Fatal(err)
				}
				if err := c.AppendTable(ctx, tbl); err != nil { // again: nothing to add
					t.Fatal(err)
				}
				got, _, _ := readAll(t, openDir(t, dir, format), connector.PlanOptions{})
				var ids []int64
				for _, r := range got["log"] {
					ids = append(ids, r[0].(int64))
				}
				sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
				if len(ids) != 12 || ids[0] != 1 || ids[11] != 12 {
					t.Fatalf("the table holds ids %v, want 1 to 12 once each", ids)
				}
				for i := 1; i < len(ids); i++ {
					if ids[i] == ids[i-1] {
						t.Fatalf("id %d appended twice: %v", ids[i], ids)
					}
				}
				for _, n := range dirNames(t, dir) {
					if filepath.Base(n) == filepath.Base(marker) || filepath.Base(n) == filepath.Base(staged) || len(listParts([]string{n}, data)) > 0 {
						t.Fatalf("%s left in the directory: %v", n, dirNames(t, dir))
					}
				}
			})
		}
	}
}
