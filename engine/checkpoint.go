package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/state"
)

// This file alone decides where a partition or the stream resumes and where
// progress is saved. A position may live in two places:
//
//   - the destination's checkpoints (connector.CheckpointKeeper), written in
//     the same transaction as the data they describe, and
//   - the local state store, written after the destination confirmed (at
//     most once a second for CDC when the destination keeps checkpoints).
//
// The rules, each tested in checkpoint_test.go:
//
//  1. A destination that keeps checkpoints is authoritative: the copy and
//     the stream resume from it, whatever the local state remembers (a
//     file destination also rolls back to them when they are loaded).
//  2. Its checkpoints of an older plan are dropped when a new plan is made
//     (dropForNewPlan): their partitions may have other bounds.
//  3. Lost local state resumes from the destination's checkpoints (rule 1).
//  4. With no keeper the local store holds the positions.
//  5. CDC resumes from the minimum of the per-writer positions (or the local
//     position, or T0), and the per-writer positions are reset to it, so a
//     change in the number of writers cannot leave a stale, earlier one.
//  6. With a keeper, CDC's local copy is written at most once a second
//     (cdcCheckpointed); without one, after every batch.
//
// A coordinator that keeps positions itself (scale-out) builds the engine
// without a state store; the local positions then live in memory for the
// duration of one step, and the step takes and returns explicit positions.

// PartitionProgress is a partition's durable progress: the cursor after the
// last row the destination confirmed, the rows written so far and whether
// the partition is complete. Its JSON form is the checkpoint a
// checkpoint-keeping destination stores for the partition.
type PartitionProgress struct {
	Cursor model.Cursor `json:"cursor,omitempty"`
	Done   bool         `json:"done,omitempty"`
	Rows   int64        `json:"rows"`
}

func (p PartitionProgress) started() bool { return p.Cursor != "" || p.Rows > 0 || p.Done }

func partitionKey(id string) string { return "partition/" + id }

func cdcKey(writer int) string { return "cdc/" + strconv.Itoa(writer) }

// Where a resumed partition's progress came from (ResumePartition).
const (
	ResumedFromNothing     = ""
	ResumedFromCoordinator = "heartbeat"
	ResumedFromDestination = "destination"
)

// checkpoints owns the flow's positions: it loads them, picks the one a
// partition or the stream resumes from, and saves progress locally.
type checkpoints struct {
	flow   string
	keeper connector.CheckpointKeeper // nil when the destination keeps none
	store  *state.Store               // nil: local positions live in mem
	// onDestination is the engine's outage handler (outage.go): loads and
	// resets of the destination's checkpoints ride out its outages.
	onDestination func(ctx context.Context, what string, fn func(context.Context) error) error

	mu      sync.Mutex
	mem     map[string]string // local checkpoints without a store
	memMeta map[string]string // local meta values without a store
	cdcAt   model.Position    // the last CDC position saved (or the start)
	// The local copy of the CDC position when a keeper holds the real one:
	// when it was last written, and the position not written yet.
	localAt      time.Time
	localPending model.Position
}

// localEvery is how often CDC copies its checkpoint to the local state when
// the destination keeps checkpoints itself.
const localEvery = time.Second

func newCheckpoints(flow string, keeper connector.CheckpointKeeper, store *state.Store, onDestination func(context.Context, string, func(context.Context) error) error) *checkpoints {
	return &checkpoints{flow: flow, keeper: keeper, store: store, onDestination: onDestination,
		mem: map[string]string{}, memMeta: map[string]string{}}
}

// load reads the checkpoints under prefix: from the destination when it
// keeps them (rule 1), otherwise from the local store (rule 4).
func (c *checkpoints) load(ctx context.Context, prefix string) (map[string]string, error) {
	if c.keeper != nil {
		var all map[string]string
		err := c.onDestination(ctx, "load checkpoints", func(ctx context.Context) (err error) {
			all, err = c.keeper.LoadCheckpoints(ctx, c.flow)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("load checkpoints from destination: %w", err)
		}
		out := map[string]string{}
		for k, v := range all {
			if strings.HasPrefix(k, prefix) {
				out[k] = v
			}
		}
		return out, nil
	}
	return c.loadLocal(ctx, prefix)
}

func (c *checkpoints) loadLocal(ctx context.Context, prefix string) (map[string]string, error) {
	if c.store != nil {
		return c.store.Checkpoints(ctx, prefix)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]string{}
	for k, v := range c.mem {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out, nil
}

// saveLocal saves confirmed positions to the local store.
func (c *checkpoints) saveLocal(ctx context.Context, batch map[string]string) error {
	if c.store != nil {
		return c.store.SaveCheckpoints(ctx, batch)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range batch {
		c.mem[k] = v
	}
	return nil
}

func (c *checkpoints) meta(ctx context.Context, key string) (string, error) {
	if c.store != nil {
		return c.store.Meta(ctx, key)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.memMeta[key], nil
}

func (c *checkpoints) setMeta(ctx context.Context, key, value string) error {
	if c.store != nil {
		return c.store.SetMeta(ctx, key, value)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.memMeta[key] = value
	return nil
}

// copyDone reports a copy that completed (every partition done and the
// tables finished); markCopyDone records it.
func (c *checkpoints) copyDone(ctx context.Context) (bool, error) {
	v, err := c.meta(ctx, "copy_done")
	return v == "true", err
}

func (c *checkpoints) markCopyDone(ctx context.Context) error {
	return c.setMeta(ctx, "copy_done", "true")
}

// dropForNewPlan forgets the destination's checkpoints of this flow when a
// new plan is made (rule 2): the local state that plan belonged to was lost
// or discarded, and its partitions may have other bounds, so trusting them
// could skip rows.
func (c *checkpoints) dropForNewPlan(ctx context.Context) error {
	if c.keeper == nil {
		return nil
	}
	if err := c.onDestination(ctx, "drop checkpoints of an earlier plan", func(ctx context.Context) error { return c.keeper.DropCheckpoints(ctx, c.flow) }); err != nil {
		return fmt.Errorf("drop the destination's checkpoints of an earlier plan: %w", err)
	}
	return nil
}

// partitions is the progress of every partition that has some, from the
// destination when it keeps checkpoints, else from the local store.
func (c *checkpoints) partitions(ctx context.Context) (map[string]PartitionProgress, error) {
	raw, err := c.load(ctx, "partition/")
	if err != nil {
		return nil, err
	}
	out := make(map[string]PartitionProgress, len(raw))
	for k, v := range raw {
		id := strings.TrimPrefix(k, "partition/")
		var pp PartitionProgress
		if err := json.Unmarshal([]byte(v), &pp); err != nil {
			return nil, fmt.Errorf("checkpoint of partition %s is corrupt (%v); run with --restart", id, err)
		}
		out[id] = pp
	}
	return out, nil
}

// partition is one partition's progress (ok false when it has none).
func (c *checkpoints) partition(ctx context.Context, id string) (PartitionProgress, bool, error) {
	all, err := c.partitions(ctx)
	if err != nil {
		return PartitionProgress{}, false, err
	}
	pp, ok := all[id]
	return pp, ok, nil
}

// resumePartition picks where a partition resumes from the progress a
// coordinator remembers (its last heartbeat) and the destination's
// checkpoint (stored, ok), and says which one it came from. A destination
// that keeps checkpoints is authoritative (rule 1): its checkpoint is never
// behind the coordinator's, which only reports what the destination
// confirmed, and when it has none the partition starts over (its earlier
// rows were written under an older plan, or never).
func resumePartition(remembered PartitionProgress, keeps bool, stored PartitionProgress, ok bool) (PartitionProgress, string) {
	from := ResumedFromNothing
	if remembered.Cursor != "" || remembered.Rows > 0 {
		from = ResumedFromCoordinator
	}
	switch {
	case ok && (stored.Done || stored.Rows > remembered.Rows):
		return stored, ResumedFromDestination
	case ok:
		return stored, from
	case keeps:
		return PartitionProgress{}, ResumedFromNothing
	}
	return remembered, from
}

// startPartition records remembered as the partition's local progress when
// the destination keeps none (rule 4), so the copy resumes from it.
func (c *checkpoints) startPartition(ctx context.Context, id string, remembered PartitionProgress) error {
	if c.keeper != nil || !remembered.started() {
		return nil
	}
	b, err := json.Marshal(remembered)
	if err != nil {
		return err
	}
	return c.saveLocal(ctx, map[string]string{partitionKey(id): string(b)})
}

// partitionReached is the progress a partition reached: its checkpoint
// (destination or local). Without one it is nothing when the destination
// keeps checkpoints (rule 1), else from.
func (c *checkpoints) partitionReached(ctx context.Context, id string, from PartitionProgress) (PartitionProgress, error) {
	pp, ok, err := c.partition(ctx, id)
	switch {
	case err != nil:
		return PartitionProgress{}, err
	case ok:
		return pp, nil
	case c.keeper != nil:
		return PartitionProgress{}, nil
	}
	return from, nil
}

// setCDCStart records an explicit position CDC resumes from (a coordinator's
// last heartbeat), as the local position (rule 5 still lets the
// destination's writers' positions win).
func (c *checkpoints) setCDCStart(ctx context.Context, pos model.Position) error {
	if pos == "" {
		return nil
	}
	return c.saveCDC(ctx, pos)
}

// cdcStart is where CDC resumes (rule 5): the minimum of the destination's
// per-writer positions when it keeps checkpoints and has some, else the
// local position, else T0. It also returns the per-writer checkpoints it
// read (the full-row gate needs them).
func (c *checkpoints) cdcStart(ctx context.Context, cs connector.ChangeSource, t0 model.Position) (model.Position, map[string]string, error) {
	start := t0
	local, err := c.meta(ctx, "cdc")
	if err != nil {
		return "", nil, err
	}
	if local != "" {
		start = model.Position(local)
	}
	if c.keeper == nil {
		return start, nil, nil
	}
	cps, err := c.load(ctx, "cdc/")
	if err != nil {
		return "", nil, err
	}
	lowest, err := AppliedPosition(cs, cps)
	if err != nil {
		return "", nil, err
	}
	if lowest != "" {
		start = lowest
	}
	return start, cps, nil
}

// resetWriters sets every writer's destination checkpoint to start, the
// position CDC resumes from (rule 5).
func (c *checkpoints) resetWriters(ctx context.Context, start model.Position, writers int) error {
	c.mu.Lock()
	c.cdcAt, c.localPending = start, "" // a pending copy of an earlier stream is not this one's
	c.mu.Unlock()
	if c.keeper == nil {
		return nil
	}
	reset := map[string]string{}
	for i := 0; i < writers; i++ {
		reset[cdcKey(i)] = string(start)
	}
	if err := c.onDestination(ctx, "reset checkpoints", func(ctx context.Context) error { return c.keeper.ReplaceCheckpoints(ctx, c.flow, "cdc/", reset) }); err != nil {
		return fmt.Errorf("reset destination checkpoints: %w", err)
	}
	return nil
}

// cdcCheckpointed records that every writer applied pos. Without a keeper
// the local store is the only copy and is written every time; with one (its
// checkpoints are written in the changes' transaction) the local copy is
// only a fallback, written at most every localEvery: writing it, with an
// fsync, for every batch stalled the whole pipeline whenever the disk was
// slow. flushCDC writes the position left pending.
func (c *checkpoints) cdcCheckpointed(ctx context.Context, pos model.Position) error {
	c.mu.Lock()
	due := c.keeper == nil || time.Since(c.localAt) >= localEvery
	if !due {
		c.cdcAt, c.localPending = pos, pos
	}
	c.mu.Unlock()
	if !due {
		return nil
	}
	if err := c.saveCDC(ctx, pos); err != nil {
		return err
	}
	c.mu.Lock()
	c.localAt, c.localPending = time.Now(), ""
	c.mu.Unlock()
	return nil
}

func (c *checkpoints) flushCDC(ctx context.Context) error {
	c.mu.Lock()
	pos := c.localPending
	c.localPending = ""
	c.mu.Unlock()
	if pos == "" {
		return nil
	}
	return c.saveCDC(ctx, pos)
}

func (c *checkpoints) saveCDC(ctx context.Context, pos model.Position) error {
	c.mu.Lock()
	c.cdcAt = pos
	c.mu.Unlock()
	return c.setMeta(ctx, "cdc", string(pos))
}

// cdcReached is the last position every writer applied (or the start).
func (c *checkpoints) cdcReached() model.Position {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cdcAt
}

// tableKey quotes the names, so that no table's key is the prefix of
// another's (ReplaceCheckpoints replaces by prefix).
func tableKey(prefix string, ns model.Namespace) string {
	return prefix + strconv.Quote(ns.Schema) + "." + strconv.Quote(ns.Table)
}

func schemaKey(ns model.Namespace) string { return tableKey("schema/", ns) }

// saveSchema records a table's source definition after CDC followed a
// schema change, so a resumed stream decodes with the shape the table has
// now rather than the plan's: at the destination when it keeps
// checkpoints (right after its table was altered), and locally.
//
// A crash between the destination's ALTER and this record resumes with
// the older shape, before the change (the writers were drained up to it):
// the source emits the change again, and destinations apply a change they
// already applied harmlessly.
func (c *checkpoints) saveSchema(ctx context.Context, t *model.Table) error {
	return c.saveTableRecord(ctx, schemaKey(t.Namespace), t)
}

// saveTableRecord stores v's JSON under key, at the destination when it
// keeps checkpoints and locally.
func (c *checkpoints) saveTableRecord(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", key, err)
	}
	if c.keeper != nil {
		if err := c.onDestination(ctx, "save checkpoint "+key, func(ctx context.Context) error {
			return c.keeper.ReplaceCheckpoints(ctx, c.flow, key, map[string]string{key: string(b)})
		}); err != nil {
			return fmt.Errorf("save checkpoint %s at the destination: %w", key, err)
		}
	}
	return c.saveLocal(ctx, map[string]string{key: string(b)})
}

// schemas are the definitions saveSchema recorded, by source table: the
// destination's when it keeps checkpoints (rule 1), else the local ones.
func (c *checkpoints) schemas(ctx context.Context) (map[model.Namespace]*model.Table, error) {
	raw, err := c.load(ctx, "schema/")
	if err != nil {
		return nil, err
	}
	out := make(map[model.Namespace]*model.Table, len(raw))
	for k, v := range raw {
		var t model.Table
		if err := json.Unmarshal([]byte(v), &t); err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", k, err)
		}
		out[t.Namespace] = &t
	}
	return out, nil
}

// AppliedPosition is the position a flow applied at a destination that
// keeps its checkpoints: the lowest of its writers' cdc/N, where its CDC
// would resume; "" when it has none.
func AppliedPosition(cs connector.ChangeSource, cps map[string]string) (model.Position, error) {
	var lowest model.Position
	for k, v := range cps {
		if !strings.HasPrefix(k, "cdc/") {
			continue
		}
		pos := model.Position(v)
		if lowest == "" {
			lowest = pos
			continue
		}
		n, err := cs.ComparePositions(pos, lowest)
		if err != nil {
			return "", fmt.Errorf("checkpoint %s: %w", k, err)
		}
		if n < 0 {
			lowest = pos
		}
	}
	return lowest, nil
}
