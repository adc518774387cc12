package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

func TestDescribeSchemaChange(t *testing.T) {
	col := func(n, native string, k model.Kind) model.Column {
		return model.Column{Name: n, Type: model.Type{Kind: k, Native: native}}
	}
	from := &model.Table{Columns: []model.Column{col("id", "int4", model.KindInt32), col("a", "text", model.KindText), col("b", "int4", model.KindInt32), col("gone", "text", model.KindText)}}
	to := &model.Table{Columns: []model.Column{col("id", "int4", model.KindInt32), col("a2", "text", model.KindText), col("b", "int8", model.KindInt64), col("c", "text", model.KindText)}}
	got := describeSchemaChange(from, model.SchemaChange{Table: to, Renamed: map[string]string{"a2": "a"}})
	if want := "renamed a to a2; b: int4 to int8; added c; dropped gone"; got != want {
		t.Errorf("describeSchemaChange = %q, want %q", got, want)
	}
	if got := describeSchemaChange(from, model.SchemaChange{Table: from.Clone()}); got != "" {
		t.Errorf("no change described as %q", got)
	}
}

// The watermark rule of an incremental snapshot, on the batcher alone: a
// chunk waits for the stream to reach its watermark, and a row whose key
// changed after the recording started is left to the stream's change.
func TestChunkYieldsToTheStreamsChanges(t *testing.T) {
	ctx := context.Background()
	bt, job := testBatcher(t, "")
	e, tr := bt.e, bt.e.tables[0]
	ns := tr.src.Namespace
	fc := foldChanges{tr}

	started := make(chan snapStarted, 1)
	if err := bt.command(ctx, snapCmd{start: &snapStart{ns: ns, reply: started}}); err != nil || (<-started).err != nil {
		t.Fatal(err)
	}
	// Changed after the recording started: key 2 updated, key 4 deleted.
	take := func(pos string, changes ...model.Change) {
		t.Helper()
		if err := bt.take(ctx, sourceBatch{b: &model.ChangeBatch{Position: model.Position(pos), Changes: changes}}); err != nil {
			t.Fatal(err)
		}
	}
	take("5", fc.upd(2, "stream", "b"), fc.del(4))
	done := make(chan snapDone, 1)
	chunk := []model.Row{{int64(1), "chunk", "b"}, {int64(2), "chunk", "b"}, {int64(3), "chunk", "b"}, {int64(4), "chunk", "b"}}
	if err := bt.command(ctx, snapCmd{chunk: &snapChunk{rows: chunk, at: "7", reply: done}}); err != nil {
		t.Fatal(err)
	}
	take("6")
	select {
	case d := <-done:
		t.Fatalf("the chunk was folded before the stream reached its watermark: %+v", d)
	default:
	}
	take("7", fc.upd(3, "stream", "b"))
	d := <-done
	if d.redo || d.rows != 1 {
		t.Fatalf("chunk folded %+v, want 1 row (key 1; keys 2, 3 and 4 changed)", d)
	}
	got := map[int64]string{}
	for len(job) > 0 {
		j := <-job
		for _, tc := range j.batch.Tables {
			for _, r := range tc.Upserts {
				got[r[0].(int64)] = r[1].(string)
			}
			for _, k := range tc.Deletes {
				got[k[0].(int64)] = "deleted"
			}
		}
	}
	want := map[int64]string{1: "chunk", 2: "stream", 3: "stream", 4: "deleted"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("applied %v, want %v", got, want)
	}

	// A truncate while a chunk is recorded voids it: it is read again.
	if err := bt.command(ctx, snapCmd{start: &snapStart{ns: ns, reply: started}}); err != nil || (<-started).err != nil {
		t.Fatal(err)
	}
	e.dst.Emptier = sqliteEmptier(t, tr.dst)
	bt.applied.advance(1 << 20) // as if the writers applied everything
	take("8", model.Change{Op: model.OpTruncate, Table: ns})
	if err := bt.command(ctx, snapCmd{chunk: &snapChunk{rows: chunk, at: "8", reply: done}}); err != nil {
		t.Fatal(err)
	}
	take("9")
	if d := <-done; !d.redo {
		t.Errorf("a voided chunk was folded: %+v", d)
	}
}

// testBatcher is a batcher of foldTestTable's table with one writer whose
// jobs come on the channel returned, a fake source's positions (change
// counts), and a stream that started at from.
func testBatcher(t *testing.T, from model.Position) (*batcher, chan applyJob) {
	t.Helper()
	tr := foldTestTable()
	e := &Engine{cfg: flow.Config{ApplyBatch: 1000, ApplyLinger: time.Hour}, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		progress: newProgress("t", flow.ModeFull, Abilities{}), byNS: map[model.Namespace]*tableRun{tr.src.Namespace: tr}, tables: []*tableRun{tr}}
	e.src.ChangeSource = fakeChanges(t)
	job := make(chan applyJob, 4)
	bt := &batcher{e: e, pos: from, jobs: []chan applyJob{job}, applied: newSignal(), f: newFolder(), linger: time.NewTimer(time.Hour)}
	bt.linger.Stop()
	return bt, job
}

// sqliteEmptier is a SQLite destination holding table t.
func sqliteEmptier(t *testing.T, tb *model.Table) connector.Emptier {
	t.Helper()
	dst := openConn(t, "sqlite://"+filepath.Join(t.TempDir(), "dst.db"))
	if err := dst.(connector.Destination).CreateTables(context.Background(), []*model.Table{tb}); err != nil {
		t.Fatal(err)
	}
	return dst.(connector.Emptier)
}

// A truncate in the first batch of a run sends the changes before it at
// the stream's start position, which every writer may keep as its
// checkpoint (not at an empty one).
func TestTruncateInTheFirstBatchSendsTheStartPosition(t *testing.T) {
	bt, job := testBatcher(t, "3")
	tr := bt.e.tables[0]
	bt.e.dst.Emptier = sqliteEmptier(t, tr.dst)
	bt.applied.advance(1 << 20)
	fc := foldChanges{tr}
	b := &model.ChangeBatch{Position: "5", Changes: []model.Change{fc.ins(1, "a"), {Op: model.OpTruncate, Table: tr.src.Namespace}, fc.ins(2, "b")}}
	if err := bt.take(context.Background(), sourceBatch{b: b}); err != nil {
		t.Fatal(err)
	}
	j := <-job
	if j.position != "3" || j.batch.Len() != 1 {
		t.Errorf("before the truncate: %d changes sent at position %q, want 1 at the start position 3", j.batch.Len(), j.position)
	}
}

// A rename of a key column is no key change: the flow follows it.
func TestRenamedKeyColumnIsFollowed(t *testing.T) {
	ctx := context.Background()
	bt, _ := testBatcher(t, "")
	e, tr := bt.e, bt.e.tables[0]
	dst := openConn(t, "sqlite://"+filepath.Join(t.TempDir(), "dst.db"))
	if err := dst.(connector.Destination).CreateTables(ctx, []*model.Table{tr.dst}); err != nil {
		t.Fatal(err)
	}
	e.dst.SchemaChanger = dst.(connector.SchemaChanger)
	e.ckpt = newCheckpoints("t", nil, localStore(t), direct)
	to := tr.src.Clone()
	to.Columns[0].Name, to.PrimaryKey = "ident", []string{"ident"}
	if err := e.applySchemas(ctx, []model.SchemaChange{{Table: to, Renamed: map[string]string{"ident": "id"}}}); err != nil {
		t.Fatalf("rename of the key column: %v", err)
	}
	if tr.src.PrimaryKey[0] != "ident" || tr.dst.Columns[0].Name != "ident" {
		t.Errorf("the flow's table after the rename: %+v", tr.src)
	}
	moved := tr.src.Clone()
	moved.PrimaryKey = []string{"v"}
	if err := e.applySchemas(ctx, []model.SchemaChange{{Table: moved}}); err == nil || !strings.Contains(err.Error(), "primary key changed") {
		t.Errorf("another key: %v", err)
	}
}

// The snapshot loop writes a chunk's watermark before it hands the chunk
// over, so the batch reaching the watermark may come first: the chunk is
// folded when it comes, not held for a next batch (on an idle source a
// heartbeat, 10 s per chunk).
func TestChunkAfterItsWatermarkIsFoldedAtOnce(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		from    model.Position
		batches []model.Position
	}{
		{"the watermark's batch came first", "3", []model.Position{"5", "7"}},
		{"the stream started at the watermark", "7", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bt, job := testBatcher(t, tc.from)
			tr := bt.e.tables[0]
			fc := foldChanges{tr}
			started := make(chan snapStarted, 1)
			if err := bt.command(ctx, snapCmd{start: &snapStart{ns: tr.src.Namespace, reply: started}}); err != nil || (<-started).err != nil {
				t.Fatal(err)
			}
			for _, pos := range tc.batches {
				if err := bt.take(ctx, sourceBatch{b: &model.ChangeBatch{Position: pos, Changes: []model.Change{fc.upd(2, "stream", "b")}}}); err != nil {
					t.Fatal(err)
				}
			}
			done := make(chan snapDone, 1)
			chunk := []model.Row{{int64(1), "chunk", "b"}, {int64(2), "chunk", "b"}}
			if err := bt.command(ctx, snapCmd{chunk: &snapChunk{rows: chunk, at: "7", reply: done}}); err != nil {
				t.Fatal(err)
			}
			select {
			case d := <-done:
				want := int64(1) // key 2 changed: its change wins
				if tc.batches == nil {
					want = 2
				}
				if d.redo || d.rows != want {
					t.Errorf("chunk folded %+v, want %d rows", d, want)
				}
			default:
				t.Fatalf("a chunk whose watermark (7) the stream had passed (at %s) waits for the next batch", bt.pos)
			}
			if bt.rec != nil {
				t.Error("the chunk is still recorded after it was folded")
			}
			// The chunk goes at the last batch's position, after its changes.
			got, last := map[int64]string{}, model.Position("")
			for len(job) > 0 {
				j := <-job
				last = j.position
				for _, tcs := range j.batch.Tables {
					for _, r := range tcs.Upserts {
						got[r[0].(int64)] = r[1].(string)
					}
				}
			}
			want := map[int64]string{1: "chunk", 2: "stream"}
			if tc.batches == nil {
				want[2] = "chunk"
			}
			if fmt.Sprint(got) != fmt.Sprint(want) || last != bt.pos {
				t.Errorf("applied %v at %s, want %v at %s", got, last, want, bt.pos)
			}
		})
	}
}

// A backlog's batch (its changes committed long ago) does not go to idle
// writers a few changes at a time: it waits for a share worth a round
// trip, or the linger. A live change goes at once.
func TestBacklogBatchWaitsForAShareWorthARoundTrip(t *testing.T) {
	ctx := context.Background()
	bt, job := testBatcher(t, "")
	bt.applied.advance(1 << 20) // every writer idle
	fc := foldChanges{bt.e.tables[0]}
	old := time.Now().Add(-time.Minute)
	take := func(pos int, commit time.Time, changes ...model.Change) {
		t.Helper()
		b := &model.ChangeBatch{Position: model.Position(fmt.Sprint(pos)), CommitTime: commit, Changes: changes}
		if err := bt.take(ctx, sourceBatch{b: b}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 3; i++ {
		take(i, old, fc.upd(1, fmt.Sprint(i), "b"))
	}
	if len(job) != 0 || !bt.lingering {
		t.Fatalf("a backlog's 3 changes: %d batches sent, lingering %v; want none sent, the linger armed", len(job), bt.lingering)
	}
	var rest []model.Change
	for i := 0; i < backlogShare-3; i++ {
		rest = append(rest, fc.ins(int64(100+i), "r"))
	}
	take(4, old, rest...)
	if len(job) != 1 {
		t.Fatalf("a backlog's %d changes: %d batches sent, want 1", backlogShare, len(job))
	}
	if j := <-job; j.changes != backlogShare || j.position != "4" {
		t.Errorf("sent %d changes at %q, want %d at 4", j.changes, j.position, backlogShare)
	}
	take(5, time.Now(), fc.upd(1, "live", "b"))
	if len(job) != 1 {
		t.Fatalf("a live change: %d batches sent, want 1 at once", len(job))
	}
	if j := <-job; j.changes != 1 || j.position != "5" {
		t.Errorf("sent %d changes at %q, want 1 at 5", j.changes, j.position)
	}
}

// A small apply batch goes whole to fullRowWriter while no other writer
// can hold an earlier change of its keys (all idle, or only whole batches
// in flight); a larger one waits for the whole batches in flight and is
// then split by key, and a small one behind a split batch is split too.
func TestSmallBatchGoesWholeOnlyWhenNoEarlierChangeIsInFlight(t *testing.T) {
	ctx := context.Background()
	bt, _ := testBatcher(t, "")
	bt.jobs = []chan applyJob{make(chan applyJob, 8), make(chan applyJob, 8), make(chan applyJob, 8)}
	fc := foldChanges{bt.e.tables[0]}
	pos := 0
	take := func(ids ...int64) {
		t.Helper()
		pos++
		b := &model.ChangeBatch{Position: model.Position(fmt.Sprint(pos)), CommitTime: time.Now()}
		for _, id := range ids {
			b.Changes = append(b.Changes, fc.upd(id, fmt.Sprint(pos), "b"))
		}
		if err := bt.take(ctx, sourceBatch{b: b}); err != nil {
			t.Fatal(err)
		}
	}
	// sent takes each writer's share of the next batch: the keys in it.
	sent := func() (keys [][]int64, whole bool) {
		t.Helper()
		keys = make([][]int64, len(bt.jobs))
		for w, ch := range bt.jobs {
			select {
			case j := <-ch:
				whole = j.whole
				for _, tc := range j.batch.Tables {
					for _, r := range tc.Upserts {
						keys[w] = append(keys[w], r[0].(int64))
					}
				}
			default:
				t.Fatalf("writer %d got no share", w)
			}
		}
		return keys, whole
	}
	wantWhole := func(what string, n int) {
		t.Helper()
		shares, whole := sent()
		if !whole || len(shares[fullRowWriter]) != n || len(shares[1])+len(shares[2]) != 0 {
			t.Fatalf("%s: shares %v (whole %v), want all %d changes at writer %d", what, shares, whole, n, fullRowWriter)
		}
	}

	take(1, 2, 3) // every writer idle
	wantWhole("every writer idle", 3)
	// Batch 1 in flight: the next is folded and lingers; at the linger's
	// end it goes.
	take(1, 4)
	if err := bt.flush(ctx); err != nil {
		t.Fatal(err)
	}
	wantWhole("behind a whole batch", 2)

	var big []int64
	for id := int64(100); id <= 100+wholeMax; id++ {
		big = append(big, id)
	}
	take(big...)
	flushed := make(chan error, 1)
	go func() { flushed <- bt.flush(ctx) }()
	for seq := uint64(0); seq < 2; seq++ {
		select {
		case err := <-flushed:
			t.Fatalf("a batch of %d changes went while whole batches up to 2 were in flight, applied up to %d (err %v)", len(big), seq, err)
		case <-time.After(50 * time.Millisecond):
		}
		bt.applied.advance(seq + 1)
	}
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	split, whole := sent()
	for w, keys := range split {
		if whole || len(keys) == 0 {
			t.Fatalf("the large batch's shares %v (whole %v): writer %d got none, want it split by key", split, whole, w)
		}
	}

	var small []int64
	for id := int64(1000); id < 1030; id++ {
		small = append(small, id)
	}
	take(small...) // batch 3, split, is in flight
	if err := bt.flush(ctx); err != nil {
		t.Fatal(err)
	}
	if shares, whole := sent(); whole || len(shares[fullRowWriter]) == len(small) {
		t.Fatalf("behind a split batch in flight, a small batch went whole: %v", shares)
	}
	bt.applied.advance(4)
	take(7)
	wantWhole("every writer idle again", 1)
}

// The writer a batch went whole to stores every writer's checkpoint with
// its share; the others write nothing for it.
func TestWholeBatchStoresEveryWritersCheckpoint(t *testing.T) {
	ctx := context.Background()
	dst := openConn(t, "sqlite://"+filepath.Join(t.TempDir(), "dst.db"))
	e := &Engine{name: "f", dst: connector.Discover(dst), log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		progress: newProgress("f", flow.ModeCDC, Abilities{})}
	applier := dst.(connector.ChangeApplier)
	run := func(writer int, job applyJob) {
		t.Helper()
		jobs, acks := make(chan applyJob, 1), make(chan applyAck, 1)
		jobs <- job
		close(jobs)
		var w connector.ChangeWriter
		if err := e.applyLoop(ctx, writer, applier, &w, jobs, acks); err != nil {
			t.Fatal(err)
		}
		if w != nil {
			w.Close()
		}
		if a := <-acks; a.seq != job.seq || a.writer != writer {
			t.Fatalf("writer %d acknowledged %+v, want batch %d", writer, a, job.seq)
		}
	}
	load := func() map[string]string {
		t.Helper()
		m, err := dst.(connector.CheckpointKeeper).LoadCheckpoints(ctx, "f")
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	run(1, applyJob{seq: 1, batch: &model.ApplyBatch{}, position: "p1", whole: true, writers: 3})
	if m := load(); len(m) != 0 {
		t.Fatalf("writer 1's empty share of a whole batch wrote checkpoints %v", m)
	}
	run(fullRowWriter, applyJob{seq: 1, batch: &model.ApplyBatch{}, position: "p1", whole: true, writers: 3})
	if m := load(); m["cdc/0"] != "p1" || m["cdc/1"] != "p1" || m["cdc/2"] != "p1" || len(m) != 3 {
		t.Fatalf("after the whole share, checkpoints %v, want cdc/0, cdc/1 and cdc/2 at p1", m)
	}
	run(2, applyJob{seq: 2, batch: &model.ApplyBatch{}, position: "p2", writers: 3})
	if m := load(); m["cdc/2"] != "p2" || m["cdc/1"] != "p1" {
		t.Fatalf("after writer 2's share of a split batch, checkpoints %v, want cdc/2 at p2, cdc/1 at p1", m)
	}
}
