package engine

import (
	"time"
)

// Observer is told what the engine does as it happens, for metrics and
// traces. The engine calls it from its copy lanes and CDC appliers, so an
// implementation must be safe for concurrent use and cheap: it runs on the
// hot path, once per batch. Progress (Snapshot) stays the source of the
// cumulative numbers; an Observer adds what a snapshot cannot give: per-batch
// latencies, the start and end of each partition, and the run's final error.
//
// Table names are source namespaces ("schema.table"); partition names are
// plan partition IDs.
type Observer interface {
	// PartitionStarted is called when a lane starts reading a partition
	// (also one resumed from a cursor).
	PartitionStarted(table, partition string)
	// BatchRead is called for each batch read from the source, before it is
	// handed to a writer.
	BatchRead(table string, rows, bytes int64)
	// BatchWritten is called once the destination confirmed a batch; d is
	// the write's duration.
	BatchWritten(table, partition string, rows, bytes int64, d time.Duration)
	// PartitionDone is called once every batch of a partition is durable.
	// A partition that ends otherwise (stop, failure) gets no call: the run
	// ends instead.
	PartitionDone(table, partition string)
	// ChangesApplied is called for each apply call of a CDC writer: n
	// changes (after folding) applied in d.
	ChangesApplied(n int, d time.Duration)
	// Error is called with the error that ends a run.
	Error(err error)
}

// NopObserver ignores everything; it is the engine's default.
type NopObserver struct{}

func (NopObserver) PartitionStarted(string, string)                          {}
func (NopObserver) BatchRead(string, int64, int64)                           {}
func (NopObserver) BatchWritten(string, string, int64, int64, time.Duration) {}
func (NopObserver) PartitionDone(string, string)                             {}
func (NopObserver) ChangesApplied(int, time.Duration)                        {}
func (NopObserver) Error(error)                                              {}

var _ Observer = NopObserver{}

// SetObserver sets who is told what the engine does; call it before Run.
// nil restores the default, which ignores everything.
func (e *Engine) SetObserver(o Observer) { e.obs = o }

func (e *Engine) observer() Observer {
	if e.obs == nil {
		return NopObserver{}
	}
	return e.obs
}

// Observers fans each call out to every non-nil observer, in order.
func Observers(obs ...Observer) Observer {
	var out multiObserver
	for _, o := range obs {
		if o != nil {
			out = append(out, o)
		}
	}
	switch len(out) {
	case 0:
		return NopObserver{}
	case 1:
		return out[0]
	}
	return out
}

type multiObserver []Observer

func (m multiObserver) PartitionStarted(table, partition string) {
	for _, o := range m {
		o.PartitionStarted(table, partition)
	}
}

func (m multiObserver) BatchRead(table string, rows, bytes int64) {
	for _, o := range m {
		o.BatchRead(table, rows, bytes)
	}
}

func (m multiObserver) BatchWritten(table, partition string, rows, bytes int64, d time.Duration) {
	for _, o := range m {
		o.BatchWritten(table, partition, rows, bytes, d)
	}
}

func (m multiObserver) PartitionDone(table, partition string) {
	for _, o := range m {
		o.PartitionDone(table, partition)
	}
}

func (m multiObserver) ChangesApplied(n int, d time.Duration) {
	for _, o := range m {
		o.ChangesApplied(n, d)
	}
}

func (m multiObserver) Error(err error) {
	for _, o := range m {
		o.Error(err)
	}
}
