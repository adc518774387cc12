package fake

import (
	"context"
	"errors"
	"net/url"
	"reflect"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

func open(t *testing.T, raw string) *Source {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(u)
	if err != nil {
		t.Fatal(err)
	}
	return c.(*Source)
}

var errEnough = errors.New("enough")

// The change stream applied to the state at T0 gives Expected at the head,
// and resuming the stream from any position gives the same changes.
func TestStreamReachesExpectedState(t *testing.T) {
	const raw = "fake://?tables=2&rows=300&changes=2000&seed=7"
	s := open(t, raw)
	state, err := Expected(raw, 0)
	if err != nil {
		t.Fatal(err)
	}
	var streamed []model.Change
	apply := func(from string) {
		err := s.StreamChanges(context.Background(), nil, model.Position(from), connector.StreamOptions{}, func(_ context.Context, b *model.ChangeBatch) error {
			streamed = append(streamed, b.Changes...)
			for _, c := range b.Changes {
				rows := state[c.Table]
				switch c.Op {
				case model.OpInsert:
					if _, exists := rows[c.Row[0].(int64)]; exists {
						t.Fatalf("insert of existing key %v in %s", c.Row[0], c.Table)
					}
					rows[c.Row[0].(int64)] = c.Row
				case model.OpUpdate:
					if _, exists := rows[c.Row[0].(int64)]; !exists {
						t.Fatalf("update of missing key %v in %s", c.Row[0], c.Table)
					}
					rows[c.Row[0].(int64)] = c.Row
				case model.OpDelete:
					if _, exists := rows[c.Key[0].(int64)]; !exists {
						t.Fatalf("delete of missing key %v in %s", c.Key[0], c.Table)
					}
					delete(rows, c.Key[0].(int64))
				}
			}
			if b.Position == "2000" {
				return errEnough
			}
			return nil
		})
		if !errors.Is(err, errEnough) {
			t.Fatal(err)
		}
	}
	apply("0")
	if len(streamed) != 2000 {
		t.Fatalf("streamed %d changes, want 2000", len(streamed))
	}
	want, err := Expected(raw, 2000)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(state, want) {
		t.Fatal("applying the stream to the T0 state does not give Expected at the head")
	}

	// Resume from 1234: the same changes as the tail of the full stream.
	full := streamed
	streamed = nil
	state, _ = Expected(raw, 1234)
	apply("1234")
	if !reflect.DeepEqual(streamed, full[1234:]) {
		t.Fatal("the stream resumed from 1234 differs from the full stream's tail")
	}
	if !reflect.DeepEqual(state, want) {
		t.Fatal("resumed stream does not reach the expected state")
	}
}

// With snapshot=head the partitions together hold exactly the head state,
// and a partition resumed from a cursor returns exactly the rest.
func TestPartitionsCoverTheSnapshot(t *testing.T) {
	for _, raw := range []string{"fake://?tables=2&rows=1000&changes=3000&snapshot=head", "fake://?tables=2&rows=1000"} {
		s := open(t, raw)
		tables, _ := s.Tables(context.Background())
		plan, err := s.Plan(context.Background(), tables, connector.PlanOptions{PartitionRows: 300})
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Partitions) != 8 {
			t.Fatalf("%d partitions, want 8", len(plan.Partitions))
		}
		at := int64(0)
		if s.cfg.Snapshot == "head" {
			at = 3000
		}
		want, _ := Expected(raw, at)
		got := map[model.Namespace]map[int64]model.Row{}
		for _, p := range plan.Partitions {
			err := s.ReadPartition(context.Background(), plan.Table(p.Table), p, "", func(b *model.RowBatch) error {
				for _, r := range b.Rows {
					if got[p.Table] == nil {
						got[p.Table] = map[int64]model.Row{}
					}
					if _, dup := got[p.Table][r[0].(int64)]; dup {
						t.Fatalf("key %v read twice", r[0])
					}
					got[p.Table][r[0].(int64)] = r
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: partitions do not hold the expected state", raw)
		}
		// Resume the first partition after its 100th row.
		p := plan.Partitions[0]
		var n int
		err = s.ReadPartition(context.Background(), plan.Table(p.Table), p, "100", func(b *model.RowBatch) error {
			for _, r := range b.Rows {
				if r[0].(int64) <= 100 {
					t.Fatalf("resumed read returned key %v at or before the cursor", r[0])
				}
				n++
			}
			return nil
		})
		if err != nil || n == 0 {
			t.Fatalf("resumed read: %d rows, %v", n, err)
		}
	}
}

func TestBadSettings(t *testing.T) {
	for _, raw := range []string{"fake://?tables=0", "fake://?rows=-1", "fake://?colour=red", "fake://host/path", "fake://?snapshot=later"} {
		u, _ := url.Parse(raw)
		if _, err := Open(u); err == nil || !errs.IsConfigError(err) {
			t.Errorf("Open(%s) = %v, want a configuration error", raw, err)
		}
	}
}

func BenchmarkRow(b *testing.B) {
	g := newGen(Config{Seed: 1, Width: 32})
	var slab model.Slab
	for i := 0; i < b.N; i++ {
		g.row(&slab, 0, int64(i), 0)
	}
}
