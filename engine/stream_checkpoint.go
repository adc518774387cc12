package engine

import (
	"context"
	"fmt"
	"sync"

	"github.com/ferrydb/ferry/connector"
)

// checkpointLoop persists a batch's position once every writer acknowledged
// it, then acknowledges it to the source and returns the batch's share of
// the flight budget; until ends the stream once its target is reached.
// Writers take batches in order, so batches complete in order.
func (e *Engine) checkpointLoop(ctx context.Context, cs connector.ChangeSource, writers int, acks <-chan applyAck, until *untilTarget, applied *signal, release func(int64)) error {
	count := map[uint64]int{}
	held := map[uint64]int64{}
	next := uint64(1)
	for ack := range acks {
		count[ack.seq]++
		held[ack.seq] += ack.bytes
		if count[ack.seq] < writers {
			continue
		}
		a := ack // every writer's ack of one batch carries the same position
		for count[next] == writers {
			delete(count, next)
			if err := e.ckpt.cdcCheckpointed(ctx, a.position); err != nil {
				return err
			}
			if err := cs.Ack(ctx, a.position); err != nil {
				return fmt.Errorf("acknowledge %s to the source: %w", a.position, err)
			}
			e.progress.CDC.setPosition(a.position, a.commit)
			e.progress.CDC.checkpointed(next)
			applied.advance(next)
			release(held[next])
			delete(held, next)
			if err := until.checkpointed(a.position); err != nil {
				return err
			}
			next++
		}
	}
	return e.ckpt.flushCDC(ctx)
}

// signal broadcasts the last batch every writer has applied.
type signal struct {
	mu  sync.Mutex
	seq uint64
	ch  chan struct{}
}

func newSignal() *signal { return &signal{ch: make(chan struct{})} }

func (s *signal) advance(seq uint64) {
	s.mu.Lock()
	s.seq = seq
	close(s.ch)
	s.ch = make(chan struct{})
	s.mu.Unlock()
}

// changed is closed at the next advance.
func (s *signal) changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch
}

// reached says seq has been reached.
func (s *signal) reached(seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq >= seq
}

func (s *signal) wait(ctx context.Context, seq uint64) error {
	for {
		s.mu.Lock()
		done, ch := s.seq >= seq, s.ch
		s.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
