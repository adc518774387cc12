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
