package engine_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/state"
)

// prepareAgain opens the flow's state and runs Prepare as a new run would.
func prepareAgain(t *testing.T, cfg flow.Config) (*state.Store, error) {
	t.Helper()
	ctx := context.Background()
	src, err := connector.Open(ctx, cfg.Source)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	dst, err := connector.Open(ctx, cfg.Destination)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	store, err := state.Open(ctx, cfg.StateDir, cfg.FlowName())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e, err := engine.New(cfg, src, dst, store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return store, e.Prepare(ctx)
}

// setIdentity stores an identity as an older ferry did.
func setIdentity(t *testing.T, cfg flow.Config, ident string) {
	t.Helper()
	ctx := context.Background()
	store, err := state.Open(ctx, cfg.StateDir, cfg.FlowName())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.SetMeta(ctx, "identity", ident); err != nil {
		t.Fatal(err)
	}
}

// A flow whose state holds the older identity (with the table selection)
// resumes, and its identity is rewritten without it.
func TestResumeRewritesTheOlderIdentity(t *testing.T) {
	cfg := flow.Config{Name: "f", Source: "fake://?tables=2&rows=50", Destination: "sqlite://" + filepath.Join(t.TempDir(), "d.db"),
		Mode: flow.ModeSnapshot, StateDir: t.TempDir()}
	runFlow(t, cfg)
	older := strings.Join([]string{errs.Redact(cfg.Source), errs.Redact(cfg.Destination), "", ""}, "\n")
	setIdentity(t, cfg, older)
	store, err := prepareAgain(t, cfg)
	if err != nil {
		t.Fatalf("resume with the older identity: %v", err)
	}
	got, err := store.Meta(context.Background(), "identity")
	if err != nil {
		t.Fatal(err)
	}
	if got != cfg.Identity() {
		t.Fatalf("identity %q was not rewritten to %q", got, cfg.Identity())
	}
}

// A --mode snapshot flow run again with another --tables is refused: it
// has no change stream to copy the added tables under.
func TestSnapshotFlowRefusesAnotherSelection(t *testing.T) {
	cfg := flow.Config{Name: "f", Source: "fake://?tables=2&rows=50", Destination: "sqlite://" + filepath.Join(t.TempDir(), "d.db"),
		Mode: flow.ModeSnapshot, StateDir: t.TempDir(), Tables: []string{"fake.t1"}}
	runFlow(t, cfg)
	cfg.Tables = []string{"fake.t1", "fake.t2"}
	_, err := prepareAgain(t, cfg)
	if err == nil || !strings.Contains(err.Error(), `--mode snapshot) and was started with --tables "fake.t1", not "fake.t1,fake.t2"`) {
		t.Fatalf("err = %v", err)
	}
	var ce *errs.ConfigError
	if !errors.As(err, &ce) || !strings.Contains(ce.Fix, "--restart") {
		t.Fatalf("no fix with --restart: %#v", err)
	}
}

// A --tables that keeps none of the flow's tables is most likely another
// flow between the same databases: it is refused, not taken over.
func TestSelectionKeepingNoTableIsRefused(t *testing.T) {
	cfg := flow.Config{Source: "fake://?tables=2&rows=50&changes=20", Destination: "sqlite://" + filepath.Join(t.TempDir(), "d.db"),
		Until: "caught-up", StateDir: t.TempDir(), Tables: []string{"fake.t1"}}
	runFlow(t, cfg)
	cfg.Tables = []string{"fake.t2"}
	_, err := prepareAgain(t, cfg)
	if err == nil || !strings.Contains(err.Error(), `follows fake.t1; --tables "fake.t2" keeps none of its tables`) {
		t.Fatalf("err = %v", err)
	}
}
