package state

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStoreRoundTripAndLock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir, "flow-a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, dir, "flow-a"); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open of a running flow: got %v, want ErrLocked", err)
	}
	if running, err := Running(dir, "flow-a"); err != nil || !running {
		t.Fatalf("Running of an open flow: %v %v, want true", running, err)
	}
	if running, err := Running(dir, "flow-b"); err != nil || running {
		t.Fatalf("Running of a flow without state: %v %v, want false", running, err)
	}
	if err := s.SetMeta(ctx, "plan", `{"x":1}`); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoints(ctx, map[string]string{"partition/a": "1", "partition/b": "2", "cdc": "9"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoints(ctx, map[string]string{"partition/a": "3"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if running, err := Running(dir, "flow-a"); err != nil || running {
		t.Fatalf("Running of a closed flow: %v %v, want false", running, err)
	}

	s, err = Open(ctx, dir, "flow-a")
	if err != nil {
		t.Fatalf("reopen after close: %v", err)
	}
	defer s.Close()
	if v, _ := s.Meta(ctx, "plan"); v != `{"x":1}` {
		t.Fatalf("plan = %q", v)
	}
	cps, err := s.Checkpoints(ctx, "partition/")
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) != 2 || cps["partition/a"] != "3" || cps["partition/b"] != "2" {
		t.Fatalf("checkpoints = %v", cps)
	}
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if cps, _ := s.Checkpoints(ctx, ""); len(cps) != 0 {
		t.Fatalf("after reset: %v", cps)
	}
	flows, err := Flows(dir)
	if err != nil || len(flows) != 1 || flows[0] != "flow-a" {
		t.Fatalf("Flows = %v, %v", flows, err)
	}
}

// Remove leaves nothing of the flow behind: a flow made again under the
// name finds no cutover request or report of the old one.
func TestRemoveTakesTheCutoverFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir, "gone")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RequestCutover(dir, "gone", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(CutoverReportPath(dir, "gone"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(); err != nil {
		t.Fatal(err)
	}
	s.Close() //nolint:errcheck // removed
	left, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil || len(left) != 0 {
		t.Fatalf("after Remove the state directory holds %v (%v)", left, err)
	}
}
