package mysql

import (
	"context"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/model"
)

// TestPlanListsLargestPartitionsFirst: partitions are copied in plan order,
// so the plan lists the full-sized ones of every table before each table's
// smaller last partition, whose estimate is what the walk leaves.
func TestPlanListsLargestPartitionsFirst(t *testing.T) {
	s := mysqltest.Shared(t)
	ctx := context.Background()
	db := newDB(t, s, "planorder")
	s.Exec(t, "USE `"+db+"`; CREATE TABLE a_small (id int PRIMARY KEY); INSERT INTO a_small SELECT seq FROM seq_1_to_1500;"+
		"CREATE TABLE b_big (id int PRIMARY KEY); INSERT INTO b_big SELECT seq FROM seq_1_to_4200")
	src := openConn(t, s.URL(db))
	tables, err := src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	small, big := tableNamed(t, tables, "a_small"), tableNamed(t, tables, "b_big")
	small.EstimatedRows, big.EstimatedRows = 1500, 4200 // fresh InnoDB statistics may say anything
	plan, err := src.Plan(ctx, []*model.Table{small, big}, connector.PlanOptions{PartitionRows: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var est []int64
	for _, p := range plan.Partitions {
		got = append(got, p.ID)
		est = append(est, p.EstimatedRows)
	}
	want := []string{db + ".a_small/0000", db + ".b_big/0000", db + ".b_big/0001", db + ".b_big/0002", db + ".b_big/0003",
		db + ".a_small/0001", db + ".b_big/0004"}
	wantEst := []int64{1000, 1000, 1000, 1000, 1000, 500, 200}
	if len(got) != len(want) {
		t.Fatalf("partitions %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] || est[i] != wantEst[i] {
			t.Fatalf("partitions %v with estimates %v, want %v with %v", got, est, want, wantEst)
		}
	}
	// Every row is still read exactly once.
	n := 0
	for _, p := range plan.Partitions {
		tb := small
		if p.Table == big.Namespace {
			tb = big
		}
		if err := src.ReadPartition(ctx, tb, p, "", func(b *model.RowBatch) error { n += len(b.Rows); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if n != 5700 {
		t.Fatalf("read %d rows, want 5700", n)
	}
}
