package mysql

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/model"
)

func TestMain(m *testing.M) {
	code := m.Run()
	mysqltest.StopShared()
	os.Exit(code)
}

// newDB creates a fresh database on the shared server and returns its name.
func newDB(t *testing.T, s *mysqltest.Server, prefix string) string {
	t.Helper()
	return s.CreateDatabase(t, prefix)
}

func openConn(t *testing.T, raw string) *Conn {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Open(ctx, u)
	if err != nil {
		t.Fatalf("open %s: %v", raw, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func tableNamed(t *testing.T, tables []*model.Table, name string) *model.Table {
	t.Helper()
	for _, tb := range tables {
		if tb.Namespace.Table == name {
			return tb
		}
	}
	t.Fatalf("no table %s among %v", name, tables)
	return nil
}

// readAll reads every row of t through a plan of the source.
func readAll(t *testing.T, src connector.Source, tb *model.Table, opts connector.PlanOptions) []model.Row {
	t.Helper()
	ctx := context.Background()
	plan, err := src.Plan(ctx, []*model.Table{tb}, opts)
	if err != nil {
		t.Fatal(err)
	}
	var rows []model.Row
	for _, p := range plan.Partitions {
		err := src.ReadPartition(ctx, tb, p, "", func(b *model.RowBatch) error {
			rows = append(rows, b.Rows...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return rows
}

// sameRow compares two rows value by value in canonical form.
func sameRow(t *testing.T, what string, cols []model.Column, got, want model.Row) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i, c := range cols {
		a, err := model.AppendCanonical(nil, c.Type, got[i])
		if err != nil {
			t.Errorf("%s, column %s: got %#v: %v", what, c.Name, got[i], err)
			continue
		}
		b, err := model.AppendCanonical(nil, c.Type, want[i])
		if err != nil {
			t.Errorf("%s, column %s: want %#v: %v", what, c.Name, want[i], err)
			continue
		}
		if string(a) != string(b) {
			t.Errorf("%s, column %s (%s): got %#v, want %#v", what, c.Name, c.Type.Native, got[i], want[i])
		}
	}
}

func contains(err error, parts ...string) bool {
	if err == nil {
		return false
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			return false
		}
	}
	return true
}
