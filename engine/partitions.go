package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// StepPartitions is the cutover step that makes the destination's
// partitioned tables' partitions the source's at that moment: a partition
// the source gained while the flow ran is created (the change stream does
// not say so), with the rows the destination's DEFAULT partition took for
// it moved into it. It runs before the schema step, which then builds the
// unique indexes on the new partitions too.
const StepPartitions = "partitions"

// partitionSteps is the partitions step, when the source can read
// partitions, the destination create them, and a table of the flow is
// partitioned (a table cannot become partitioned in place).
func (e *Engine) partitionSteps() []finishStep {
	if e.src.PartitionReader == nil || e.dst.PartitionBuilder == nil {
		return nil
	}
	for _, t := range e.tables {
		if t.src.Partitioning != nil {
			return []finishStep{{StepPartitions, e.BuildPartitions}}
		}
	}
	return nil
}

// BuildPartitions reads the partitions of the flow's partitioned tables
// at the source as they are now and has the destination create those it
// lacks. A partition the destination has and the source no longer has is
// listed in the log and the returned detail with what to do.
func (e *Engine) BuildPartitions(ctx context.Context) (string, error) {
	return e.buildPartitions(ctx, connector.PartitionOptions{})
}

// buildPartitions is BuildPartitions with the destination's options.
func (e *Engine) buildPartitions(ctx context.Context, opts connector.PartitionOptions) (string, error) {
	if e.src.PartitionReader == nil || e.dst.PartitionBuilder == nil {
		return "", nil
	}
	if e.tables == nil {
		return "", errNoPlan
	}
	var names []model.Namespace
	for _, t := range e.tables {
		if t.src.Partitioning != nil {
			names = append(names, t.src.Namespace)
		}
	}
	var parts map[model.Namespace]*model.Partitioning
	err := e.onSource(ctx, "read partitions", func(ctx context.Context) (err error) {
		parts, err = e.src.PartitionReader.Partitionings(ctx, names)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("read the source's partitions: %w", err)
	}
	var tables []*model.Table
	for _, ns := range names {
		p := parts[ns]
		if p == nil {
			continue // gone at the source; the flow's stream would have said
		}
		tables = append(tables, &model.Table{Namespace: e.byNS[ns].dst.Namespace, Partitioning: p})
	}
	var done connector.PartitionsBuilt
	err = e.onDestination(ctx, "create partitions", func(ctx context.Context) (err error) {
		done, err = e.dst.PartitionBuilder.BuildPartitions(ctx, tables, opts)
		return err
	})
	if err != nil {
		return "", err
	}
	for _, c := range done.Created {
		e.log.Info("partition created as the source has it", "partition", c)
	}
	for _, is := range done.Issues {
		e.log.Warn("partition not as the source has it; run the fix at the destination", "partition", is)
	}
	detail := fmt.Sprintf("%d partition(s) created", len(done.Created))
	if len(done.Created) > 0 {
		detail += " (" + strings.Join(done.Created, ", ") + ")"
	}
	detail += fmt.Sprintf(", %d row(s) moved out of DEFAULT partitions", done.Moved)
	if len(done.Issues) > 0 {
		detail += fmt.Sprintf("; %d not as the source's: %s", len(done.Issues), strings.Join(done.Issues, "; "))
	}
	return detail, nil
}

// partitionsForChange runs when a change's row has no partition at the
// destination (connector.ErrNoPartition): the source gained one while the
// flow ran. It creates the partitions the destination lacks under parents
// without a DEFAULT partition (a DEFAULT one keeps its rows until the
// cutover, which moves them), one writer at a time, and tells whether the
// change may be applied again.
func (e *Engine) partitionsForChange(ctx context.Context, writer int, pos model.Position) bool {
	if e.src.PartitionReader == nil || e.dst.PartitionBuilder == nil || e.tables == nil {
		return false
	}
	e.partitionsMu.Lock()
	defer e.partitionsMu.Unlock()
	detail, err := e.buildPartitions(ctx, connector.PartitionOptions{KeepDefaults: true})
	if err != nil {
		e.log.Warn("a change's row has no partition at the destination, and creating the source's partitions failed", "writer", writer, "position", pos, "error", err)
		return false
	}
	e.log.Info("a change's row had no partition at the destination: created the source's partitions", "writer", writer, "position", pos, "detail", detail)
	return true
}
