package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestLoadCheckpointsAgainIsFree: a running flow reads its checkpoints
// often (a stream looks for incremental snapshot requests every 2 s).
// Only the first read, which fences an earlier process, writes a marker
// into the checkpoint topic and reads the topic; later ones answer from
// what this process committed, which no other can change without fencing
// it. The answers stay right.
func TestLoadCheckpointsAgainIsFree(t *testing.T) {
	bs := brokers(t)
	c := open(t, bs, "topic=load.{schema}.{table}&checkpoint_topic=load_checkpoints&transactional_id=load-1")
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range 5 {
		cps, err := c.LoadCheckpoints(ctx, "load")
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]string{"k": "v1"}; i > 0 && (len(cps) != 1 || cps["k"] != want["k"]) {
			t.Fatalf("read %d: %v, want %v", i, cps, want)
		}
		if i == 0 {
			if err := c.ReplaceCheckpoints(ctx, "load", "k", map[string]string{"k": "v1"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// One marker and one checkpoint, each with its commit marker.
	if n := endOffset(t, bs, "load_checkpoints"); n != 4 {
		t.Errorf("the checkpoint topic ends at offset %d after 5 reads and 1 write, want 4 (one marker, one checkpoint, each committed)", n)
	}
	// Another process reads what this one committed.
	other := open(t, bs, "topic=load.{schema}.{table}&checkpoint_topic=load_checkpoints&transactional_id=load-1")
	defer other.Close()
	cps, err := other.LoadCheckpoints(ctx, "load")
	if err != nil || cps["k"] != "v1" {
		t.Fatalf("another process read %v (%v)", cps, err)
	}
}

// endOffset is the end of partition 0 of a topic: its records and its
// transactions' commit markers.
func endOffset(t *testing.T, bs []string, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(bs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrListOffsetsRequest()
	tp := kmsg.NewListOffsetsRequestTopic()
	tp.Topic = topic
	p := kmsg.NewListOffsetsRequestTopicPartition()
	p.Timestamp = -1 // the end
	tp.Partitions = append(tp.Partitions, p)
	req.Topics = append(req.Topics, tp)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	rp := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
		t.Fatal(err)
	}
	return rp.Offset
}
