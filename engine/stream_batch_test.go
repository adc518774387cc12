package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
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
	tr := foldTestTable()
	ns := tr.src.Namespace
	e := &Engine{cfg: flow.Config{ApplyBatch: 1000, ApplyLinger: time.Hour}, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		progress: newProgress("t", flow.ModeFull, Abilities{}), byNS: map[model.Namespace]*tableRun{ns: tr}}
	e.src.ChangeSource = fakeChanges(t) // positions are change counts
	job := make(chan applyJob, 4)
	bt := &batcher{e: e, jobs: []chan applyJob{job}, applied: newSignal(), f: newFolder(), linger: time.NewTimer(time.Hour)}
	bt.linger.Stop()
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
	dst := openConn(t, "sqlite://"+filepath.Join(t.TempDir(), "dst.db"))
	if err := dst.(connector.Destination).CreateTables(ctx, []*model.Table{tr.dst}); err != nil {
		t.Fatal(err)
	}
	e.dst.Emptier = dst.(connector.Emptier)
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
