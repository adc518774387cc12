package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/ferrydb/ferry/errs"
)

// Retry waits of an unavailable source or destination: doubling from
// retryFirst up to retryMax, each within 10 % either way so that lanes
// meeting the same outage do not knock on the server's door together.
// Variables so tests can shorten them.
var (
	retryFirst = 500 * time.Millisecond
	retryMax   = 10 * time.Second
)

// The sides of a flow, as outage messages name them.
const (
	sideSource      = "source"
	sideDestination = "destination"
)

// outage is how every step that talks to a database rides out that database
// being out of reach (errs.IsUnavailable: a restart, a network cut, a
// server shutting down): it keeps its place, waits with exponential backoff
// and tries again, logs the outage and the recovery, and gives up after
// retry_timeout. Plan, table creation, the copy's reads and writes, the
// end-of-copy work (keys, indexes, ANALYZE), checkpoints and the CDC
// appliers all go through it, so an outage is handled the same wherever it
// lands. Each step must be safe to run again (the connector contracts).
type outage struct {
	e        *Engine
	side     string
	down     time.Time // zero while no attempt failed
	waits    *backoff.ExponentialBackOff
	attempts int
}

func (e *Engine) newOutage(side string) *outage {
	waits := backoff.NewExponentialBackOff()
	waits.InitialInterval, waits.MaxInterval = retryFirst, retryMax
	waits.Multiplier, waits.RandomizationFactor = 2, 0.1
	waits.MaxElapsedTime = 0 // retry_timeout counts from the outage's start, below
	waits.Reset()
	return &outage{e: e, side: side, waits: waits}
}

// failed takes the error of an attempt. It returns err itself when err is
// not an outage or ctx is done, the giving-up error once the side has been
// unavailable for retry_timeout, and nil after waiting out the backoff: the
// caller then tries again. doing says what is kept and retried, for the log
// line ("keeping the batch and retrying"); attrs name the step's place.
func (o *outage) failed(ctx context.Context, err error, doing string, attrs ...any) error {
	o.attempts++
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !errs.IsUnavailable(err) {
		return err
	}
	if o.down.IsZero() {
		o.down = time.Now()
	}
	if time.Since(o.down) >= o.e.cfg.RetryTimeout {
		return gaveUp("the "+o.side, o.down, err)
	}
	wait := o.waits.NextBackOff()
	attrs = append(attrs, "attempt", o.attempts, "retry_in", wait.Round(time.Millisecond).String(),
		"down_for", time.Since(o.down).Round(time.Millisecond).String(), "error", err)
	o.e.log.Warn(o.side+" unavailable; "+doing, attrs...)
	select {
	case <-time.After(wait):
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// recovered logs the end of an outage, if there was one: going says what
// goes on ("copying").
func (o *outage) recovered(going string, attrs ...any) {
	if o.down.IsZero() {
		return
	}
	attrs = append(attrs, "outage", time.Since(o.down).Round(time.Millisecond).String(), "attempts", o.attempts+1)
	o.e.log.Warn(o.side+" available again; "+going, attrs...)
	o.down = time.Time{}
	o.waits.Reset()
}

// retry runs one step against a side until it succeeds, fails for a reason
// other than an outage, or the outage outlasts retry_timeout. step names it
// in the log ("finish table public.orders").
func (e *Engine) retry(ctx context.Context, side, step string, fn func(context.Context) error) error {
	o := e.newOutage(side)
	for {
		err := fn(ctx)
		if err == nil {
			o.recovered(step)
			return nil
		}
		if err := o.failed(ctx, err, "retrying "+step); err != nil {
			return err
		}
	}
}

// onSource and onDestination are retry for one side.
func (e *Engine) onSource(ctx context.Context, step string, fn func(context.Context) error) error {
	return e.retry(ctx, sideSource, step, fn)
}

func (e *Engine) onDestination(ctx context.Context, step string, fn func(context.Context) error) error {
	return e.retry(ctx, sideDestination, step, fn)
}

// gaveUp is the error of an outage that outlasted retry_timeout. It stays an
// outage (errs.IsUnavailable) but never a configuration error, even
// when the connector calls the server unreachable: the connection worked
// when the flow started and rows were written, so exit code 2 ("nothing was
// written, fix the configuration") would mislead.
func gaveUp(who string, down time.Time, err error) error {
	return errs.Unavailable(fmt.Errorf("%s has been unavailable for %s (retry_timeout in the flow file, --retry-timeout), giving up; rerun to resume from the last checkpoint: %s",
		who, time.Since(down).Round(time.Second), err))
}
