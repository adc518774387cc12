package postgres_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connectors/postgres"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/model"
)

// BenchmarkApplySmallBatches applies the share a writer gets of a batch
// under a steady load (bench/pg-cdc.sh: pgbench's accounts, tellers and
// branches updated, history inserted and deleted; one transaction's worth,
// a burst's first batch, and 50), one pipeline a batch: as the writer
// sends it (upserts prepared, planned once; deletes planned for their
// keys), every statement prepared but planned each run (custom), and
// every statement unprepared:
//
//	go test ./connectors/postgres/ -run '^$' -bench ApplySmallBatches -count 5
func BenchmarkApplySmallBatches(b *testing.B) {
	srv := pgtest.Shared(b)
	ctx := context.Background()
	for _, txns := range []int{1, 50} {
		for _, mode := range []string{"prepared", "custom", "unprepared"} {
			prepared := mode != "unprepared"
			name := mode + "/" + strconv.Itoa(txns)
			b.Run(name, func(b *testing.B) {
				dbName := srv.CreateDatabase(b, "bapply")
				db := srv.Connect(b, dbName)
				if _, err := db.Exec(ctx, `
				CREATE TABLE branches (bid int PRIMARY KEY, bbalance int NOT NULL, filler char(88));
				CREATE TABLE tellers (tid int PRIMARY KEY, bid int NOT NULL, tbalance int NOT NULL, filler char(84));
				CREATE TABLE accounts (aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL, filler char(84));
				CREATE TABLE history (hid bigint PRIMARY KEY, tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));
				INSERT INTO branches SELECT g, 0, '' FROM generate_series(1, 10) g;
				INSERT INTO tellers SELECT g, 1 + (g - 1) / 10, 0, '' FROM generate_series(1, 100) g;
				INSERT INTO accounts SELECT g, 1 + (g - 1) / 20000, 0, '' FROM generate_series(1, 200000) g;`); err != nil {
					b.Fatal(err)
				}
				if _, err := db.Exec(ctx, `VACUUM ANALYZE`); err != nil {
					b.Fatal(err)
				}
				dst := open(b, srv.URL(dbName))
				accounts, tellers, branches, history := tableNamed(b, dst, "accounts"), tableNamed(b, dst, "tellers"), tableNamed(b, dst, "branches"), tableNamed(b, dst, "history")
				w, err := dst.OpenApplier(ctx)
				if err != nil {
					b.Fatal(err)
				}
				defer w.Close()
				if !prepared {
					postgres.Unprepared(w)
				}
				if mode == "custom" {
					if err := w.ApplyChanges(ctx, &model.ApplyBatch{Checkpoint: &model.Checkpoint{Flow: "bench", Key: "cdc.0", Value: "x"}}); err != nil {
						b.Fatal(err)
					}
					if err := postgres.ExecOnApplier(w, "SET plan_cache_mode = force_custom_plan"); err != nil {
						b.Fatal(err)
					}
				}
				rng := rand.New(rand.NewPCG(1, 2))
				at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
				hid := int64(0)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					var acc, tel, br, hist []model.Row
					for range txns {
						aid, tid, bid, delta := rng.Int64N(200000)+1, rng.Int64N(100)+1, rng.Int64N(10)+1, rng.Int64N(10000)-5000
						hid++
						acc = append(acc, model.Row{aid, bid, delta, ""})
						tel = append(tel, model.Row{tid, bid, delta, ""})
						br = append(br, model.Row{bid, delta, ""})
						hist = append(hist, model.Row{hid, tid, bid, aid, delta, at, ""})
					}
					batch := &model.ApplyBatch{Checkpoint: &model.Checkpoint{Flow: "bench", Key: "cdc.0", Value: "x"}, Tables: []*model.TableChanges{
						{Table: accounts, Upserts: dedupe(acc)},
						{Table: tellers, Upserts: dedupe(tel)},
						{Table: branches, Upserts: dedupe(br)},
						{Table: history, Upserts: hist, Deletes: []model.Row{{hid - 5000}}},
					}}
					if err := w.ApplyChanges(ctx, batch); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// dedupe keeps the last row of each key (the first value), as the engine's
// fold does.
func dedupe(rows []model.Row) []model.Row {
	last := map[any]int{}
	for i, r := range rows {
		last[r[0]] = i
	}
	out := make([]model.Row, 0, len(last))
	for i, r := range rows {
		if last[r[0]] == i {
			out = append(out, r)
		}
	}
	return out
}
