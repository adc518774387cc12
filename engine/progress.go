package engine

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// Phase is where a flow is.
type Phase string

const (
	PhasePlan Phase = "plan"
	PhaseCopy Phase = "copy"
	PhaseCDC  Phase = "cdc"
	// PhaseCutover drains the stream to the source's position at a cutover
	// request, then runs the finishing steps (Snapshot.Cutover.Step).
	PhaseCutover Phase = "cutover"
	PhaseDone    Phase = "done"
	PhaseStopped Phase = "stopped"
	PhaseFailed  Phase = "failed"
)

// TableStats counts one table's copy. All fields are safe for concurrent use.
type TableStats struct {
	Table, Destination string
	RowsEstimated      atomic.Int64
	BytesEstimated     atomic.Int64
	RowsCopied         atomic.Int64 // including rows copied by earlier runs of the flow
	RowsWritten        atomic.Int64 // by this run
	BytesCopied        atomic.Int64
	Partitions         atomic.Int64
	PartitionsDone     atomic.Int64
	PartitionsActive   atomic.Int64
	copied             atomic.Bool
}

func (t *TableStats) markCopied() { t.copied.Store(true) }

// CDCStats counts change data capture.
type CDCStats struct {
	// Received counts changes taken from the source; Applied counts what
	// remained after folding and reached the destination.
	Received atomic.Int64
	Applied  atomic.Int64
	// HeldPeak is the most changes one apply batch held at once: what a
	// huge source transaction costs in memory under --apply-mode
	// transactional (all of it without a destination that applies it in
	// parts, one part with one).
	HeldPeak atomic.Int64

	mu         sync.Mutex
	position   model.Position
	head       model.Position
	lastCommit time.Time
	lastApply  time.Time
	// inflight holds the batches handed to the writers and not yet
	// checkpointed, oldest first: while one waits (a slow or unavailable
	// destination) the lag grows with its age instead of staying at the
	// last applied batch's.
	inflight []inflightBatch
	// lagBytes is how far the checkpointed position is behind the source's
	// head in bytes of its log, when the source can tell (LagMeter).
	lagBytes int64
	lagKnown bool
	// retention is what the source keeps for the flow (a slot's WAL), when
	// it can tell (connector.RetentionMeter).
	retention      connector.Retention
	retentionKnown bool
	// schemaChanges counts the schema changes and truncates CDC followed;
	// schemaEvents are the last maxSchemaEvents of them, oldest first.
	schemaChanges int64
	schemaEvents  []SchemaEvent
}

// SchemaEvent is a schema change or truncate CDC followed.
type SchemaEvent struct {
	At     time.Time `json:"at"`
	Table  string    `json:"table"`
	Change string    `json:"change"`
}

const maxSchemaEvents = 20

func (c *CDCStats) schemaChanged(table, change string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.schemaChanges++
	c.schemaEvents = append(c.schemaEvents, SchemaEvent{At: time.Now().UTC(), Table: table, Change: change})
	if n := len(c.schemaEvents); n > maxSchemaEvents {
		c.schemaEvents = append([]SchemaEvent(nil), c.schemaEvents[n-maxSchemaEvents:]...)
	}
}

type inflightBatch struct {
	seq    uint64
	commit time.Time
}

// dispatched records a batch handed to the writers; commit is the source
// commit time of its last change.
// held records an apply batch of n changes in HeldPeak.
func (c *CDCStats) held(n int) {
	for {
		old := c.HeldPeak.Load()
		if int64(n) <= old || c.HeldPeak.CompareAndSwap(old, int64(n)) {
			return
		}
	}
}

func (c *CDCStats) dispatched(seq uint64, commit time.Time) {
	if commit.IsZero() {
		return
	}
	c.mu.Lock()
	c.inflight = append(c.inflight, inflightBatch{seq, commit})
	c.mu.Unlock()
}

// checkpointed forgets the batches up to seq, now applied and checkpointed.
func (c *CDCStats) checkpointed(seq uint64) {
	c.mu.Lock()
	i := 0
	for i < len(c.inflight) && c.inflight[i].seq <= seq {
		i++
	}
	c.inflight = c.inflight[i:]
	c.mu.Unlock()
}

// lagAt is the replication lag at now: the age the last applied commit had
// when it was applied, or the age of the oldest batch still waiting to be
// applied, whichever is larger (every change of that batch committed at or
// before its commit time, so this is a lower bound of their lag); -1 when
// no commit time is known yet.
func (c *CDCStats) lagAt(now time.Time) float64 {
	lag := -1.0
	if !c.lastCommit.IsZero() {
		lag = max(c.lastApply.Sub(c.lastCommit), 0).Seconds()
	}
	if len(c.inflight) > 0 {
		lag = max(lag, now.Sub(c.inflight[0].commit).Seconds(), 0)
	}
	return lag
}

func (c *CDCStats) setRetention(r connector.Retention) {
	c.mu.Lock()
	c.retention, c.retentionKnown = r, true
	c.mu.Unlock()
}

func (c *CDCStats) setLagBytes(n int64) {
	c.mu.Lock()
	c.lagBytes, c.lagKnown = max(n, 0), true
	c.mu.Unlock()
}

func (c *CDCStats) setPosition(p model.Position, commit time.Time) {
	c.mu.Lock()
	c.position = p
	if !commit.IsZero() {
		c.lastCommit = commit
	}
	c.lastApply = time.Now()
	c.mu.Unlock()
}

func (c *CDCStats) getPosition() model.Position {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.position
}

func (c *CDCStats) setHead(p model.Position) {
	c.mu.Lock()
	c.head = p
	c.mu.Unlock()
}

// Progress is a flow's live progress; Snapshot gives a consistent copy.
type Progress struct {
	Flow      string
	Mode      flow.Mode
	Started   time.Time
	Abilities Abilities

	// ResumedPartitions counts partitions resumed from a mid-way cursor;
	// SkippedPartitions those an earlier run finished.
	ResumedPartitions atomic.Int64
	SkippedPartitions atomic.Int64
	CDC               CDCStats
	Sequences         SequenceStats

	mu     sync.Mutex
	phase  Phase
	tables []*TableStats
	write  latency
	apply  latency
	// cut is the cutover, nil until one is requested; stepBegan is when
	// its running step began, cutReceived the changes received at the
	// request.
	cut         *CutoverReport
	stepBegan   time.Time
	cutReceived int64
	// resnap is each table's incremental snapshot (snapshot.go), by source
	// table name.
	resnap map[string]*Resnapshot
	// verify is each table's background verification (verify_online.go).
	verify verifyStats
	// backoff is the --max-replica-lag gate, nil when off.
	backoff *sourceBackoff
	// rate is the --max-rate bucket, nil when off.
	rate *copyRate
}

// Resnapshot is a table's incremental snapshot: the rows it copied again
// so far and whether it is done.
type Resnapshot struct {
	Rows int64 `json:"rows"`
	Done bool  `json:"done"`
}

func (p *Progress) resnapshot(table string, rows int64, done bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resnap == nil {
		p.resnap = map[string]*Resnapshot{}
	}
	p.resnap[table] = &Resnapshot{Rows: rows, Done: done}
}

func (p *Progress) startCutover(at time.Time) {
	p.mu.Lock()
	p.cut = &CutoverReport{Requested: at}
	p.mu.Unlock()
}

func (p *Progress) cutoverStep(name string) {
	p.mu.Lock()
	p.cut.Step, p.stepBegan = name, time.Now()
	p.mu.Unlock()
}

func (p *Progress) cutoverPosition(pos model.Position, lagBytes *int64, received int64) {
	p.mu.Lock()
	p.cut.Position, p.cut.LagBytes, p.cutReceived = pos, lagBytes, received
	p.mu.Unlock()
}

// cutoverDraining tells whether the drain has its position.
func (p *Progress) cutoverDraining() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut != nil && p.cut.Position != ""
}

func (p *Progress) cutoverDrained(received int64) {
	p.mu.Lock()
	p.cut.Changes = received - p.cutReceived
	p.cut.Steps = append(p.cut.Steps, CutoverStep{Name: StepDrain, Seconds: time.Since(p.stepBegan).Seconds(),
		Detail: fmt.Sprintf("%d changes to %s", p.cut.Changes, p.cut.Position)})
	p.cut.Step = ""
	p.mu.Unlock()
}

func (p *Progress) cutoverStepDone(name string, took time.Duration, detail string) {
	p.mu.Lock()
	p.cut.Steps = append(p.cut.Steps, CutoverStep{Name: name, Seconds: took.Seconds(), Detail: detail})
	p.cut.Step = ""
	p.mu.Unlock()
}

func (p *Progress) cutoverDone() {
	p.mu.Lock()
	p.cut.Step, p.cut.Done = "", true
	p.mu.Unlock()
}

// cutoverReport copies the cutover, nil when none was requested.
func (p *Progress) cutoverReport() *CutoverReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut.clone()
}

func (r *CutoverReport) clone() *CutoverReport {
	if r == nil {
		return nil
	}
	c := *r
	c.Steps = append([]CutoverStep(nil), r.Steps...)
	if r.LagBytes != nil {
		n := *r.LagBytes
		c.LagBytes = &n
	}
	return &c
}

type latency struct {
	count int64
	total time.Duration
	max   time.Duration
}

func (l *latency) observe(d time.Duration) {
	l.count++
	l.total += d
	l.max = max(l.max, d)
}

func newProgress(name string, mode flow.Mode, can Abilities) *Progress {
	return &Progress{Flow: name, Mode: mode, Started: time.Now(), Abilities: can, phase: PhasePlan}
}

// Abilities are what the flow's source and destination can do.
type Abilities struct {
	Source      connector.Abilities `json:"source"`
	Destination connector.Abilities `json:"destination"`
}

func (p *Progress) currentPhase() Phase {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.phase
}

func (p *Progress) setPhase(ph Phase) {
	p.mu.Lock()
	p.phase = ph
	p.mu.Unlock()
}

func (p *Progress) setTables(trs []*tableRun) {
	p.mu.Lock()
	p.tables = p.tables[:0]
	for _, t := range trs {
		p.tables = append(p.tables, t.stats)
	}
	p.mu.Unlock()
}

func (p *Progress) observeWrite(d time.Duration) { p.mu.Lock(); p.write.observe(d); p.mu.Unlock() }
func (p *Progress) observeApply(d time.Duration) { p.mu.Lock(); p.apply.observe(d); p.mu.Unlock() }

func (p *Progress) rowsCopied() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for _, t := range p.tables {
		n += t.RowsCopied.Load()
	}
	return n
}

// TableSnapshot is one table's progress at a moment.
type TableSnapshot struct {
	Table             string `json:"table"`
	Destination       string `json:"destination"`
	RowsEstimated     int64  `json:"rows_estimated"`
	BytesEstimated    int64  `json:"bytes_estimated"`
	RowsCopied        int64  `json:"rows_copied"`
	BytesCopied       int64  `json:"bytes_copied"`
	Partitions        int64  `json:"partitions"`
	PartitionsDone    int64  `json:"partitions_done"`
	PartitionsRunning int64  `json:"partitions_running"`
	Done              bool   `json:"done"`
	// Resnapshot is the table's incremental snapshot (ferry snapshot),
	// nil when none was asked for.
	Resnapshot *Resnapshot `json:"resnapshot,omitempty"`
	// Verify is the table's background verification (ferry sync
	// --verify), nil until its first pass.
	Verify *VerifyStatus `json:"verify,omitempty"`
}

// CDCSnapshot is change data capture's progress at a moment.
type CDCSnapshot struct {
	Received   int64     `json:"changes_received"`
	Applied    int64     `json:"changes_applied"`
	Position   string    `json:"position"`
	Head       string    `json:"head,omitempty"`
	LastCommit time.Time `json:"last_commit,omitempty"`
	// LagSeconds is the age of the last applied source commit when it was
	// applied, or the age of the oldest batch still waiting to be applied,
	// whichever is larger; -1 when unknown. A source that stopped sending
	// keeps the last value (ferry cannot tell what it has not seen;
	// LagBytes can).
	LagSeconds float64 `json:"lag_seconds"`
	// LagBytes is how far the applied position is behind the source's head,
	// in bytes of the source's log (WAL for PostgreSQL), measured about
	// every second; null when the source cannot tell (connector.LagMeter).
	LagBytes *int64 `json:"lag_bytes"`
	// SlotRetainedBytes is the log the source keeps for the flow (a
	// PostgreSQL slot's WAL), SlotLimitBytes the most it may keep before it
	// drops what the flow needs (max_slot_wal_keep_size; 0: no limit), and
	// SlotSafeBytes how much more may be written before that; null when the
	// source cannot tell (connector.RetentionMeter). SlotNearLimit: above
	// 80% of the limit.
	SlotRetainedBytes *int64 `json:"slot_retained_bytes,omitempty"`
	SlotLimitBytes    *int64 `json:"slot_limit_bytes,omitempty"`
	SlotSafeBytes     *int64 `json:"slot_safe_bytes,omitempty"`
	SlotNearLimit     bool   `json:"slot_near_limit,omitempty"`
	// SchemaChanges counts the schema changes and truncates this run
	// followed; SchemaEvents are the latest of them.
	SchemaChanges int64         `json:"schema_changes"`
	SchemaEvents  []SchemaEvent `json:"schema_events,omitempty"`
	// HeldPeak is the most changes one apply batch held at once.
	HeldPeak int64 `json:"changes_held_peak"`
}

// Snapshot is the whole flow's progress at a moment.
type Snapshot struct {
	Flow              string          `json:"flow"`
	Mode              flow.Mode       `json:"mode"`
	Phase             Phase           `json:"phase"`
	Started           time.Time       `json:"started"`
	Elapsed           float64         `json:"elapsed_seconds"`
	Tables            []TableSnapshot `json:"tables"`
	RowsCopied        int64           `json:"rows_copied"`
	RowsWritten       int64           `json:"rows_written"`
	RowsEstimated     int64           `json:"rows_estimated"`
	BytesCopied       int64           `json:"bytes_copied"`
	ResumedPartitions int64           `json:"resumed_partitions"`
	SkippedPartitions int64           `json:"skipped_partitions"`
	WriteBatches      int64           `json:"write_batches"`
	WriteLatencyAvgMS float64         `json:"write_latency_avg_ms"`
	WriteLatencyMaxMS float64         `json:"write_latency_max_ms"`
	ApplyBatches      int64           `json:"apply_batches"`
	ApplyLatencyAvgMS float64         `json:"apply_latency_avg_ms"`
	CDC               CDCSnapshot     `json:"cdc"`
	// Workers are the processes running the flow in scale-out mode (none
	// in a single process).
	Workers []WorkerSnapshot `json:"workers,omitempty"`
	// Sequences is when the sequences were last copied; nil until they
	// were copied or failed once.
	Sequences *SequencesSnapshot `json:"sequences,omitempty"`
	// Abilities are what the source and destination can do; nil until a
	// process that opened them reported it.
	Abilities *Abilities `json:"abilities,omitempty"`
	// Cutover is the flow's cutover, its running step and those done; nil
	// until one is requested.
	Cutover *CutoverReport `json:"cutover,omitempty"`
	// Backoff is the --max-replica-lag gate; nil when it is off.
	Backoff *BackoffSnapshot `json:"backoff,omitempty"`
	// MaxRate is the --max-rate bucket the copy and incremental snapshots
	// read through; nil when there is no limit.
	MaxRate *RateSnapshot `json:"max_rate,omitempty"`
	// Query is a query flow's runs; nil for a flow of tables.
	Query *QueryProgress `json:"query,omitempty"`
}

// WorkerSnapshot is one scale-out worker and what it is doing.
type WorkerSnapshot struct {
	ID   string `json:"id"`
	Task string `json:"task"`
}

// Snapshot copies the progress.
func (p *Progress) Snapshot() Snapshot {
	p.mu.Lock()
	can := p.Abilities
	s := Snapshot{Flow: p.Flow, Mode: p.Mode, Phase: p.phase, Started: p.Started, Abilities: &can,
		Elapsed: time.Since(p.Started).Seconds(), ResumedPartitions: p.ResumedPartitions.Load(),
		SkippedPartitions: p.SkippedPartitions.Load(),
		WriteBatches:      p.write.count, ApplyBatches: p.apply.count,
		WriteLatencyMaxMS: float64(p.write.max) / 1e6, Cutover: p.cut.clone(), Backoff: p.backoff.snapshot(), MaxRate: p.rate.snapshot()}
	if p.write.count > 0 {
		s.WriteLatencyAvgMS = float64(p.write.total) / float64(p.write.count) / 1e6
	}
	if p.apply.count > 0 {
		s.ApplyLatencyAvgMS = float64(p.apply.total) / float64(p.apply.count) / 1e6
	}
	for _, t := range p.tables {
		ts := TableSnapshot{Table: t.Table, Destination: t.Destination,
			RowsEstimated: t.RowsEstimated.Load(), BytesEstimated: t.BytesEstimated.Load(),
			RowsCopied: t.RowsCopied.Load(), BytesCopied: t.BytesCopied.Load(),
			Partitions: t.Partitions.Load(), PartitionsDone: t.PartitionsDone.Load(),
			PartitionsRunning: t.PartitionsActive.Load(), Done: t.copied.Load()}
		if r := p.resnap[t.Table]; r != nil {
			rr := *r
			ts.Resnapshot = &rr
		}
		ts.Verify = p.verify.get(t.Table)
		s.Tables = append(s.Tables, ts)
		s.RowsCopied += ts.RowsCopied
		s.RowsWritten += t.RowsWritten.Load()
		s.RowsEstimated += ts.RowsEstimated
		s.BytesCopied += ts.BytesCopied
	}
	p.mu.Unlock()
	sort.SliceStable(s.Tables, func(i, j int) bool { return s.Tables[i].Table < s.Tables[j].Table })

	c := &p.CDC
	c.mu.Lock()
	s.CDC = CDCSnapshot{Received: c.Received.Load(), Applied: c.Applied.Load(), HeldPeak: c.HeldPeak.Load(),
		Position: string(c.position), Head: string(c.head), LastCommit: c.lastCommit, LagSeconds: -1}
	if c.lagKnown {
		lag := c.lagBytes
		s.CDC.LagBytes = &lag
	}
	if c.retentionKnown {
		r := c.retention
		s.CDC.SlotRetainedBytes, s.CDC.SlotNearLimit = &r.Retained, r.Near()
		if r.Limit > 0 {
			s.CDC.SlotLimitBytes, s.CDC.SlotSafeBytes = &r.Limit, &r.Safe
		}
	}
	s.CDC.LagSeconds = c.lagAt(time.Now())
	s.CDC.SchemaChanges = c.schemaChanges
	s.CDC.SchemaEvents = append([]SchemaEvent(nil), c.schemaEvents...)
	c.mu.Unlock()
	s.Sequences = p.Sequences.snapshot()
	return s
}

// SequenceStats records the copies of the sequences (engine/sequences.go).
type SequenceStats struct {
	mu   sync.Mutex
	last SequencesSnapshot
	any  bool
}

// SequencesSnapshot is the last copy of the sequences.
type SequencesSnapshot struct {
	// LastCopied is when they were last copied, Set how many were set then
	// and Missing how many the destination did not have.
	LastCopied time.Time `json:"last_copied,omitzero"`
	Set        int       `json:"set"`
	Missing    int       `json:"missing"`
	// Error is why the last attempt failed, "" when it did not.
	Error string `json:"error,omitempty"`
}

func (s *SequenceStats) copied(at time.Time, set, missing int) {
	s.mu.Lock()
	s.last, s.any = SequencesSnapshot{LastCopied: at, Set: set, Missing: missing}, true
	s.mu.Unlock()
}

func (s *SequenceStats) failed(err error) {
	s.mu.Lock()
	s.last.Error, s.any = err.Error(), true
	s.mu.Unlock()
}

func (s *SequenceStats) snapshot() *SequencesSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.any {
		return nil
	}
	last := s.last
	return &last
}
