package model

// The definitions below travel with a table for a destination of the same
// engine, which creates the table as the source has it (defaults, identity
// and serial columns, sequences, user-defined types). Their text is the
// source engine's own SQL; any other destination ignores them.

// Identity is an identity column's definition (PostgreSQL's GENERATED
// ALWAYS/BY DEFAULT AS IDENTITY).
type Identity struct {
	// Always: the column refuses values unless an INSERT overrides it.
	Always   bool        `json:"always,omitempty"`
	Sequence SequenceDef `json:"sequence"`
}

// SequenceDef is a sequence's definition, without its current value (that
// is set at cutover, see connector.Sequence).
type SequenceDef struct {
	Name Namespace `json:"name"`
	// Type is the sequence's data type ("bigint").
	Type      string `json:"type,omitempty"`
	Start     int64  `json:"start"`
	Increment int64  `json:"increment"`
	Min       int64  `json:"min"`
	Max       int64  `json:"max"`
	Cache     int64  `json:"cache"`
	Cycle     bool   `json:"cycle,omitempty"`
	// OwnedBy is the column of the table it travels with that owns it (a
	// serial column's sequence); empty for a standalone sequence a default
	// uses.
	OwnedBy string `json:"owned_by,omitempty"`
	// Comment is the source's comment on the sequence, "" when none.
	Comment string `json:"comment,omitempty"`
}

// UserType is a user-defined type a column uses (a domain, a composite
// type, or an array of one): its qualified name as the column's type
// ("app.price[]") and the statement that creates it.
type UserType struct {
	Name   string `json:"name"`
	Create string `json:"create"`
	// Comment is the source's comment on the type, "" when none.
	Comment string `json:"comment,omitempty"`
	// Requires are the user types its definition uses, in the order to
	// create them.
	Requires []UserType `json:"requires,omitempty"`
}

// Extension is a PostgreSQL extension a table's columns use (their type,
// or a function their default calls), created in its schema at a
// destination of the same engine before the table.
type Extension struct {
	Name   string `json:"name"`
	Schema string `json:"schema"`
	// Columns are the table's columns that use it.
	Columns []string `json:"columns,omitempty"`
	// Functions are its functions their defaults call, spelled as in
	// Column.Uses: created with it, so not missing at the destination.
	Functions []string `json:"functions,omitempty"`
}
