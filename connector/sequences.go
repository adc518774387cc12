package connector

import (
	"context"

	"github.com/ferrydb/ferry/model"
)

// Sequence is one sequence of a database and where it stands. Logical
// replication never carries sequences, so a destination that takes the
// application's traffic must have them set, or its next insert collides
// with a copied row.
type Sequence struct {
	// Name is the sequence, schema-qualified.
	Name model.Namespace
	// Owner and Column are the table and column the sequence belongs to (a
	// serial column's or an identity column's); Owner is zero for a
	// standalone sequence.
	Owner  model.Namespace
	Column string
	// Value and Called are the sequence's state: the last value handed out
	// when Called, else the value the next call hands out.
	Value  int64
	Called bool
}

// Owned reports whether the sequence belongs to a table's column.
func (s Sequence) Owned() bool { return s.Owner != (model.Namespace{}) }

// SequenceReader is a source that can list its sequences with their
// current values.
type SequenceReader interface {
	// Sequences lists every sequence in the given schemas (standalone,
	// owned by a column, behind an identity column) with its current value.
	Sequences(ctx context.Context, schemas []string) ([]Sequence, error)
}

// SequenceWriter is a destination that can set sequences to a source's
// values.
type SequenceWriter interface {
	// SetSequences sets each sequence to its Value and Called, so that the
	// next value the destination hands out is the one the source would.
	// Names and owners are destination names. An owned sequence is found by
	// its owner's column first (its name may differ at the destination),
	// else by name. A sequence the destination does not have is returned in
	// missing, not an error: it may be created later. It is harmless to run
	// again, also after the application wrote at the destination: a
	// sequence whose next value there is past the source's is never moved
	// back.
	SetSequences(ctx context.Context, seqs []Sequence) (missing []Sequence, err error)
}
