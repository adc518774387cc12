package engine_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/ferrydb/ferry/flow"
)

// The planner grows the partitions of a large table (a billion rows: 2,000
// partitions of 500,000 rows instead of 4,000 of 250,000) and keeps the
// base for a small one; a given partition size applies to every table.
func TestPlanGrowsTheLargeTablesPartitions(t *testing.T) {
	for _, c := range []struct {
		name  string
		fixed bool
		rows  int64
		want  int
	}{
		{"a billion rows", false, 1_000_000_000, 2000},
		{"a billion rows, --partition-rows given", true, 1_000_000_000, 4000},
		{"a million rows", false, 1_000_000, 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := flow.Config{Name: "sizes", Source: "fake://?tables=1&rows=" + strconv.FormatInt(c.rows, 10), Destination: "null://",
				Mode: flow.ModeSnapshot, PartitionRows: flow.DefaultPartitionRows, FixedPartitionRows: c.fixed}
			e := stepEngine(t, cfg)
			if err := e.Prepare(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := len(e.Plan().Partitions); got != c.want {
				t.Fatalf("%d partitions, want %d", got, c.want)
			}
		})
	}
}
