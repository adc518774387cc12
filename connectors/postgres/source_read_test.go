package postgres_test

import (
	"context"
	"slices"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// readAll reads a partition from a cursor and returns the ids (column 0)
// and the cursor after each batch.
func readAll(t *testing.T, c connector.Source, tbl *model.Table, p model.Partition, from model.Cursor) ([]int64, []model.Cursor) {
	t.Helper()
	var ids []int64
	var cursors []model.Cursor
	err := c.ReadPartition(context.Background(), tbl, p, from, func(b *model.RowBatch) error {
		for _, r := range b.Rows {
			ids = append(ids, r[0].(int64))
		}
		cursors = append(cursors, b.Cursor)
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", p.ID, err)
	}
	return ids, cursors
}

func TestPartitionsCoverEveryRowOnceAndResumeMidway(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `
		CREATE TABLE plain (id bigint PRIMARY KEY, pad text);
		INSERT INTO plain SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g;
		DELETE FROM plain WHERE id % 7 = 0;
		UPDATE plain SET pad = 'moved' WHERE id % 11 = 0;
		CREATE TABLE nokey (id bigint, v text);
		INSERT INTO nokey SELECT g % 500, 'dup' FROM generate_series(1, 3000) g;
		CREATE TABLE parted (id bigint, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
		CREATE TABLE parted_eu PARTITION OF parted FOR VALUES IN ('eu');
		CREATE TABLE parted_us PARTITION OF parted FOR VALUES IN ('us') PARTITION BY RANGE (id);
		CREATE TABLE parted_us_lo PARTITION OF parted_us FOR VALUES FROM (0) TO (5000);
		CREATE TABLE parted_us_hi PARTITION OF parted_us FOR VALUES FROM (5000) TO (MAXVALUE);
		INSERT INTO parted SELECT g, CASE WHEN g % 3 = 0 THEN 'eu' ELSE 'us' END FROM generate_series(1, 9000) g;
		ANALYZE plain; ANALYZE parted_eu; ANALYZE parted_us_lo; ANALYZE parted_us_hi;`)
	c := open(t, p.srcURL())
	ctx := context.Background()
	tables, err := c.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*model.Table{}
	for _, tb := range tables {
		byName[tb.Namespace.Table] = tb
	}
	if len(tables) != 3 || byName["parted"] == nil || byName["parted_eu"] != nil {
		t.Fatalf("discovered %d tables: %v; want plain, nokey and parted (not its partitions)", len(tables), byName)
	}
	if byName["parted"].EstimatedRows != 9000 {
		t.Errorf("parted: estimated %d rows, want 9000 (the sum of its partitions)", byName["parted"].EstimatedRows)
	}
	plan, err := c.Plan(ctx, tables, connector.PlanOptions{PartitionRows: 1500, BatchRows: 400})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{
		"plain":  count(t, src, "SELECT count(*) FROM plain"),
		"nokey":  3000,
		"parted": 9000,
	}
	parts := map[string]int{}
	for _, tbl := range tables {
		seen := map[int64]int{}
		var total int64
		for _, part := range plan.Partitions {
			if part.Table != tbl.Namespace {
				continue
			}
			parts[tbl.Namespace.Table]++
			ids, cursors := readAll(t, c, tbl, part, "")
			for _, id := range ids {
				seen[id]++
			}
			total += int64(len(ids))
			// Resuming after any batch reads exactly the rest.
			if len(cursors) > 2 {
				rest, _ := readAll(t, c, tbl, part, cursors[1])
				if len(rest) != len(ids)-800 {
					t.Fatalf("%s: resuming after 2 batches of 400 read %d rows, want %d", part.ID, len(rest), len(ids)-800)
				}
				for i, id := range rest {
					if ids[800+i] != id {
						t.Fatalf("%s: resuming read id %d where the full read had %d", part.ID, id, ids[800+i])
					}
				}
			}
		}
		if total != want[tbl.Namespace.Table] {
			t.Errorf("%s: read %d rows, want %d", tbl.Namespace, total, want[tbl.Namespace.Table])
		}
		if tbl.Namespace.Table != "nokey" {
			for id, n := range seen {
				if n != 1 {
					t.Fatalf("%s: id %d read %d times", tbl.Namespace, id, n)
				}
			}
		}
	}
	if parts["plain"] < 5 || parts["parted"] < 3 {
		t.Errorf("partitions per table: %v; want several for plain and at least one per partition of parted", parts)
	}
}

// TestWideRowsArePartitionedByBytes: a table whose rows are large values
// kept in TOAST is split by its size, not only by its row count, so one
// lane does not read all of it while the others idle (the bench's
// TOAST-heavy table was one partition of 800 MB, read for 24 s by one lane
// while the rest of the copy took 12 s).
func TestWideRowsArePartitionedByBytes(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `
		CREATE TABLE docs (id int PRIMARY KEY, body text);
		INSERT INTO docs SELECT g, (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 640) i) FROM generate_series(1, 4000) g;
		ANALYZE docs;`)
	c := open(t, p.srcURL())
	ctx := context.Background()
	tables, err := c.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 100,000 rows a partition would put the 4,000 rows in one; at most
	// 256 bytes a row on average, a partition holds at most 25.6 MB.
	const partRows = 100_000
	plan, err := c.Plan(ctx, tables, connector.PlanOptions{PartitionRows: partRows, BatchRows: 500})
	if err != nil {
		t.Fatal(err)
	}
	size := count(t, src, "SELECT pg_table_size('docs')")
	var estimated int64
	seen := map[int64]int{}
	for _, part := range plan.Partitions {
		if part.EstimatedBytes > partRows*256*5/4 {
			t.Errorf("%s: %d bytes estimated, over the %d bound", part.ID, part.EstimatedBytes, partRows*256)
		}
		estimated += part.EstimatedBytes
		ids, _ := readAll(t, c, tables[0], part, "")
		for _, id := range ids {
			seen[id]++
		}
	}
	t.Logf("docs: %d MB in %d partitions", size>>20, len(plan.Partitions))
	if want := int(size / (partRows * 256)); len(plan.Partitions) < max(want, 2) {
		t.Errorf("%d MB of docs in %d partition(s); want at least %d", size>>20, len(plan.Partitions), max(want, 2))
	}
	if estimated < size*9/10 || estimated > size*11/10 {
		t.Errorf("the partitions estimate %d bytes; the table has %d", estimated, size)
	}
	if len(seen) != 4000 {
		t.Errorf("read %d distinct rows, want 4000", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("id %d read %d times", id, n)
		}
	}
}

// TestKeyRangePartitionsResumeMidway: with key-range partitions (forced:
// the installed server has TID range scans), every row is read once across
// the partitions, and a read resumed from any batch's cursor (the last
// row's whole key) goes on exactly after it, also with a composite key
// whose values need quoting.
func TestKeyRangePartitionsResumeMidway(t *testing.T) {
	t.Setenv("FERRY_POSTGRES_KEY_PARTITIONS", "1")
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `
		CREATE TABLE pairs (id bigint, tag text, PRIMARY KEY (id, tag));
		INSERT INTO pairs SELECT g / 2, CASE WHEN g % 2 = 0 THEN 'it''s' ELSE 'a,b' END FROM generate_series(2, 12001) g;
		ANALYZE pairs;`)
	c := open(t, p.srcURL())
	ctx := context.Background()
	tables, err := c.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := c.Plan(ctx, tables, connector.PlanOptions{PartitionRows: 2000, BatchRows: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Partitions) < 3 {
		t.Fatalf("%d partitions, want several", len(plan.Partitions))
	}
	seen := map[int64]int{}
	for _, part := range plan.Partitions {
		ids, cursors := readAll(t, c, tables[0], part, "")
		for _, id := range ids {
			seen[id]++
		}
		if len(cursors) < 2 {
			continue
		}
		// Resume after the first batch: the rest, exactly.
		rest, _ := readAll(t, c, tables[0], part, cursors[0])
		if first := len(ids) - len(rest); first <= 0 || first > 500 || !slices.Equal(rest, ids[first:]) {
			t.Fatalf("partition %s resumed from %s: %d rows, want the %d after the first batch", part.ID, cursors[0], len(rest), len(ids)-500)
		}
	}
	if len(seen) != 6000 {
		t.Fatalf("%d ids read, want 6000", len(seen))
	}
	for id, n := range seen {
		if n != 2 {
			t.Fatalf("id %d read %d times, want 2 (two tags)", id, n)
		}
	}
}
