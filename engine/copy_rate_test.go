package engine

import (
	"context"
	"testing"
	"time"

	"github.com/ferrydb/ferry/flow"
)

// The limiter never lets the copy read faster than --max-rate: reading n
// units at rate r takes at least (n - burst) / r, whether it counts rows
// or bytes, and however the batches compare with the burst.
func TestCopyRateNeverExceedsTheLimit(t *testing.T) {
	for _, tc := range []struct {
		rate       string
		rows       int
		size       int64
		batches    int
		perSec     float64
		unitsTotal float64
	}{
		{rate: "20000", rows: 500, size: 1, batches: 20, perSec: 20000, unitsTotal: 10000},
		{rate: "4MB/s", rows: 1, size: 1 << 20, batches: 2, perSec: 4e6, unitsTotal: 2 << 20},
	} {
		r, err := flow.ParseRate(tc.rate)
		if err != nil {
			t.Fatal(err)
		}
		c := newCopyRate(r)
		start := time.Now()
		for range tc.batches {
			if err := c.wait(context.Background(), tc.rows, tc.size); err != nil {
				t.Fatal(err)
			}
		}
		elapsed := time.Since(start).Seconds()
		burst := float64(c.lim.Burst())
		if floor := (tc.unitsTotal - burst) / tc.perSec; elapsed < floor {
			t.Errorf("--max-rate %s: %v units in %.3fs, faster than the limit allows (at least %.3fs)", tc.rate, tc.unitsTotal, elapsed, floor)
		}
	}
	if newCopyRate(flow.Rate{}) != nil {
		t.Error("no --max-rate made a limiter")
	}
}
