package connector

import (
	"context"

	"github.com/ferrydb/ferry/model"
)

// ConstraintReader is a source that can list the constraints of its tables
// (unique constraints and indexes, foreign keys, checks) that a destination
// builds at cutover.
type ConstraintReader interface {
	// Constraints lists the constraints of the given tables as they are
	// now, so a change made while the flow ran is included.
	Constraints(ctx context.Context, tables []model.Namespace) ([]model.Constraint, error)
}

// ConstraintBuilder is a destination that builds constraints at cutover.
type ConstraintBuilder interface {
	// BuildConstraints first looks for rows that break any of cons and
	// refuses with an error naming the table, the constraint and a key;
	// then builds those it does not have yet (by name), unique kinds
	// first. On failure, what this call created is dropped again. Names
	// are destination names. Running it again builds nothing new.
	BuildConstraints(ctx context.Context, cons []model.Constraint) (ConstraintsBuilt, error)
}

// ConstraintsBuilt is what BuildConstraints did.
type ConstraintsBuilt struct {
	// Built were created now, Present were there already.
	Built, Present int
	// Skipped are those this destination cannot build as the source
	// has them (a partial unique index where its engine has none), each
	// with the statement to run instead; the engine lists them.
	Skipped []string
}
