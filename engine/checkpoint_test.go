package engine

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ferrydb/ferry/connector"
	_ "github.com/ferrydb/ferry/connectors/fake"
	_ "github.com/ferrydb/ferry/connectors/sqlite"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/state"
)

// The precedence rules of checkpoint.go, against a real SQLite destination
// (which keeps checkpoints) and a real local state store.

const ckptFlow = "ckpt"

func openConn(t *testing.T, url string) connector.Connector {
	t.Helper()
	c, err := connector.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sqliteKeeper is a SQLite destination, which keeps checkpoints.
func sqliteKeeper(t *testing.T) connector.CheckpointKeeper {
	t.Helper()
	return openConn(t, "sqlite://"+filepath.Join(t.TempDir(), "dst.db")).(connector.CheckpointKeeper)
}

func localStore(t *testing.T) *state.Store {
	t.Helper()
	s, err := state.Open(context.Background(), t.TempDir(), ckptFlow)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fakeChanges is a source whose positions are change counts.
func fakeChanges(t *testing.T) connector.ChangeSource {
	t.Helper()
	return openConn(t, "fake://?tables=1&rows=10").(connector.ChangeSource)
}

func direct(ctx context.Context, _ string, fn func(context.Context) error) error { return fn(ctx) }

func progressJSON(t *testing.T, pp PartitionProgress) string {
	t.Helper()
	b, err := json.Marshal(pp)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func keep(t *testing.T, k connector.CheckpointKeeper, prefix string, values map[string]string) {
	t.Helper()
	if err := k.ReplaceCheckpoints(context.Background(), ckptFlow, prefix, values); err != nil {
		t.Fatal(err)
	}
}

func TestResumePartitionPrecedence(t *testing.T) {
	heartbeat := PartitionProgress{Cursor: "c300", Rows: 300}
	behind := PartitionProgress{Cursor: "c100", Rows: 100}
	ahead := PartitionProgress{Cursor: "c500", Rows: 500}
	done := PartitionProgress{Cursor: "c900", Rows: 100, Done: true}
	for _, tc := range []struct {
		name       string
		remembered PartitionProgress
		keeps      bool
		stored     *PartitionProgress
		want       PartitionProgress
		wantFrom   string
	}{
		{"nothing anywhere", PartitionProgress{}, false, nil, PartitionProgress{}, ResumedFromNothing},
		{"no keeper: the coordinator's progress", heartbeat, false, nil, heartbeat, ResumedFromCoordinator},
		{"keeper without checkpoint: start over", heartbeat, true, nil, PartitionProgress{}, ResumedFromNothing},
		{"keeper ahead wins", heartbeat, true, &ahead, ahead, ResumedFromDestination},
		{"keeper done wins", heartbeat, true, &done, done, ResumedFromDestination},
		{"keeper is authoritative even when behind", heartbeat, true, &behind, behind, ResumedFromCoordinator},
		{"lost coordinator progress: the destination", PartitionProgress{}, true, &behind, behind, ResumedFromDestination},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stored PartitionProgress
			if tc.stored != nil {
				stored = *tc.stored
			}
			got, from := resumePartition(tc.remembered, tc.keeps, stored, tc.stored != nil)
			if got != tc.want || from != tc.wantFrom {
				t.Fatalf("resumes from %+v (%q), want %+v (%q)", got, from, tc.want, tc.wantFrom)
			}
		})
	}
}

// TestDestinationCheckpointsBeatLocal: with a keeper, the local state's
// positions (ahead or behind) do not count.
func TestDestinationCheckpointsBeatLocal(t *testing.T) {
	ctx := context.Background()
	k, store := sqliteKeeper(t), localStore(t)
	kept := PartitionProgress{Cursor: "c100", Rows: 100}
	keep(t, k, "partition/", map[string]string{partitionKey("p1"): progressJSON(t, kept)})
	keep(t, k, "cdc/", map[string]string{cdcKey(0): "40", cdcKey(1): "30"})
	if err := store.SaveCheckpoints(ctx, map[string]string{partitionKey("p1"): progressJSON(t, PartitionProgress{Cursor: "c500", Rows: 500}),
		partitionKey("p2"): progressJSON(t, PartitionProgress{Rows: 7, Done: true})}); err != nil {
		t.Fatal(err)
	}
	if err := store.SetMeta(ctx, "cdc", "90"); err != nil {
		t.Fatal(err)
	}
	c := newCheckpoints(ckptFlow, k, store, direct)
	got, err := c.partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]PartitionProgress{"p1": kept}; !reflect.DeepEqual(got, want) {
		t.Fatalf("partitions resume from %+v, want the destination's %+v", got, want)
	}
	start, _, err := c.cdcStart(ctx, fakeChanges(t), "5")
	if err != nil || start != "30" {
		t.Fatalf("CDC resumes from %q (%v), want the destination's lowest writer position 30", start, err)
	}
}

// TestLostLocalStateResumesFromDestination: a fresh local store (the state
// file was lost) still resumes partitions and CDC where the destination is.
func TestLostLocalStateResumesFromDestination(t *testing.T) {
	ctx := context.Background()
	k := sqliteKeeper(t)
	kept := PartitionProgress{Cursor: "c200", Rows: 200}
	keep(t, k, "partition/", map[string]string{partitionKey("p1"): progressJSON(t, kept)})
	keep(t, k, "cdc/", map[string]string{cdcKey(0): "12"})
	for name, store := range map[string]*state.Store{"fresh store": localStore(t), "no store": nil} {
		t.Run(name, func(t *testing.T) {
			c := newCheckpoints(ckptFlow, k, store, direct)
			pp, ok, err := c.partition(ctx, "p1")
			if err != nil || !ok || pp != kept {
				t.Fatalf("partition resumes from %+v (%v, %v), want %+v", pp, ok, err, kept)
			}
			start, _, err := c.cdcStart(ctx, fakeChanges(t), "3")
			if err != nil || start != "12" {
				t.Fatalf("CDC resumes from %q (%v), want 12", start, err)
			}
		})
	}
}

// TestNoKeeperUsesLocalStore: without a keeper the local store (or, without
// one, memory) holds the positions, and T0 starts CDC when it has none.
func TestNoKeeperUsesLocalStore(t *testing.T) {
	ctx := context.Background()
	for name, store := range map[string]*state.Store{"state store": localStore(t), "no store": nil} {
		t.Run(name, func(t *testing.T) {
			c := newCheckpoints(ckptFlow, nil, store, direct)
			cs := fakeChanges(t)
			if start, _, err := c.cdcStart(ctx, cs, "4"); err != nil || start != "4" {
				t.Fatalf("CDC starts from %q (%v), want T0 4", start, err)
			}
			remembered := PartitionProgress{Cursor: "c50", Rows: 50}
			if err := c.startPartition(ctx, "p1", remembered); err != nil {
				t.Fatal(err)
			}
			got, err := c.partitionReached(ctx, "p1", PartitionProgress{})
			if err != nil || got != remembered {
				t.Fatalf("partition at %+v (%v), want %+v", got, err, remembered)
			}
			if err := c.saveLocal(ctx, map[string]string{partitionKey("p1"): progressJSON(t, PartitionProgress{Cursor: "c80", Rows: 80})}); err != nil {
				t.Fatal(err)
			}
			if got, _ := c.partitionReached(ctx, "p1", remembered); got.Rows != 80 {
				t.Fatalf("partition at %+v, want the saved 80 rows", got)
			}
			if err := c.saveCDC(ctx, "17"); err != nil {
				t.Fatal(err)
			}
			if start, _, err := c.cdcStart(ctx, cs, "4"); err != nil || start != "17" {
				t.Fatalf("CDC resumes from %q (%v), want the local 17", start, err)
			}
			if err := c.resetWriters(ctx, "17", 2); err != nil || c.cdcReached() != "17" {
				t.Fatalf("reached %q (%v) after the reset, want 17", c.cdcReached(), err)
			}
		})
	}
}

// TestCDCResumesFromLowestWriterAndResets: CDC resumes from the minimum of
// the per-writer positions, then every writer's checkpoint is reset to it,
// the ones of writers no longer running removed.
func TestCDCResumesFromLowestWriterAndResets(t *testing.T) {
	ctx := context.Background()
	k := sqliteKeeper(t)
	keep(t, k, "cdc/", map[string]string{cdcKey(0): "30", cdcKey(1): "9", cdcKey(2): "25"})
	c := newCheckpoints(ckptFlow, k, localStore(t), direct)
	start, cps, err := c.cdcStart(ctx, fakeChanges(t), "1")
	if err != nil || start != "9" || len(cps) != 3 {
		t.Fatalf("CDC resumes from %q with %d writer checkpoints (%v), want 9 and 3", start, len(cps), err)
	}
	if err := c.resetWriters(ctx, start, 2); err != nil {
		t.Fatal(err)
	}
	all, err := k.LoadCheckpoints(ctx, ckptFlow)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{cdcKey(0): "9", cdcKey(1): "9"}; !reflect.DeepEqual(all, want) {
		t.Fatalf("destination checkpoints after the reset: %v, want %v", all, want)
	}
}

// TestOlderPlanCheckpointsDroppedAtPlanning: a flow planned afresh (its
// local state lost) drops the destination's checkpoints of the older plan,
// whose partitions may have other bounds, and copies every partition.
func TestOlderPlanCheckpointsDroppedAtPlanning(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "dst.db")
	cfg := flow.Config{Name: ckptFlow, Source: "fake://?tables=1&rows=3000", Destination: "sqlite://" + db,
		Mode: flow.ModeSnapshot, PartitionRows: 1000}
	src, dst := openConn(t, cfg.Source), openConn(t, cfg.Destination)
	k := dst.(connector.CheckpointKeeper)
	e, err := New(cfg, src, dst, localStore(t), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	// An older plan's partition of the same ID, marked done.
	keep(t, k, "partition/", map[string]string{partitionKey("public.t1/0"): progressJSON(t, PartitionProgress{Rows: 1, Done: true})})
	keep(t, k, "cdc/", map[string]string{cdcKey(0): "99"})
	if err := e.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	if all, err := k.LoadCheckpoints(ctx, ckptFlow); err != nil || len(all) != 0 {
		t.Fatalf("destination checkpoints after planning: %v (%v), want none", all, err)
	}
	if err := e.Run(ctx, ctx); err != nil {
		t.Fatal(err)
	}
	got, err := e.ckpt.partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rows int64
	for id, pp := range got {
		if !pp.Done {
			t.Fatalf("partition %s not done: %+v", id, pp)
		}
		rows += pp.Rows
	}
	if len(got) != len(e.Plan().Partitions) || rows != 3000 {
		t.Fatalf("%d partitions done with %d rows, want %d with 3000", len(got), rows, len(e.Plan().Partitions))
	}
}

// TestLocalCDCCopyIsThrottledWithAKeeper: with a keeper the local copy of
// the CDC position is written at most once a second (the rest is flushed at
// the end); without one every position is written.
func TestLocalCDCCopyIsThrottledWithAKeeper(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		keeper    connector.CheckpointKeeper
		wantAfter string // the local position after 10 then 11
	}{
		{"keeper", sqliteKeeper(t), "10"},
		{"no keeper", nil, "11"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := localStore(t)
			c := newCheckpoints(ckptFlow, tc.keeper, store, direct)
			for _, pos := range []model.Position{"10", "11"} {
				if err := c.cdcCheckpointed(ctx, pos); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := store.Meta(ctx, "cdc"); err != nil || got != tc.wantAfter {
				t.Fatalf("local position %q (%v), want %q", got, err, tc.wantAfter)
			}
			if c.cdcReached() != "11" {
				t.Fatalf("reached %q, want 11", c.cdcReached())
			}
			if err := c.flushCDC(ctx); err != nil {
				t.Fatal(err)
			}
			if got, err := store.Meta(ctx, "cdc"); err != nil || got != "11" {
				t.Fatalf("local position after the flush %q (%v), want 11", got, err)
			}
		})
	}
}

// A table's shape after a schema change is recorded where the flow's
// checkpoints are authoritative, per table: a table whose name starts with
// another's keeps its own record, and a record replaced is replaced.
func TestSchemasAreRecordedPerTable(t *testing.T) {
	ctx := context.Background()
	for _, withKeeper := range []bool{true, false} {
		var keeper connector.CheckpointKeeper
		if withKeeper {
			keeper = sqliteKeeper(t)
		}
		c := newCheckpoints(ckptFlow, keeper, localStore(t), direct)
		col := func(n string) model.Column { return model.Column{Name: n, Type: model.Type{Kind: model.KindInt64}} }
		short := &model.Table{Namespace: model.Namespace{Schema: "s", Table: "t"}, PrimaryKey: []string{"id"}, Columns: []model.Column{col("id"), col("a")}}
		long := &model.Table{Namespace: model.Namespace{Schema: "s", Table: "t2"}, PrimaryKey: []string{"id"}, Columns: []model.Column{col("id"), col("b")}}
		for _, tb := range []*model.Table{long, short} {
			if err := c.saveSchema(ctx, tb); err != nil {
				t.Fatal(err)
			}
		}
		renamed := short.Clone()
		renamed.Columns[1].Name = "a2"
		if err := c.saveSchema(ctx, renamed); err != nil {
			t.Fatal(err)
		}
		got, err := c.schemas(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[short.Namespace].Columns[1].Name != "a2" || got[long.Namespace].Columns[1].Name != "b" {
			t.Errorf("keeper %v: recorded schemas = %+v, want s.t with a2 and s.t2 with b", withKeeper, got)
		}
	}
}
