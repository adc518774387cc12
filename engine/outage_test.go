package engine_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connectors/fake"
	"github.com/ferrydb/ferry/connectors/sqlite"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/verify"
)

// outages makes the first call of each step fail as a server shutting down
// fails it (SQLSTATE 57P01, marked errs.Unavailable); the next call
// goes through. It records which steps it failed.
type outages struct {
	mu  sync.Mutex
	hit map[string]bool
}

func (o *outages) fail(step string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.hit[step] {
		return nil
	}
	o.hit[step] = true
	return errs.Unavailable(fmt.Errorf("%s: FATAL: terminating connection due to administrator command (SQLSTATE 57P01)", step))
}

// outageSource is the fake source meeting an outage at each step of the
// plan and of CDC's start.
type outageSource struct {
	*fake.Source
	o *outages
}

func (s *outageSource) Tables(ctx context.Context) ([]*model.Table, error) {
	if err := s.o.fail("source tables"); err != nil {
		return nil, err
	}
	return s.Source.Tables(ctx)
}

func (s *outageSource) Plan(ctx context.Context, t []*model.Table, opts connector.PlanOptions) (*model.Plan, error) {
	if err := s.o.fail("source plan"); err != nil {
		return nil, err
	}
	return s.Source.Plan(ctx, t, opts)
}

func (s *outageSource) HeadPosition(ctx context.Context) (model.Position, error) {
	if err := s.o.fail("source head"); err != nil {
		return "", err
	}
	return s.Source.HeadPosition(ctx)
}

// outageSQLite is a SQLite destination meeting an outage at each step that
// talks to it, and finishing tables (a step SQLite itself does not need).
type outageSQLite struct {
	*sqlite.Conn
	o        *outages
	finished sync.Map
}

func (d *outageSQLite) CreateTables(ctx context.Context, t []*model.Table) error {
	if err := d.o.fail("create tables"); err != nil {
		return err
	}
	return d.Conn.CreateTables(ctx, t)
}

func (d *outageSQLite) DropCheckpoints(ctx context.Context, flow string) error {
	if err := d.o.fail("drop checkpoints"); err != nil {
		return err
	}
	return d.Conn.DropCheckpoints(ctx, flow)
}

func (d *outageSQLite) LoadCheckpoints(ctx context.Context, flow string) (map[string]string, error) {
	if err := d.o.fail("load checkpoints"); err != nil {
		return nil, err
	}
	return d.Conn.LoadCheckpoints(ctx, flow)
}

func (d *outageSQLite) ReplaceCheckpoints(ctx context.Context, flow, prefix string, cps map[string]string) error {
	if err := d.o.fail("replace checkpoints"); err != nil {
		return err
	}
	return d.Conn.ReplaceCheckpoints(ctx, flow, prefix, cps)
}

func (d *outageSQLite) OpenWriter(ctx context.Context) (connector.RowWriter, error) {
	if err := d.o.fail("open writer"); err != nil {
		return nil, err
	}
	return d.Conn.OpenWriter(ctx)
}

func (d *outageSQLite) OpenApplier(ctx context.Context) (connector.ChangeWriter, error) {
	if err := d.o.fail("open applier"); err != nil {
		return nil, err
	}
	return d.Conn.OpenApplier(ctx)
}

func (d *outageSQLite) FinishTable(ctx context.Context, t *model.Table) error {
	if err := d.o.fail("finish " + t.Namespace.String()); err != nil {
		return err
	}
	d.finished.Store(t.Namespace.String(), true)
	return nil
}

// TestEveryStepRidesOutAnOutage: an outage that lands on any step talking
// to a database (discovering and planning the source, creating the
// destination tables, its checkpoints, opening writers, finishing tables,
// reading the source's head, opening appliers) is waited out, logged and
// recovered from, as the copy's writes and CDC's applies always were. Before,
// only those two were: a destination restarting while FinishTable ran
// ANALYZE failed the flow (TestChaosDestinationDownPostgres on a fast
// machine).
func TestEveryStepRidesOutAnOutage(t *testing.T) {
	defer engine.SetRetryWaits(5*time.Millisecond, 20*time.Millisecond)()
	ctx := context.Background()
	const srcURL = "fake://?tables=2&rows=3000&changes=2000&seed=9"
	fs, err := fake.Open(mustURL(t, srcURL))
	if err != nil {
		t.Fatal(err)
	}
	o := &outages{hit: map[string]bool{}}
	src := &outageSource{Source: fs.(*fake.Source), o: o}
	dbPath := filepath.Join(t.TempDir(), "dst.db")
	sc, err := sqlite.Open(ctx, mustURL(t, "sqlite://"+dbPath))
	if err != nil {
		t.Fatal(err)
	}
	dst := &outageSQLite{Conn: sc, o: o}
	defer dst.Close()
	cfg := flow.Config{Source: srcURL, Destination: "sqlite://" + dbPath, Until: "caught-up", Parallel: 2,
		PartitionRows: 1000, RetryTimeout: time.Minute, StateDir: t.TempDir()}
	var log syncLog
	e, closeAll := newTestEngineWith(t, cfg, src, dst, slog.New(slog.NewTextHandler(&log, nil)))
	defer closeAll()
	if err := e.Run(ctx, ctx); err != nil {
		t.Fatalf("the flow failed on an outage it should have waited out: %v\n%s", err, log.String())
	}
	steps := []string{"source tables", "source plan", "source head", "create tables", "drop checkpoints", "load checkpoints",
		"replace checkpoints", "open writer", "open applier"}
	for _, ns := range []string{"fake.t1", "fake.t2"} {
		if _, ok := dst.finished.Load(ns); !ok {
			t.Errorf("table %s was never finished", ns)
		}
		steps = append(steps, "finish "+ns)
	}
	for _, s := range steps {
		if !o.hit[s] {
			t.Errorf("the outage never landed on %q", s)
		}
		if !strings.Contains(log.String(), s+": FATAL: terminating connection") {
			t.Errorf("the outage of %q was not logged", s)
		}
	}
	for _, want := range []string{"source unavailable; retrying plan", "source available again; plan",
		"destination unavailable; retrying create tables", "destination available again; create tables",
		"destination unavailable; retrying finish table", "destination available again; finish table",
		"source unavailable; retrying read the current position"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, log.String())
		}
	}
	// The destination holds the source's final state.
	vs, err := connector.Open(ctx, srcURL+"&snapshot=head")
	if err != nil {
		t.Fatal(err)
	}
	defer vs.Close()
	tables, err := vs.(connector.Source).Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pairs []verify.Pair
	for _, tb := range tables {
		pairs = append(pairs, verify.Pair{Source: tb, Destination: tb.Namespace})
	}
	res, err := verify.Tables(ctx, vs.(connector.Source), sc, pairs, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !r.Equal() || r.SourceRows < 3000 {
			t.Errorf("table %s differs after the outages: %+v", r.Table, r)
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
