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

// Partitioning is how a partitioned table divides its rows (PostgreSQL's
// PARTITION BY), for a destination of the same engine to keep it
// partitioned. The engine copies and applies changes to the partitioned
// table itself; the server routes each row to its partition.
type Partitioning struct {
	// Key is what follows PARTITION BY, as the source prints it
	// (pg_get_partkeydef): "RANGE (created_at)", "LIST (region)".
	Key string `json:"key"`
	// Partitions are its partitions, each possibly partitioned itself.
	Partitions []TablePartition `json:"partitions,omitempty"`
}

// TablePartition is one partition of a partitioned table (a table of its
// own in PostgreSQL; model.Partition is a range of rows the copy reads).
type TablePartition struct {
	// Name is the partition's name. Its Schema is "" when the partition
	// is in the schema of the table the flow selected (the root), so that
	// it follows the table when --rename moves it to another schema; a
	// partition in another schema keeps that one.
	Name Namespace `json:"name"`
	// Bound is the partition's bound as the source prints it
	// (pg_get_expr of relpartbound): "FOR VALUES FROM ('2024-01-01') TO
	// ('2025-01-01')", "FOR VALUES IN ('eu')", "DEFAULT".
	Bound string `json:"bound"`
	// Comment is the source's comment on the partition, "" when none.
	Comment string `json:"comment,omitempty"`
	// Partitioning is set when the partition is partitioned too.
	Partitioning *Partitioning `json:"partitioning,omitempty"`
	// Indexes are the partition's own indexes (not the table's on it),
	// non-unique ones, built with the table's secondary indexes.
	Indexes []Index `json:"indexes,omitempty"`
}

// PartitionIndex is the index a partitioned table's index has on one of
// its partitions (the table's partitions' own names for it), so a
// destination gives each partition's index the source's name.
type PartitionIndex struct {
	// Partition is named as TablePartition.Name: Schema "" for the root's schema.
	Partition Namespace `json:"partition"`
	Name      string    `json:"name"`
}

// PartitionIn is the name of a partition (TablePartition.Name or
// PartitionIndex.Partition) of the table root: in root's schema when it
// gives none.
func PartitionIn(root, partition Namespace) Namespace {
	if partition.Schema == "" {
		partition.Schema = root.Schema
	}
	return partition
}

// Find returns the partition named name (as TablePartition.Name) among
// p's partitions and theirs, nil if none.
func (p *Partitioning) Find(name Namespace) *TablePartition {
	if p == nil {
		return nil
	}
	for i := range p.Partitions {
		if p.Partitions[i].Name == name {
			return &p.Partitions[i]
		}
		if tp := p.Partitions[i].Partitioning.Find(name); tp != nil {
			return tp
		}
	}
	return nil
}

// Each calls f for every partition of p, parents before their partitions.
func (p *Partitioning) Each(f func(*TablePartition)) {
	if p == nil {
		return
	}
	for i := range p.Partitions {
		f(&p.Partitions[i])
		p.Partitions[i].Partitioning.Each(f)
	}
}
