//go:build cgo && duckdb

package duckdb

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/model"
)

// benchRows is a shop-like batch: a key, a number, a decimal, text, a
// timestamp with zone and a list.
func benchRows(n int) (*model.Table, []model.Row) {
	tbl := &model.Table{Namespace: model.Namespace{Schema: "main", Table: "orders"}, PrimaryKey: []string{"id"}, Columns: []model.Column{
		{Name: "id", Type: model.Type{Kind: model.KindInt64}},
		{Name: "customer", Type: model.Type{Kind: model.KindInt32}},
		{Name: "amount", Type: model.Type{Kind: model.KindDecimal, Precision: 12, Scale: 2}, Nullable: true},
		{Name: "note", Type: model.Type{Kind: model.KindText}, Nullable: true},
		{Name: "placed", Type: model.Type{Kind: model.KindTimestampTZ}},
		{Name: "tags", Type: model.Type{Kind: model.KindArray, Elem: &model.Type{Kind: model.KindText}}, Nullable: true},
	}}
	rows := make([]model.Row, n)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range rows {
		rows[i] = model.Row{int64(i + 1), int64(i % 97), fmt.Sprintf("%d.%02d", i, i%100), fmt.Sprintf("note %d", i), t0.Add(time.Duration(i) * time.Minute), []any{fmt.Sprintf("t%d", i%3)}}
	}
	return tbl, rows
}

// BenchmarkCopy compares the ways a batch of copied rows can reach a
// DuckDB table: the appender (what WriteRows does), the appender through a
// staging table merged by key (WriteRows on a batch written before), and
// multi-row INSERT statements with parameters.
func BenchmarkCopy(b *testing.B) {
	const batch = 10000
	tbl, rows := benchRows(batch)
	for _, way := range []string{"appender", "staged-upsert", "insert-values"} {
		b.Run(way, func(b *testing.B) {
			ctx := context.Background()
			c := openPath(b, filepath.Join(b.TempDir(), "bench.duckdb"))
			if err := c.CreateTables(ctx, []*model.Table{tbl}); err != nil {
				b.Fatal(err)
			}
			s, err := c.openSession(ctx)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// Each round writes new keys.
				for _, r := range rows {
					r[0] = r[0].(int64) + batch
				}
				err := s.inTx(ctx, func() error {
					switch way {
					case "appender":
						return s.appendRows(ctx, tbl, catalog, "main", "orders", rows)
					case "staged-upsert":
						return s.upsert(ctx, tbl, rows)
					}
					return insertValues(ctx, s, tbl, rows)
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

func insertValues(ctx context.Context, s *session, t *model.Table, rows []model.Row) error {
	const per = 500
	tuple := "(?, ?, CAST(? AS DECIMAL(12,2)), ?, CAST(? AS TIMESTAMPTZ), CAST(? AS VARCHAR[]))"
	for start := 0; start < len(rows); start += per {
		chunk := rows[start:min(start+per, len(rows))]
		args := make([]any, 0, len(chunk)*6)
		for _, r := range chunk {
			tags, _ := model.FormatText(t.Columns[5].Type, r[5])
			args = append(args, r[0], r[1], r[2], r[3], r[4].(time.Time).Format(time.RFC3339Nano), tags)
		}
		q := "INSERT INTO " + qualified(t.Namespace) + " VALUES " + strings.TrimSuffix(strings.Repeat(tuple+", ", len(chunk)), ", ")
		if err := s.exec(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
}
