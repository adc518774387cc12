package nats

import (
	"context"
	"fmt"
	"testing"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connectors/events"
	"github.com/ferrydb/ferry/model"
)

// benchBatch is 1000 inserts of a small table, as one source batch.
func benchBatch(i int) *connector.EventBatch {
	t := &model.Table{Namespace: model.Namespace{Schema: "public", Table: "items"}, PrimaryKey: []string{"id"},
		Columns: []model.Column{{Name: "id", Type: model.Type{Kind: model.KindInt64}}, {Name: "v", Type: model.Type{Kind: model.KindText}}, {Name: "n", Type: model.Type{Kind: model.KindFloat64}}}}
	pos := model.Position(fmt.Sprintf("0/%X", i))
	b := &connector.EventBatch{Position: pos, Checkpoint: &model.Checkpoint{Flow: "bench", Key: "cdc/0", Value: string(pos)}}
	for j := range 1000 {
		b.Events = append(b.Events, connector.Event{Op: model.OpInsert, Table: t, Source: t.Namespace,
			Row: model.Row{int64(i*1000 + j), "value of some length", 1.5}, ID: fmt.Sprintf("bench/%s/%d", pos, j), Position: pos})
	}
	return b
}

// BenchmarkWriteEvents is ferry's path: encode, publish with IDs, wait
// for the acks, store the checkpoint. Compare events/s with
// BenchmarkBareProducer (bench/results.md).
func BenchmarkWriteEvents(b *testing.B) {
	s := startServer(b)
	c := open(b, s, "stream=bench&subject=bench")
	defer c.Close()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.WriteEvents(ctx, benchBatch(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkBareProducer sends the same messages (encoded beforehand, with
// their IDs and keys) with the same client and nothing else: async
// publishes, then waits for the acks.
func BenchmarkBareProducer(b *testing.B) {
	s := startServer(b)
	nc, err := natsgo.Connect(s.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "bare", Subjects: []string{"bare.>"}, Duplicates: DefaultDuplicateWindow}); err != nil {
		b.Fatal(err)
	}
	enc := events.Options{Prefix: "bare", Flow: "bench"}
	var msgs [][]events.Message
	for i := 0; i < b.N; i++ {
		var ms []events.Message
		for _, ev := range benchBatch(i).Events {
			m, _ := enc.Encode(ev)
			ms = append(ms, m...)
		}
		msgs = append(msgs, ms)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, m := range msgs[i] {
			nm := natsgo.NewMsg(m.Subject)
			nm.Data = m.Value
			nm.Header.Set(KeyHeader, string(m.Key))
			if _, err := js.PublishMsgAsync(nm, jetstream.WithMsgID(m.ID)); err != nil {
				b.Fatal(err)
			}
		}
		<-js.PublishAsyncComplete()
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}
