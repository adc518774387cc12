package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connector/conformance"
	"github.com/ferrydb/ferry/model"
)

// brokers is FERRY_TEST_KAFKA_BROKERS or an in-process kfake broker.
func brokers(t testing.TB) []string {
	t.Helper()
	if b := os.Getenv("FERRY_TEST_KAFKA_BROKERS"); b != "" {
		return strings.Split(b, ",")
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func open(t testing.TB, bs []string, query string) *Conn {
	t.Helper()
	u, err := url.Parse("kafka://" + bs[0] + "/?" + query)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// readBack rebuilds a table from its topic's committed read events, as a
// consumer would: each key's last row. It reads up to an end marker it
// writes into the topic's partitions first.
// opts are the client's (TLS, SASL) beside the brokers.
func readBack(t *testing.T, bs []string, topic string, opts ...kgo.Opt) [][]string {
	t.Helper()
	ctx := context.Background()
	opts = append(opts, kgo.SeedBrokers(bs...))
	w, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const parts = 3
	for p := int32(0); p < parts; p++ {
		if err := w.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Key: []byte("test-end")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	r, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rows := map[string][]string{}
	var order []string
	for ended := 0; ended < parts; {
		fs := r.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			if string(rec.Key) == "test-end" {
				ended++
				return
			}
			var ev struct {
				After map[string]any `json:"after"`
			}
			if err := json.Unmarshal(rec.Value, &ev); err != nil {
				t.Fatal(err)
			}
			k := string(rec.Key)
			if _, ok := rows[k]; !ok {
				order = append(order, k)
			}
			rows[k] = []string{fmt.Sprint(ev.After["id"]), fmt.Sprint(ev.After["v"])}
		})
	}
	out := make([][]string, 0, len(order))
	for _, k := range order {
		out = append(out, rows[k])
	}
	return out
}

// TestConformance runs the destination suite against kfake (or
// FERRY_TEST_KAFKA_BROKERS): rows written twice are one row per key to
// a consumer, and a checkpoint is committed only with its batch.
func TestConformance(t *testing.T) {
	bs := brokers(t)
	n := 0
	conformance.Destination(t, conformance.DestinationHarness{
		Schema: "public",
		Open: func(t *testing.T) connector.Destination {
			// Each connection its own producer: the suite's connections
			// are not a process taking over another's flow, which fences.
			n++
			return open(t, bs, fmt.Sprintf("topic=conf.{schema}.{table}&checkpoint_topic=conf_checkpoints&transactional_id=conf-%d", n))
		},
		ReadBack: func(t *testing.T, ns model.Namespace) [][]string {
			return readBack(t, bs, "conf."+ns.Schema+"."+ns.Table)
		},
	})
}

func TestBadURL(t *testing.T) {
	for _, q := range []string{"topic=all", "partitions=0", "sasl=kerberos", "sasl=plain", "color=blue", "tombstones=maybe",
		"tls=false&ssl-ca=/ca.pem", "ssl-cert=/client.pem", "ssl-key=/client-key.pem", "ssl-ca=/nonexistent/ca.pem"} {
		u, _ := url.Parse("kafka://127.0.0.1:9092/?" + q)
		if _, err := Open(context.Background(), u); err == nil {
			t.Errorf("%s: no error", q)
		}
	}
}
