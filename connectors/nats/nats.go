// Package nats is a destination on NATS JetStream: every change of the
// source becomes one message (a Debezium JSON change event) on the subject
// PREFIX.schema.table of a stream ferry creates if missing, with the
// message ID (Nats-Msg-Id) derived from the change's source position and
// its index there, so the stream's duplicate window drops what a resumed
// flow sends again. The flow's checkpoints live in a JetStream key-value
// bucket, written after the messages they cover are stored.
//
//	nats://host:4222/?stream=ferry&subject=ferry&duplicate_window=24h
package nats

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connectors/events"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

func init() {
	connector.Register(connector.Registration{
		Scheme:    "nats",
		Summary:   "NATS JetStream: every change as a Debezium JSON event, deduplicated by message ID",
		Example:   "nats://localhost:4222/?stream=ferry&subject=ferry",
		Open:      func(ctx context.Context, u *url.URL) (connector.Connector, error) { return Open(ctx, u) },
		Prototype: (*Conn)(nil),
	})
}

// DefaultDuplicateWindow is the stream's duplicate window when ferry
// creates it: the longest a flow may stay down after a crash and still
// have its resent messages dropped.
const DefaultDuplicateWindow = 24 * time.Hour

// Options are the URL's parameters.
type Options struct {
	Stream          string        // stream=, default "ferry"
	Subject         string        // subject=, the subjects' prefix, default the stream's name
	Bucket          string        // checkpoints=, the key-value bucket, default "ferry_checkpoints"
	DuplicateWindow time.Duration // duplicate_window=
	Replicas        int           // replicas=, of a stream ferry creates
}

// Conn is an open NATS destination.
type Conn struct {
	nc   *natsgo.Conn
	js   jetstream.JetStream
	opts Options
	enc  events.Options

	readyMu sync.Mutex
	ready   bool
	kv      jetstream.KeyValue
	ckMu    sync.Mutex
	ck      map[string]map[string]string // flow -> key -> value, as stored
	ckRev   map[string]uint64
	pubMu   sync.Mutex // one batch in flight: PublishAsyncComplete waits for all
}

var _ connector.EventWriter = (*Conn)(nil)

func parse(u *url.URL) (Options, string, error) {
	q := u.Query()
	o := Options{Stream: q.Get("stream"), Subject: q.Get("subject"), Bucket: q.Get("checkpoints"), DuplicateWindow: DefaultDuplicateWindow, Replicas: 1}
	if o.Stream == "" {
		o.Stream = "ferry"
	}
	if o.Subject == "" {
		o.Subject = o.Stream
	}
	if o.Bucket == "" {
		o.Bucket = "ferry_checkpoints"
	}
	if s := q.Get("duplicate_window"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return o, "", errs.BadConfig(fmt.Sprintf("nats URL: duplicate_window=%q is not a duration", s), "write it as Go durations are written, e.g. duplicate_window=24h")
		}
		o.DuplicateWindow = d
	}
	if s := q.Get("replicas"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 5 {
			return o, "", errs.BadConfig(fmt.Sprintf("nats URL: replicas=%q must be 1 to 5", s), "set replicas=1, 3 or 5")
		}
		o.Replicas = n
	}
	for k := range q {
		switch k {
		case "stream", "subject", "checkpoints", "duplicate_window", "replicas":
		default:
			return o, "", errs.BadConfig(fmt.Sprintf("nats URL: unknown parameter %q", k), "use stream, subject, checkpoints, duplicate_window or replicas (docs/connectors.md)")
		}
	}
	if u.Host == "" {
		return o, "", errs.BadConfig("nats URL has no host", "write nats://host:4222/?stream=...")
	}
	server := url.URL{Scheme: "nats", Host: u.Host, User: u.User}
	return o, server.String(), nil
}

// Open connects to the server; the stream and bucket are made on first use.
func Open(ctx context.Context, u *url.URL) (*Conn, error) {
	o, server, err := parse(u)
	if err != nil {
		return nil, err
	}
	nc, err := natsgo.Connect(server, natsgo.Name("ferry"), natsgo.MaxReconnects(-1))
	if err != nil {
		return nil, errs.Unavailable(fmt.Errorf("nats: connect to %s: %w", u.Host, err))
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: %w", err)
	}
	return &Conn{nc: nc, js: js, opts: o, enc: events.Options{Prefix: o.Subject}, ck: map[string]map[string]string{}, ckRev: map[string]uint64{}}, nil
}

// Close closes the connection.
func (c *Conn) Close() error {
	c.nc.Close()
	return nil
}

// ensure creates the stream (subjects PREFIX.>) and the checkpoint bucket
// if missing. An existing stream is used as it is; one whose duplicate
// window is shorter than duplicate_window is an error, since a resumed flow
// could then deliver changes twice.
func (c *Conn) ensure(ctx context.Context) error {
	c.readyMu.Lock()
	defer c.readyMu.Unlock()
	if c.ready {
		return nil
	}
	if err := c.makeStream(ctx); err != nil {
		return err // tried again on the next call: the server may be back
	}
	c.ready = true
	return nil
}

func (c *Conn) makeStream(ctx context.Context) error {
	subj := strings.TrimSuffix(c.opts.Subject, ".") + ".>"
	s, err := c.js.Stream(ctx, c.opts.Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		_, err = c.js.CreateStream(ctx, jetstream.StreamConfig{Name: c.opts.Stream, Subjects: []string{subj},
			Duplicates: c.opts.DuplicateWindow, Storage: jetstream.FileStorage, Replicas: c.opts.Replicas})
		if err != nil {
			return fmt.Errorf("nats: create stream %s: %w", c.opts.Stream, err)
		}
	case err != nil:
		return errs.Unavailable(fmt.Errorf("nats: look up stream %s: %w", c.opts.Stream, err))
	default:
		if w := s.CachedInfo().Config.Duplicates; w < c.opts.DuplicateWindow {
			return errs.BadConfig(fmt.Sprintf("nats: stream %s drops duplicate messages within %s only, shorter than duplicate_window=%s", c.opts.Stream, w, c.opts.DuplicateWindow),
				fmt.Sprintf("raise the stream's duplicate window (nats stream edit %s --dupe-window %s) or lower duplicate_window in the URL, accepting duplicates after a longer outage", c.opts.Stream, c.opts.DuplicateWindow))
		}
	}
	kv, err := c.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: c.opts.Bucket, Description: "ferry checkpoints", Replicas: c.opts.Replicas})
	if err != nil {
		return fmt.Errorf("nats: checkpoint bucket %s: %w", c.opts.Bucket, err)
	}
	c.kv = kv
	return nil
}

// CreateTables makes the stream; tables have nothing to create.
func (c *Conn) CreateTables(ctx context.Context, _ []*model.Table) error { return c.ensure(ctx) }

// DescribeSource sets the source block's connector and db of the events.
func (c *Conn) DescribeSource(info connector.SourceInfo) {
	c.enc.Connector, c.enc.Database = info.Connector, info.Database
}
