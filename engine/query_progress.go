package engine

import (
	"sync"
	"time"
)

// Phases of a query flow.
const (
	// PhaseQueryRun: a run is under way; PhaseQueryWait: waiting for the
	// next (--every).
	PhaseQueryRun  Phase = "run"
	PhaseQueryWait Phase = "wait"
)

// QueryProgress is what a query flow's runs did: the dashboard
// (Snapshot.Query), ferry flow status and the scale-out workflow's state
// show the same fields.
type QueryProgress struct {
	// Runs counts the finished runs.
	Runs int `json:"runs"`
	// Marks is the watermark each query reached, by destination table.
	Marks   map[string]string `json:"marks,omitempty"`
	Last    *QueryRunReport   `json:"last_run,omitempty"`
	Current *QueryRunReport   `json:"current_run,omitempty"`
	// NextRun is when the next run starts, while waiting for it.
	NextRun time.Time `json:"next_run,omitzero"`
}

// QueryRunReport is one run of a query flow.
type QueryRunReport struct {
	Number  int                `json:"number"`
	Started time.Time          `json:"started"`
	Ended   time.Time          `json:"ended,omitzero"`
	Rows    int64              `json:"rows"`
	Tables  []QueryTableReport `json:"tables"`
}

// QueryTableReport is one query's part of a run: the watermarks it read
// past and up to, the rows written, its ranges.
type QueryTableReport struct {
	Table      string `json:"table"`
	From       string `json:"from,omitempty"`
	To         string `json:"to,omitempty"`
	Rows       int64  `json:"rows"`
	Ranges     int    `json:"ranges"`
	RangesDone int    `json:"ranges_done"`
	// Resumed says the run was planned by an earlier start (or attempt)
	// and resumed from its record.
	Resumed bool `json:"resumed,omitempty"`
	// RetriedRanges counts, in scale-out mode, the ranges finished by a
	// later attempt than their first (a worker lost or failing mid-range).
	RetriedRanges int `json:"retried_ranges,omitempty"`
}

// clone is a deep copy, safe to read while the flow goes on.
func (p QueryProgress) clone() QueryProgress {
	if p.Marks != nil {
		m := make(map[string]string, len(p.Marks))
		for k, v := range p.Marks {
			m[k] = v
		}
		p.Marks = m
	}
	for _, r := range []**QueryRunReport{&p.Last, &p.Current} {
		if *r != nil {
			c := **r
			c.Tables = append([]QueryTableReport(nil), c.Tables...)
			*r = &c
		}
	}
	return p
}

// queryTracker keeps a single-process query flow's progress for the
// dashboard.
type queryTracker struct {
	mu      sync.Mutex
	started time.Time
	phase   Phase
	p       QueryProgress
}

func (t *queryTracker) startRun() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.phase, t.p.NextRun = PhaseQueryRun, time.Time{}
	t.p.Current = &QueryRunReport{Number: t.p.Runs + 1, Started: time.Now()}
}

// table adds a query's part to the run under way and returns its index.
func (t *queryTracker) table(r QueryTableReport) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.p.Current == nil {
		return -1
	}
	for i, was := range t.p.Current.Tables {
		if was.Table == r.Table { // the query run again after an outage
			t.p.Current.Rows -= was.Rows
			t.p.Current.Tables[i] = r
			return i
		}
	}
	t.p.Current.Tables = append(t.p.Current.Tables, r)
	return len(t.p.Current.Tables) - 1
}

// update changes the query's part i of the run under way.
func (t *queryTracker) update(i int, fn func(r *QueryTableReport)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.p.Current == nil || i < 0 || i >= len(t.p.Current.Tables) {
		return
	}
	r := &t.p.Current.Tables[i]
	before := r.Rows
	fn(r)
	t.p.Current.Rows += r.Rows - before
	if r.To != "" && r.RangesDone == r.Ranges {
		if t.p.Marks == nil {
			t.p.Marks = map[string]string{}
		}
		t.p.Marks[r.Table] = r.To
	}
}

func (t *queryTracker) endRun(next time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.p.Current != nil {
		t.p.Current.Ended = time.Now()
		t.p.Last, t.p.Current = t.p.Current, nil
		t.p.Runs++
	}
	t.phase, t.p.NextRun = PhaseQueryWait, next
}

func (t *queryTracker) end(phase Phase) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.phase, t.p.NextRun = phase, time.Time{}
}

// Snapshot is the flow's progress as the dashboard shows it: the phase
// and its runs (Query).
func (f *QueryFlow) Snapshot() Snapshot {
	t := &f.progress
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.p.clone()
	phase := t.phase
	if phase == "" {
		phase = PhasePlan
	}
	return Snapshot{Flow: f.name, Phase: phase, Started: t.started, Elapsed: time.Since(t.started).Seconds(),
		Tables: []TableSnapshot{}, CDC: CDCSnapshot{LagSeconds: -1}, Query: &p}
}
