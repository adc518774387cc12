package engine

import (
	"sync"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// untilTarget ends the source's stream once the checkpointed position
// reaches a target: the source's head when CDC started (--until caught-up)
// or at a cutover request. It is the one place that decides the stream has
// drained; the target can come before or after the position reaches it.
type untilTarget struct {
	cs        connector.ChangeSource
	endStream func()
	onReached func(pos, target model.Position)
	// held, when set, keeps the stream going past the target while it
	// says so: an incremental snapshot is not done (the destination has
	// not caught up until it is). The next checkpoint checks again.
	held func() bool

	mu      sync.Mutex
	target  model.Position // "" while there is none
	reached model.Position // the last checkpointed position (or the start)
	ended   bool
}

func newUntilTarget(cs connector.ChangeSource, from model.Position, endStream func(), onReached func(pos, target model.Position)) *untilTarget {
	return &untilTarget{cs: cs, endStream: endStream, onReached: onReached, reached: from}
}

// set makes target the position the stream drains to, replacing an earlier
// one (a cutover's head is never before the head CDC started with).
func (u *untilTarget) set(target model.Position) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.target = target
	return u.checkLocked()
}

// checkpointed records a position every writer applied and checkpointed.
func (u *untilTarget) checkpointed(pos model.Position) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.reached = pos
	return u.checkLocked()
}

func (u *untilTarget) checkLocked() error {
	if u.target == "" || u.ended || u.reached == "" || (u.held != nil && u.held()) {
		return nil
	}
	c, err := u.cs.ComparePositions(u.reached, u.target)
	if err != nil {
		return err
	}
	if c >= 0 {
		u.ended = true
		u.onReached(u.reached, u.target)
		u.endStream()
	}
	return nil
}
