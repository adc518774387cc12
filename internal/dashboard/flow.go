package dashboard

import (
	"time"

	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/flow"
)

// Flow is GET /api/flow: the engine's snapshot (every field of
// engine.Snapshot, at the top level) and what the dashboard adds.
type Flow struct {
	engine.Snapshot

	// Source and Destination are the URLs with their passwords replaced by
	// xxxxx.
	Source      string `json:"source"`
	Destination string `json:"destination"`
	StatePath   string `json:"state_path"`
	Coordinator string `json:"coordinator"`
	Version     string `json:"version"`

	// Running is true until the flow ends; Ended is when it ended.
	Running bool       `json:"running"`
	Ended   *time.Time `json:"ended"`
	// Ready is what /readyz answers: prepared, running, not failed.
	Ready bool `json:"ready"`
	// Error is the error that ended the flow ("" if none).
	Error string `json:"error"`
	// Errors counts the entries of /api/errors since the start.
	Errors int64 `json:"errors"`

	// Percent is the copy's progress, 0 to 100 (null in mode cdc).
	Percent *float64 `json:"percent"`
	// ETASeconds is the copy's estimated time left at the current speed;
	// null when unknown or not copying.
	ETASeconds *float64 `json:"eta_seconds"`
	// Current speeds, averaged over the last 5 seconds.
	RowsPerSec    float64 `json:"rows_per_sec"`
	BytesPerSec   float64 `json:"bytes_per_sec"`
	ChangesPerSec float64 `json:"changes_per_sec"`
	// Sums over the tables.
	BytesEstimated    int64 `json:"bytes_estimated"`
	Partitions        int64 `json:"partitions"`
	PartitionsDone    int64 `json:"partitions_done"`
	PartitionsRunning int64 `json:"partitions_running"`
	// CDCLagBytes is how far behind the source's head CDC is, in bytes;
	// null unless the source reports it (none does yet).
	CDCLagBytes *int64 `json:"cdc_lag_bytes"`

	// Now is the server's time when the document was made.
	Now time.Time `json:"now"`
}

// flow builds the /api/flow document.
func (s *Server) flow() Flow {
	snap, attached := s.snapshot()
	s.mu.Lock()
	f := Flow{Source: s.info.Source, Destination: s.info.Destination, StatePath: s.info.StatePath,
		Coordinator: s.info.Coordinator, Version: s.info.Version, Running: s.ended.IsZero(), Error: s.runErr, Now: time.Now()}
	ready, stopped, ended := s.ready, s.stopped, s.ended
	s.mu.Unlock()
	if !attached {
		snap = engine.Snapshot{Flow: s.info.Flow, Phase: engine.PhasePlan, Started: f.Now, CDC: engine.CDCSnapshot{LagSeconds: -1}}
	}
	if snap.Tables == nil {
		snap.Tables = []engine.TableSnapshot{}
	}
	if !ended.IsZero() {
		f.Ended = &ended
		snap.Elapsed = ended.Sub(snap.Started).Seconds()
		switch {
		case f.Error != "":
			snap.Phase = engine.PhaseFailed
		case stopped:
			snap.Phase = engine.PhaseStopped
		}
	}
	f.Ready = ready && f.Running
	f.Errors = s.problems.get().Total
	f.Snapshot = snap
	f.CDCLagBytes = snap.CDC.LagBytes

	allDone := len(snap.Tables) > 0
	for _, t := range snap.Tables {
		f.BytesEstimated += t.BytesEstimated
		f.Partitions += t.Partitions
		f.PartitionsDone += t.PartitionsDone
		f.PartitionsRunning += t.PartitionsRunning
		allDone = allDone && t.Done
	}
	f.Percent = Percent(snap)
	if f.Running {
		f.RowsPerSec, f.BytesPerSec, f.ChangesPerSec = s.history.rates(5)
		if snap.Phase == engine.PhaseCopy && !allDone {
			// A longer window for the ETA, which should not jump.
			rows, _, _ := s.history.rates(15)
			if left := snap.RowsEstimated - snap.RowsCopied; left > 0 && rows > 0 {
				eta := float64(left) / rows
				f.ETASeconds = &eta
			}
		}
	}
	return f
}

// Percent is a flow's copy progress, 0 to 100, as the dashboard shows it:
// rows against the estimate (or partitions done when nothing is
// estimated), 100 only once every table is done; nil in mode cdc.
func Percent(snap engine.Snapshot) *float64 {
	if snap.Mode == flow.ModeCDC {
		return nil
	}
	allDone := len(snap.Tables) > 0
	var parts, done int64
	for _, t := range snap.Tables {
		parts += t.Partitions
		done += t.PartitionsDone
		allDone = allDone && t.Done
	}
	var pct float64
	switch {
	case allDone:
		pct = 100
	case snap.RowsEstimated > 0:
		pct = min(100*float64(snap.RowsCopied)/float64(snap.RowsEstimated), 99.9)
	case parts > 0:
		pct = min(100*float64(done)/float64(parts), 99.9)
	}
	return &pct
}
