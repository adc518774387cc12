// Package connector declares what ferry asks of a database: small interfaces
// for each step of the flow, optional abilities as separate interfaces, and a
// registry from URL scheme to connector. The engine depends on this package;
// connectors (under connectors/) implement it; neither imports the other.
//
// A connector is opened once per flow from a URL. It may be a source, a
// destination or both; everything beyond the base interfaces is an optional
// interface, or a promise a Declarer declares. Discover finds them all once
// and returns Capabilities: typed views for the engine, and Abilities, the
// plain values ferry connectors, the dashboard and scale-out show.
package connector

import (
	"context"
	"fmt"
	"time"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// Connector is an opened connection to one database, directory or generator.
type Connector interface {
	// Close releases every connection the connector holds.
	Close() error
}

// Source can list its tables, plan their partitions and read them.
type Source interface {
	Connector
	// Tables discovers the tables the source holds, with their schemas and
	// size estimates.
	Tables(ctx context.Context) ([]*model.Table, error)
	// Plan partitions the given tables. With opts.CDC it first records the
	// change stream's start position T0 (creating a replication slot or
	// similar), so that no change after the copy starts can be missed.
	Plan(ctx context.Context, tables []*model.Table, opts PlanOptions) (*model.Plan, error)
	// ReadPartition reads the rows of p after cursor from ("" for the start)
	// in batches, calling emit for each in order. A batch's Cursor resumes the
	// partition right after its last row. ReadPartition returns when the
	// partition is exhausted, emit fails or ctx is done.
	ReadPartition(ctx context.Context, t *model.Table, p model.Partition, from model.Cursor, emit func(*model.RowBatch) error) error
}

// RowsFor is table ns's partition size: its TableRows, else PartitionRows,
// else def.
func (o PlanOptions) RowsFor(ns model.Namespace, def int64) int64 {
	if n := o.TableRows[ns]; n > 0 {
		return n
	}
	if o.PartitionRows > 0 {
		return o.PartitionRows
	}
	return def
}

// PlanOptions tunes a source's plan.
type PlanOptions struct {
	// CDC asks for a T0 and whatever the change stream needs (a slot).
	CDC bool
	// Flow names the flow, for slots and publications the source creates.
	Flow string
	// PartitionRows is the target number of rows per partition.
	PartitionRows int64
	// TableRows, when it names a table, is that table's partition size
	// instead (the engine's adaptive size, flow.PartitionRowsFor).
	TableRows map[model.Namespace]int64
	// BatchRows is the number of rows per emitted batch; Plan stamps it on
	// every partition (model.Partition.BatchRows), which a read then
	// honours, on this connection or another.
	BatchRows int
	// Recorded says the change stream's start was recorded beforehand for
	// this flow (ReverseStarter.StartReverse at a cutover with --reverse):
	// the plan adopts it (the flow's slot) instead of making a new one, and
	// fails when it is gone.
	Recorded bool
}

// StreamOptions tunes a source's change stream.
type StreamOptions struct {
	// Flow names the flow, as PlanOptions.Flow did for its plan: a resumed
	// flow streams without planning again, and finds what the plan made
	// for it (a replication slot) by this name.
	Flow string
	// NewTables, when set, selects tables created at the source while the
	// stream runs (the flow's --tables): a source that sees a table
	// created in its stream (a CREATE TABLE in its log) emits, in stream
	// order, a model.SchemaChange with Created for each one it selects,
	// ahead of the table's first change, and from then on streams its
	// changes (a source whose stream lists its tables, a PostgreSQL
	// publication, streams them once the engine has called
	// TableAdder.AddTables). It emits one with Dropped for a table of the
	// stream dropped at the source (DROP TABLE), and stops streaming it.
	// nil: tables created at the source are ignored. A source that cannot
	// see tables created or dropped in its stream ignores it; ferry sync
	// run again then finds the new tables (docs/living-schema.md).
	NewTables func(model.Namespace) bool
}

// ChangeSource is a source with change data capture.
type ChangeSource interface {
	Source
	// StreamChanges emits batches of changes to the given tables, starting
	// after position from, until ctx is done or an error occurs. Each batch
	// ends at a safe resume point. When the source is idle it should still emit
	// an empty batch now and then with the current position, so a caught-up
	// flow can tell it is caught up.
	StreamChanges(ctx context.Context, tables []*model.Table, from model.Position, opts StreamOptions, emit func(context.Context, *model.ChangeBatch) error) error
	// Ack tells the source that everything up to pos is durable at the
	// destination, so it may release what it retains for it (WAL, binlogs).
	Ack(ctx context.Context, pos model.Position) error
	// HeadPosition is the source's current position: a flow that has applied
	// changes up to it has caught up.
	HeadPosition(ctx context.Context) (model.Position, error)
	// ComparePositions orders two positions of this source: -1, 0 or 1.
	ComparePositions(a, b model.Position) (int, error)
}

// HistoryChecker is a change source whose positions name a point of a
// replication topology rather than of one server (MySQL and MariaDB GTIDs),
// so a flow may resume on another server of it, a replica promoted after a
// failover.
type HistoryChecker interface {
	// CheckHistory returns nil when this server's history holds pos, a
	// position of the flow taken on another server; else a
	// *errs.ConfigError saying why not.
	CheckHistory(ctx context.Context, pos model.Position) error
}

// RetentionMeter is a change source that keeps its log for the flow (a
// PostgreSQL replication slot's WAL) within a limit past which the server
// drops what the flow still needs.
type RetentionMeter interface {
	// Retention measures what the source keeps for the named flow now.
	Retention(ctx context.Context, flow string) (Retention, error)
}

// Retention is what a source keeps for a flow, in bytes of its log.
type Retention struct {
	// Retained is what it keeps for the flow now.
	Retained int64
	// Limit is the most it keeps before it drops what the flow needs
	// (max_slot_wal_keep_size); 0 when unlimited.
	Limit int64
	// Safe is how much more may be written before that happens
	// (safe_wal_size); meaningful only with a Limit.
	Safe int64
}

// Near tells whether the source keeps more than 80% of what it may keep
// for the flow: the flow must catch up before the source drops the rest.
func (r Retention) Near() bool { return r.Limit > 0 && r.Safe < r.Limit/5 }

// ServerIdentifier is a source that can name the database cluster it
// serves: the same for every address of one server, and for the servers
// that are physical copies of it (a PostgreSQL standby, promoted or not).
// A flow records it at its first run, and resumes on a source at another
// address only when it is the same.
type ServerIdentifier interface {
	ServerID(ctx context.Context) (string, error)
}

// Colocated is a connector that knows whether its database server runs on
// this machine (it connected over a Unix socket, a loopback address or one
// of the machine's own addresses): ferry sync then leaves the server cores
// (internal/cputune).
type Colocated interface {
	ServerOnThisMachine() bool
}

// ReplicaLagReader is a source that can tell how far its own replicas lag
// behind it, so a flow can back off while they catch up
// (--max-replica-lag).
type ReplicaLagReader interface {
	// ReplicaLag runs query on the source, which returns one number of
	// seconds (NULL or no row is 0), or the source's own measure when query
	// is empty. An unusable query, or an empty one where the source has no
	// measure of its own, is a *errs.ConfigError.
	ReplicaLag(ctx context.Context, query string) (time.Duration, error)
}

// Destination creates tables and writes copied rows.
type Destination interface {
	Connector
	// CreateTables creates the given tables (and their schemas) if they do
	// not exist. An existing table is left as it is if it is compatible and
	// is an error naming the difference if it is not.
	CreateTables(ctx context.Context, tables []*model.Table) error
	// OpenWriter opens one writer, owned by one engine goroutine. The engine
	// opens as many as it runs writers in parallel.
	OpenWriter(ctx context.Context) (RowWriter, error)
}

// RowWriter writes batches of copied rows. Writing the same batch twice must
// leave the destination as writing it once (upsert by primary key; for a
// table whose key a KeyDeferrer left out, once FinishTable has run), so a
// retried or resumed partition is harmless.
type RowWriter interface {
	WriteRows(ctx context.Context, b *model.RowBatch) error
	Close() error
}

// ChangeApplier is a destination that can apply changes.
type ChangeApplier interface {
	Destination
	OpenApplier(ctx context.Context) (ChangeWriter, error)
}

// ChangeWriter applies folded change batches idempotently: upserts by primary
// key, deletes that ignore missing rows, and an Unchanged value keeps the
// destination's current value.
type ChangeWriter interface {
	ApplyChanges(ctx context.Context, b *model.ApplyBatch) error
	Close() error
}

// LagMeter is a change source that can tell how far a position is behind
// its head, in bytes of its log (WAL for PostgreSQL), for lag reporting.
type LagMeter interface {
	LagBytes(ctx context.Context, pos model.Position) (int64, error)
}

// PositionMarker is a change source that can write a marker into its own
// change stream. The marker's position is past every change committed
// before the call, like HeadPosition's, and a stream reads the marker at
// once: a flow draining to it (a cutover) reaches it without waiting for a
// change or the next heartbeat on a source the application no longer
// writes to.
type PositionMarker interface {
	MarkPosition(ctx context.Context) (model.Position, error)
}

// CheckpointKeeper is a destination that stores a flow's checkpoints itself,
// in the same transaction as the data they cover (RowBatch.Checkpoint,
// ApplyBatch.Checkpoints: Checkpoint and More). Its checkpoints are then
// authoritative on resume.
type CheckpointKeeper interface {
	// LoadCheckpoints returns every checkpoint of the flow, by key. A keeper
	// whose writes are not atomic (files) also rolls back here anything
	// written after its last checkpoint.
	LoadCheckpoints(ctx context.Context, flow string) (map[string]string, error)
	// ReplaceCheckpoints atomically deletes the flow's checkpoints whose key
	// starts with prefix and stores values.
	ReplaceCheckpoints(ctx context.Context, flow, prefix string, values map[string]string) error
	// DropCheckpoints forgets the flow (ferry sync --restart).
	DropCheckpoints(ctx context.Context, flow string) error
}

// TableFinisher is a destination with work to do once a table's copy is
// complete: build deferred indexes, assemble files. The engine finishes up
// to --parallel tables at once, each table once per run, and again after a
// crash: finishing a table twice must be harmless.
type TableFinisher interface {
	FinishTable(ctx context.Context, t *model.Table) error
}

// TableAppender is a TableFinisher that can also add what was written for
// a table since its last append to the table's rows, keeping the rows
// already there: query replication's runs append instead of finishing,
// which would replace the table with one run's rows. Appending again after
// a crash must not append anything twice.
type TableAppender interface {
	AppendTable(ctx context.Context, t *model.Table) error
}

// KeyDeferrer is a destination that can create the tables a copy is about
// to fill without their primary key, loading them faster, and build the key
// in FinishTable, where rows the copy wrote twice (a partition read again
// outside the plan's snapshot) are reduced to one per key first. Every
// copy of a row was read at or after T0, so CDC from T0 converges whichever
// copy is kept. A table waiting for its key accepts the copy's writes only:
// applying changes to it is an error, so the engine uses CreateTablesForCopy
// only while the copy (and then FinishTable) is still to run, and applies
// changes only after FinishTable succeeded. Whether a table's key is still
// to build is kept at the destination, so any later run or worker finds it.
type KeyDeferrer interface {
	TableFinisher
	// CreateTablesForCopy is CreateTables for tables the copy fills next:
	// the tables it creates have no primary key until FinishTable. An
	// existing table is left as CreateTables leaves it.
	CreateTablesForCopy(ctx context.Context, tables []*model.Table) error
}

// RawReader is a source that can read a partition without decoding its
// rows: batches carry them in RowBatch.Raw, in a format of its own engine.
type RawReader interface {
	// RawFormat describes the payload ReadPartitionRaw would produce for t;
	// ok is false when t cannot be read raw.
	RawFormat(ctx context.Context, t *model.Table) (f *model.RawFormat, ok bool, err error)
	// ReadPartitionRaw is ReadPartition with batches whose Raw holds the rows
	// in format f (Rows stays empty), each with the exact cursor of its last
	// row.
	ReadPartitionRaw(ctx context.Context, t *model.Table, p model.Partition, from model.Cursor, f *model.RawFormat, emit func(*model.RowBatch) error) error
}

// ChunkReader is a source that can read a bounded run of a table's rows
// after a cursor cheaply (a query with a limit), for incremental snapshots;
// without it a chunk is the first batch of a ReadPartition of the whole
// table, whose read is then cut short.
type ChunkReader interface {
	// ReadChunk reads up to rows rows of t after cursor from ("" for the
	// start), in the order and with the cursors of ReadPartition, at the
	// source's current state. Fewer rows than asked for means none follow.
	ReadChunk(ctx context.Context, t *model.Table, from model.Cursor, rows int) (*model.RowBatch, error)
}

// RawWriter is a destination whose writers accept RowBatch.Raw payloads.
type RawWriter interface {
	// AcceptsRaw reports whether its writers can store payloads of format f
	// in table t (a destination table) byte for byte with the same meaning:
	// same columns, same types. The engine sends raw batches of t only then.
	AcceptsRaw(ctx context.Context, t *model.Table, f *model.RawFormat) (bool, error)
}

// ProcessHolder is a destination that one process writes at a time: its
// database locks it for the process that has it open (a DuckDB file). In
// scale-out only one worker may hold it, which ferry worker checks at
// start and keeps true by holding it for its life.
type ProcessHolder interface {
	// Hold takes the destination for this process until the connector is
	// closed, creating it if needed; a *errs.ConfigError when another
	// process has it.
	Hold(ctx context.Context) error
}

// Emptier is a destination that can empty tables it was given to
// CreateTables: a flow started over (ferry sync --restart) copies into
// empty tables, so rows deleted at the source since the earlier run cannot
// survive at the destination.
type Emptier interface {
	EmptyTables(ctx context.Context, tables []*model.Table) error
}

// SchemaChanger is a destination that can follow a source's schema changes
// during CDC: it makes its table from into to.Table (both in its own
// names), keeping the values of columns to.Renamed renames and giving the
// rows it holds to.Filled's values of added columns. It returns an error
// that stops the flow for any change it cannot apply exactly, and applying
// a change it already applied (a flow resumed before its checkpoint) is
// harmless.
type SchemaChanger interface {
	AlterTable(ctx context.Context, from *model.Table, to model.SchemaChange) error
}

// FlowDropper is a source that keeps resources for a flow (replication slots,
// publications) and can release them when the flow is dropped.
type FlowDropper interface {
	DropFlow(ctx context.Context, flow string) error
}

// Preflighter is a source that can check, before anything is written at
// the destination, that it can serve a plan of these tables with these
// options (for CDC: the change stream's settings and privileges). An error
// is usually a errs.ConfigError saying how to fix it.
type Preflighter interface {
	Preflight(ctx context.Context, tables []*model.Table, opts PlanOptions) error
}

// PlanStreamer is a source that hands out its plan's partitions as it cuts
// them, in plan order, so that a plan of millions of partitions is never
// whole in memory: a scale-out plan activity stores them in chunks as they
// come. The plan it returns has no partitions; emit has had each once.
// What Plan records first (T0, a slot) it records before the first emit,
// and a plan that fails after some emits leaves them to the caller to
// discard.
type PlanStreamer interface {
	PlanStream(ctx context.Context, tables []*model.Table, opts PlanOptions, emit func(model.Partition) error) (*model.Plan, error)
}

// StreamPlan plans the tables with src, handing each partition to emit in
// plan order: as src cuts them when it is a PlanStreamer, else from its
// whole plan. The plan returned has no partitions.
func StreamPlan(ctx context.Context, src Source, tables []*model.Table, opts PlanOptions, emit func(model.Partition) error) (*model.Plan, error) {
	if ps, ok := src.(PlanStreamer); ok {
		return ps.PlanStream(ctx, tables, opts, emit)
	}
	plan, err := src.Plan(ctx, tables, opts)
	if err != nil {
		return nil, err
	}
	for _, p := range plan.Partitions {
		if err := emit(p); err != nil {
			return nil, err
		}
	}
	plan.Partitions = nil
	return plan, nil
}

// CollectPlan is Plan for a PlanStreamer: stream gathers its partitions
// into the plan.
func CollectPlan(ctx context.Context, stream func(context.Context, []*model.Table, PlanOptions, func(model.Partition) error) (*model.Plan, error), tables []*model.Table, opts PlanOptions) (*model.Plan, error) {
	var parts []model.Partition
	plan, err := stream(ctx, tables, opts, func(p model.Partition) error {
		parts = append(parts, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	plan.Partitions = parts
	return plan, nil
}

// TableAdder is a change source whose stream carries only the tables it
// was told of when the flow's plan was made (a PostgreSQL publication). A
// flow run again with a wider --tables calls AddTables with the tables it
// adds, after the stream's last run and before it copies them, so that every
// change to them from then on is in the stream. It checks what Preflight
// checks for CDC of these tables (replica identity, a user's publication
// that lacks them: a errs.ConfigError with the fix), and is idempotent.
type TableAdder interface {
	AddTables(ctx context.Context, flow string, tables []*model.Table) error
}

// TableChecker is a destination that can tell, without writing anything,
// whether it can hold the tables (names it cannot tell apart, reserved
// names, types it has no column for), with a errs.ConfigError when it cannot,
// and which columns it would hold in a type that does not keep the source
// type's meaning. The engine calls it before any destination table is
// created (so a refusal leaves nothing behind at either side) and logs the
// conversions as warnings; ferry plan shows them. CreateTables refuses
// what CheckTables refuses.
type TableChecker interface {
	CheckTables(ctx context.Context, tables []*model.Table) ([]Conversion, error)
}

// Conversion is a destination column whose type keeps less than the
// source's: the source type has no canonical kind, its values travel as
// the type's text form (model.Type.TextForm) and the destination stores
// that text in a column of its own type.
type Conversion struct {
	// Table is the destination table.
	Table  model.Namespace `json:"table"`
	Column string          `json:"column"`
	// From is the source's type (model.Type.Native), To the destination
	// column's type.
	From string `json:"from"`
	To   string `json:"to"`
	// Fix is the statement that makes the column the source's, when the
	// user can run it (once what it needs exists, or after the cutover).
	Fix string `json:"fix,omitempty"`
}

func (c Conversion) String() string {
	s := fmt.Sprintf("table %s, column %s: %s becomes %s", c.Table, c.Column, c.From, c.To)
	if c.Column == "" {
		// A definition of the table (an index) rather than of a column.
		s = fmt.Sprintf("table %s: %s becomes %s", c.Table, c.From, c.To)
	}
	if c.Fix != "" {
		s += "; to make it the source's: " + c.Fix
	}
	return s
}

// TextFormConversions lists the columns of tables whose values are a source
// type's text form, for a destination that has no such type: to names the
// destination type it holds the column in.
func TextFormConversions(tables []*model.Table, to func(model.Type) string) []Conversion {
	var out []Conversion
	for _, t := range tables {
		for _, c := range t.Columns {
			if c.Type.TextForm {
				out = append(out, Conversion{Table: t.Namespace, Column: c.Name, From: c.Type.Native, To: to(c.Type)})
			}
		}
	}
	return out
}

// CheckFoldedColumns refuses a table with two columns whose names a
// destination cannot tell apart: fold maps a name to the form dest
// compares (lower case for SQLite and MySQL).
func CheckFoldedColumns(t *model.Table, fold func(string) string, dest string) error {
	seen := make(map[string]string, len(t.Columns))
	for _, c := range t.Columns {
		k := fold(c.Name)
		if prev, dup := seen[k]; dup {
			return &errs.ConfigError{
				Msg: fmt.Sprintf("table %s: columns %q and %q would be one column at %s, whose column names ignore case", t.Namespace, prev, c.Name, dest),
				Fix: fmt.Sprintf("exclude the table with --tables '!%s', rename one of the columns at the source, or copy the table to a destination that tells them apart, such as PostgreSQL", t.Namespace),
			}
		}
		seen[k] = c.Name
	}
	return nil
}

// UniqueReporter is a destination whose tables may hold unique (or
// exclusion) constraints besides the primary key: tables that existed
// before the flow. Changes folded by key and applied by writers in
// parallel could break such a constraint for a moment (two rows swapping a
// value in one source transaction), so the engine applies the changes of
// the tables it names unfolded, in the source's order, on one writer.
type UniqueReporter interface {
	// UniqueTables names, of the given destination tables, those holding
	// such a constraint.
	UniqueTables(ctx context.Context, tables []*model.Table) ([]model.Namespace, error)
}

// Counter is a destination that counts what it received (null://).
type Counter interface {
	Counts() (rows, changes int64)
}
