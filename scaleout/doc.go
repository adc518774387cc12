// Package scaleout runs a flow on Temporal: the workflow is the coordinator
// (plan once, copy partitions through a sliding window of activities, then
// stream changes in long-running activities until cutover), and any number
// of stateless workers run the activities with the same engine as ferry
// sync.
//
// Only plans, cursors, positions and counters pass through Temporal: rows go
// from the source to the destination inside an activity. The workflow names
// connections ("src", "dst"); each worker resolves a name to a URL from its
// own configuration, so no credential ever enters the workflow's history.
//
// Checkpoints: a partition's cursor is heartbeated by its activity and kept
// by the destination in the same transaction as the rows (when it keeps
// checkpoints); a retried activity resumes from the later of the two. The
// workflow keeps what is finished (partitions done, the CDC position at the
// end of each CDC activity) and carries it across continue-as-new. See
// docs/decisions/2026-11-22-scale-out-checkpoints.md.
package scaleout
