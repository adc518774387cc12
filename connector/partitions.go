package connector

import (
	"context"
	"errors"

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
	// With opts.KeepDefaults it creates only partitions whose parent has
	// no DEFAULT partition, so no row moves (changes are being applied).
	BuildPartitions(ctx context.Context, tables []*model.Table, opts PartitionOptions) (PartitionsBuilt, error)
}

// PartitionOptions tunes BuildPartitions.
type PartitionOptions struct {
	KeepDefaults bool
}

// ErrNoPartition is in the chain of a destination's error for a change
// whose row has no partition there (the source gained one while the flow
// ran): the engine then has the partitions built and applies it again.
var ErrNoPartition = errors.New("the row has no partition at the destination")

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
