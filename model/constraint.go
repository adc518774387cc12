package model

// ConstraintKind says what a Constraint is.
type ConstraintKind string

// The constraints a destination builds at cutover, in the order it builds
// them: a foreign key needs the unique index it references.
const (
	// ConstraintUnique is a UNIQUE constraint (backed by its index).
	ConstraintUnique ConstraintKind = "unique"
	// ConstraintUniqueIndex is a unique index without a constraint,
	// partial and expression ones included.
	ConstraintUniqueIndex ConstraintKind = "unique_index"
	ConstraintForeignKey  ConstraintKind = "foreign_key"
	ConstraintCheck       ConstraintKind = "check"
)

// Constraint is a rule a source table's rows obey that a destination only
// enforces once the flow is over: while changes are applied in parallel by
// key, a unique value moving between rows or a child applied before its
// parent would stop the flow. Its definitions are the source engine's
// own, for a destination of the same engine.
type Constraint struct {
	Kind ConstraintKind `json:"kind"`
	// Table is the constrained table and Name the constraint's (or the
	// unique index's) name.
	Table Namespace `json:"table"`
	Name  string    `json:"name"`
	// Partition is set for a constraint of one partition of Table (a
	// partitioned table) of its own, named as TablePartition.Name.
	Partition Namespace `json:"partition,omitzero"`
	// Definition is the engine's definition of a constraint (PostgreSQL:
	// pg_get_constraintdef, "FOREIGN KEY (a) REFERENCES s.t(id) ON DELETE
	// CASCADE"); for a unique kind, Index is the definition of its index
	// (what follows USING in pg_get_indexdef).
	Definition string `json:"definition,omitempty"`
	Index      string `json:"index,omitempty"`
	// Keys are the unique kinds' key columns or expressions, Predicate a
	// partial index's WHERE; NullsEqual is NULLS NOT DISTINCT. They let a
	// destination look for rows that break the constraint before building
	// it.
	Keys       []string `json:"keys,omitempty"`
	Predicate  string   `json:"predicate,omitempty"`
	NullsEqual bool     `json:"nulls_equal,omitempty"`
	// A foreign key's Columns reference RefColumns of RefTable; RefNative
	// is how Definition names RefTable, replaced when RefTable is renamed.
	// MatchFull is MATCH FULL (a row with some but not all columns NULL
	// breaks it).
	Columns    []string  `json:"columns,omitempty"`
	RefTable   Namespace `json:"ref_table,omitempty"`
	RefColumns []string  `json:"ref_columns,omitempty"`
	RefNative  string    `json:"ref_native,omitempty"`
	MatchFull  bool      `json:"match_full,omitempty"`
	// Check is a CHECK constraint's expression.
	Check string `json:"check,omitempty"`
	// Partitions are, for a unique kind on a partitioned table, its
	// indexes on the partitions with the source's names.
	Partitions []PartitionIndex `json:"partitions,omitempty"`
	// PortableCheck is a check's expression in the portable SQL
	// (portable.go), when it can be written in it; "" otherwise.
	PortableCheck string `json:"portable_check,omitempty"`
	// OnDelete and OnUpdate are a foreign key's actions ("CASCADE", "SET
	// NULL", "SET DEFAULT", "RESTRICT", "NO ACTION"), for a destination of
	// another engine (portable.go).
	OnDelete string `json:"on_delete,omitempty"`
	OnUpdate string `json:"on_update,omitempty"`
	// Unportable is the source's own definition of a constraint it cannot
	// give in the portable form (a check calling one of its engine's
	// functions): no destination of another engine builds it, and the
	// engine lists it with what to run.
	Unportable string `json:"unportable,omitempty"`
}

// String names the constraint for messages: "app.users.users_email_key",
// "app.events (partition app.events_2024).events_2024_code_key".
func (c Constraint) String() string {
	if c.Partition.Table != "" {
		return c.Table.String() + " (partition " + PartitionIn(c.Table, c.Partition).String() + ")." + c.Name
	}
	return c.Table.String() + "." + c.Name
}
