package kafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connectors/events"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/internal/faultpoint"
	"github.com/ferrydb/ferry/model"
)

// IDHeader carries a record's change ID (stable across a resume).
const IDHeader = "ferry-id"

// admin is a plain client for topic creation.
func (c *Conn) admin(ctx context.Context) (*kgo.Client, error) {
	if c.adminCl == nil {
		if err := c.connect(ctx); err != nil {
			return nil, err
		}
		cl, err := kgo.NewClient(c.base...)
		if err != nil {
			return nil, fmt.Errorf("kafka: %w", err)
		}
		c.adminCl = cl
	}
	return c.adminCl, nil
}

// ensureTopics creates the topics missing (the checkpoint topic
// compacted, with one partition).
func (c *Conn) ensureTopics(ctx context.Context, names ...string) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	asked := map[string]bool{}
	for _, n := range names {
		if c.topics[n] || asked[n] {
			continue // one topic named twice in a request is refused
		}
		asked[n] = true
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = n, c.opts.Partitions, c.opts.Replication
		if n == c.opts.CheckpointTopic {
			t.NumPartitions = 1
			cfg := kmsg.NewCreateTopicsRequestTopicConfig()
			cfg.Name, cfg.Value = "cleanup.policy", kmsg.StringPtr("compact")
			t.Configs = append(t.Configs, cfg)
		}
		req.Topics = append(req.Topics, t)
	}
	if len(req.Topics) == 0 {
		return nil
	}
	cl, err := c.admin(ctx)
	if err != nil {
		return err
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return errs.Unavailable(fmt.Errorf("kafka: create topics: %w", err))
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kafka: create topic %s: %w", t.Topic, err)
		}
		c.topics[t.Topic] = true
	}
	return nil
}

// producer is the flow's transactional producer. Making it fences an
// earlier process of the flow: its open transaction is aborted.
func (c *Conn) producer(ctx context.Context, flow string) (*kgo.Client, error) {
	if c.cl != nil {
		if flow != c.flow {
			return nil, fmt.Errorf("kafka: one connection writes one flow (%s, not %s)", c.flow, flow)
		}
		return c.cl, nil
	}
	id := c.opts.TransactionalID
	if id == "" {
		id = "ferry-" + flow
	}
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	opts := append(append([]kgo.Opt{}, c.base...), kgo.TransactionalID(id), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	if _, _, err := cl.ProducerID(ctx); err != nil {
		cl.Close()
		return nil, errs.Unavailable(fmt.Errorf("kafka: initialize the transactional producer %s: %w", id, err))
	}
	c.cl, c.flow = cl, flow
	c.enc.Flow = flow
	return cl, nil
}

// transact writes msgs, and the flow's checkpoints after change, in one
// transaction.
func (c *Conn) transact(ctx context.Context, flow string, msgs []events.Message, change func(map[string]string), hold bool) error {
	cl, err := c.producer(ctx, flow)
	if err != nil {
		return err
	}
	if err := c.loaded(ctx, flow); err != nil {
		return err
	}
	topics := []string{c.opts.CheckpointTopic}
	for _, m := range msgs {
		topics = append(topics, m.Subject)
	}
	if err := c.ensureTopics(ctx, topics...); err != nil {
		return err
	}
	next := maps.Clone(c.ck)
	change(next)
	next[planKey] = c.ck[planKey]
	ck, err := json.Marshal(next)
	if err != nil {
		return err
	}
	if err := cl.BeginTransaction(); err != nil {
		return fmt.Errorf("kafka: begin transaction: %w", err)
	}
	var (
		mu    sync.Mutex
		first error
	)
	failed := func(_ *kgo.Record, err error) {
		mu.Lock()
		if err != nil && first == nil {
			first = err
		}
		mu.Unlock()
	}
	for _, m := range msgs {
		cl.Produce(ctx, &kgo.Record{Topic: m.Subject, Key: m.Key, Value: m.Value, Headers: []kgo.RecordHeader{{Key: IDHeader, Value: []byte(m.ID)}}}, failed)
	}
	cl.Produce(ctx, &kgo.Record{Topic: c.opts.CheckpointTopic, Key: []byte(flow), Value: ck}, failed)
	err = cl.Flush(ctx)
	mu.Lock()
	if err != nil && first == nil {
		first = err
	}
	mu.Unlock()
	if first == nil && hold && len(msgs) > 0 {
		faultpoint.Hold(ctx, faultpoint.EventsSent, slog.Default())
	}
	commit := kgo.TryCommit
	if first != nil {
		commit = kgo.TryAbort
	}
	if err := cl.EndTransaction(ctx, commit); err != nil && first == nil {
		first = err
	}
	if errors.Is(first, kerr.InvalidProducerEpoch) || errors.Is(first, kerr.ProducerFenced) {
		return errs.BadConfig(fmt.Sprintf("kafka: another producer with this flow's transactional ID took over flow %s: another ferry runs the same flow", flow),
			"stop the other process (one flow runs in one process), then run again")
	}
	if first != nil {
		return errs.Unavailable(fmt.Errorf("kafka: write %d records and the checkpoint in one transaction: %w", len(msgs), first))
	}
	c.ck = next
	return nil
}

// WriteEvents writes the events and the checkpoint in one transaction.
func (c *Conn) WriteEvents(ctx context.Context, b *connector.EventBatch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.Checkpoint == nil {
		return fmt.Errorf("kafka: events without a checkpoint")
	}
	var msgs []events.Message
	enc := c.enc
	enc.Flow = b.Checkpoint.Flow
	for _, ev := range b.Events {
		m, err := enc.Encode(ev)
		if err != nil {
			return err
		}
		msgs = append(msgs, m...)
	}
	cp := b.Checkpoint
	return c.transact(ctx, cp.Flow, msgs, func(m map[string]string) { m[cp.Key] = cp.Value }, true)
}

// OpenWriter opens a writer of the copy's rows, sent as read events.
func (c *Conn) OpenWriter(context.Context) (connector.RowWriter, error) { return &rowWriter{c: c}, nil }

type rowWriter struct{ c *Conn }

// WriteRows writes each row as a read event (op r), with the partition's
// checkpoint, in one transaction.
func (w *rowWriter) WriteRows(ctx context.Context, b *model.RowBatch) error {
	c := w.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.Raw != nil {
		return fmt.Errorf("kafka: raw rows of %s are not supported", b.Table.Namespace)
	}
	cp := b.Checkpoint
	if cp == nil {
		// Rows outside a flow: written in a transaction of their own.
		cp = &model.Checkpoint{Flow: c.flow}
		if cp.Flow == "" {
			cp.Flow = "ferry"
		}
	}
	if err := c.loaded(ctx, cp.Flow); err != nil {
		return err
	}
	enc := c.enc
	enc.Flow, enc.Plan = cp.Flow, c.ck[planKey]
	msgs := make([]events.Message, 0, len(b.Rows))
	for _, r := range b.Rows {
		m, err := enc.Read(b.Table, r)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	return c.transact(ctx, cp.Flow, msgs, func(m map[string]string) {
		if cp.Key != "" {
			m[cp.Key] = cp.Value
		}
	}, false)
}

func (w *rowWriter) Close() error { return nil }

// LoadCheckpoints fences any earlier producer of the flow, then reads the
// flow's last committed checkpoints. Once read, they are what this
// connection committed since: no other process can commit a checkpoint of
// the flow without fencing it (its next write then fails), so a stream
// reading them again (every few seconds, for incremental snapshot
// requests) costs no transaction and no read of the topic.
func (c *Conn) LoadCheckpoints(ctx context.Context, flow string) (map[string]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.producer(ctx, flow); err != nil {
		return nil, err
	}
	if c.ckFlow == flow {
		m := maps.Clone(c.ck)
		delete(m, planKey)
		return m, nil
	}
	return c.load(ctx, flow)
}

// load reads the checkpoint topic up to a marker record this call writes
// (a tombstone with a key of its own) in a committed transaction: every
// checkpoint committed before it is then read, and none of a fenced
// producer's aborted transactions.
func (c *Conn) load(ctx context.Context, flow string) (map[string]string, error) {
	if err := c.ensureTopics(ctx, c.opts.CheckpointTopic); err != nil {
		return nil, err
	}
	var nonce [8]byte
	rand.Read(nonce[:]) //nolint:errcheck // never fails
	marker := "ferry-load:" + hex.EncodeToString(nonce[:])
	if err := c.cl.BeginTransaction(); err != nil {
		return nil, fmt.Errorf("kafka: begin transaction: %w", err)
	}
	res := c.cl.ProduceSync(ctx, &kgo.Record{Topic: c.opts.CheckpointTopic, Key: []byte(marker)})
	err := res.FirstErr()
	commit := kgo.TryCommit
	if err != nil {
		commit = kgo.TryAbort
	}
	if eerr := c.cl.EndTransaction(ctx, commit); err == nil {
		err = eerr
	}
	if err != nil {
		return nil, errs.Unavailable(fmt.Errorf("kafka: write a marker to %s: %w", c.opts.CheckpointTopic, err))
	}
	rd, err := kgo.NewClient(append(append([]kgo.Opt{}, c.base...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{c.opts.CheckpointTopic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	defer rd.Close()
	m := map[string]string{}
	for {
		fs := rd.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return nil, errs.Unavailable(fmt.Errorf("kafka: read %s: %w", c.opts.CheckpointTopic, err))
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			switch k := string(r.Key); {
			case k == marker:
				done = true
			case k == flow && !done:
				clear(m)
				if len(r.Value) > 0 {
					if err := json.Unmarshal(r.Value, &m); err != nil {
						slog.Default().Warn("kafka: a checkpoint record is not ferry's; ignored", "topic", c.opts.CheckpointTopic, "offset", r.Offset)
					}
				}
			}
		})
		if done {
			break
		}
	}
	c.ck, c.ckFlow = maps.Clone(m), flow
	if c.ck[planKey] == "" {
		c.ck[planKey] = hex.EncodeToString(nonce[:6])
	}
	delete(m, planKey)
	return m, nil
}

// ReplaceCheckpoints deletes the flow's checkpoints under prefix and
// stores values, in one transaction.
func (c *Conn) ReplaceCheckpoints(ctx context.Context, flow, prefix string, values map[string]string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.transact(ctx, flow, nil, func(m map[string]string) {
		for k := range m {
			if strings.HasPrefix(k, prefix) {
				delete(m, k)
			}
		}
		maps.Copy(m, values)
	}, false)
}

// DropCheckpoints forgets the flow, and its plan: the next snapshot's
// records get new IDs.
func (c *Conn) DropCheckpoints(ctx context.Context, flow string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.loaded(ctx, flow); err != nil {
		return err
	}
	var nonce [6]byte
	rand.Read(nonce[:]) //nolint:errcheck // never fails
	c.ck = map[string]string{planKey: hex.EncodeToString(nonce[:])}
	return c.transact(ctx, flow, nil, func(m map[string]string) { clear(m) }, false)
}

// planKey holds, among a flow's checkpoints, the plan its snapshot's
// record IDs name (events.Options.Plan); LoadCheckpoints leaves it out.
const planKey = "events/plan"

// loaded makes sure the producer is up and the flow's checkpoints read.
func (c *Conn) loaded(ctx context.Context, flow string) error {
	if _, err := c.producer(ctx, flow); err != nil {
		return err
	}
	if c.ckFlow != flow {
		if _, err := c.load(ctx, flow); err != nil {
			return err
		}
	}
	return nil
}
