package engine

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/state"
)

// QueryFlow runs a query replication flow in this process (ferry sync
// --query): each run reads every query's rows past the last watermark it
// reached, in parallel ranges of the watermark, and writes them (upserted
// by the query's key, else appended) with a checkpoint per batch; without
// --every it runs once. See docs/query-replication.md.
type QueryFlow struct {
	cfg      flow.Config
	name     string
	src, dst connector.Capabilities
	reader   connector.QueryReader
	ckpt     *checkpoints
	log      *slog.Logger
	store    *state.Store
	lookback flow.Lookback
	queries  []*queryTable
	// appender, for a destination that assembles tables (files), adds a
	// run's rows to its table once the run's ranges are written.
	appender connector.TableAppender
	progress queryTracker
}

// queryTable is one query of the flow with its described result.
type queryTable struct {
	q connector.Query
	// dst is the destination table: the result's columns, the key as
	// its primary key.
	dst    *model.Table
	wm     watermark
	wmIdx  int
	keyIdx []int
	// upsert: rows go by key through the destination's applier.
	upsert bool
}

// NewQueryFlow prepares a query flow; like New it takes ownership of
// nothing.
func NewQueryFlow(cfg flow.Config, src, dst connector.Connector, store *state.Store, log *slog.Logger) (*QueryFlow, error) {
	cfg.Defaults()
	if log == nil {
		log = slog.Default()
	}
	f := &QueryFlow{cfg: cfg, name: cfg.FlowName(), log: log.With("flow", cfg.FlowName()), store: store}
	f.progress.started = time.Now()
	f.src, f.dst = connector.Discover(src), connector.Discover(dst)
	if f.src.QueryReader == nil {
		return nil, errs.BadConfig(fmt.Sprintf("source %s cannot run queries", errs.Redact(cfg.Source)),
			"query replication reads a source such as "+joinOr(connector.Offering(func(a connector.Abilities) bool { return a.Query })))
	}
	if f.dst.Destination == nil {
		return nil, connector.NotDestination(errs.Redact(cfg.Destination))
	}
	if f.dst.TableFinisher != nil && f.dst.ChangeApplier == nil {
		// Such a destination (files) assembles a table from the parts
		// copied when its copy ends, replacing what the table held: a
		// query's runs append their parts instead (TableAppender). The
		// databases' finishing steps (deferred keys, indexes, ANALYZE)
		// have nothing to do for a query's table, so runs never call
		// FinishTable.
		if f.dst.TableAppender == nil {
			return nil, errs.BadConfig(fmt.Sprintf("destination %s assembles each table when its copy ends, so each query run would replace the rows of the runs before it", errs.Redact(cfg.Destination)),
				"replicate queries into a database (such as "+joinOr(connector.Offering(func(a connector.Abilities) bool { return a.Apply && a.Destination }))+")")
		}
		f.appender = f.dst.TableAppender
	}
	f.reader = f.src.QueryReader
	var err error
	if f.lookback, err = flow.ParseLookback(cfg.Lookback); err != nil {
		return nil, errs.BadConfig(err.Error(), "e.g. --lookback 10m")
	}
	f.ckpt = newCheckpoints(f.name, f.dst.CheckpointKeeper, store, func(ctx context.Context, _ string, fn func(context.Context) error) error { return fn(ctx) })
	return f, nil
}

func joinOr(names []string) string {
	switch len(names) {
	case 0:
		return "a database"
	case 1:
		return names[0]
	}
	return fmt.Sprintf("%s or %s", strings.Join(names[:len(names)-1], ", "), names[len(names)-1])
}

// Name is the flow's name.
func (f *QueryFlow) Name() string { return f.name }

// Prepare describes each query at the source, checks its watermark, key
// and lookback against the result's columns, and creates the destination
// tables (an existing table with the same columns is appended to).
func (f *QueryFlow) Prepare(ctx context.Context) error {
	f.queries = nil
	var tables []*model.Table
	for _, spec := range f.cfg.Queries {
		ns, err := spec.Namespace()
		if err != nil {
			return errs.BadConfig(err.Error(), "")
		}
		t, err := f.reader.DescribeQuery(ctx, connector.Query{Name: ns, SQL: spec.SQL, Watermark: spec.Watermark})
		if err != nil {
			return err
		}
		if err := f.addQuery(spec, ns, t); err != nil {
			return err
		}
		tables = append(tables, t)
	}
	if tc := f.dst.TableChecker; tc != nil {
		conv, err := tc.CheckTables(ctx, tables)
		if err != nil {
			return err
		}
		for _, c := range conv {
			f.log.Warn("column type conversion", "conversion", c.String())
		}
	}
	if err := f.dst.Destination.CreateTables(ctx, tables); err != nil {
		return fmt.Errorf("create destination tables: %w", err)
	}
	return nil
}

// Tables are the destination tables of the queries, as Prepare described
// them, in the order of the flow's queries.
func (f *QueryFlow) Tables() []*model.Table {
	out := make([]*model.Table, len(f.queries))
	for i, qt := range f.queries {
		out[i] = qt.dst
	}
	return out
}

// UseTables takes the queries' tables as an earlier Prepare described
// them (Tables), instead of describing the queries again: a step of a run
// in scale-out mode reads and writes what the run was planned with.
func (f *QueryFlow) UseTables(tables []*model.Table) error {
	f.queries = nil
	if len(tables) != len(f.cfg.Queries) {
		return fmt.Errorf("the flow has %d queries and %d described tables", len(f.cfg.Queries), len(tables))
	}
	for i, spec := range f.cfg.Queries {
		ns, err := spec.Namespace()
		if err != nil {
			return errs.BadConfig(err.Error(), "")
		}
		if err := f.addQuery(spec, ns, tables[i].Clone()); err != nil {
			return err
		}
	}
	return nil
}

// addQuery checks a query's watermark, key and lookback against its
// described result t, which becomes its destination table.
func (f *QueryFlow) addQuery(spec flow.Query, ns model.Namespace, t *model.Table) error {
	qt := &queryTable{q: connector.Query{Name: ns, SQL: spec.SQL, Watermark: spec.Watermark}}
	if qt.wmIdx = t.ColumnIndex(spec.Watermark); qt.wmIdx < 0 {
		return errs.BadConfig(fmt.Sprintf("query %s: its result has no column %q for the watermark (it has %s)", ns, spec.Watermark, columnNames(t)),
			fmt.Sprintf("name one of its columns with --watermark %s=COLUMN", ns))
	}
	var err error
	if qt.wm, err = newWatermark(t.Columns[qt.wmIdx].Type); err != nil {
		return errs.BadConfig(fmt.Sprintf("query %s, watermark %s: %v", ns, spec.Watermark, err), "cast it in the query, or choose another column")
	}
	if err := qt.wm.checkLookback(f.lookback); err != nil {
		return errs.BadConfig(fmt.Sprintf("query %s: %v", ns, err), "")
	}
	for _, k := range spec.Key {
		i := t.ColumnIndex(k)
		if i < 0 {
			return errs.BadConfig(fmt.Sprintf("query %s: its result has no column %q for the key (it has %s)", ns, k, columnNames(t)),
				fmt.Sprintf("name columns of its result with --key %s=COLUMNS", ns))
		}
		t.Columns[i].Nullable = false
		qt.keyIdx = append(qt.keyIdx, i)
	}
	t.PrimaryKey = append([]string(nil), spec.Key...)
	qt.dst = t
	qt.upsert = len(spec.Key) > 0 && f.dst.ChangeApplier != nil
	if len(spec.Key) > 0 && !qt.upsert {
		if !f.lookback.Zero() {
			return errs.BadConfig(fmt.Sprintf("--lookback for query %s: destination %s cannot upsert, so the rows re-read would be written twice", ns, errs.Redact(f.cfg.Destination)), "leave --lookback out")
		}
		f.log.Warn("the destination cannot upsert: the query's rows are appended", "table", ns)
	}
	f.queries = append(f.queries, qt)
	return nil
}

// KeepsCheckpoints says the destination records the watermarks and the
// ranges' cursors with the rows it writes (in the same transaction).
func (f *QueryFlow) KeepsCheckpoints() bool { return f.dst.CheckpointKeeper != nil }

// AssemblesTables says the destination (files) adds a run's parts to
// each table once its ranges are written, in FinishRun.
func (f *QueryFlow) AssemblesTables() bool { return f.appender != nil }

func columnNames(t *model.Table) string {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

// StartOver forgets the flow's watermarks and checkpoints and empties its
// destination tables (ferry sync --restart), after Prepare: the next run
// reads every row again into empty tables.
func (f *QueryFlow) StartOver(ctx context.Context) error {
	if f.dst.Emptier == nil {
		return errs.BadConfig(fmt.Sprintf("--restart: destination %s cannot empty its tables", errs.Redact(f.cfg.Destination)), "empty the tables yourself and run ferry drop, then sync again")
	}
	if k := f.dst.CheckpointKeeper; k != nil {
		if err := k.DropCheckpoints(ctx, f.name); err != nil {
			return fmt.Errorf("restart: %w", err)
		}
	}
	if f.store != nil {
		if err := f.store.Reset(ctx); err != nil {
			return fmt.Errorf("restart: %w", err)
		}
	}
	tables := make([]*model.Table, len(f.queries))
	for i, qt := range f.queries {
		tables[i] = qt.dst
	}
	if err := f.dst.Emptier.EmptyTables(ctx, tables); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	f.log.Info("started over (--restart): watermarks forgotten, destination tables emptied", "tables", len(tables))
	return nil
}

// Run runs every query once, then again every --every until stop is
// done. A run interrupted by stop resumes from its checkpoints on the next
// start; cancelling ctx aborts at once.
func (f *QueryFlow) Run(ctx, stop context.Context) error {
	if f.queries == nil {
		if err := f.Prepare(stop); err != nil {
			return err
		}
	}
	for {
		f.progress.startRun()
		for _, qt := range f.queries {
			if stop.Err() != nil {
				f.progress.end(PhaseStopped)
				return nil
			}
			err := f.outages().retry(ctx, "source or destination", "query run "+qt.q.Name.String(), func(ctx context.Context) error {
				return f.runQuery(ctx, stop, qt)
			})
			if err != nil {
				f.progress.end(PhaseFailed)
				return err
			}
		}
		if stop.Err() != nil {
			f.progress.end(PhaseStopped)
			return nil
		}
		if f.cfg.Every <= 0 {
			f.progress.endRun(time.Time{})
			f.progress.end(PhaseDone)
			return nil
		}
		f.progress.endRun(time.Now().Add(f.cfg.Every))
		select {
		case <-stop.Done():
			f.progress.end(PhaseStopped)
			return nil
		case <-time.After(f.cfg.Every):
		}
	}
}

// outages rides out an unavailable source or destination the way every
// step of a table flow does (outage.go, its one owner): a run is retried
// whole, which resumes it from its checkpoints.
func (f *QueryFlow) outages() *Engine { return &Engine{cfg: f.cfg, log: f.log} }
