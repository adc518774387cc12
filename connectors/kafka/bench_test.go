package kafka

import (
	"context"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

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

// BenchmarkWriteEvents is ferry's path: encode, one transaction of the
// records and the checkpoint. Compare events/s with BenchmarkBareProducer.
func BenchmarkWriteEvents(b *testing.B) {
	bs := brokers(b)
	c := open(b, bs, "topic=bench.{schema}.{table}")
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

// BenchmarkWriteEventsGrouped is BenchmarkWriteEvents with five source
// batches in one event batch, as the engine groups batches that wait in
// its queue (engine/stream_events.go): one transaction per 5000 events.
func BenchmarkWriteEventsGrouped(b *testing.B) {
	bs := brokers(b)
	c := open(b, bs, "topic=bench.{schema}.{table}")
	defer c.Close()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i += 5 {
		eb := benchBatch(i)
		for j := 1; j < 5; j++ {
			next := benchBatch(i + j)
			eb.Events = append(eb.Events, next.Events...)
			eb.Position, eb.Checkpoint = next.Position, next.Checkpoint
		}
		if err := c.WriteEvents(ctx, eb); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((b.N+4)/5*5000)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkBareProducer sends the same records (encoded beforehand) with
// the same client, idempotent and not transactional, flushing after each
// 1000.
func BenchmarkBareProducer(b *testing.B) {
	bs := brokers(b)
	c := open(b, bs, "topic=bare.{schema}.{table}")
	defer c.Close()
	if err := c.ensureTopics(context.Background(), "bare.public.items"); err != nil {
		b.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(bs...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	enc := events.Options{Template: "bare.{schema}.{table}", Flow: "bench"}
	var recs [][]*kgo.Record
	for i := 0; i < b.N; i++ {
		var rs []*kgo.Record
		for _, ev := range benchBatch(i).Events {
			ms, _ := enc.Encode(ev)
			for _, m := range ms {
				rs = append(rs, &kgo.Record{Topic: m.Subject, Key: m.Key, Value: m.Value, Headers: []kgo.RecordHeader{{Key: IDHeader, Value: []byte(m.ID)}}})
			}
		}
		recs = append(recs, rs)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, r := range recs[i] {
			cl.Produce(ctx, r, nil)
		}
		if err := cl.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}
