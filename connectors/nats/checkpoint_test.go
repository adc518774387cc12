package nats

import (
	"context"
	"errors"
	"testing"

	"github.com/ferrydb/ferry/errs"
)

// TestCheckpointsOfTwoWorkers: two processes (scale-out workers copying
// partitions of one flow) write checkpoints of different keys, each with
// the flow's checkpoints it read before the other's write: both are kept,
// and the read events of both name one plan. Two processes writing the
// same key (two runs of one flow) still fail as a configuration error.
func TestCheckpointsOfTwoWorkers(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	a, b := open(t, s, "stream=w&subject=w"), open(t, s, "stream=w&subject=w")
	defer a.Close()
	defer b.Close()
	if _, err := a.LoadCheckpoints(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.LoadCheckpoints(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	if err := a.setCheckpoint(ctx, "f", "copy/p1", "done"); err != nil {
		t.Fatal(err)
	}
	if err := b.setCheckpoint(ctx, "f", "copy/p2", "done"); err != nil {
		t.Fatalf("a second worker's partition checkpoint: %v", err)
	}
	pa, err := a.planOf(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	pb, err := b.planOf(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	c := open(t, s, "stream=w&subject=w")
	defer c.Close()
	got, err := c.LoadCheckpoints(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	if got["copy/p1"] != "done" || got["copy/p2"] != "done" || pa != pb {
		t.Fatalf("checkpoints %v, plans %q and %q: want both partitions and one plan", got, pa, pb)
	}

	if err := a.setCheckpoint(ctx, "f", "cdc/0", "0/10"); err != nil {
		t.Fatal(err)
	}
	err = b.setCheckpoint(ctx, "f", "cdc/0", "0/20")
	var ce *errs.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("two processes writing the CDC checkpoint: got %v, want a configuration error", err)
	}
}
