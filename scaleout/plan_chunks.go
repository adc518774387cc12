package scaleout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydb/ferry/internal/faultpoint"
	"github.com/ferrydb/ferry/model"
)

// A plan of any size reaches the workflow in chunks (see
// docs/decisions/2026-12-07-plan-without-ceiling.md): the plan activity
// returns the tables and the first chunk of partitions, and starts one
// small plan-chunk workflow per further chunk, whose input is the chunk.
// Those workflows never run (see chunkQueue); the flow workflow reads a
// chunk (a read-plan-chunk activity, from the chunk workflow's first
// event) when its window is about to run dry, and folds finished
// partitions into per-table counters, so neither a payload nor the state
// carried by continue-as-new grows with the plan.
const (
	// PlanChunkWorkflowName keeps one chunk of a flow's plan.
	PlanChunkWorkflowName = "ferry.plan-chunk"
	// ActivityReadPlanChunk reads a chunk; ActivityReleasePlan ends the
	// chunk workflows once the copy no longer needs them.
	ActivityReadPlanChunk = "ferry.read-plan-chunk"
	ActivityReleasePlan   = "ferry.release-plan"
	// SignalReleaseChunk ends a plan-chunk workflow.
	SignalReleaseChunk = "release"
	// versionPlanChunks versions the plan in chunks; histories from before
	// it carry the whole plan in the plan activity's result.
	versionPlanChunks = "plan-in-chunks"
)

// defaultChunkKB bounds a chunk's JSON: well under Temporal's 2 MB payload
// limit (and its 512 kB warning), so that a chunk, the state carried over
// with up to two chunks' partitions, and the plan result all fit.
const defaultChunkKB = 128

// keepDetail is how many partitions the state keeps one by one before a
// continue-as-new or the copy's end folds the finished ones into their
// table's counters: small flows keep each partition's detail for
// ferry flow status.
var keepDetail = 1000

// PlanChunks says where a plan's further chunks are: the plan-chunk
// workflows Prefix + "/" + index, 0 to Count-1, of which the first Next
// were read.
type PlanChunks struct {
	Prefix string `json:"prefix"`
	Count  int    `json:"count"`
	Next   int    `json:"next"`
	// Released says the chunk workflows were ended (the copy is over).
	Released bool `json:"released,omitempty"`
}

// ID is the workflow ID of chunk k.
func (c *PlanChunks) ID(k int) string { return c.Prefix + "/" + strconv.Itoa(k) }

// left says chunks remain to be read.
func (c *PlanChunks) left() bool { return c != nil && c.Next < c.Count }

// TableParts counts one table's partitions: how many the plan has, and of
// those folded out of FlowState.Parts, how many finished, with their rows
// and how many resumed mid-way.
type TableParts struct {
	Table      string `json:"table"`
	Partitions int64  `json:"partitions"`
	Done       int64  `json:"done,omitempty"`
	Rows       int64  `json:"rows,omitempty"`
	Resumed    int64  `json:"resumed,omitempty"`
}

// PlanChunk is one chunk of a flow's plan, the input of its plan-chunk
// workflow.
type PlanChunk struct {
	Flow       string            `json:"flow"`
	Index      int               `json:"index"`
	Partitions []model.Partition `json:"partitions"`
}

// PlanChunkWorkflow kept a chunk of a plan in its input until released,
// on the flow's task queue. Chunk workflows are now started on a queue no
// worker polls (chunkQueue) and never run; this remains for those started
// before, and for their recorded history.
func PlanChunkWorkflow(ctx workflow.Context, _ PlanChunk) error {
	workflow.GetSignalChannel(ctx, SignalReleaseChunk).Receive(ctx, nil)
	return nil
}

// chunkQueue is the task queue a flow's plan-chunk workflows are started
// on: no worker polls it, so they never run. Their input, the chunk, is in
// their history (ReadPlanChunk reads it from there) and nowhere else: a
// chunk workflow that ran would wait, cached by a worker, for as long as
// the copy lasts, with its input in that worker's memory (thousands of
// chunks, gigabytes, for a plan of millions of partitions). They end when
// released (terminated).
func chunkQueue(taskQueue string) string { return taskQueue + "-plan-chunks" }

// ReadChunkInput names the chunk to read.
type ReadChunkInput struct {
	ID string `json:"id"`
}

// ReleasePlanInput names the chunk workflows to end.
type ReleasePlanInput struct {
	Chunks PlanChunks `json:"chunks"`
}

// chunker cuts partitions, as they come, into chunks of at most bytes of
// JSON each (at least one partition a chunk), in order, handing each full
// chunk to flush.
type chunker struct {
	bytes int
	cur   []model.Partition
	size  int
	flush func([]model.Partition) error
}

func (c *chunker) add(p model.Partition) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if c.size+len(b)+1 > c.bytes && len(c.cur) > 0 {
		if err := c.end(); err != nil {
			return err
		}
	}
	c.cur = append(c.cur, p)
	c.size += len(b) + 1
	return nil
}

// end flushes the chunk being filled, if any.
func (c *chunker) end() error {
	if len(c.cur) == 0 {
		return nil
	}
	full := c.cur
	c.cur, c.size = nil, 0
	return c.flush(full)
}

// splitPlan cuts partitions into chunks of at most chunkBytes of JSON each
// (at least one partition a chunk), in plan order.
func splitPlan(parts []model.Partition, chunkBytes int) ([][]model.Partition, error) {
	var out [][]model.Partition
	c := &chunker{bytes: chunkBytes, flush: func(p []model.Partition) error { out = append(out, p); return nil }}
	for _, p := range parts {
		if err := c.add(p); err != nil {
			return nil, err
		}
	}
	return out, c.end()
}

// chunkWriter takes a new plan's partitions as the source cuts them
// (engine.PlanSink) and stores them in chunks as they fill: the first is
// kept for the plan activity's result, each further one becomes a
// plan-chunk workflow at once, so the planning worker holds one chunk,
// never the plan.
type chunkWriter struct {
	a      *Activities
	ctx    context.Context
	base   string
	pc     *PlanChunks
	first  []model.Partition
	stored int
	counts map[string]int64
	c      chunker
}

// newChunkWriter releases the chunk workflows a failed earlier attempt of
// the plan activity started (their plan is not this one) and returns a
// writer for this attempt's.
func (a *Activities) newChunkWriter(ctx context.Context, chunkKB int) (*chunkWriter, error) {
	info := activity.GetInfo(ctx)
	if chunkKB <= 0 {
		chunkKB = defaultChunkKB
	}
	base := fmt.Sprintf("%s/plan/%s", info.WorkflowExecution.ID, info.WorkflowExecution.RunID)
	if a.Client != nil {
		for attempt := int32(1); attempt < info.Attempt; attempt++ {
			if err := a.releaseChunks(ctx, PlanChunks{Prefix: fmt.Sprintf("%s.%d", base, attempt), Count: -1}); err != nil {
				return nil, err
			}
		}
	}
	w := &chunkWriter{a: a, ctx: ctx, base: base, pc: &PlanChunks{Prefix: fmt.Sprintf("%s.%d", base, info.Attempt)}, counts: map[string]int64{}}
	w.c = chunker{bytes: chunkKB << 10, flush: w.store}
	return w, nil
}

// Restart forgets what an earlier try of the plan handed over: the chunk
// workflows it stored are ended, and their IDs are used again.
func (w *chunkWriter) Restart(ctx context.Context) error {
	if w.stored > 0 {
		if err := w.a.releaseChunks(ctx, PlanChunks{Prefix: w.pc.Prefix, Count: w.stored}); err != nil {
			return err
		}
	}
	w.first, w.stored, w.counts = nil, 0, map[string]int64{}
	w.c.cur, w.c.size = nil, 0
	return nil
}

// Add takes the plan's next partition.
func (w *chunkWriter) Add(p model.Partition) error {
	w.counts[p.Table.String()]++
	return w.c.add(p)
}

func (w *chunkWriter) store(chunk []model.Partition) error {
	if w.first == nil {
		w.first = chunk
		return nil
	}
	if w.a.Client == nil {
		return errors.New("the plan needs more than one chunk and this worker has no Temporal client to store them")
	}
	activity.RecordHeartbeat(w.ctx)
	k := w.stored
	_, err := w.a.Client.ExecuteWorkflow(w.ctx, client.StartWorkflowOptions{
		ID:                       w.pc.ID(k),
		TaskQueue:                chunkQueue(activity.GetInfo(w.ctx).TaskQueue),
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, PlanChunkWorkflowName, PlanChunk{Flow: activity.GetInfo(w.ctx).WorkflowExecution.ID, Index: k + 1, Partitions: chunk})
	if err != nil {
		return fmt.Errorf("store chunk %d of the plan: %w", k+1, err)
	}
	w.stored++
	if w.stored == 1 {
		faultpoint.Hold(w.ctx, faultpoint.PlanChunkStored, w.a.logger())
	}
	return nil
}

// finish stores the last chunk and returns the plan result's parts: the
// plan (its header) with the first chunk, where the others are, and each
// table's partition count in the plan's table order.
func (w *chunkWriter) finish(plan *model.Plan) (*model.Plan, *PlanChunks, []TableParts, error) {
	if err := w.c.end(); err != nil {
		return nil, nil, nil, err
	}
	out := *plan
	out.Partitions = w.first
	w.pc.Count = w.stored
	tables := make([]TableParts, 0, len(plan.Tables))
	for _, t := range plan.Tables {
		tables = append(tables, TableParts{Table: t.Namespace.String(), Partitions: w.counts[t.Namespace.String()]})
	}
	return &out, w.pc, tables, nil
}

// ReadPlanChunk returns a chunk of the plan: the input its plan-chunk
// workflow was started with.
func (a *Activities) ReadPlanChunk(ctx context.Context, in ReadChunkInput) ([]model.Partition, error) {
	if a.Client == nil {
		return nil, temporal.NewNonRetryableApplicationError("this worker has no Temporal client to read the plan's chunks", errTypeConfig, nil)
	}
	stop := keepAlive(ctx, func() any { return nil })
	defer stop()
	it := a.Client.GetWorkflowHistory(ctx, in.ID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return nil, fmt.Errorf("plan chunk %s: no history", in.ID)
	}
	ev, err := it.Next()
	if err != nil {
		return nil, fmt.Errorf("plan chunk %s: %w", in.ID, err)
	}
	attrs := ev.GetWorkflowExecutionStartedEventAttributes()
	if attrs == nil {
		return nil, fmt.Errorf("plan chunk %s: its history does not start with its input", in.ID)
	}
	var c PlanChunk
	if err := converter.GetDefaultDataConverter().FromPayloads(attrs.GetInput(), &c); err != nil {
		return nil, fmt.Errorf("plan chunk %s: %w", in.ID, err)
	}
	return c.Partitions, nil
}

// ReleasePlan ends a plan's chunk workflows.
func (a *Activities) ReleasePlan(ctx context.Context, in ReleasePlanInput) error {
	return a.releaseChunks(ctx, in.Chunks)
}

func (a *Activities) releaseChunks(ctx context.Context, c PlanChunks) error {
	if a.Client == nil {
		return nil
	}
	return releaseChunks(ctx, a.Client, c, func() { activity.RecordHeartbeat(ctx) })
}

// releaseChunks ends the chunk workflows (terminated: those started on
// chunkQueue never run, so a signal would not end them), calling beat
// before each (an activity's heartbeat); Count < 0 releases chunks from the
// first until one is missing. A chunk already ended is no error.
func releaseChunks(ctx context.Context, cl client.Client, c PlanChunks, beat func()) error {
	if c.Count == 0 {
		return nil
	}
	for k := 0; c.Count < 0 || k < c.Count; k++ {
		if beat != nil {
			beat()
		}
		err := cl.TerminateWorkflow(ctx, c.ID(k), "", "the copy no longer needs this chunk of its plan")
		var nf *serviceerror.NotFound
		switch {
		case errors.As(err, &nf) && c.Count < 0:
			return nil
		case errors.As(err, &nf):
		case err != nil:
			return fmt.Errorf("release plan chunk %s: %w", c.ID(k), err)
		}
	}
	return nil
}

// unreleased is the plan's chunk workflows while they run, else nil.
func (s *FlowState) unreleased() *PlanChunks {
	if s.Chunks == nil || s.Chunks.Count == 0 || s.Chunks.Released {
		return nil
	}
	return s.Chunks
}

// partsDone counts the plan's partitions and the finished ones.
func (s *FlowState) partsDone() (done, total int64) {
	for _, tp := range s.TableParts {
		done += tp.Done
		total += tp.Partitions
	}
	for _, p := range s.Parts {
		if p.State == PartDone {
			done++
		}
	}
	if s.TableParts == nil {
		total = int64(len(s.Parts))
	}
	return done, total
}

// ResumedPartitions counts the partitions whose finishing attempt resumed
// mid-way.
func (s *FlowState) ResumedPartitions() int64 {
	var n int64
	for _, tp := range s.TableParts {
		n += tp.Resumed
	}
	for _, p := range s.Parts {
		if p.ResumedRows > 0 {
			n++
		}
	}
	return n
}

// fold moves finished partitions out of Parts (and their bounds out of
// the plan) into their table's counters, once more than keepDetail are
// kept, so the state stays small however many partitions the plan has.
// Only a plan in chunks folds: the state of an older flow keeps its shape.
func (s *FlowState) fold() {
	if s.Chunks == nil || len(s.Parts) <= keepDetail {
		return
	}
	idx := map[string]int{}
	for i, tp := range s.TableParts {
		idx[tp.Table] = i
	}
	keep := s.Parts[:0:0]
	left := map[string]bool{}
	for _, p := range s.Parts {
		if p.State != PartDone {
			keep = append(keep, p)
			left[p.ID] = true
			continue
		}
		i, ok := idx[p.Table]
		if !ok {
			i = len(s.TableParts)
			idx[p.Table] = i
			s.TableParts = append(s.TableParts, TableParts{Table: p.Table})
		}
		tp := &s.TableParts[i]
		tp.Done++
		tp.Rows += p.Rows
		if p.ResumedRows > 0 {
			tp.Resumed++
		}
	}
	s.Parts = keep
	bounds := s.Plan.Partitions[:0:0]
	for _, p := range s.Plan.Partitions {
		if left[p.ID] {
			bounds = append(bounds, p)
		}
	}
	s.Plan.Partitions = bounds
}
