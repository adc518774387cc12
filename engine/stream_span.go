package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"

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

// openTx tells a graceful stop that a source transaction is being read in
// parts under --apply-mode transactional. The stop waits for its last part
// before it ends the source's stream: ending inside it would drop the parts
// read so far (a reader must not see half of it), and a stop that always
// comes before the end (a scale-out CDC task shorter than the transaction)
// would read it again forever.
type openTx struct {
	mu   sync.Mutex
	done chan struct{} // nil while no transaction is open
}

// set records whether a source transaction is open after the batch just
// taken.
func (o *openTx) set(open bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case open && o.done == nil:
		o.done = make(chan struct{})
	case !open && o.done != nil:
		close(o.done)
		o.done = nil
	}
}

// pending is closed when the open source transaction's last part has been
// read; nil when none is open.
func (o *openTx) pending() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.done
}
