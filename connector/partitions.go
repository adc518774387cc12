package connector

import (
	"context"

	"github.com/ferrydb/ferry/model"
)

// PartitionReader is a source whose tables may be partitioned
// (model.Partitioning) and that can read their partitions again: a
// partition created while the flow ran is not in the plan's tables.
type PartitionReader interface {
	// Partitionings reads the partitioning of the given tables as it is
	// now, sub-partitions included; a table not partitioned is absent.
	Partitionings(ctx context.Context, tables []model.Namespace) (map[model.Namespace]*model.Partitioning, error)
}

// PartitionBuilder is a destination that makes its partitioned tables'
// partitions the source's at cutover.
type PartitionBuilder interface {
	// BuildPartitions creates, for each table (destination names, its
	// Partitioning the source's now), the partitions it lacks, each with
	// the rows its parent's DEFAULT partition holds for it moved into it,
	// in one transaction per table. A partition it has and the source
	// has not (or with another bound) is listed in PartitionsBuilt.Issues
	// with what to do, never dropped. Running it again creates nothing.
	BuildPartitions(ctx context.Context, tables []*model.Table) (PartitionsBuilt, error)
}

// PartitionsBuilt is what BuildPartitions did.
type PartitionsBuilt struct {
	// Created names the partitions created now; Moved counts the rows
	// moved out of DEFAULT partitions into them.
	Created []string
	Moved   int64
	// Issues are the partitions the destination has that the source has
	// not (or not so), each with the statement to run.
	Issues []string
}
