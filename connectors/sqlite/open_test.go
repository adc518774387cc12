package sqlite

import (
	"context"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

func TestURLForms(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	good := map[string]string{
		"sqlite:///tmp/ferry.db":          "/tmp/ferry.db",
		"sqlite:/tmp/ferry.db":            "/tmp/ferry.db",
		"sqlite://localhost/tmp/ferry.db": "/tmp/ferry.db",
		"sqlite:///tmp/with%20space.db":   "/tmp/with space.db",
		"sqlite:rel/ferry.db":             filepath.Join(wd, "rel/ferry.db"),
		"sqlite:ferry.db":                 filepath.Join(wd, "ferry.db"),
		"sqlite://./rel/ferry.db":         filepath.Join(wd, "rel/ferry.db"),
		"sqlite:///tmp/../tmp/x.db":       "/tmp/x.db",
	}
	for raw, want := range good {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pathFromURL(u)
		if err != nil || got != want {
			t.Errorf("%s: path %q, %v; want %q", raw, got, err, want)
		}
	}
	for _, raw := range []string{
		"sqlite://db.example.com/x.db",
		"sqlite://",
		"sqlite:///",
		"sqlite::memory:",
		"sqlite:///tmp/x.db?mode=ro",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if p, err := pathFromURL(u); !errs.IsConfigError(err) {
			t.Errorf("%s: path %q, %v; want a configuration error", raw, p, err)
		}
	}
}

func TestRegistered(t *testing.T) {
	r, ok := connector.Lookup("sqlite")
	if !ok {
		t.Fatal("sqlite is not registered")
	}
	got := connector.Discover(r.Prototype).Abilities
	want := connector.Abilities{Source: true, Destination: true, Apply: true, Checkpoints: true, SchemaChanges: true, EmptyTables: true, CheckTables: true, ReadKeys: true}
	if got != want {
		t.Errorf("abilities %+v, want %+v", got, want)
	}
	c, err := connector.Open(context.Background(), r.Example)
	if err != nil {
		t.Fatalf("open the example URL: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestMissingSourceFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.db")
	ctx := context.Background()
	c, err := connector.Open(ctx, "sqlite://"+path)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}()
	src := c.(connector.Source)
	_, err = src.Tables(ctx)
	if !errs.IsConfigError(err) || !strings.Contains(err.Error(), "sqlite file "+path+" does not exist") {
		t.Errorf("tables of a missing file: %v", err)
	}
	_, err = src.Plan(ctx, nil, connector.PlanOptions{})
	if !errs.IsConfigError(err) {
		t.Errorf("plan of a missing file: %v", err)
	}
	tbl, _ := intTable("items", 0)
	err = src.ReadPartition(ctx, tbl, model.Partition{ID: "main.items/0000"}, "", func(*model.RowBatch) error { return nil })
	if !errs.IsConfigError(err) {
		t.Errorf("read of a missing file: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the source side created %s: %v", path, err)
	}
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Stat(path + suffix); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the source side created %s%s", path, suffix)
		}
	}
}

func TestDestinationCreatesFile(t *testing.T) {
	dir := t.TempDir()
	c := openPath(t, filepath.Join(dir, "new.db"))
	tbl, rows := intTable("items", 5)
	writeTable(t, c, tbl, rows)
	if _, err := os.Stat(filepath.Join(dir, "new.db")); err != nil {
		t.Errorf("destination file: %v", err)
	}
	// A missing directory is a configuration error, not a created tree.
	c2 := openPath(t, filepath.Join(dir, "no", "such", "dir.db"))
	if err := c2.CreateTables(context.Background(), []*model.Table{tbl}); !errs.IsConfigError(err) {
		t.Errorf("destination in a missing directory: %v", err)
	}
}

func TestPlanRefusesCDC(t *testing.T) {
	c, _ := newFile(t)
	tbl, rows := intTable("items", 5)
	writeTable(t, c, tbl, rows)
	_, err := c.Plan(context.Background(), []*model.Table{tbl}, connector.PlanOptions{CDC: true, Flow: "f"})
	if !errs.IsConfigError(err) || !strings.Contains(err.Error(), "no change data capture") || !strings.Contains(err.Error(), "--mode snapshot") {
		t.Errorf("plan with CDC: %v", err)
	}
}
