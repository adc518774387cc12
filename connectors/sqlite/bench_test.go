package sqlite

import (
	"context"
	"fmt"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// BenchmarkWriteRows measures copying narrow rows (id, name, amount) in
// batches of 10,000, one transaction each, as the engine's writers do.
func BenchmarkWriteRows(b *testing.B) {
	c, _ := newFile(b)
	ctx := context.Background()
	tbl := &model.Table{
		Namespace:  model.Namespace{Schema: "main", Table: "narrow"},
		PrimaryKey: []string{"id"},
		Columns: []model.Column{
			{Name: "id", Type: model.Type{Kind: model.KindInt64}},
			{Name: "name", Type: model.Type{Kind: model.KindText}, Nullable: true},
			{Name: "amount", Type: model.Type{Kind: model.KindFloat64}, Nullable: true},
		},
	}
	if err := c.CreateTables(ctx, []*model.Table{tbl}); err != nil {
		b.Fatal(err)
	}
	w, err := c.OpenWriter(ctx)
	if err != nil {
		b.Fatal(err)
	}
	const batch = 10000
	rows := make([]model.Row, batch)
	b.ResetTimer()
	var next int64
	for i := 0; i < b.N; i++ {
		for j := range rows {
			rows[j] = model.Row{next, fmt.Sprintf("name %d", next), float64(next) / 3}
			next++
		}
		err := w.WriteRows(ctx, &model.RowBatch{Table: tbl, Partition: "bench", Rows: rows,
			Checkpoint: &model.Checkpoint{Flow: "bench", Key: "partition/bench", Value: fmt.Sprint(next)}})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(next)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkReadPartition measures reading narrow rows back in batches of
// 10,000.
func BenchmarkReadPartition(b *testing.B) {
	c, _ := newFile(b)
	ctx := context.Background()
	tbl, rows := intTable("narrow", 100000)
	writeTable(b, c, tbl, rows)
	tables, err := c.Tables(ctx)
	if err != nil {
		b.Fatal(err)
	}
	plan, err := c.Plan(ctx, tables, connector.PlanOptions{PartitionRows: int64(len(rows)), BatchRows: 10000})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var n int64
	for i := 0; i < b.N; i++ {
		for _, p := range plan.Partitions {
			err := c.ReadPartition(ctx, tables[0], p, "", func(rb *model.RowBatch) error {
				n += int64(len(rb.Rows))
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
}
