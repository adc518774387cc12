package model

import (
	"fmt"
	"strings"
	"time"
)

// Row holds one value per column, in the table's column order.
type Row []any

// TimeTZ is a time of day with a UTC offset.
type TimeTZ struct {
	Time   time.Duration // since midnight
	Offset int32         // seconds east of UTC
}

// Interval is a calendar interval, kept in the same three parts PostgreSQL
// keeps so nothing is lost in the round trip.
type Interval struct {
	Months int32
	Days   int32
	Micros int64
}

type unchanged struct{}

func (unchanged) String() string { return "<unchanged>" }

// Unchanged stands in an update's new image for a column whose value the
// source did not send (PostgreSQL's unchanged TOAST values). A destination must
// keep its current value for that column, never overwrite it.
var Unchanged any = unchanged{}

// IsUnchanged reports whether v is the Unchanged marker.
func IsUnchanged(v any) bool { _, ok := v.(unchanged); return ok }

// Cursor is a partition's resume point: connector-encoded, opaque to the
// engine. The empty cursor means "from the start of the partition".
type Cursor string

// Position is a point in a source's change stream (an LSN, a binlog position,
// a GTID set): connector-encoded, opaque to the engine, comparable only by the
// source that made it.
type Position string

// RowBatch is a slice of a partition's rows on its way to a destination.
type RowBatch struct {
	// Table is the destination table (after renames).
	Table *Table
	// Partition is the ID of the partition the rows come from.
	Partition string
	// Rows are the decoded rows; empty when Raw carries them.
	Rows []Row
	// Raw, when set, carries the rows undecoded in a source's native format
	// (a pass-through between connectors of the same engine that negotiated
	// it for this table); Rows is then empty.
	Raw *RawRows
	// Cursor is the partition's resume point after the last row of the batch.
	Cursor Cursor
	// Bytes approximates the batch's size, for progress and memory bounds.
	Bytes int64
	// Checkpoint, when set, must be stored in the same transaction as the rows
	// by a destination that keeps checkpoints.
	Checkpoint *Checkpoint
}

// Len is the number of rows in the batch, decoded or raw.
func (b *RowBatch) Len() int {
	if b.Raw != nil {
		return b.Raw.Rows
	}
	return len(b.Rows)
}

// RawFormat describes a raw payload: the format's name, and the columns it
// holds in payload order with each column's type as the format spells it.
// A destination accepts a format only when it can store those bytes as they
// are, with the same meaning (connector.RawWriter).
type RawFormat struct {
	Name    string
	Columns []string
	Types   []string
}

// RawRows is a run of rows in a RawFormat, framed as the format frames rows
// (for "postgres-binary-copy", COPY binary tuples without header or
// trailer).
type RawRows struct {
	Format *RawFormat
	Data   []byte
	Rows   int
}

// Checkpoint is a flow's durable progress marker, keyed within the flow
// ("partition/<id>", "cdc/<writer>"). The value is engine-encoded.
type Checkpoint struct {
	Flow  string
	Key   string
	Value string
}

// Op is the kind of a change.
type Op uint8

const (
	OpInsert Op = iota + 1
	OpUpdate
	OpDelete
	// OpTruncate empties the table: every change of it before the truncate
	// is applied first, every change after it lands in the empty table.
	// Row and Key are nil.
	OpTruncate
)

func (o Op) String() string {
	switch o {
	case OpInsert:
		return "insert"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	case OpTruncate:
		return "truncate"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Change is one row change captured from a source.
type Change struct {
	Op    Op
	Table Namespace
	// Row is the new image for inserts and updates (all columns, possibly with
	// Unchanged markers); nil for deletes.
	Row Row
	// Key is the old primary key for deletes, and for updates that changed the
	// key; nil otherwise. Its values are in primary-key order. For a table
	// without a primary key whose changes carry the whole old row
	// (Table.FullRowIdentity), Key is that old row, in column order, for
	// every update and delete.
	Key Row
}

// ChangeBatch is what a source's change stream emits: a run of changes that
// ends at a safe resume point.
type ChangeBatch struct {
	// Schemas are new definitions of tables, effective before Changes (for
	// example a column added at the source).
	Schemas []SchemaChange
	Changes []Change
	// Position is where to resume to see what comes after this batch.
	Position Position
	// CommitTime is the source's commit time of the last change, zero if
	// unknown; it measures replication lag.
	CommitTime time.Time
	// Partial marks a batch that ends inside a transaction (a huge one
	// emitted in parts): its Position is the last safe resume point before
	// the transaction, so the same Position comes again with the rest.
	Partial bool
	// TxID is the source's ID of the batch's transaction (PostgreSQL's
	// xid), empty where the source does not give one; event destinations
	// carry it as Debezium's source.txId.
	TxID string
}

// SchemaChange is a table's new definition in a change stream, and what a
// destination needs besides it to follow the change exactly.
type SchemaChange struct {
	// Table is the new definition: its columns in the source's order.
	Table *Table
	// Renamed maps a column of Table to its name in the definition before,
	// for each column renamed: a renamed column keeps its values.
	Renamed map[string]string `json:"renamed,omitempty"`
	// Filled holds, for a column added, the canonical value every row that
	// existed got from the source without a change in its stream (a
	// constant default). An added column missing here was NULL in those
	// rows.
	Filled map[string]any `json:"-"`
	// Recopy says the source changed the table's rows without changes in
	// its stream (a volatile default filled in by a rewrite, a table
	// swapped in by an online schema change tool): once the destination
	// table has the new shape, the engine copies the table again while the
	// stream goes on (an incremental snapshot). An added column the rows
	// got values for this way is sent nullable.
	Recopy bool `json:"recopy,omitempty"`
	// Created says Table was created at the source at this point of the
	// stream (CREATE TABLE) and is new to the flow: the source follows it
	// from here on when StreamOptions.NewTables selected it, and the
	// engine creates it at the destination and copies the rows it already
	// has while the stream goes on (an incremental snapshot). Table is its
	// whole definition (columns, primary key, indexes), as Tables would
	// discover it.
	Created bool `json:"created,omitempty"`
	// Dropped says Table (its Namespace at least) was dropped at the
	// source at this point of the stream: no change of it follows, and the
	// flow stops following it; its destination table stays.
	Dropped bool `json:"dropped,omitempty"`
}

// TableChanges is the folded changes of one table inside an apply batch:
// every key appears at most once, so deletes and upserts commute. A table
// whose changes must keep the source's order (unique constraints besides
// the key) comes as several TableChanges in a row, each a run that can be
// applied at once, applied one after the other.
type TableChanges struct {
	Table   *Table
	Deletes []Row // primary-key values in key order
	Upserts []Row // full rows, possibly with Unchanged markers
	// RowChanges are the changes of a table without a primary key
	// (Table.FullRowIdentity), unfolded and in source order: with no key,
	// two identical rows are told apart only by how many there are, so
	// each change must be applied once, in order. Deletes and Upserts are
	// then empty.
	RowChanges []RowChange
}

// RowChange is one change applied by whole row: Old nil inserts New; New
// nil deletes one row equal to Old; both replace one row equal to Old by
// New.
type RowChange struct {
	Old, New Row
}

// ApplyBatch is a set of folded changes for one destination writer,
// applied in the order of Tables.
type ApplyBatch struct {
	Tables []*TableChanges
	// Checkpoint, when set, must be stored in the same transaction as the
	// changes by a destination that keeps checkpoints.
	Checkpoint *Checkpoint
	// More are more checkpoints to store with Checkpoint, in the same
	// transaction: the other writers' positions when this batch holds all
	// of an apply batch's changes. Set only with Checkpoint.
	More []Checkpoint
	// Continues marks a part of a source transaction that goes on (sent
	// only to a destination that declares SpanApply): apply it inside the
	// destination transaction left open by the parts before it, or a new
	// one, and leave that transaction open. The next batch without
	// Continues is applied in the same transaction and commits it; closing
	// the writer before that rolls it back. A part carries no Checkpoint.
	Continues bool
}

// Checkpoints are the checkpoints to store with the batch's changes:
// Checkpoint and More.
func (b *ApplyBatch) Checkpoints() []*Checkpoint {
	if b.Checkpoint == nil {
		return nil
	}
	out := make([]*Checkpoint, 0, 1+len(b.More))
	out = append(out, b.Checkpoint)
	for i := range b.More {
		out = append(out, &b.More[i])
	}
	return out
}

// Len counts the changes in the batch.
func (b *ApplyBatch) Len() int {
	n := 0
	for _, t := range b.Tables {
		n += len(t.Deletes) + len(t.Upserts) + len(t.RowChanges)
	}
	return n
}

// KeyText renders a row's primary key for an error message, "(id=5,
// code=ab)", so a refused row can be found at the source; "" for a table
// without a key.
func KeyText(t *Table, row Row) string {
	if len(t.PrimaryKey) == 0 {
		return ""
	}
	parts := make([]string, 0, len(t.PrimaryKey))
	for _, name := range t.PrimaryKey {
		i := t.ColumnIndex(name)
		if i < 0 || i >= len(row) {
			continue
		}
		s := "NULL"
		if v := row[i]; v != nil {
			var err error
			if _, err = AppendCanonical(nil, t.Columns[i].Type, v); err == nil {
				s, err = FormatText(t.Columns[i].Type, v)
			}
			if err != nil {
				s = fmt.Sprint(v)
			}
		}
		parts = append(parts, name+"="+s)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
