package dashboard

import (
	"sync"
	"time"

	"github.com/ferrydb/ferry/engine"
)

// Point is one second of a flow's history: what the charts draw.
type Point struct {
	// T is the sample's time in Unix milliseconds.
	T     int64        `json:"t"`
	Phase engine.Phase `json:"phase"`
	// Cumulative counters at T.
	RowsCopied      int64 `json:"rows_copied"`
	BytesCopied     int64 `json:"bytes_copied"`
	ChangesReceived int64 `json:"changes_received"`
	ChangesApplied  int64 `json:"changes_applied"`
	// Rates over the interval that ends at T.
	RowsPerSec    float64 `json:"rows_per_sec"`
	BytesPerSec   float64 `json:"bytes_per_sec"`
	ChangesPerSec float64 `json:"changes_per_sec"`
	// LagSeconds is null until CDC applied a change with a commit time.
	LagSeconds *float64 `json:"lag_seconds"`
	// LagBytes is null unless the source reports how far behind its head
	// the flow is in bytes (none does yet).
	LagBytes *int64 `json:"lag_bytes"`

	rated bool // the rates cover an interval (not the first sample)
}

// History is GET /api/history.
type History struct {
	IntervalSeconds float64 `json:"interval_seconds"`
	Capacity        int     `json:"capacity"`
	Points          []Point `json:"points"`
}

// ring keeps the last points, oldest first.
type ring struct {
	mu    sync.Mutex
	buf   []Point
	start int
	n     int

	// What the last sample saw, to compute rates.
	last     time.Time
	lastRows int64 // rows written by this run
	lastB    int64
	lastCh   int64
}

func newRing(capacity int) *ring { return &ring{buf: make([]Point, capacity)} }

// sample turns a snapshot taken at now into a point and keeps it.
func (r *ring) sample(now time.Time, s engine.Snapshot) Point {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := Point{T: now.UnixMilli(), Phase: s.Phase, RowsCopied: s.RowsCopied, BytesCopied: s.BytesCopied,
		ChangesReceived: s.CDC.Received, ChangesApplied: s.CDC.Applied}
	if !r.last.IsZero() {
		if dt := now.Sub(r.last).Seconds(); dt > 0 {
			// Rows written by this run, not rows copied: a resumed flow's
			// earlier rows arrive all at once and are no throughput.
			p.RowsPerSec = max(float64(s.RowsWritten-r.lastRows)/dt, 0)
			p.BytesPerSec = max(float64(s.BytesCopied-r.lastB)/dt, 0)
			p.ChangesPerSec = max(float64(s.CDC.Received-r.lastCh)/dt, 0)
			p.rated = true
		}
	}
	r.last, r.lastRows, r.lastB, r.lastCh = now, s.RowsWritten, s.BytesCopied, s.CDC.Received
	if s.CDC.LagSeconds >= 0 {
		lag := s.CDC.LagSeconds
		p.LagSeconds = &lag
	}
	p.LagBytes = s.CDC.LagBytes
	r.buf[(r.start+r.n)%len(r.buf)] = p
	if r.n < len(r.buf) {
		r.n++
	} else {
		r.start = (r.start + 1) % len(r.buf)
	}
	return p
}

// points returns the points after sinceMillis (all with 0), oldest first.
func (r *ring) points(sinceMillis int64) []Point {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Point, 0, r.n)
	for i := 0; i < r.n; i++ {
		p := r.buf[(r.start+i)%len(r.buf)]
		if p.T > sinceMillis {
			out = append(out, p)
		}
	}
	return out
}

// rates averages the last window points' rates, the basis of the current
// speed and the ETA: one second alone is too jumpy.
func (r *ring) rates(window int) (rows, bytes, changes float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := 0
	for i := r.n - 1; i >= 0 && i >= r.n-window; i-- {
		p := r.buf[(r.start+i)%len(r.buf)]
		if !p.rated {
			break
		}
		rows += p.RowsPerSec
		bytes += p.BytesPerSec
		changes += p.ChangesPerSec
		k++
	}
	if k == 0 {
		return 0, 0, 0
	}
	return rows / float64(k), bytes / float64(k), changes / float64(k)
}
