package engine

import (
	"context"
	"math"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/ferrydb/ferry/flow"
)

// copyRate holds the copy's reads to --max-rate across all its lanes: one
// token bucket, rows or bytes, that every lane waits on after reading a
// batch and before handing it on, so the source serves no faster than the
// limit once the first burst is spent. The burst is a tenth of a second's
// worth (at least one row or byte): a lane starting or a pause lets at
// most that through above the rate.
type copyRate struct {
	lim   *rate.Limiter
	bytes bool // the bucket counts bytes, not rows
	// passed counts the rows or bytes let through, waited the time readers
	// spent waiting for the bucket: what progress and the log show.
	passed atomic.Int64
	waited atomic.Int64 // nanoseconds
}

// newCopyRate is the limiter for r, nil when r limits nothing.
func newCopyRate(r flow.Rate) *copyRate {
	if r.Unlimited() {
		return nil
	}
	per, bytes := r.RowsPerSec, false
	if per <= 0 {
		per, bytes = r.BytesPerSec, true
	}
	burst := int(math.Max(1, math.Min(per/10, math.MaxInt32)))
	return &copyRate{lim: rate.NewLimiter(rate.Limit(per), burst), bytes: bytes}
}

// wait blocks until a batch of rows rows and size bytes may go on. A
// batch larger than the burst waits for it in bursts.
func (c *copyRate) wait(ctx context.Context, rows int, size int64) error {
	if c == nil {
		return nil
	}
	n := int64(rows)
	if c.bytes {
		n = size
	}
	burst := int64(c.lim.Burst())
	start := time.Now()
	defer func() { c.waited.Add(int64(time.Since(start))) }()
	for n > 0 {
		take := min(n, burst)
		if err := c.lim.WaitN(ctx, int(take)); err != nil {
			return err
		}
		n -= take
		c.passed.Add(take)
	}
	return nil
}

// RateSnapshot is --max-rate's bucket as progress shows it.
type RateSnapshot struct {
	// Unit is rows or bytes.
	Unit          string  `json:"unit"`
	Passed        int64   `json:"passed"`
	WaitedSeconds float64 `json:"waited_seconds"`
}

func (c *copyRate) snapshot() *RateSnapshot {
	if c == nil {
		return nil
	}
	unit := "rows"
	if c.bytes {
		unit = "bytes"
	}
	return &RateSnapshot{Unit: unit, Passed: c.passed.Load(), WaitedSeconds: time.Duration(c.waited.Load()).Seconds()}
}

// passedSoFar is the rows or bytes let through so far, 0 without a limit.
func (c *copyRate) passedSoFar() int64 {
	if c == nil {
		return 0
	}
	return c.passed.Load()
}
