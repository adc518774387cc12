package engine_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/state"
)

// refusingSource is a source whose preflight refuses every plan.
type refusingSource struct {
	connector.Source
	asked *connector.PlanOptions
}

func (r refusingSource) Preflight(_ context.Context, _ []*model.Table, opts connector.PlanOptions) error {
	*r.asked = opts
	return errs.BadConfig("binlog is off", "turn the binlog on")
}

// A source's preflight runs before the destination's tables exist: its
// refusal leaves nothing written.
func TestPreflightRefusalWritesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dstPath := filepath.Join(dir, "dst.db")
	cfg := flow.Config{Source: "fake://?tables=1&rows=10", Destination: "sqlite://" + dstPath, StateDir: dir, Mode: flow.ModeFull}
	fake, err := connector.Open(ctx, cfg.Source)
	if err != nil {
		t.Fatal(err)
	}
	var asked connector.PlanOptions
	src := refusingSource{Source: fake.(connector.Source), asked: &asked}
	dst, err := connector.Open(ctx, cfg.Destination)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	store, err := state.Open(ctx, dir, cfg.FlowName())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	// refusingSource is no ChangeSource, so ask for a snapshot; the options
	// still reach the preflight.
	cfg.Mode = flow.ModeSnapshot
	e, err := engine.New(cfg, src, dst, store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	err = e.Prepare(ctx)
	if !errs.IsConfigError(err) {
		t.Fatalf("Prepare: %v, want the preflight's configuration error", err)
	}
	if asked.Flow != cfg.FlowName() || asked.CDC {
		t.Fatalf("preflight got options %+v", asked)
	}
	if _, err := os.Stat(dstPath); err == nil {
		t.Fatal("the destination was created before the source's preflight passed")
	}
}
