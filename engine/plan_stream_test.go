package engine_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connectors/fake"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// recordingSink keeps what a plan handed over since its last restart.
type recordingSink struct {
	restarts int
	parts    []model.Partition
}

func (s *recordingSink) Restart(context.Context) error {
	s.restarts++
	s.parts = nil
	return nil
}

func (s *recordingSink) Add(p model.Partition) error {
	s.parts = append(s.parts, p)
	return nil
}

// cutOffSource hands out part of its plan, then meets an outage once (the
// server restarting while the plan is being made).
type cutOffSource struct {
	*fake.Source
	o     *outages
	after int
}

func (s *cutOffSource) PlanStream(ctx context.Context, t []*model.Table, opts connector.PlanOptions, emit func(model.Partition) error) (*model.Plan, error) {
	n := 0
	return s.Source.PlanStream(ctx, t, opts, func(p model.Partition) error {
		if n++; n > s.after {
			if err := s.o.fail("plan, half-way"); err != nil {
				return err
			}
		}
		return emit(p)
	})
}

// An engine with a plan sink (a scale-out plan activity) hands each
// partition to it as the source cuts it and keeps none; a plan cut off
// half-way by an outage is made again from the start, after the sink was
// told to forget the first try's partitions, so each partition is handed
// over once.
func TestPlanSinkTakesEachPartitionOnceAcrossARetry(t *testing.T) {
	defer engine.SetRetryWaits(5*time.Millisecond, 20*time.Millisecond)()
	ctx := context.Background()
	const srcURL = "fake://?tables=3&rows=1000&seed=4"
	fs, err := fake.Open(mustURL(t, srcURL))
	if err != nil {
		t.Fatal(err)
	}
	o := &outages{hit: map[string]bool{}}
	src := &cutOffSource{Source: fs.(*fake.Source), o: o, after: 17}
	dst, err := connector.Open(ctx, "null://")
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	cfg := flow.Config{Source: srcURL, Destination: "null://", Mode: flow.ModeSnapshot, PartitionRows: 40, RetryTimeout: time.Minute}
	e, err := engine.New(cfg, src, dst, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	sink := &recordingSink{}
	e.SetPlanSink(sink)
	if err := e.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	if !o.hit["plan, half-way"] {
		t.Fatal("the outage was never met: the test proves nothing")
	}
	if sink.restarts != 2 {
		t.Errorf("the sink was restarted %d times, want 2 (the first try and the retry)", sink.restarts)
	}
	if n := len(e.Plan().Partitions); n != 0 {
		t.Errorf("the engine kept %d partitions of a plan it handed to a sink", n)
	}
	// The whole plan, as the source makes it in one piece.
	whole, err := fs.(*fake.Source).Plan(ctx, e.Plan().Tables, connector.PlanOptions{PartitionRows: 40})
	if err != nil {
		t.Fatal(err)
	}
	if len(sink.parts) != len(whole.Partitions) || len(whole.Partitions) != 75 {
		t.Fatalf("the sink holds %d partitions, the plan has %d (want 75)", len(sink.parts), len(whole.Partitions))
	}
	for i, p := range whole.Partitions {
		if sink.parts[i].ID != p.ID || sink.parts[i].Lower != p.Lower || sink.parts[i].Upper != p.Upper {
			t.Fatalf("partition %d: the sink has %+v, the plan %+v", i, sink.parts[i], p)
		}
	}
}
