// Package faultpoint lets an end-to-end test hold a ferry process at a
// named point of its flow, so the test can kill it exactly there instead
// of sleeping and hoping. A process holds only when FERRY_TEST_HOLD_AT
// names the point; otherwise Hold returns at once.
package faultpoint

import (
	"context"
	"log/slog"
	"os"
)

// Env names the point a process holds at.
const Env = "FERRY_TEST_HOLD_AT"

// Message is what a held process logs, for the test to wait on.
const Message = "holding at a test point until stopped"

// The points.
const (
	// PlanMade: the source made the plan (a PostgreSQL source created the
	// flow's replication slot) and the plan is not saved yet.
	PlanMade = "plan-made"
	// SpanPartApplied: CDC under --apply-mode transactional applied the
	// first part of a huge source transaction inside a destination
	// transaction it keeps open, not committed yet.
	SpanPartApplied = "span-part-applied"
	// EventsSent: an event destination (nats, kafka) has the events of a
	// batch stored and not yet their checkpoint: killed here, a resumed
	// flow sends them again.
	EventsSent = "events-sent"
	// QueryBatchWritten: a query replication run has committed its first
	// batch (rows and checkpoint) and not read the rest.
	QueryBatchWritten = "query-batch-written"
	// PlanChunkStored: a scale-out plan activity stored the first chunk
	// of its plan in a chunk workflow and has not cut the rest.
	PlanChunkStored = "plan-chunk-stored"
)

// Hold blocks at point until ctx ends, if FERRY_TEST_HOLD_AT names it.
func Hold(ctx context.Context, point string, log *slog.Logger) {
	if os.Getenv(Env) != point {
		return
	}
	log.Warn(Message, "point", point)
	<-ctx.Done()
}
