package flow

import "testing"

func TestPartitionRowsGrowWithTheTable(t *testing.T) {
	const base = DefaultPartitionRows
	for _, c := range []struct {
		name        string
		rows, bytes int64
		want        int64
	}{
		{"empty", 0, 0, base},
		{"small", 1000, 100_000, base},
		{"1,000 base partitions", 1000 * base, 0, base},
		{"10 billion rows", 10_000_000_000, 0, 1_581_138},
		{"100 billion rows of 100 bytes", 100_000_000_000, 10_000_000_000_000, 5_000_000},
		{"100 billion rows of 1 kB: at most 1 GiB a partition", 100_000_000_000, 100_000_000_000_000, 1 << 30 / 1000},
		{"huge rows never shrink below the base", 1_000_000_000, 1_000_000_000 * 100_000, base},
	} {
		if got := PartitionRowsFor(base, c.rows, c.bytes); got != c.want {
			t.Errorf("%s: %d rows per partition, want %d", c.name, got, c.want)
		}
	}
	if got := PartitionRowsFor(0, 10, 0); got != base {
		t.Errorf("no base: %d, want the default", got)
	}
	// The number of partitions keeps growing with the table, slower.
	prev := int64(0)
	for _, rows := range []int64{1e8, 1e9, 1e10, 1e11, 1e12} {
		n := rows / PartitionRowsFor(base, rows, 0)
		if n <= prev {
			t.Errorf("%d rows: %d partitions, not more than %d for a smaller table", rows, n, prev)
		}
		prev = n
	}
}
