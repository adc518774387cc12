// Package kafka is a destination on Kafka: every change of the source
// becomes one record (a Debezium JSON change event) keyed by the row's
// primary key, on a topic per table, so one key's changes stay in order in
// one partition. Records and the flow's checkpoint (a compacted topic) are
// written in one Kafka transaction: a consumer reading committed records
// sees each change exactly once, across crashes.
//
//	kafka://broker1:9092/?brokers=broker2:9092,broker3:9092&topic=ferry.{schema}.{table}
package kafka

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connectors/events"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

func init() {
	connector.Register(connector.Registration{
		Scheme:    "kafka",
		Summary:   "Kafka: every change as a Debezium JSON event, records and checkpoint in one transaction",
		Example:   "kafka://localhost:9092/?topic=ferry.{schema}.{table}",
		Open:      func(ctx context.Context, u *url.URL) (connector.Connector, error) { return Open(ctx, u) },
		Prototype: (*Conn)(nil),
	})
}

// Options are the URL's parameters.
type Options struct {
	Brokers []string
	// Topic is the template of a table's topic: {schema} and {table} are
	// replaced by the destination table's names (default
	// ferry.{schema}.{table}); SchemaTopic receives schema changes.
	Topic, SchemaTopic string
	// CheckpointTopic is the compacted topic of the flows' checkpoints.
	CheckpointTopic string
	// TransactionalID is the producer's (default ferry-FLOW): one process
	// per flow writes with it, and a new one fences the old.
	TransactionalID string
	Partitions      int32
	Replication     int16
	Tombstones      bool
	// TLS (tls=, TLSSet when the URL says) with the CA to trust and a
	// client certificate (ssl-ca, ssl-cert, ssl-key: PEM files).
	TLS, TLSSet    bool
	CA, Cert, Key  string
	SASL           string // plain, scram-sha-256, scram-sha-512
	user, password string
}

// Conn is an open Kafka destination.
type Conn struct {
	opts Options
	enc  events.Options
	base []kgo.Opt

	mu      sync.Mutex // one transaction at a time
	flow    string
	cl      *kgo.Client // transactional producer, made by LoadCheckpoints
	topics  map[string]bool
	ck      map[string]string
	ckFlow  string
	adminCl *kgo.Client
	// connected: the first contact with the cluster succeeded (connect).
	connected bool
}

var _ connector.EventWriter = (*Conn)(nil)

func parse(u *url.URL) (Options, error) {
	q := u.Query()
	o := Options{Topic: "ferry.{schema}.{table}", CheckpointTopic: "ferry_checkpoints", Partitions: 3, Replication: -1}
	if u.Host == "" {
		return o, errs.BadConfig("kafka URL has no broker", "write kafka://host:9092/?brokers=host2:9092,host3:9092")
	}
	o.Brokers = append(o.Brokers, u.Host)
	for k, vs := range q {
		v := vs[len(vs)-1]
		var err error
		switch k {
		case "brokers":
			for _, b := range strings.Split(v, ",") {
				if b = strings.TrimSpace(b); b != "" {
					o.Brokers = append(o.Brokers, b)
				}
			}
		case "topic":
			o.Topic = v
		case "schema_topic":
			o.SchemaTopic = v
		case "checkpoint_topic":
			o.CheckpointTopic = v
		case "transactional_id":
			o.TransactionalID = v
		case "partitions":
			var n int
			n, err = strconv.Atoi(v)
			if err == nil && n < 1 {
				err = fmt.Errorf("must be at least 1")
			}
			o.Partitions = int32(n)
		case "replication":
			var n int
			n, err = strconv.Atoi(v)
			o.Replication = int16(n)
		case "tombstones":
			o.Tombstones, err = strconv.ParseBool(v)
		case "tls":
			o.TLS, err = strconv.ParseBool(v)
			o.TLSSet = true
		case "ssl-ca":
			o.CA = v
		case "ssl-cert":
			o.Cert = v
		case "ssl-key":
			o.Key = v
		case "sasl":
			o.SASL = strings.ToLower(v)
			if o.SASL != "plain" && o.SASL != "scram-sha-256" && o.SASL != "scram-sha-512" {
				err = fmt.Errorf("use plain, scram-sha-256 or scram-sha-512")
			}
		default:
			return o, errs.BadConfig(fmt.Sprintf("kafka URL: unknown parameter %q", k), "use brokers, topic, schema_topic, checkpoint_topic, transactional_id, partitions, replication, tombstones, tls, ssl-ca, ssl-cert, ssl-key or sasl (docs/connectors.md)")
		}
		if err != nil {
			return o, errs.BadConfig(fmt.Sprintf("kafka URL: %s=%q: %v", k, v, err), "fix the parameter (docs/connectors.md)")
		}
	}
	if !strings.Contains(o.Topic, "{table}") {
		return o, errs.BadConfig(fmt.Sprintf("kafka URL: topic=%q does not name the table", o.Topic), "put {table} (and {schema}) in the template, e.g. topic=ferry.{schema}.{table}: one key's changes must go to one topic")
	}
	if o.SchemaTopic == "" {
		o.SchemaTopic = strings.SplitN(o.Topic, "{", 2)[0] + "__schema"
		o.SchemaTopic = strings.TrimPrefix(strings.ReplaceAll(o.SchemaTopic, "..", "."), ".")
	}
	if u.User != nil {
		o.user = u.User.Username()
		o.password, _ = u.User.Password()
		if o.SASL == "" {
			o.SASL = "plain"
		}
	}
	if o.SASL != "" && u.User == nil {
		return o, errs.BadConfig("kafka URL: sasl= without a user", "write kafka://user:password@host:9092/?sasl=...")
	}
	return o, nil
}

// Open checks the URL; connections are made on first use.
func Open(_ context.Context, u *url.URL) (*Conn, error) {
	o, err := parse(u)
	if err != nil {
		return nil, err
	}
	base, err := o.clientOpts()
	if err != nil {
		return nil, err
	}
	c := &Conn{opts: o, base: base, topics: map[string]bool{}, enc: events.Options{Template: o.Topic, SchemaTopic: o.SchemaTopic, Tombstones: o.Tombstones}}
	return c, nil
}

// Close closes the clients.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cl != nil {
		c.cl.Close()
	}
	if c.adminCl != nil {
		c.adminCl.Close()
	}
	return nil
}

// CreateTables creates the tables' topics.
func (c *Conn) CreateTables(ctx context.Context, tables []*model.Table) error {
	var names []string
	for _, t := range tables {
		names = append(names, c.enc.Subject(t.Namespace))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ensureTopics(ctx, names...)
}

// DescribeSource sets the source block's connector and db of the events.
func (c *Conn) DescribeSource(info connector.SourceInfo) {
	c.enc.Connector, c.enc.Database = info.Connector, info.Database
}
