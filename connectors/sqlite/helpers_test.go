package sqlite

import (
	"bytes"
	"context"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// openPath opens the sqlite connector on path and closes it with the test.
func openPath(t testing.TB, path string) *Conn {
	t.Helper()
	c, err := Open(context.Background(), &url.URL{Scheme: "sqlite", Path: path})
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

// newFile opens a connector on a fresh file in the test's directory.
func newFile(t testing.TB) (*Conn, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ferry.db")
	return openPath(t, path), path
}

// writeTable creates t and writes rows in one batch.
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

// readAll discovers the file's tables, plans them and reads every
// partition, returning the discovered tables and the rows by table name.
func readAll(t testing.TB, c *Conn, opts connector.PlanOptions) (map[string]*model.Table, map[string][]model.Row, *model.Plan) {
	t.Helper()
	ctx := context.Background()
	tables, err := c.Tables(ctx)
	if err != nil {
		t.Fatalf("tables: %v", err)
	}
	plan, err := c.Plan(ctx, tables, opts)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	byName := map[string]*model.Table{}
	for _, tbl := range tables {
		byName[tbl.Namespace.Table] = tbl
	}
	rows := map[string][]model.Row{}
	for _, p := range plan.Partitions {
		tbl := plan.Table(p.Table)
		if tbl == nil {
			t.Fatalf("partition %s of unknown table", p.ID)
		}
		err := c.ReadPartition(ctx, tbl, p, "", func(b *model.RowBatch) error {
			if b.Partition != p.ID || b.Table != tbl {
				t.Errorf("batch of partition %s says partition %q, table %v", p.ID, b.Partition, b.Table.Namespace)
			}
			rows[tbl.Namespace.Table] = append(rows[tbl.Namespace.Table], b.Rows...)
			return nil
		})
		if err != nil {
			t.Fatalf("read %s: %v", p.ID, err)
		}
	}
	return byName, rows, plan
}

// sameValue compares two canonical values as verify would.
func sameValue(t testing.TB, typ model.Type, a, b any) bool {
	t.Helper()
	ea, err := model.AppendCanonical(nil, typ, a)
	if err != nil {
		t.Fatalf("canonical %s %#v: %v", typ, a, err)
	}
	eb, err := model.AppendCanonical(nil, typ, b)
	if err != nil {
		t.Fatalf("canonical %s %#v: %v", typ, b, err)
	}
	return bytes.Equal(ea, eb)
}
