// Package engine is the local coordinator of a flow: it negotiates what the
// source and destination can do, makes (or reloads) the plan, copies
// partitions in parallel through bounded channels, then streams changes and
// applies them in order per key and in parallel across keys. Control messages
// (partition ends, CDC checkpoints) travel in-band with the data; a checkpoint
// is persisted only once every writer has passed it.
//
// The engine depends on connector and model only; it never knows which
// database it talks to.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/state"
	"github.com/ferrydb/ferry/transform"
)

// Engine runs one flow in this process.
type Engine struct {
	cfg flow.Config
	// batchRowsSet: --batch-rows was given, not defaulted (rawBatchRows).
	batchRowsSet bool
	name         string
	// src and dst are what the source and destination can do, discovered
	// once in New: every optional ability is a typed field, nil when absent.
	src, dst connector.Capabilities
	store    *state.Store
	// planSink, when set, takes a new plan's partitions (SetPlanSink).
	planSink PlanSink
	log      *slog.Logger

	mode flow.Mode
	// ckpt decides where partitions and the stream resume (checkpoint.go).
	ckpt *checkpoints
	// startOver empties the destination tables when the flow is planned
	// (ferry sync --restart).
	startOver bool
	filter    *flow.Filter
	renames   *flow.Renames
	// xf are the flow's transforms (--exclude, --mask, --filter, ...):
	// each table's, tableRun.xf, reshapes its rows and changes to the
	// destination's shape as they come from the source (transform.go).
	xf *transform.Rules

	// plan, tables and byNS change while changes stream only in the
	// stream's batcher (a table created or dropped at the source:
	// stream_tables.go), under tablesMu; other goroutines then read the
	// plan with currentPlan.
	plan     *model.Plan
	tables   []*tableRun // in plan order
	byNS     map[model.Namespace]*tableRun
	tablesMu sync.RWMutex

	progress *Progress
	// openTx: a source transaction is being read in parts (stream_span.go).
	openTx openTx
	obs    Observer
	// seqs remembers the sequences found missing at the destination.
	seqs sequenceWarnings

	// cutRequested is closed by the first accepted cutover request.
	cutRequested chan struct{}
	// snapWake wakes the incremental snapshots' loop for a new request;
	// snapRequested is when each table was last asked for (a copy under
	// way then starts over).
	snapWake      chan struct{}
	snapRequested sync.Map // model.Namespace -> time.Time
	snapState     snapState
	cutOnce       sync.Once
	// copyRate holds the copy to --max-rate; nil: no limit.
	copyRate *copyRate
	// backoff pauses table reads while the source's replicas lag
	// (--max-replica-lag); nil: never.
	backoff *sourceBackoff
	// partitionsMu: one writer at a time creates partitions (partitions.go).
	partitionsMu sync.Mutex
}

// tableRun pairs a source table with its destination table.
type tableRun struct {
	src, dst *model.Table
	// keyIdx are the key's columns in the destination's shape, which
	// rows and changes have once transformed (xf).
	keyIdx []int
	// xf reshapes the table's rows and changes, nil when no transform
	// matches it.
	xf    *transform.Table
	stats *TableStats
	// raw is the format the table's rows travel in undecoded, nil when they
	// are decoded (see negotiateRaw).
	raw *model.RawFormat
	// unique: the destination table holds unique constraints besides the
	// primary key, so its changes are applied in order (unique.go).
	unique bool
}

// New prepares an engine for a flow. It takes ownership of nothing: the
// caller closes the connectors and the store.
func New(cfg flow.Config, src, dst connector.Connector, store *state.Store, log *slog.Logger) (*Engine, error) {
	batchRowsSet := cfg.BatchRows > 0
	cfg.Defaults()
	if log == nil {
		log = slog.Default()
	}
	e := &Engine{cfg: cfg, batchRowsSet: batchRowsSet, name: cfg.FlowName(), store: store, log: log.With("flow", cfg.FlowName()),
		cutRequested: make(chan struct{}), snapWake: make(chan struct{}, 1)}
	var err error
	if e.filter, err = flow.NewFilter(cfg.Tables); err != nil {
		return nil, &errs.ConfigError{Msg: err.Error()}
	}
	if e.renames, err = flow.ParseRenames(cfg.Rename); err != nil {
		return nil, &errs.ConfigError{Msg: err.Error()}
	}
	spec, err := transformSpec(cfg)
	if err != nil {
		return nil, err
	}
	if e.xf, err = transform.Parse(spec); err != nil {
		return nil, err
	}
	maxRate, err := flow.ParseRate(cfg.MaxRate)
	if err != nil {
		return nil, errs.BadConfig(fmt.Sprintf("invalid --max-rate %q: %v", cfg.MaxRate, err), "give rows per second (5000) or bytes per second with a unit (10MB/s, 512KiB/s)")
	}
	e.copyRate = newCopyRate(maxRate)
	e.src, e.dst = connector.Discover(src), connector.Discover(dst)
	describeSource(dst, cfg.Source)
	if e.backoff, err = newSourceBackoff(cfg.MaxReplicaLag, cfg.ReplicaLagQuery, e.src.ReplicaLagReader, errs.Redact(cfg.Source), e.log); err != nil {
		return nil, err
	}
	if e.mode, err = negotiate(cfg.Mode, e.src.Abilities, e.dst.Abilities, errs.Redact(cfg.Source), errs.Redact(cfg.Destination)); err != nil {
		return nil, err
	}
	if err := e.refuseSequenceSync(); err != nil {
		return nil, err
	}
	e.ckpt = newCheckpoints(e.name, e.dst.CheckpointKeeper, store, e.onDestination)
	e.progress = newProgress(e.name, e.mode, Abilities{Source: e.src.Abilities, Destination: e.dst.Abilities})
	e.progress.backoff, e.progress.rate = e.backoff, e.copyRate
	return e, nil
}

// Name is the flow's name.
func (e *Engine) Name() string { return e.name }

// Mode is the negotiated mode.
func (e *Engine) Mode() flow.Mode { return e.mode }

// Progress is the live progress of the flow, safe to read concurrently.
func (e *Engine) Progress() *Progress { return e.progress }

// Negotiate picks the mode for a source and destination pair, or refuses an
// impossible pair before anything is written.
func Negotiate(want flow.Mode, src, dst connector.Connector, srcName, dstName string) (flow.Mode, error) {
	return negotiate(want, connector.Discover(src).Abilities, connector.Discover(dst).Abilities, srcName, dstName)
}

func negotiate(want flow.Mode, src, dst connector.Abilities, srcName, dstName string) (flow.Mode, error) {
	if !src.Source {
		return "", connector.NotSource(srcName)
	}
	if !dst.Destination {
		return "", connector.NotDestination(dstName)
	}
	srcCDC, dstApply := src.CDC, dst.Apply || dst.Events
	switch want {
	case flow.ModeAuto:
		if srcCDC && dstApply {
			return flow.ModeFull, nil
		}
		return flow.ModeSnapshot, nil
	case flow.ModeSnapshot:
		return want, nil
	case flow.ModeFull, flow.ModeCDC:
		if !srcCDC {
			return "", errs.BadConfig(fmt.Sprintf("--mode %s needs change data capture, and source %s has none", want, srcName), "use --mode snapshot to copy without change data capture")
		}
		if !dstApply {
			return "", errs.BadConfig(fmt.Sprintf("--mode %s needs a destination that applies changes, and %s cannot", want, dstName), "use --mode snapshot, or a destination that can apply changes")
		}
		return want, nil
	}
	return "", &errs.ConfigError{Msg: fmt.Sprintf("unknown mode %q", want), Fix: "use full, snapshot or cdc"}
}

// Run runs the flow to its end: the copy, then CDC until stop is done or, with
// --until caught-up, until the destination caught up with the source, or
// until a cutover (RequestCutover) drained and finished the flow. stop
// asks for a graceful end (flush, checkpoint, return nil); cancelling ctx
// aborts at once.
func (e *Engine) Run(ctx, stop context.Context) (err error) {
	defer func() {
		if err != nil {
			e.observer().Error(err)
		}
	}()
	if e.plan == nil {
		if err := e.Prepare(ctx); err != nil {
			return err
		}
	}
	if e.mode != flow.ModeCDC {
		e.progress.setPhase(PhaseCopy)
		if err := e.copy(ctx, stop); err != nil {
			return err
		}
		if stop.Err() != nil {
			e.progress.setPhase(PhaseStopped)
			return nil
		}
	}
	if e.mode == flow.ModeSnapshot {
		if e.cutoverRequested() {
			return e.finishCutover(ctx)
		}
		e.progress.setPhase(PhaseDone)
		return nil
	}
	e.progress.setPhase(PhaseCDC)
	for {
		if err := e.streamWhole(ctx, stop, ""); err != nil {
			return err
		}
		switch {
		case stop.Err() != nil || !e.cutoverRequested():
			e.progress.setPhase(PhaseDone)
			return nil
		case e.progress.cutoverDraining():
			return e.finishCutover(ctx)
		}
		// The stream ended (caught up) as the request came: stream again,
		// this time to the source's position at the request.
	}
}

// Drop forgets the flow: its state, the destination's checkpoints and the
// source's resources for it (replication slots).
func (e *Engine) Drop(ctx context.Context) error {
	var failed []error
	if d := e.src.FlowDropper; d != nil {
		if err := d.DropFlow(ctx, e.name); err != nil {
			failed = append(failed, fmt.Errorf("source: %w", err))
		}
	}
	if k := e.dst.CheckpointKeeper; k != nil {
		if err := k.DropCheckpoints(ctx, e.name); err != nil {
			failed = append(failed, fmt.Errorf("destination: %w", err))
		}
	}
	if e.store != nil {
		if err := e.store.Reset(ctx); err != nil {
			failed = append(failed, err)
		}
	}
	return errors.Join(failed...)
}
