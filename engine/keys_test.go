package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connectors/null"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// deferringDest is a destination that can defer primary keys
// (connector.KeyDeferrer). It notes how the engine created its tables and
// which it finished, fails FinishTable while failFinish is set, and refuses
// changes to a table not finished yet, as a table without its key would.
type deferringDest struct {
	*null.Destination
	mu         sync.Mutex
	created    []string // "copy" or "plain", one per CreateTables call
	finished   map[model.Namespace]bool
	failFinish bool
	early      []string // changes that reached a table before it was finished
}

var errFinish = errors.New("finish failed")

func (d *deferringDest) CreateTables(ctx context.Context, tables []*model.Table) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.created = append(d.created, "plain")
	return nil
}

func (d *deferringDest) CreateTablesForCopy(ctx context.Context, tables []*model.Table) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.created = append(d.created, "copy")
	return nil
}

func (d *deferringDest) FinishTable(ctx context.Context, t *model.Table) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failFinish {
		return errFinish
	}
	d.finished[t.Namespace] = true
	return nil
}

func (d *deferringDest) OpenApplier(ctx context.Context) (connector.ChangeWriter, error) {
	w, err := d.Destination.OpenApplier(ctx)
	if err != nil {
		return nil, err
	}
	return &checkingApplier{ChangeWriter: w, d: d}, nil
}

type checkingApplier struct {
	connector.ChangeWriter
	d *deferringDest
}

func (a *checkingApplier) ApplyChanges(ctx context.Context, b *model.ApplyBatch) error {
	a.d.mu.Lock()
	for _, tc := range b.Tables {
		if len(tc.Upserts)+len(tc.Deletes) > 0 && !a.d.finished[tc.Table.Namespace] {
			a.d.early = append(a.d.early, tc.Table.Namespace.String())
		}
	}
	a.d.mu.Unlock()
	return a.ChangeWriter.ApplyChanges(ctx, b)
}

var _ connector.KeyDeferrer = (*deferringDest)(nil)

func runWith(t *testing.T, cfg flow.Config, dst connector.Connector) error {
	t.Helper()
	ctx := context.Background()
	e, closeAll := newTestEngine(t, cfg, dst, slog.New(slog.DiscardHandler))
	defer closeAll()
	return e.Run(ctx, ctx)
}

// TestKeysAreDeferredOnlyWhileTheCopyIsToRun: the engine creates tables
// for the copy (keys deferred) only while the copy is still to run; a
// failed finish stops the flow before any change is applied, and the next
// run finishes the tables before it applies changes; once the copy is
// done, and in a flow that only streams changes, tables are created with
// their keys.
func TestKeysAreDeferredOnlyWhileTheCopyIsToRun(t *testing.T) {
	dst := &deferringDest{Destination: &null.Destination{}, finished: map[model.Namespace]bool{}, failFinish: true}
	cfg := flow.Config{Source: "fake://?tables=2&rows=2000&changes=3000", Destination: "null://", StateDir: t.TempDir(),
		Until: "caught-up", PartitionRows: 500}
	if err := runWith(t, cfg, dst); !errors.Is(err, errFinish) {
		t.Fatalf("first run: %v, want the failed finish", err)
	}
	if _, changes := dst.Counts(); changes != 0 {
		t.Fatalf("%d changes applied before the tables were finished", changes)
	}
	dst.failFinish = false
	if err := runWith(t, cfg, dst); err != nil {
		t.Fatal(err)
	}
	if len(dst.finished) != 2 {
		t.Fatalf("finished %d tables, want 2", len(dst.finished))
	}
	if _, changes := dst.Counts(); changes == 0 || len(dst.early) > 0 {
		t.Fatalf("%d changes applied, %d to tables not finished yet (%v)", changes, len(dst.early), dst.early)
	}
	if err := runWith(t, cfg, dst); err != nil {
		t.Fatal(err)
	}
	cdc := cfg
	cdc.StateDir, cdc.Mode = t.TempDir(), flow.ModeCDC
	if err := runWith(t, cdc, dst); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(dst.created), "[copy copy plain plain]"; got != want {
		t.Fatalf("tables created %s, want %s (two runs with the copy to do, one after it, one without copy)", got, want)
	}
}
