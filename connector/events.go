package connector

import (
	"context"
	"time"

	"github.com/ferrydb/ferry/model"
)

// EventWriter is a destination that receives every change as an event (a
// message bus: Kafka, NATS JetStream) instead of applying folded changes to
// tables: nothing is folded, each insert, update and delete of the source
// is one event, in the source's order. Its copy path (OpenWriter) sends the
// snapshot's rows as read events. It keeps the flow's checkpoints itself
// (CheckpointKeeper), stored after the events they cover are durable, so a
// crash can only send the events after the last checkpoint again, each
// with the same Event.ID.
type EventWriter interface {
	Destination
	CheckpointKeeper
	// WriteEvents sends b's events in order and returns once they are
	// durable, then stores b.Checkpoint (when set).
	WriteEvents(ctx context.Context, b *EventBatch) error
}

// EventBatch is the events of one source batch, in the source's order.
type EventBatch struct {
	Events []Event
	// Position is where the stream resumes after these events.
	Position model.Position
	// CommitTime is the source's commit time of the last change, zero if
	// unknown.
	CommitTime time.Time
	// Checkpoint is the flow's CDC checkpoint at Position, stored once the
	// events are durable.
	Checkpoint *model.Checkpoint
}

// Event is one change of the source: a row's insert, update or delete, a
// table's truncate, or a schema change (Schema set, Op zero).
type Event struct {
	Op model.Op
	// Table is the destination table (after renames) in its shape at the
	// change; Source is the table's name at the source.
	Table  *model.Table
	Source model.Namespace
	// Row and Key are model.Change's.
	Row, Key model.Row
	// Read marks a row of an incremental snapshot (Op OpInsert): Row is
	// its value at Position, sent as Debezium's read event (op r).
	Read bool
	// Schema is a schema change of Table (its new shape), for Op zero.
	Schema *model.SchemaChange
	// ID is stable across a resume: the source position of the change's
	// transaction and the change's index within it. A destination that
	// drops duplicates by an ID (NATS JetStream's Nats-Msg-Id) uses it.
	ID string
	// Position is the source position of the change's transaction.
	Position model.Position
	// CommitTime is the transaction's commit time, zero if unknown.
	CommitTime time.Time
	// TxID is model.ChangeBatch's: the source's transaction ID, if known.
	TxID string
}

// SourceInfo describes the flow's source to an event destination, for
// the source block of its events (Debezium's source.connector and
// source.db).
type SourceInfo struct {
	// Connector is Debezium's name of the source's kind: "postgresql",
	// "mysql"; empty if neither.
	Connector string
	// Database is the source database's name (PostgreSQL's database; a
	// MySQL table's database is its schema).
	Database string
}

// SourceDescriber is an event destination that takes SourceInfo; the
// engine gives it before writing anything.
type SourceDescriber interface {
	DescribeSource(SourceInfo)
}
