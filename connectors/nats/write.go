package nats

import (
	"context"
	"fmt"
	"log/slog"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connectors/events"
	"github.com/ferrydb/ferry/internal/faultpoint"
	"github.com/ferrydb/ferry/model"
)

// KeyHeader carries a message's key (the row's key columns as JSON):
// NATS messages have no key of their own.
const KeyHeader = "Ferry-Key"

// WriteEvents publishes the events, waits until the stream stored every
// one, then stores the checkpoint.
func (c *Conn) WriteEvents(ctx context.Context, b *connector.EventBatch) error {
	if err := c.ensure(ctx); err != nil {
		return err
	}
	enc := c.encoder(b.Checkpoint)
	// Each message is published as soon as it is encoded, so the server
	// stores the first while the rest are encoded; the acks are awaited
	// once, for the whole batch.
	p := c.startPublish(len(b.Events))
	for _, ev := range b.Events {
		m, err := enc.Encode(ev)
		if err != nil {
			p.abandon()
			return err
		}
		for _, msg := range m {
			if err := p.add(msg); err != nil {
				p.abandon()
				return err
			}
		}
	}
	n := len(p.futures)
	if err := p.wait(ctx); err != nil {
		return err
	}
	if n > 0 {
		faultpoint.Hold(ctx, faultpoint.EventsSent, slog.Default())
	}
	if cp := b.Checkpoint; cp != nil {
		return c.setCheckpoint(ctx, cp.Flow, cp.Key, cp.Value)
	}
	return nil
}

func (c *Conn) encoder(cp *model.Checkpoint) events.Options {
	o := c.enc
	if cp != nil {
		o.Flow = cp.Flow
	}
	return o
}

// publish sends msgs asynchronously, each with its ID, and returns once
// the stream acknowledged all of them (a duplicate is acknowledged too).
func (c *Conn) publish(ctx context.Context, msgs []events.Message) error {
	p := c.startPublish(len(msgs))
	for _, m := range msgs {
		if err := p.add(m); err != nil {
			p.abandon()
			return err
		}
	}
	return p.wait(ctx)
}

// publishing is one batch of asynchronous publishes, holding pubMu (one
// batch at a time, so its acks are its own) until wait or abandon.
type publishing struct {
	c       *Conn
	futures []jetstream.PubAckFuture
}

func (c *Conn) startPublish(n int) *publishing {
	c.pubMu.Lock()
	return &publishing{c: c, futures: make([]jetstream.PubAckFuture, 0, n)}
}

func (p *publishing) add(m events.Message) error {
	nm := natsgo.NewMsg(m.Subject)
	nm.Data = m.Value
	if m.Key != nil {
		nm.Header.Set(KeyHeader, string(m.Key))
	}
	f, err := p.c.js.PublishMsgAsync(nm, jetstream.WithMsgID(m.ID))
	if err != nil {
		return fmt.Errorf("nats: publish to %s: %w", m.Subject, err)
	}
	p.futures = append(p.futures, f)
	return nil
}

// abandon ends a batch that failed before wait: what was published is
// acknowledged or not, the checkpoint is not written, so a resume sends it
// again under the same IDs.
func (p *publishing) abandon() { p.c.pubMu.Unlock() }

func (p *publishing) wait(ctx context.Context) error {
	defer p.c.pubMu.Unlock()
	if len(p.futures) == 0 {
		return nil
	}
	select {
	case <-p.c.js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	dups := 0
	for _, f := range p.futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				dups++
			}
		case err := <-f.Err():
			return fmt.Errorf("nats: publish to %s: %w", f.Msg().Subject, err)
		}
	}
	if dups > 0 {
		// Sent again after a resume: the stream kept the first copies.
		slog.Default().Info("nats: messages sent again were dropped as duplicates by their ID", "stream", p.c.opts.Stream, "duplicates", dups)
	}
	return nil
}

// OpenWriter opens a writer of the copy's rows, sent as read events.
func (c *Conn) OpenWriter(ctx context.Context) (connector.RowWriter, error) {
	if err := c.ensure(ctx); err != nil {
		return nil, err
	}
	return &rowWriter{c: c}, nil
}

type rowWriter struct{ c *Conn }

// WriteRows sends each row as a read event (op r), whose ID is the flow,
// the table and the row's key: a partition read again sends its rows with
// the same IDs.
func (w *rowWriter) WriteRows(ctx context.Context, b *model.RowBatch) error {
	if b.Raw != nil {
		return fmt.Errorf("nats: raw rows of %s are not supported", b.Table.Namespace)
	}
	enc := w.c.encoder(b.Checkpoint)
	if b.Checkpoint != nil {
		plan, err := w.c.planOf(ctx, b.Checkpoint.Flow)
		if err != nil {
			return err
		}
		enc.Plan = plan
	}
	msgs := make([]events.Message, 0, len(b.Rows))
	for _, r := range b.Rows {
		m, err := enc.Read(b.Table, r)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	if err := w.c.publish(ctx, msgs); err != nil {
		return err
	}
	if cp := b.Checkpoint; cp != nil {
		return w.c.setCheckpoint(ctx, cp.Flow, cp.Key, cp.Value)
	}
	return nil
}

func (w *rowWriter) Close() error { return nil }
