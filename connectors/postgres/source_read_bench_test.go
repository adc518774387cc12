package postgres_test

import (
	"context"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/model"
)

// BenchmarkCopyPartition copies one partition of 50,000 mixed rows from one
// database to another through a writer, raw (pass-through) and decoded:
//
//	go test ./connectors/postgres/ -run '^$' -bench CopyPartition -benchmem
func BenchmarkCopyPartition(b *testing.B) {
	srv := pgtest.Shared(b)
	srcName := srv.CreateDatabase(b, "bsrc")
	srcDB := srv.Connect(b, srcName)
	if _, err := srcDB.Exec(context.Background(), `
		CREATE TABLE bench (id bigint PRIMARY KEY, customer int, amount numeric(12,2), placed timestamptz, note text, tags text[]);
		INSERT INTO bench SELECT g, g % 1000, g * 0.01, '2024-01-01'::timestamptz + g * interval '1 second', 'note ' || g, ARRAY['a', 'b' || g % 10]
			FROM generate_series(1, 50000) g;
		ANALYZE bench;`); err != nil {
		b.Fatal(err)
	}
	src := open(b, srv.URL(srcName))
	ctx := context.Background()
	tables, err := src.Tables(ctx)
	if err != nil {
		b.Fatal(err)
	}
	tb := tables[0]
	plan, err := src.Plan(ctx, tables, connector.PlanOptions{PartitionRows: 1_000_000, BatchRows: 5000})
	if err != nil || len(plan.Partitions) != 1 {
		b.Fatalf("plan: %v, %d partitions", err, len(plan.Partitions))
	}
	part := plan.Partitions[0]
	f, ok, err := src.RawFormat(ctx, tb)
	if err != nil || !ok {
		b.Fatalf("raw format: %v", err)
	}
	for _, raw := range []bool{true, false} {
		name := "decoded"
		if raw {
			name = "raw"
		}
		b.Run(name, func(b *testing.B) {
			dstName := srv.CreateDatabase(b, "bdst")
			dstDB := srv.Connect(b, dstName)
			dst := open(b, srv.URL(dstName))
			if err := dst.CreateTables(ctx, tables); err != nil {
				b.Fatal(err)
			}
			w, err := dst.OpenWriter(ctx)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			var bytes int64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if _, err := dstDB.Exec(ctx, "TRUNCATE bench"); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				write := func(batch *model.RowBatch) error {
					batch.Table, batch.Partition = tb, part.ID
					bytes += batch.Bytes
					return w.WriteRows(ctx, batch)
				}
				if raw {
					err = src.ReadPartitionRaw(ctx, tb, part, "", f, write)
				} else {
					err = src.ReadPartition(ctx, tb, part, "", write)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(50000*b.N)/b.Elapsed().Seconds(), "rows/s")
			b.SetBytes(bytes / int64(b.N))
		})
	}
}
