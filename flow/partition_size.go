package flow

import "math"

// Partition size (docs/scaling.md, "Sizing partitions"): a table's
// partitions are PartitionRows rows (the base) until the table would have
// more than partitionsBeforeGrowth of them; past that they grow with the
// square root of the table, so partitions ≈ sqrt(partitionsBeforeGrowth ×
// base partitions): a 10-billion-row table gets about 6,300 partitions of
// 1.6 million rows instead of 40,000 of 250,000, a 100-billion-row one about
// 20,000 of 5 million. A partition never grows past maxPartitionBytes (the
// cost of redoing it), nor shrinks below the base. --partition-rows (or
// partition_rows in a flow file) fixes the size of every table instead.
const (
	partitionsBeforeGrowth = 1000
	maxPartitionBytes      = 1 << 30
)

// PartitionRowsFor is the partition size of a table of rows rows and bytes
// bytes (estimates; 0 when unknown), from the base size.
func PartitionRowsFor(base, rows, bytes int64) int64 {
	if base <= 0 {
		base = DefaultPartitionRows
	}
	n := (rows + base - 1) / base
	if n <= partitionsBeforeGrowth {
		return base
	}
	size := int64(float64(base) * math.Sqrt(float64(n)/partitionsBeforeGrowth))
	if bytes > 0 {
		rowBytes := max(bytes/rows, 1)
		if size*rowBytes > maxPartitionBytes {
			size = max(maxPartitionBytes/rowBytes, base)
		}
	}
	return size
}
