package postgres_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/connectors/postgres"
	"github.com/ferrydb/ferry/model"
)

// TestLargeRowsApplyExactly: rows holding large values are applied one by
// one with their values as plain parameters (not in text[] array literals,
// which copied them once more, escaped): inserts, updates, updates leaving
// a value unchanged, and deletes next to small rows in the same batch, with
// the characters array and COPY syntax escape, arrive exactly.
func TestLargeRowsApplyExactly(t *testing.T) {
	p := newPair(t)
	db := p.srv.Connect(t, p.dst)
	mustExec(t, db, `CREATE TABLE docs (id int PRIMARY KEY, n int NOT NULL, body text, meta jsonb, note text)`)
	dst := open(t, p.dstURL())
	ctx := context.Background()
	tables, err := dst.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var tb *model.Table
	for _, x := range tables {
		if x.Namespace.Table == "docs" {
			tb = x
		}
	}
	if tb == nil {
		t.Fatal("no table docs")
	}
	// 2 MiB of everything an array literal or a COPY line escapes.
	big := strings.Repeat(`a"b\c{d},e'f	g
h NULL é 🚢 `, 1<<21/32)
	bigJSON := `{"k": "` + strings.Repeat(`v\"w\\`, 1<<19) + `"}`
	apply := func(b *model.ApplyBatch) error { return applyOnce(t, dst, b) }
	if err := apply(&model.ApplyBatch{Tables: []*model.TableChanges{{Table: tb, Upserts: []model.Row{
		{int64(1), int64(1), big, bigJSON, ""},
		{int64(2), int64(1), "small", `{"a": 1}`, ""},
		{int64(3), int64(1), big + "3", nil, nil},
		{int64(4), int64(1), nil, nil, nil},
	}}}}); err != nil {
		t.Fatal(err)
	}
	if err := apply(&model.ApplyBatch{Tables: []*model.TableChanges{{Table: tb,
		Deletes: []model.Row{{int64(4)}},
		Upserts: []model.Row{
			{int64(1), int64(2), model.Unchanged, bigJSON + " ", model.Unchanged}, // the large value kept, another set
			{int64(2), int64(2), big + "2", model.Unchanged, "two"},               // a large value set, a small one kept
			{int64(3), int64(2), model.Unchanged, model.Unchanged, ""},            // only small columns
			{int64(5), int64(2), big + "5", `[]`, ""},
		}}}}); err != nil {
		t.Fatal(err)
	}
	sum := func(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
	want := map[int64]string{
		1: "2 " + sum(big) + " " + sum(bigJSON) + " ''", // jsonb drops the trailing space
		2: "2 " + sum(big+"2") + " " + sum(`{"a": 1}`) + " 'two'",
		3: "2 " + sum(big+"3") + " - ''",
		5: "2 " + sum(big+"5") + " " + sum(`[]`) + " ''",
	}
	rows, err := db.Query(ctx, `SELECT id, n || ' ' || coalesce(md5(body), '-') || ' ' || coalesce(md5(meta::text), '-') || ' ' || coalesce(quote_literal(note), '-') FROM docs ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]string{}
	for rows.Next() {
		var id int64
		var s string
		if err := rows.Scan(&id, &s); err != nil {
			t.Fatal(err)
		}
		got[id] = s
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if len(got) != len(want) {
		t.Fatalf("destination keys %v, want %v", got, want)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("row %d: %s, want %s", id, got[id], w)
		}
	}
	// A large row leaving a value unchanged whose key is missing is refused,
	// naming the key.
	err = apply(&model.ApplyBatch{Tables: []*model.TableChanges{{Table: tb, Upserts: []model.Row{{int64(99), int64(1), big, model.Unchanged, nil}}}}})
	if err == nil || !strings.Contains(err.Error(), "id=99") {
		t.Fatalf("a missing row with an unchanged value: %v", err)
	}
}

// A batch goes to the server as one pipeline (one round trip, committed
// at its end): a statement that fails leaves nothing of the batch applied,
// not the statements before it nor the checkpoint, and the error names the
// table and what failed.
func TestPipelinedBatchIsAllOrNothing(t *testing.T) {
	p := newPair(t)
	db := p.srv.Connect(t, p.dst)
	mustExec(t, db, `CREATE TABLE a (id int PRIMARY KEY, v text);
		CREATE TABLE b (id int PRIMARY KEY, v int CHECK (v > 0));
		INSERT INTO a VALUES (1, 'one'), (2, 'two');`)
	dst := open(t, p.dstURL())
	ctx := context.Background()
	tables, err := dst.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*model.Table{}
	for _, x := range tables {
		byName[x.Namespace.Table] = x
	}
	ta, tb := byName["a"], byName["b"]
	if ta == nil || tb == nil {
		t.Fatalf("tables a and b not found: %v", tables)
	}
	apply := func(b *model.ApplyBatch) error { return applyOnce(t, dst, b) }
	state := func() string {
		var out string
		if err := db.QueryRow(ctx, `SELECT coalesce((SELECT string_agg(id || '=' || coalesce(v, ''), ',' ORDER BY id) FROM a), '') || ' | ' ||
			coalesce((SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM b), '') || ' | ' ||
			coalesce((SELECT string_agg(value, ',') FROM _ferry.checkpoints WHERE flow = 'pipe'), '')`).Scan(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	good := &model.ApplyBatch{Checkpoint: &model.Checkpoint{Flow: "pipe", Key: "cdc.0", Value: "1"}, Tables: []*model.TableChanges{
		{Table: ta, Deletes: []model.Row{{int64(2)}}, Upserts: []model.Row{{int64(3), "three"}}},
		{Table: tb, Upserts: []model.Row{{int64(1), int64(5)}}},
	}}
	if err := apply(good); err != nil {
		t.Fatal(err)
	}
	if got, want := state(), "1=one,3=three | 1=5 | 1"; got != want {
		t.Fatalf("after a good batch: %q, want %q", got, want)
	}
	bad := &model.ApplyBatch{Checkpoint: &model.Checkpoint{Flow: "pipe", Key: "cdc.0", Value: "2"}, Tables: []*model.TableChanges{
		{Table: ta, Deletes: []model.Row{{int64(1)}}, Upserts: []model.Row{{int64(4), "four"}}},
		{Table: tb, Upserts: []model.Row{{int64(2), int64(-1)}}}, // breaks the CHECK
	}}
	err = apply(bad)
	if err == nil || !strings.Contains(err.Error(), "table public.b") || !strings.Contains(err.Error(), "upsert 1 rows") || !strings.Contains(err.Error(), "b_v_check") {
		t.Fatalf("a batch breaking a check constraint: %v, want an error naming table public.b, the upsert and the constraint", err)
	}
	if got, want := state(), "1=one,3=three | 1=5 | 1"; got != want {
		t.Fatalf("after a failed batch: %q, want it unchanged, %q", got, want)
	}
}

// applyOnce applies b through an applier of its own.
func applyOnce(t *testing.T, dst *postgres.Conn, b *model.ApplyBatch) error {
	t.Helper()
	ctx := context.Background()
	a, err := dst.OpenApplier(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	return a.ApplyChanges(ctx, b)
}

// A delete is planned for its keys every time: a plan made once, while the
// table was small, scans the whole table once it has grown (a live stream
// into a table being filled). The upserts are planned once.
func TestDeletesArePlannedForTheTableAsItIs(t *testing.T) {
	p := newPair(t)
	db := p.srv.Connect(t, p.dst)
	mustExec(t, db, `CREATE TABLE g (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = false)`)
	mustExec(t, db, `INSERT INTO g SELECT i, 'x' FROM generate_series(1, 50) i`)
	mustExec(t, db, `ANALYZE g`)
	dst := open(t, p.dstURL())
	ctx := context.Background()
	tg := tableNamed(t, dst, "g")
	w, err := dst.OpenApplier(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	batch := func(n int) *model.ApplyBatch {
		return &model.ApplyBatch{Checkpoint: &model.Checkpoint{Flow: "plan", Key: "cdc.0", Value: strconv.Itoa(n)}, Tables: []*model.TableChanges{
			{Table: tg, Deletes: []model.Row{{int64(n)}}, Upserts: []model.Row{{int64(1000 + n), "y"}}},
		}}
	}
	// More runs than the server plans for each statement's values before
	// it considers one plan for all (five).
	for n := 1; n <= 10; n++ {
		if err := w.ApplyChanges(ctx, batch(n)); err != nil {
			t.Fatalf("batch %d: %v", n, err)
		}
	}
	// The table grows, the statistics stay as they were.
	mustExec(t, db, `INSERT INTO g SELECT i, 'z' FROM generate_series(100000, 300000) i`)
	scans := func() int64 {
		var n int64
		if err := db.QueryRow(ctx, `SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'g'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// The writer's session reports its counts when it is next idle,
	// forced at once.
	flush := func() {
		if err := postgres.ExecOnApplier(w, `SELECT pg_stat_force_next_flush()`); err != nil {
			t.Fatal(err)
		}
		mustExec(t, db, `SELECT pg_stat_clear_snapshot()`)
	}
	flush()
	before := scans()
	for n := 11; n <= 13; n++ {
		if err := w.ApplyChanges(ctx, batch(n)); err != nil {
			t.Fatalf("batch %d: %v", n, err)
		}
	}
	flush()
	after := scans()
	if after != before {
		t.Fatalf("deleting 3 keys scanned the 200,000-row table whole %d times: a plan made for the small table was used", after-before)
	}
	var left int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM g WHERE id <= 50`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 50-13 {
		t.Fatalf("%d of the first 50 rows left, want %d", left, 50-13)
	}
}

// The statements of a pipelined batch are prepared on the writer's session
// once; a session that loses them (a pooler in transaction mode gave it
// another server connection) still applies every batch, unprepared from
// then on.
func TestPipelinedStatementsSurviveALostSession(t *testing.T) {
	p := newPair(t)
	db := p.srv.Connect(t, p.dst)
	mustExec(t, db, `CREATE TABLE a (id int PRIMARY KEY, v text)`)
	dst := open(t, p.dstURL())
	ctx := context.Background()
	ta := tableNamed(t, dst, "a")
	w, err := dst.OpenApplier(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	batch := func(n int) *model.ApplyBatch {
		return &model.ApplyBatch{Checkpoint: &model.Checkpoint{Flow: "prep", Key: "cdc.0", Value: strconv.Itoa(n)}, Tables: []*model.TableChanges{
			{Table: ta, Deletes: []model.Row{{int64(n - 1)}}, Upserts: []model.Row{{int64(n), "v" + strconv.Itoa(n)}}},
		}}
	}
	for n := 1; n <= 3; n++ {
		if err := w.ApplyChanges(ctx, batch(n)); err != nil {
			t.Fatalf("batch %d: %v", n, err)
		}
	}
	if got := postgres.Prepared(w); got != 2 { // the upsert, the checkpoint (a delete goes unprepared)
		t.Fatalf("%d statements prepared, want 2", got)
	}
	if err := postgres.ForgetPrepared(w); err != nil {
		t.Fatal(err)
	}
	for n := 4; n <= 5; n++ {
		if err := w.ApplyChanges(ctx, batch(n)); err != nil {
			t.Fatalf("batch %d after the session lost its prepared statements: %v", n, err)
		}
	}
	var got string
	if err := db.QueryRow(ctx, `SELECT string_agg(id || '=' || v, ',' ORDER BY id) || ' | ' ||
		(SELECT value FROM _ferry.checkpoints WHERE flow = 'prep') FROM a`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := "5=v5 | 5"; got != want {
		t.Fatalf("destination %q, want %q", got, want)
	}
}
