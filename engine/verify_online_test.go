package engine_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/flow"
)

// VerifyWhileStreaming, run beside a flow whose destination is behind the
// source (a fake source whose copy reads the state after every change),
// waits for the flow to pass the source's head before it judges a key, so
// every table ends verified with no difference, in the progress the
// dashboard and the metrics read.
func TestVerifyWhileStreamingWaitsForTheFlow(t *testing.T) {
	srcURL := "fake://?tables=2&rows=300&changes=1500&changes_per_sec=1000&seed=4&snapshot=head"
	cfg := flow.Config{Source: srcURL, Destination: "sqlite://" + filepath.Join(t.TempDir(), "dst.db"), StateDir: t.TempDir(), Writers: 2}
	ctx := context.Background()
	src, err := connector.Open(ctx, cfg.Source)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := connector.Open(ctx, cfg.Destination)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	e, closeAll := newTestEngineWith(t, cfg, src, dst, slog.New(slog.DiscardHandler))
	defer closeAll()

	stop, endFlow := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- e.Run(ctx, stop) }()
	vctx, endVerify := context.WithCancel(ctx)
	verified := make(chan error, 1)
	go func() { verified <- e.VerifyWhileStreaming(vctx, 10*time.Millisecond) }()

	var last engine.Snapshot
	for done := false; !done; {
		select {
		case err := <-ran:
			t.Fatalf("the flow ended: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		last = e.Progress().Snapshot()
		done = len(last.Tables) == 2
		for _, tb := range last.Tables {
			done = done && tb.Verify != nil && tb.Verify.Passes >= 2
		}
	}
	endVerify()
	if err := <-verified; err != nil {
		t.Fatal(err)
	}
	endFlow()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	for _, tb := range last.Tables {
		if v := tb.Verify; v.Different != 0 || v.Pending != 0 || v.Error != "" || v.RowsChecked == 0 {
			t.Fatalf("%s verified while the flow caught up: %+v", tb.Table, *v)
		}
	}
}
