package e2e

import (
	"cmp"
	"context"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferrydb/ferry/internal/faultpoint"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// kafkaBrokers is FERRY_TEST_KAFKA_BROKERS (a real cluster, comma
// separated) or an in-process kfake broker: no Kafka server is
// installable here.
func kafkaBrokers(t *testing.T) []string {
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

type kafkaMsg struct {
	busMsg
	Partition int32
}

// readKafka reads every record of the topics: it first writes an end
// marker (key "test-end") into each of their partitions, after
// everything ferry committed, and reads each partition up to its marker.
func readKafka(t *testing.T, brokers []string, topics []string, partitions int32, committed bool) []kafkaMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, tp := range topics {
		for p := int32(0); p < partitions; p++ {
			if err := w.ProduceSync(ctx, &kgo.Record{Topic: tp, Partition: p, Key: []byte("test-end")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	r, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(iso))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []kafkaMsg
	ended := 0
	for ended < len(topics)*int(partitions) {
		fs := r.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("read %v: %v", topics, err)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			if string(rec.Key) == "test-end" {
				ended++
				return
			}
			var id string
			for _, h := range rec.Headers {
				if h.Key == "ferry-id" {
					id = string(h.Value)
				}
			}
			out = append(out, kafkaMsg{busMsg: busMsg{ID: id, Subject: rec.Topic, Key: rec.Key, Value: rec.Value}, Partition: rec.Partition})
		})
	}
	return out
}

// lsn orders PostgreSQL positions (X/Y).
func lsn(t *testing.T, s string) uint64 {
	hi, lo, ok := strings.Cut(s, "/")
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("not an LSN: %q", s)
	}
	return h<<32 | l
}

// positionOf is the source position in a change's ID (flow/position/index).
func positionOf(id string) string {
	parts := strings.Split(id, "/")
	if len(parts) < 4 {
		return ""
	}
	return parts[1] + "/" + parts[2]
}

// TestPostgresToKafkaKilledAndResumed copies PostgreSQL to Kafka under
// writes, kills ferry (SIGKILL) inside the transaction of a batch of
// change events (records produced, not committed), resumes, and checks
// what consumers see: reading committed records, every change exactly
// once, each key's changes in one partition in source order, and the
// state rebuilt equal to the source; reading uncommitted records, the
// killed transaction's records besides, and nothing else twice.
func TestPostgresToKafkaKilledAndResumed(t *testing.T) {
	srv := pgtest.Shared(t)
	brokers := kafkaBrokers(t)
	src := srv.CreateDatabase(t, "evkafka")
	pgShop(t, srv, src, 3000)
	dir := t.TempDir()
	dst := "kafka://" + brokers[0] + "/?topic=shop.{schema}.{table}&partitions=3&tombstones=true&checkpoint_topic=shop_checkpoints"
	if len(brokers) > 1 {
		dst += "&brokers=" + strings.Join(brokers[1:], ",")
	}
	args := []string{"sync", srv.URL(src), dst, "--name", "evkafka", "--state-dir", dir, "--parallel", "2",
		"--partition-rows", "1000", "--batch-rows", "250", "--log-format", "json", "--progress", "none"}
	w := startPGWriter(t, srv.URL(src), 3001)

	bg := startFerryHeld(t, args...)
	if !bg.waitFor(t, faultpoint.Message, 90*time.Second) {
		t.Fatalf("ferry never held inside a transaction of events:\n%s", bg.stderr.String())
	}
	if !bg.kill(t) {
		t.Fatalf("ferry ended before the kill:\n%s", bg.stderr.String())
	}

	bg = startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("run 2 did not reach CDC:\n%s", bg.stderr.String())
	}
	n0 := w.ops.Load()
	deadline := time.Now().Add(60 * time.Second)
	for w.ops.Load() < n0+300 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	w.halt(t)
	if code := bg.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("run 2 exited %d after SIGTERM:\n%s", code, bg.stderr.String())
	}
	if r := mustFerry(t, append(args, "--until", "caught-up")...); r.logLine("flow finished") == nil {
		t.Fatalf("no final log line:\n%s", r)
	}

	topics := []string{"shop.public.orders", "shop.public.lines"}
	msgs := readKafka(t, brokers, topics, 3, true)
	plain := make([]busMsg, 0, len(msgs))
	partitionOf := map[string]int32{}
	lastPos := map[string]uint64{}
	deletes, tombstones := 0, 0
	for _, m := range msgs {
		plain = append(plain, m.busMsg)
		k := m.Subject + string(m.Key)
		if p, ok := partitionOf[k]; ok && p != m.Partition {
			t.Errorf("key %s in partitions %d and %d", k, p, m.Partition)
		}
		partitionOf[k] = m.Partition
		if m.Value == nil {
			tombstones++
			continue
		}
		if strings.Contains(string(m.Value), `"op":"d"`) {
			deletes++
		}
		if pos := positionOf(m.ID); pos != "" && !strings.Contains(m.ID, "/r/") {
			if l := lsn(t, pos); l < lastPos[k] {
				t.Errorf("key %s: a change at %s after one at a later position", k, pos)
			} else {
				lastPos[k] = l
			}
		}
	}
	if deletes == 0 || tombstones != deletes {
		t.Errorf("%d deletes and %d tombstones: want each delete followed by its tombstone", deletes, tombstones)
	}
	uniqueIDs(t, plain)
	st := rebuild(t, plain)
	t.Logf("%d committed records; writer made %d changes", len(msgs), w.ops.Load())
	checkSources(t, plain, "postgresql", src, map[string]bool{"lsn": true, "txId": true})
	sameState(t, "orders", st["shop.public.orders"], sourceRows(t, srv, src, ordersQuery))
	sameState(t, "lines", st["shop.public.lines"], sourceRows(t, srv, src, linesQuery))

	// Uncommitted: the killed transaction's records are there too, once
	// more; nothing else is.
	raw := readKafka(t, brokers, topics, 3, false)
	seen := map[string]bool{}
	dupPos := map[string]bool{}
	for _, m := range raw {
		if seen[m.ID] {
			dupPos[positionOf(m.ID)] = true
		}
		seen[m.ID] = true
	}
	// The killed Kafka transaction held one event batch: source
	// transactions that were queued together, so consecutive ones.
	lsns := map[string]bool{}
	for _, m := range plain {
		if p := positionOf(m.ID); strings.Contains(p, "/") {
			lsns[p] = true
		}
	}
	order := slices.SortedFunc(maps.Keys(lsns), func(a, b string) int { return cmp.Compare(lsnOf(a), lsnOf(b)) })
	first, last := -1, -1
	for i, p := range order {
		if dupPos[p] {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if len(dupPos) == 0 || last-first+1 != len(dupPos) {
		t.Errorf("reading uncommitted records, changes of %d source transactions appear twice (%v), not a run of consecutive ones; want those of the one event batch killed before its commit", len(dupPos), dupPos)
	}
}

// lsnOf is a PostgreSQL LSN ("16/B374D848") as a number.
func lsnOf(p string) uint64 {
	hi, lo, _ := strings.Cut(p, "/")
	h, _ := strconv.ParseUint(hi, 16, 32)
	l, _ := strconv.ParseUint(lo, 16, 32)
	return h<<32 | l
}
