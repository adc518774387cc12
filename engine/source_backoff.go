package engine

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
)

// replicaLagEvery is how often the source's replicas' lag is read while a
// flow reads tables (--max-replica-lag).
var replicaLagEvery = time.Second

// sourceBackoff pauses the source's table reads (copy lanes, incremental
// snapshot chunks) while the source's own replicas lag more than
// --max-replica-lag: one watcher reads the lag and opens or closes a gate
// that every reader passes before its next read.
type sourceBackoff struct {
	lr    connector.ReplicaLagReader
	query string
	max   time.Duration
	log   *slog.Logger

	mu     sync.Mutex
	held   bool
	open   chan struct{} // closed when the gate opens again
	since  time.Time     // when the gate closed
	lag    time.Duration // the last lag read
	total  time.Duration // time the gate was closed, finished pauses
	checks atomic.Int64  // lag readings so far
}

// newSourceBackoff is the gate for --max-replica-lag, nil when it is off.
func newSourceBackoff(max time.Duration, query string, lr connector.ReplicaLagReader, source string, log *slog.Logger) (*sourceBackoff, error) {
	if max <= 0 {
		return nil, nil
	}
	if lr == nil {
		return nil, errs.BadConfig(fmt.Sprintf("--max-replica-lag: source %s cannot tell its replicas' lag", source), "leave --max-replica-lag out for this source")
	}
	return &sourceBackoff{lr: lr, query: query, max: max, log: log}, nil
}

// wait blocks while the gate is closed.
func (b *sourceBackoff) wait(ctx context.Context) error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	held, open := b.held, b.open
	b.mu.Unlock()
	if !held {
		return nil
	}
	select {
	case <-open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// check reads the lag once and opens or closes the gate, logging each
// change with the numbers.
func (b *sourceBackoff) check(ctx context.Context) error {
	lag, err := b.lr.ReplicaLag(ctx, b.query)
	if err != nil {
		return err
	}
	b.checks.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lag = lag
	switch {
	case lag > b.max && !b.held:
		b.held, b.open, b.since = true, make(chan struct{}), time.Now()
		b.log.Warn("backing off: the source's replicas lag past --max-replica-lag; table reads pause until they catch up",
			"replica_lag", lag.Round(time.Millisecond).String(), "max_replica_lag", b.max.String())
	case lag <= b.max && b.held:
		paused := time.Since(b.since)
		b.total += paused
		b.held = false
		close(b.open)
		b.log.Info("resuming: the source's replicas caught up",
			"replica_lag", lag.Round(time.Millisecond).String(), "max_replica_lag", b.max.String(), "paused", paused.Round(time.Millisecond).String())
	}
	return nil
}

// watch reads the lag every replicaLagEvery until ctx ends. The first
// reading (withBackoff's) ended the flow on an error; a later one is
// logged once and leaves the gate as it is: a table the query reads
// locked or gone for a while does not stop a long copy.
func (b *sourceBackoff) watch(ctx context.Context) error {
	warned := false
	t := time.NewTicker(replicaLagEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := b.check(ctx); err != nil && ctx.Err() == nil {
			if !warned {
				b.log.Warn("cannot read the source's replicas' lag; keeping the last reading", "error", err)
				warned = true
			}
		}
	}
}

// BackoffSnapshot is the --max-replica-lag gate as progress shows it.
type BackoffSnapshot struct {
	MaxReplicaLagSeconds float64 `json:"max_replica_lag_seconds"`
	ReplicaLagSeconds    float64 `json:"replica_lag_seconds"`
	BackingOff           bool    `json:"backing_off"`
	// SecondsTotal is how long table reads were paused so far.
	SecondsTotal float64 `json:"seconds_total"`
	Checks       int64   `json:"checks"`
}

func (b *sourceBackoff) snapshot() *BackoffSnapshot {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	total := b.total
	if b.held {
		total += time.Since(b.since)
	}
	return &BackoffSnapshot{MaxReplicaLagSeconds: b.max.Seconds(), ReplicaLagSeconds: b.lag.Seconds(),
		BackingOff: b.held, SecondsTotal: total.Seconds(), Checks: b.checks.Load()}
}

// withBackoff runs fn (table reads) with the replica-lag watcher beside
// it: the lag is read once before fn starts, so fn's first read already
// waits when the replicas lag, then every replicaLagEvery until fn ends.
func (e *Engine) withBackoff(ctx context.Context, fn func(context.Context) error) error {
	b := e.backoff
	if b == nil {
		return fn(ctx)
	}
	if err := b.check(ctx); err != nil {
		return fmt.Errorf("--max-replica-lag: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	watchCtx, endWatch := context.WithCancel(gctx)
	g.Go(func() error { return b.watch(watchCtx) })
	g.Go(func() error { defer endWatch(); return fn(gctx) })
	return g.Wait()
}

// waitBackoff holds a table read while the replicas lag; a graceful stop
// ends the wait (errStopped).
func (e *Engine) waitBackoff(ctx, stop context.Context) error {
	if e.backoff == nil {
		return nil
	}
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(stop, cancel)()
	err := e.backoff.wait(waitCtx)
	if err != nil && ctx.Err() == nil && stop.Err() != nil {
		return errStopped
	}
	return err
}
