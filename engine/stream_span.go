package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// spanBroken is a writer's outage in the middle of a source transaction
// applied in parts (model.ApplyBatch.Continues): the destination
// transaction holding its earlier parts is gone, so its next part cannot be
// applied alone. streamWhole runs the stream again from the last
// checkpoint, before the source transaction, which replays it whole.
type spanBroken struct {
	err      error
	writer   int
	position model.Position
}

func (s *spanBroken) Error() string {
	return fmt.Sprintf("writer %d lost the destination transaction of a source transaction applied in parts (after %s): %v", s.writer, s.position, s.err)
}

func (s *spanBroken) Unwrap() error { return s.err }

// streamWhole runs stream, and runs it again from the last checkpoint when
// an outage of the destination broke a source transaction applied in
// parts, for as long as the outage lasts within retry_timeout. A stream
// that fails for another reason fails the flow as before.
func (e *Engine) streamWhole(ctx, stop context.Context, drainTo model.Position) error {
	o := e.newOutage(sideDestination)
	restarting := false
	for {
		err := e.stream(ctx, stop, drainTo)
		var sb *spanBroken
		if err == nil || (!errors.As(err, &sb) && !(restarting && errs.IsUnavailable(err))) {
			return err
		}
		restarting = true
		if ferr := o.failed(ctx, err, "running the stream again from the last checkpoint, so that the source transaction is applied whole"); ferr != nil {
			if ctx.Err() != nil {
				return ferr
			}
			return fmt.Errorf("change data capture: %w", ferr)
		}
	}
}

// sendPart sends the part of a huge source transaction just folded in, to
// be applied inside the destination transaction its parts keep open. A
// flush for any other reason (a schema change, a truncate, a chunk of an
// incremental snapshot) ends that transaction there, as without span.
func (bt *batcher) sendPart(ctx context.Context) error {
	if !bt.pending {
		return nil
	}
	bt.part = true
	err := bt.flush(ctx)
	bt.part = false
	if err == nil {
		bt.parts++
	}
	return err
}
