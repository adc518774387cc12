package scaleout

import (
	"time"

	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/state"
)

// Names the workflow, its activities, signals and queries are registered
// under. They are part of the workflow's history: never rename them.
const (
	// WorkflowName is the flow workflow's type: flows start with it, and
	// only it plans in chunks. Workers from before the plan in chunks do
	// not know it, so no task of such a flow can reach them (one would see
	// only the chunks already read and end the copy early: rows lost). A
	// task of a type a worker does not know is retried until a worker that
	// knows it takes it.
	WorkflowName = "ferry.flow.2"
	// WorkflowNameV1 is the type of flows started by ferry from before
	// WorkflowName; new workers still run them, and plan them whole.
	WorkflowNameV1 = "ferry.flow"

	ActivityPlan    = "ferry.plan"
	ActivityCopy    = "ferry.copy-partition"
	ActivityFinish  = "ferry.finish-tables"
	ActivityStream  = "ferry.stream-changes"
	ActivityRelease = "ferry.release"
	// ActivityCutoverPosition reads the source's position at a cutover
	// request; ActivityFinishCutover runs the finishing steps after the
	// drain.
	ActivityCutoverPosition = "ferry.cutover-position"
	ActivityFinishCutover   = "ferry.finish-cutover"
	// ActivityChangeTables applies a changed --tables to a streaming flow
	// (UpdateTables): added tables are set up and their copy requested.
	ActivityChangeTables = "ferry.change-tables"
	// UpdateTables asks a streaming flow to follow another --tables and
	// answers with the tables added and dropped, or why it is refused.
	UpdateTables = "tables"
	// UpdateCutover asks for a cutover and answers with the position the
	// flow drains to, or why it is refused.
	UpdateCutover = "cutover"
	QueryProgress = "progress"
	QueryControl  = "control"
	// QueryReverse answers the flow's way back (FlowState.Reverse); only
	// workers that know --reverse answer it.
	QueryReverse      = "reverse"
	SignalPause       = "pause"
	SignalResume      = "resume"
	SignalCancel      = "cancel"
	SignalCutover     = "cutover"
	DefaultTaskQueue  = "ferry"
	DefaultNamespace  = "default"
	errTypeConfig     = "ConfigError"
	errTypeCancelled  = "Cancelled"
	errTypeWorkerStop = "WorkerStopping"
)

// Phases of a flow in scale-out mode.
const (
	PhasePlan      = "plan"
	PhaseCopy      = "copy"
	PhaseCDC       = "cdc"
	PhaseCutover   = "cutover"
	PhasePaused    = "paused"
	PhaseDone      = "done"
	PhaseCancelled = "cancelled"
	PhaseFailed    = "failed"
)

// Partition states.
const (
	PartPending = "pending"
	PartRunning = "running"
	PartDone    = "done"
)

// Settings tune the workflow itself. Zero values take the defaults.
type Settings struct {
	// Window is how many partitions are copied at once across all workers
	// (default: the flow's parallel setting).
	Window int `json:"window,omitempty"`
	// HeartbeatTimeout is how long an activity may stay silent before
	// Temporal gives its task to another worker (default 6s).
	HeartbeatTimeout time.Duration `json:"heartbeat_timeout,omitempty"`
	// CDCChunk is how long one CDC activity runs before it checkpoints,
	// returns its position and the workflow starts the next (default 10m).
	CDCChunk time.Duration `json:"cdc_chunk,omitempty"`
	// HistoryLimit is the history length past which the workflow continues
	// as new at the next quiet point (default 8000 events).
	HistoryLimit int `json:"history_limit,omitempty"`
	// MaxAttempts bounds the attempts of one activity (default 10).
	MaxAttempts int32 `json:"max_attempts,omitempty"`
	// PlanChunkKB bounds the JSON of one chunk of the plan (default 128,
	// at most 1024: a chunk is one Temporal payload, limited to 2 MB).
	PlanChunkKB int `json:"plan_chunk_kb,omitempty"`
}

func (s Settings) withDefaults(o flow.Config) Settings {
	if s.Window <= 0 {
		s.Window = o.Parallel
		if s.Window <= 0 {
			s.Window = 4
		}
	}
	if s.HeartbeatTimeout <= 0 {
		s.HeartbeatTimeout = 6 * time.Second
	}
	if s.CDCChunk <= 0 {
		s.CDCChunk = 10 * time.Minute
	}
	if s.HistoryLimit <= 0 {
		s.HistoryLimit = 8000
	}
	if s.MaxAttempts <= 0 {
		s.MaxAttempts = 10
	}
	if s.PlanChunkKB <= 0 {
		s.PlanChunkKB = defaultChunkKB
	}
	s.PlanChunkKB = min(s.PlanChunkKB, 1024)
	return s
}

// FlowInput starts (or continues) a flow's workflow. Options.Source and
// Options.Destination are connection names, never URLs.
type FlowInput struct {
	Options  flow.Config `json:"options"`
	Settings Settings    `json:"settings"`
	// Restart drops what an earlier flow of this name left (replication
	// slot, destination checkpoints) before planning anew.
	Restart bool `json:"restart,omitempty"`
	// State is what an earlier run of the workflow achieved, carried over
	// by continue-as-new; nil for a new flow.
	State *FlowState `json:"state,omitempty"`
}

// FlowState is the workflow's durable state.
type FlowState struct {
	Phase   string    `json:"phase"`
	Mode    flow.Mode `json:"mode,omitempty"`
	Started time.Time `json:"started"`
	Runs    int       `json:"runs"` // continue-as-new count
	// Plan is the plan's tables and T0; in a plan in chunks (Chunks set),
	// its Partitions are only those of Parts, the chunks read and not yet
	// folded into TableParts.
	Plan  *model.Plan      `json:"plan,omitempty"`
	Parts []PartitionState `json:"partitions,omitempty"`
	// Chunks says where the rest of a plan in chunks is; nil in a flow
	// whose whole plan is in Plan.
	Chunks *PlanChunks `json:"plan_chunks,omitempty"`
	// TableParts counts, in a plan in chunks, each table's partitions and
	// the finished ones folded out of Parts.
	TableParts     []TableParts `json:"table_partitions,omitempty"`
	TablesFinished bool         `json:"tables_finished,omitempty"`
	CDC            CDCState     `json:"cdc"`
	Paused         bool         `json:"paused,omitempty"`
	Cutover        bool         `json:"cutover,omitempty"`
	Cancelled      bool         `json:"cancelled,omitempty"`
	// Cut is the cutover (drain to the source's position at the request,
	// then the finishing steps), nil until one is requested, and in flows
	// that stop at what was read (histories from before the drain).
	Cut   *engine.CutoverReport `json:"cutover_report,omitempty"`
	Error string                `json:"error,omitempty"`
	Ended time.Time             `json:"ended,omitempty"`

	// Abilities are what the source and destination can do, as the plan
	// activity's engine found them; nil in a flow planned before they were
	// reported.
	Abilities *engine.Abilities `json:"abilities,omitempty"`
	// Selections counts the changes of --tables applied (UpdateTables).
	Selections int `json:"selections,omitempty"`
	// Reverse is the way back of a flow cut over with --reverse: asked for
	// (Start empty), then recorded at the destination. Source and
	// Destination are this flow's connection names.
	Reverse *state.ReverseStart `json:"reverse,omitempty"`
	// ReverseOf is, in a reverse flow (ferry run --reverse), the start its
	// first step read at its source and checked.
	ReverseOf *state.ReverseStart `json:"reverse_of,omitempty"`
}

// PartitionState is one partition as the workflow knows it: finished
// partitions carry their counters; a running one's live progress comes from
// its activity's heartbeats (see Progress).
type PartitionState struct {
	ID            string `json:"id"`
	Table         string `json:"table"`
	EstimatedRows int64  `json:"estimated_rows"`
	State         string `json:"state"`
	Rows          int64  `json:"rows"`
	// Attempts is the attempt that finished the partition (1: no retry).
	Attempts int32 `json:"attempts,omitempty"`
	// ResumedRows is how many rows were already durable when the finishing
	// attempt started: more than zero means it resumed mid-partition.
	ResumedRows int64 `json:"resumed_rows,omitempty"`
	// ResumedFrom says where the resumed cursor came from: "heartbeat" or
	// "destination".
	ResumedFrom string `json:"resumed_from,omitempty"`
	// HeartbeatRows is the rows of the last heartbeat of an earlier
	// attempt, which the finishing attempt started from.
	HeartbeatRows int64 `json:"heartbeat_rows,omitempty"`
	// RowsThisAttempt is how many rows the finishing attempt wrote.
	RowsThisAttempt int64  `json:"rows_this_attempt,omitempty"`
	Worker          string `json:"worker,omitempty"`
	// Runs counts the activities started for the partition (a worker
	// stopping gracefully ends one activity; its retry is another attempt
	// of the same one).
	Runs int `json:"runs,omitempty"`
}

// CDCState is change data capture as the workflow knows it (positions at
// the end of each CDC activity); live values come from heartbeats.
type CDCState struct {
	Position   model.Position `json:"position,omitempty"`
	Received   int64          `json:"changes_received"`
	Applied    int64          `json:"changes_applied"`
	Activities int            `json:"activities"`
	CaughtUp   bool           `json:"caught_up,omitempty"`
	LagSeconds float64        `json:"lag_seconds"`
	// SchemaChanges and SchemaEvents are the running CDC activity's
	// (from its heartbeat): the schema changes and truncates it followed.
	SchemaChanges int64                `json:"schema_changes,omitempty"`
	SchemaEvents  []engine.SchemaEvent `json:"schema_events,omitempty"`
	// Snapshots are the incremental snapshots (tables added to the flow,
	// ferry flow snapshot) by source table, as the last CDC activity
	// reported them; a running one's come from its heartbeat.
	Snapshots map[string]engine.Resnapshot `json:"snapshots,omitempty"`
}

// Control is what running activities ask the workflow (QueryControl).
type Control struct {
	Paused    bool `json:"paused"`
	Cutover   bool `json:"cutover"`
	Cancelled bool `json:"cancelled"`
	// Reselect says a change of --tables waits for the CDC activity to
	// end (UpdateTables).
	Reselect bool `json:"reselect,omitempty"`
}

// Stop says whether a CDC activity should end now.
func (c Control) Stop() bool { return c.Paused || c.Cutover || c.Cancelled || c.Reselect }

// PlanInput asks for a flow's plan.
type PlanInput struct {
	Options flow.Config `json:"options"`
	// StartOver empties the destination tables before T0 (ferry run --restart).
	StartOver bool `json:"start_over,omitempty"`
	// Chunked asks for the plan in chunks (PlanResult.Chunks), however
	// large; without it a plan too large for one payload is refused.
	Chunked bool `json:"chunked,omitempty"`
	// ChunkKB bounds a chunk's JSON (Settings.PlanChunkKB).
	ChunkKB int `json:"chunk_kb,omitempty"`
}

// PlanResult is the plan, the negotiated mode and what the source and
// destination can do.
type PlanResult struct {
	Plan      *model.Plan       `json:"plan"`
	Mode      flow.Mode         `json:"mode"`
	Abilities *engine.Abilities `json:"abilities,omitempty"`
	// Chunks, for a plan in chunks, says where the chunks after the first
	// (Plan.Partitions) are; Tables counts each table's partitions.
	Chunks *PlanChunks  `json:"chunks,omitempty"`
	Tables []TableParts `json:"tables,omitempty"`
}

// CopyInput asks for one partition. Only the partition's table is sent, not
// the whole plan, so history grows with the number of partitions only.
type CopyInput struct {
	Options   flow.Config     `json:"options"`
	Table     *model.Table    `json:"table"`
	Partition model.Partition `json:"partition"`
}

// CopyHeartbeat is a partition activity's heartbeat: the durable cursor.
type CopyHeartbeat struct {
	Cursor      model.Cursor `json:"cursor,omitempty"`
	Rows        int64        `json:"rows"`
	Bytes       int64        `json:"bytes"`
	ResumedRows int64        `json:"resumed_rows"`
	ResumedFrom string       `json:"resumed_from,omitempty"`
	// HeartbeatRows is the rows of the heartbeat this attempt started from.
	HeartbeatRows int64 `json:"heartbeat_rows,omitempty"`
}

// CopyResult is a finished partition.
type CopyResult struct {
	Rows            int64  `json:"rows"`
	ResumedRows     int64  `json:"resumed_rows"`
	ResumedFrom     string `json:"resumed_from,omitempty"`
	RowsThisAttempt int64  `json:"rows_this_attempt"`
	HeartbeatRows   int64  `json:"heartbeat_rows,omitempty"`
	Attempt         int32  `json:"attempt"`
	Worker          string `json:"worker"`
}

// TablesInput names the tables whose copy is complete.
type TablesInput struct {
	Options flow.Config    `json:"options"`
	Tables  []*model.Table `json:"tables"`
}

// StreamInput asks for one CDC activity.
type StreamInput struct {
	Options flow.Config    `json:"options"`
	Tables  []*model.Table `json:"tables"`
	T0      model.Position `json:"t0"`
	From    model.Position `json:"from,omitempty"`
	// For is how long the activity runs before it returns its position.
	For time.Duration `json:"for"`
	// Poll is how often it asks the workflow for pause, cutover or cancel.
	Poll time.Duration `json:"poll"`
	// DrainTo, when set, makes it a cutover's drain: it ends once every
	// change up to this position is applied and checkpointed, and only a
	// cancel stops it earlier.
	DrainTo model.Position `json:"drain_to,omitempty"`
}

// StreamHeartbeat is a CDC activity's heartbeat.
type StreamHeartbeat struct {
	Position      model.Position       `json:"position,omitempty"`
	Received      int64                `json:"changes_received"`
	Applied       int64                `json:"changes_applied"`
	LagSeconds    float64              `json:"lag_seconds"`
	SchemaChanges int64                `json:"schema_changes,omitempty"`
	SchemaEvents  []engine.SchemaEvent `json:"schema_events,omitempty"`
	// Snapshots are the incremental snapshots the activity's engine knows
	// of, by source table: rows copied so far, done.
	Snapshots map[string]engine.Resnapshot `json:"snapshots,omitempty"`
}

// StreamResult is where a CDC activity ended.
type StreamResult struct {
	Position   model.Position `json:"position,omitempty"`
	Received   int64          `json:"changes_received"`
	Applied    int64          `json:"changes_applied"`
	CaughtUp   bool           `json:"caught_up,omitempty"`
	LagSeconds float64        `json:"lag_seconds"`
	Tables     []*model.Table `json:"tables,omitempty"` // when a schema changed
	// Drained says a drain (DrainTo) reached its position.
	Drained bool `json:"drained,omitempty"`
	// Snapshots are the incremental snapshots as the activity ended.
	Snapshots map[string]engine.Resnapshot `json:"snapshots,omitempty"`
}

// CutoverPositionInput asks for the source's position at a cutover
// request. Applied is the position the workflow last knew applied; the
// destination's checkpoints win when it keeps them.
type CutoverPositionInput struct {
	Options flow.Config    `json:"options"`
	Tables  []*model.Table `json:"tables"`
	T0      model.Position `json:"t0"`
	Applied model.Position `json:"applied,omitempty"`
}

// CutoverPosition is where a cutover drains to and how many bytes of the
// source's log the flow was behind it (nil when the source cannot tell).
type CutoverPosition struct {
	Position model.Position `json:"position"`
	LagBytes *int64         `json:"lag_bytes,omitempty"`
}

// FinishCutoverInput asks for the finishing steps of a drained cutover.
type FinishCutoverInput struct {
	Options   flow.Config    `json:"options"`
	Tables    []*model.Table `json:"tables"`
	Requested time.Time      `json:"requested"`
}

// CutoverAnswer is the answer to a cutover request (UpdateCutover).
type CutoverAnswer struct {
	CutoverPosition
	// Already says an earlier request started the cutover: this one
	// changed nothing.
	Already bool `json:"already,omitempty"`
	// Undrained says the flow runs the workflow from before the drain: it
	// stops at what was already read.
	Undrained bool `json:"undrained,omitempty"`
}

// ReleaseInput asks to drop a finished flow's resources (replication slot,
// publication, destination checkpoints).
type ReleaseInput struct {
	Options flow.Config `json:"options"`
	// Chunks are the plan's chunk workflows, when they still run (a flow
	// cancelled during its copy).
	Chunks *PlanChunks `json:"chunks,omitempty"`
}

// TablesRequest asks a streaming flow to follow another --tables
// (UpdateTables).
type TablesRequest struct {
	Tables []string `json:"tables"`
}

// TablesAnswer says what a change of --tables did: the source tables
// added (copied while changes stream) and dropped (no longer followed;
// their destination tables stay).
type TablesAnswer struct {
	Added   []string `json:"added,omitempty"`
	Dropped []string `json:"dropped,omitempty"`
}

// ChangeTablesInput asks a worker to apply a change of --tables: Options
// carry the new selection, From is the one the plan follows, Tables and T0
// are the plan's.
type ChangeTablesInput struct {
	Options flow.Config    `json:"options"`
	From    string         `json:"from"`
	Tables  []*model.Table `json:"tables"`
	T0      model.Position `json:"t0"`
}

// ChangeTablesResult is the plan's tables for the new selection.
type ChangeTablesResult struct {
	Tables []*model.Table `json:"tables"`
	TablesAnswer
}
