package scaleout

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// Activities are the steps a worker runs, each with the engine of ferry
// sync. They hold the worker's own configuration: its connections (names to
// URLs, credentials included) never leave the worker.
type Activities struct {
	Connections *connector.Connections
	// Client lets a CDC activity ask its workflow whether to stop
	// (QueryControl); nil disables that.
	Client client.Client
	// Identity names the worker in results and logs.
	Identity string
	Log      *slog.Logger
	// Observe gives the observer told what the engine does for a flow
	// (metrics, spans); nil, or a nil observer, ignores it.
	Observe func(flow string) engine.Observer
}

// opened is an engine over freshly opened connectors.
type opened struct {
	eng     *engine.Engine
	secrets *errs.Scrubber
	close   func()
}

// open resolves the flow's connection names and builds an engine over
// them, with no state store: every activity takes and returns its positions
// and its plan explicitly, and the workflow keeps them.
func (a *Activities) open(ctx context.Context, opts flow.Config) (*opened, error) {
	c, err := a.connect(ctx, opts)
	if err != nil {
		return nil, err
	}
	eng, err := engine.New(c.cfg, c.src, c.dst, nil, a.logger()) // the engine adds the flow's name
	if err != nil {
		c.close()
		return nil, a.failure(err, c.secrets)
	}
	if a.Observe != nil {
		if o := a.Observe(opts.Name); o != nil {
			eng.SetObserver(o)
		}
	}
	return &opened{eng: eng, secrets: c.secrets, close: c.close}, nil
}

// connected is a flow's source and destination opened from the worker's
// connections, and the flow's config with their URLs.
type connected struct {
	cfg      flow.Config
	src, dst connector.Connector
	secrets  *errs.Scrubber
	close    func()
}

// connect resolves the flow's connection names to this worker's URLs and
// opens both sides.
func (a *Activities) connect(ctx context.Context, opts flow.Config) (*connected, error) {
	if opts.Name == "" {
		return nil, temporal.NewNonRetryableApplicationError("the flow has no name", errTypeConfig, nil)
	}
	srcURL, err := a.Connections.Resolve(opts.Source, "source")
	if err != nil {
		return nil, a.failure(err, nil)
	}
	dstURL, err := a.Connections.Resolve(opts.Destination, "destination")
	if err != nil {
		return nil, a.failure(err, nil)
	}
	secrets := errs.NewScrubber(srcURL, dstURL)
	cfg := opts
	cfg.Source, cfg.Destination = srcURL, dstURL
	log := a.logger()
	src, err := connector.Open(ctx, srcURL)
	if err != nil {
		return nil, a.failure(fmt.Errorf("source %s: %w", opts.Source, err), secrets)
	}
	dst, err := connector.Open(ctx, dstURL)
	if err != nil {
		logClose(log, "source", src)
		return nil, a.failure(fmt.Errorf("destination %s: %w", opts.Destination, err), secrets)
	}
	return &connected{cfg: cfg, src: src, dst: dst, secrets: secrets, close: func() {
		logClose(log, "destination", dst)
		logClose(log, "source", src)
	}}, nil
}

func (a *Activities) logger() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}

func logClose(log *slog.Logger, what string, c interface{ Close() error }) {
	if err := c.Close(); err != nil {
		log.Warn("close failed", "what", what, "error", err)
	}
}

// failure turns err into an activity error that is safe for the
// workflow's history: its message without any password, no cause chain
// (a cause is recorded with its own message), and a configuration error
// marked so it is not retried.
func (a *Activities) failure(err error, secrets *errs.Scrubber) error {
	if err == nil {
		return nil
	}
	msg := secrets.Scrub(err.Error())
	if errs.IsConfigError(err) {
		return temporal.NewNonRetryableApplicationError(msg, errTypeConfig, nil)
	}
	return temporal.NewApplicationError(msg, "", nil)
}

// graceful returns a stop context, done when the worker is stopping (or
// cancel is called, or ctx is done), and a function telling whether the
// worker was stopping.
func graceful(ctx context.Context) (context.Context, func() bool, context.CancelFunc) {
	stop, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	stopping := false
	go func() {
		select {
		case <-activity.GetWorkerStopChannel(ctx):
			mu.Lock()
			stopping = true
			mu.Unlock()
			cancel()
		case <-stop.Done():
		}
	}()
	return stop, func() bool { mu.Lock(); defer mu.Unlock(); return stopping }, cancel
}

// keepAlive heartbeats details() every second until the returned function
// is called; the SDK throttles what it sends to the server.
func keepAlive(ctx context.Context, details func() any) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			if d := details(); d != nil {
				activity.RecordHeartbeat(ctx, d)
			} else {
				activity.RecordHeartbeat(ctx)
			}
			select {
			case <-t.C:
			case <-done:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// Plan makes the flow's plan: the destination tables are created, T0 is
// recorded (a replication slot for PostgreSQL), the partitions are cut.
func (a *Activities) Plan(ctx context.Context, in PlanInput) (PlanResult, error) {
	o, err := a.open(ctx, in.Options)
	if err != nil {
		return PlanResult{}, err
	}
	defer o.close()
	stop := keepAlive(ctx, func() any { return nil })
	defer stop()
	if in.StartOver {
		o.eng.StartOver()
	}
	var w *chunkWriter
	if in.Chunked {
		// The partitions go to the chunk workflows as the source cuts
		// them: the plan is never whole in this worker's memory.
		if w, err = a.newChunkWriter(ctx, in.ChunkKB); err != nil {
			return PlanResult{}, a.failure(err, o.secrets)
		}
		o.eng.SetPlanSink(w)
	}
	if err := o.eng.Prepare(ctx); err != nil {
		if w != nil {
			a.releaseFailedPlan(ctx, w, in.Options.Name, o)
		}
		return PlanResult{}, a.failure(err, o.secrets)
	}
	plan := o.eng.Plan()
	can := o.eng.Progress().Abilities
	if in.Chunked {
		first, chunks, tables, err := w.finish(plan)
		if err != nil {
			a.releaseFailedPlan(ctx, w, in.Options.Name, o)
			a.dropRefused(ctx, o, in.Options.Name)
			return PlanResult{}, a.failure(err, o.secrets)
		}
		return PlanResult{Plan: first, Mode: o.eng.Mode(), Abilities: &can, Chunks: chunks, Tables: tables}, nil
	}
	if err := planFits(plan, in.Options.PartitionRows); err != nil {
		a.dropRefused(ctx, o, in.Options.Name)
		return PlanResult{}, a.failure(err, o.secrets)
	}
	return PlanResult{Plan: plan, Mode: o.eng.Mode(), Abilities: &can}, nil
}

// releaseFailedPlan ends the chunk workflows a plan that failed half-way
// stored: none may be left running on a queue nobody polls.
func (a *Activities) releaseFailedPlan(ctx context.Context, w *chunkWriter, flowName string, o *opened) {
	if err := w.Restart(context.WithoutCancel(ctx)); err != nil {
		a.logger().Warn("could not release the failed plan's chunks; a retry of the plan releases them", "flow", flowName, "error", o.secrets.Scrub(err.Error()))
	}
}

// dropRefused releases the resources of a plan that is not returned:
// nothing was copied, so the slot it made must not retain WAL until the flow
// is run again.
func (a *Activities) dropRefused(ctx context.Context, o *opened, flowName string) {
	if err := o.eng.Drop(ctx); err != nil {
		a.logger().Warn("could not release the refused plan's resources", "flow", flowName, "error", o.secrets.Scrub(err.Error()))
	}
}

// maxPlanBytes bounds the plan's JSON in a flow whose workflow predates the
// plan in chunks: there it travels whole through Temporal (the plan
// activity's result, then the workflow's state when it continues as new,
// with about as much again for the partitions' progress), and Temporal
// refuses a payload over 2 MB.
const maxPlanBytes = 800 << 10

// planFits refuses a plan too large for Temporal's payloads, saying which
// partition size would fit.
func planFits(plan *model.Plan, partitionRows int64) error {
	b, err := json.Marshal(plan)
	if err != nil {
		return err
	}
	if len(b) <= maxPlanBytes {
		return nil
	}
	if partitionRows <= 0 {
		partitionRows = flow.DefaultPartitionRows
	}
	factor := int64(len(b))/maxPlanBytes + 1
	return errs.BadConfig(
		fmt.Sprintf("the plan has %d partitions (%d kB); in scale-out mode the plan travels through Temporal, which limits payloads to 2 MB, so ferry keeps it under %d kB",
			len(plan.Partitions), len(b)>>10, maxPlanBytes>>10),
		fmt.Sprintf("raise --partition-rows to %d or more (fewer, larger partitions), or split the tables over several flows", partitionRows*factor*2))
}

// CopyPartition copies one partition, resuming from the later of its last
// heartbeat and the destination's checkpoint, and heartbeats its cursor
// after every batch the destination confirmed.
func (a *Activities) CopyPartition(ctx context.Context, in CopyInput) (CopyResult, error) {
	info := activity.GetInfo(ctx)
	o, err := a.open(ctx, in.Options)
	if err != nil {
		return CopyResult{}, err
	}
	defer o.close()
	eng := o.eng
	if err := eng.UsePlan(&model.Plan{Tables: []*model.Table{in.Table}, Partitions: []model.Partition{in.Partition}}); err != nil {
		return CopyResult{}, a.failure(err, o.secrets)
	}
	var remembered engine.PartitionProgress
	if activity.HasHeartbeatDetails(ctx) {
		var hb CopyHeartbeat
		if err := activity.GetHeartbeatDetails(ctx, &hb); err == nil && (hb.Cursor != "" || hb.Rows > 0) {
			remembered = engine.PartitionProgress{Cursor: hb.Cursor, Rows: hb.Rows}
		}
	}
	hbRows := remembered.Rows
	from, resumedFrom, err := eng.ResumePartition(ctx, in.Partition.ID, remembered)
	if err != nil {
		return CopyResult{}, a.failure(err, o.secrets)
	}
	log := a.logger().With("flow", in.Options.Name, "partition", in.Partition.ID, "attempt", info.Attempt)
	if resumedFrom != "" {
		log.Info("resuming partition", "from", resumedFrom, "rows", from.Rows, "heartbeat_rows", hbRows)
	}
	var mu sync.Mutex
	hb := CopyHeartbeat{Cursor: from.Cursor, Rows: from.Rows, ResumedRows: from.Rows, ResumedFrom: resumedFrom, HeartbeatRows: hbRows}
	stopBeats := keepAlive(ctx, func() any {
		mu.Lock()
		defer mu.Unlock()
		return hb
	})
	stop, stopping, cancel := graceful(ctx)
	defer cancel()
	final, err := eng.CopyPartition(ctx, stop, in.Partition.ID, from, func(pp engine.PartitionProgress) {
		mu.Lock()
		hb.Cursor, hb.Rows = pp.Cursor, pp.Rows
		if s := eng.Progress().Snapshot(); len(s.Tables) > 0 {
			hb.Bytes = s.Tables[0].BytesCopied
		}
		mu.Unlock()
	})
	stopBeats()
	mu.Lock()
	last := hb
	mu.Unlock()
	if err != nil || !final.Done {
		// The last cursor reaches the server with the failure, so the
		// retry resumes from it.
		activity.RecordHeartbeat(ctx, last)
	}
	if err != nil {
		return CopyResult{}, a.failure(fmt.Errorf("copy partition %s of %s: %w", in.Partition.ID, in.Partition.Table, err), o.secrets)
	}
	if !final.Done {
		if stopping() {
			log.Info("worker stopping: partition checkpointed, another worker resumes it", "rows", final.Rows)
			return CopyResult{}, temporal.NewApplicationError(fmt.Sprintf("worker %s stopped during partition %s at %d rows", a.Identity, in.Partition.ID, final.Rows), errTypeWorkerStop)
		}
		return CopyResult{}, temporal.NewApplicationError(fmt.Sprintf("partition %s ended early at %d rows", in.Partition.ID, final.Rows), "")
	}
	res := CopyResult{Rows: final.Rows, ResumedRows: from.Rows, ResumedFrom: resumedFrom, HeartbeatRows: hbRows,
		RowsThisAttempt: final.Rows - from.Rows, Attempt: info.Attempt, Worker: a.Identity}
	log.Info("partition copied", "rows", res.Rows, "rows_this_attempt", res.RowsThisAttempt, "resumed_rows", res.ResumedRows)
	return res, nil
}

// FinishTables runs the destination's end-of-copy work once every
// partition is copied.
func (a *Activities) FinishTables(ctx context.Context, in TablesInput) error {
	o, err := a.open(ctx, in.Options)
	if err != nil {
		return err
	}
	defer o.close()
	stop := keepAlive(ctx, func() any { return nil })
	defer stop()
	if err := o.eng.UsePlan(&model.Plan{Tables: in.Tables}); err != nil {
		return a.failure(err, o.secrets)
	}
	return a.failure(o.eng.FinishTables(ctx), o.secrets)
}

// StreamChanges runs change data capture from the later of the last
// heartbeat's position and the destination's checkpoints, heartbeating its
// position every second, for up to in.For; it ends gracefully (everything
// read applied and checkpointed) when the workflow asks for a pause,
// cutover or cancel, or when the worker stops.
func (a *Activities) StreamChanges(ctx context.Context, in StreamInput) (StreamResult, error) {
	info := activity.GetInfo(ctx)
	o, err := a.open(ctx, in.Options)
	if err != nil {
		return StreamResult{}, err
	}
	defer o.close()
	eng := o.eng
	if err := eng.UsePlan(&model.Plan{Tables: in.Tables, T0: in.T0}); err != nil {
		return StreamResult{}, a.failure(err, o.secrets)
	}
	from := in.From
	var base StreamHeartbeat
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &base); err == nil && base.Position != "" {
			from = base.Position
		}
	}
	if from == "" {
		from = in.T0
	}
	log := a.logger().With("flow", in.Options.Name, "activity", info.ActivityID, "attempt", info.Attempt)
	log.Info("change data capture starting", "from", from)
	// The position comes from the engine's checkpoints; the counts and the
	// lag are statistics of the run.
	beat := func() StreamHeartbeat {
		c := eng.Progress().Snapshot().CDC
		return StreamHeartbeat{Position: eng.CDCPosition(from), Received: base.Received + c.Received,
			Applied: base.Applied + c.Applied, LagSeconds: c.LagSeconds, SchemaChanges: c.SchemaChanges, SchemaEvents: c.SchemaEvents,
			Snapshots: resnapshots(eng.Progress().Snapshot())}
	}
	stopBeats := keepAlive(ctx, func() any { return beat() })
	stop, stopping, cancel := graceful(ctx)
	defer cancel()
	var asked sync.WaitGroup
	asked.Add(1)
	go func() {
		defer asked.Done()
		a.watch(stop, cancel, info, in, log)
	}()
	var reached model.Position
	var drained bool
	if in.DrainTo != "" {
		reached, drained, err = eng.DrainTo(ctx, stop, from, in.DrainTo)
	} else {
		reached, err = eng.Stream(ctx, stop, from)
	}
	ended := stop.Err() != nil
	cancel()
	asked.Wait()
	stopBeats()
	last := beat()
	last.Position = reached
	if err != nil || stopping() {
		activity.RecordHeartbeat(ctx, last)
	}
	if err != nil {
		return StreamResult{}, a.failure(fmt.Errorf("change data capture from %s: %w", from, err), o.secrets)
	}
	if stopping() {
		return StreamResult{}, temporal.NewApplicationError(fmt.Sprintf("worker %s stopped during change data capture at %s", a.Identity, last.Position), errTypeWorkerStop)
	}
	res := StreamResult{Position: last.Position, Received: last.Received, Applied: last.Applied,
		CaughtUp: !ended && in.DrainTo == "" && in.Options.Until == "caught-up", LagSeconds: last.LagSeconds, Drained: drained,
		Snapshots: last.Snapshots}
	if schemaChanged(in.Tables, eng.SourceTables()) {
		res.Tables = eng.SourceTables()
	}
	log.Info("change data capture ended", "position", res.Position, "changes", res.Received, "caught_up", res.CaughtUp, "drain_to", in.DrainTo, "drained", res.Drained)
	return res, nil
}

// resnapshots are the incremental snapshots of a progress snapshot by
// source table, nil when there are none.
func resnapshots(s engine.Snapshot) map[string]engine.Resnapshot {
	var out map[string]engine.Resnapshot
	for _, t := range s.Tables {
		if t.Resnapshot != nil {
			if out == nil {
				out = map[string]engine.Resnapshot{}
			}
			out[t.Table] = *t.Resnapshot
		}
	}
	return out
}

// watch ends the CDC activity's stream (cancel) when it has run for
// in.For or when the workflow asks it to stop.
func (a *Activities) watch(ctx context.Context, cancel context.CancelFunc, info activity.Info, in StreamInput, log *slog.Logger) {
	deadline := time.NewTimer(in.For)
	defer deadline.Stop()
	poll := in.Poll
	if poll <= 0 {
		poll = time.Second
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			cancel()
			return
		case <-t.C:
			if a.Client == nil {
				continue
			}
			// A run that has ended (terminated, failed, timed out) no
			// longer owns the flow: a query would still answer from its
			// last state, so it is refused instead, and the stream stops.
			// Otherwise the activity would stream on until its heartbeat
			// found out, seconds later, and apply changes a new run of the
			// flow (another --tables, say) no longer wants.
			qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
			resp, err := a.Client.QueryWorkflowWithOptions(qctx, &client.QueryWorkflowWithOptionsRequest{
				WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID, QueryType: QueryControl,
				QueryRejectCondition: enumspb.QUERY_REJECT_CONDITION_NOT_OPEN,
			})
			qcancel()
			if err != nil {
				log.Debug("control query failed", "error", err)
				continue
			}
			if r := resp.QueryRejected; r != nil {
				log.Info("the flow's run has ended: change data capture stops", "status", statusName(r.GetStatus()))
				cancel()
				return
			}
			var c Control
			// A drain is the cutover itself: only a cancel ends it early.
			if err := resp.QueryResult.Get(&c); err == nil && (c.Stop() && in.DrainTo == "" || c.Cancelled) {
				log.Info("the workflow asks change data capture to stop", "paused", c.Paused, "cutover", c.Cutover, "cancelled", c.Cancelled)
				cancel()
				return
			}
		}
	}
}

func schemaChanged(a, b []*model.Table) bool {
	if len(a) != len(b) {
		return true
	}
	for i := range a {
		if len(a[i].Columns) != len(b[i].Columns) {
			return true
		}
	}
	return false
}

// Release drops the flow's resources at the source (replication slot,
// publication) and its checkpoints at the destination: the flow ended.
func (a *Activities) Release(ctx context.Context, in ReleaseInput) error {
	o, err := a.open(ctx, in.Options)
	if err != nil {
		return err
	}
	defer o.close()
	if err := o.eng.Drop(ctx); err != nil {
		return a.failure(err, o.secrets)
	}
	if in.Chunks != nil {
		if err := a.releaseChunks(ctx, *in.Chunks); err != nil {
			return a.failure(err, o.secrets)
		}
	}
	if in.Options.Reverse {
		a.dropReverseRecord(ctx, in.Options.Source, in.Options.Name)
	}
	a.logger().Info("released the flow's resources", "flow", in.Options.Name)
	return nil
}

// CutoverPosition reads the source's position at a cutover request, and
// how far the flow's applied position was behind it.
func (a *Activities) CutoverPosition(ctx context.Context, in CutoverPositionInput) (CutoverPosition, error) {
	o, err := a.open(ctx, in.Options)
	if err != nil {
		return CutoverPosition{}, err
	}
	defer o.close()
	if err := o.eng.UsePlan(&model.Plan{Tables: in.Tables, T0: in.T0}); err != nil {
		return CutoverPosition{}, a.failure(err, o.secrets)
	}
	applied := in.Applied
	if applied == "" {
		applied = in.T0
	}
	pos, lag, err := o.eng.CutoverPosition(ctx, applied)
	if err != nil {
		return CutoverPosition{}, a.failure(err, o.secrets)
	}
	a.logger().Info("cutover: draining to the source's position at the request", "flow", in.Options.Name, "position", pos)
	return CutoverPosition{Position: pos, LagBytes: lag}, nil
}

// FinishCutover runs the engine's finishing steps of a drained cutover
// (the destination's sequences set to the source's values).
func (a *Activities) FinishCutover(ctx context.Context, in FinishCutoverInput) ([]engine.CutoverStep, error) {
	o, err := a.open(ctx, in.Options)
	if err != nil {
		return nil, err
	}
	defer o.close()
	stop := keepAlive(ctx, func() any { return nil })
	defer stop()
	if err := o.eng.UsePlan(&model.Plan{Tables: in.Tables}); err != nil {
		return nil, a.failure(err, o.secrets)
	}
	steps, err := o.eng.FinishCutover(ctx, in.Requested)
	if err != nil {
		return nil, a.failure(fmt.Errorf("flow %s: %w", in.Options.Name, err), o.secrets)
	}
	return steps, nil
}
