package model

import "time"

// Partition is a slice of a table that one reader copies: a key range, a block
// range or a byte range, described by the source in Lower/Upper.
type Partition struct {
	// ID is stable for the life of the plan: "schema.table/0007".
	ID    string    `json:"id"`
	Table Namespace `json:"table"`
	Index int       `json:"index"`
	// Lower (inclusive) and Upper (exclusive) are connector-encoded bounds;
	// empty means unbounded.
	Lower string `json:"lower,omitempty"`
	Upper string `json:"upper,omitempty"`
	// Snapshot is the source's name for the snapshot the partition is to be
	// read at, valid while the planning process holds it; empty means read
	// the current state.
	Snapshot string `json:"snapshot,omitempty"`
	// BatchRows is how many rows a read of the partition puts in one batch
	// at most: the plan's --batch-rows, replaced by the engine with the
	// running flow's before each read; 0 means the source's default. It
	// travels with the partition because the read may run on a connection
	// that never planned (a resumed flow, a scale-out worker).
	BatchRows int `json:"batch_rows,omitempty"`

	EstimatedRows  int64 `json:"estimated_rows"`
	EstimatedBytes int64 `json:"estimated_bytes"`
}

// Plan is a source's read plan: the tables, their partitions and the CDC
// start position T0 recorded before any row was read. It is made once per flow
// and persisted.
type Plan struct {
	Tables     []*Table    `json:"tables"`
	Partitions []Partition `json:"partitions"`
	// T0 is the position from which CDC must start so that no change after the
	// copy began is lost. Empty when the flow does not capture changes.
	T0 Position `json:"t0,omitempty"`
	// SnapshotConsistent reports that partitions are read at exactly T0 (for
	// example through an exported snapshot), not at a later state.
	SnapshotConsistent bool      `json:"snapshot_consistent,omitempty"`
	CreatedAt          time.Time `json:"created_at"`
}

// Table returns the plan's table by namespace, or nil.
func (p *Plan) Table(ns Namespace) *Table {
	for _, t := range p.Tables {
		if t.Namespace == ns {
			return t
		}
	}
	return nil
}

// BatchSize is the partition's BatchRows, or def when it names none.
func (p Partition) BatchSize(def int) int {
	if p.BatchRows > 0 {
		return p.BatchRows
	}
	return def
}

// SetBatchRows gives every partition of the plan n rows per batch (n > 0).
func (p *Plan) SetBatchRows(n int) {
	if n <= 0 {
		return
	}
	for i := range p.Partitions {
		p.Partitions[i].BatchRows = n
	}
}
