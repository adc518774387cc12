package conformance

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// checkKeyReader reads a few keys of the seeded table (ids 1..n), one of
// them absent, by the key columns: exactly the rows of the present keys
// come back, whole, and nothing else.
func checkKeyReader(t *testing.T, src connector.Source, kr connector.KeyReader, tbl *model.Table) {
	idx := tbl.KeyIndexes()
	if len(idx) != 1 {
		t.Skip("the seeded table has no single-column key (a generator)")
	}
	col := tbl.Columns[idx[0]]
	switch col.Type.Kind {
	case model.KindInt16, model.KindInt32, model.KindInt64:
	default:
		t.Skipf("key column %s is %s, not an integer", col.Name, col.Type.Kind)
	}
	// Every row as a whole read gives it, by key, to compare with.
	want := map[string]model.Row{}
	p := plan(t, src, tbl, connector.PlanOptions{PartitionRows: sourceRows})
	for _, part := range p.Partitions {
		err := src.ReadPartition(ctxFor(t), tbl, part, "", func(b *model.RowBatch) error {
			for _, r := range b.Rows {
				want[keyOf(tbl, r)] = r
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	keys := []model.Row{{int64(3)}, {int64(sourceRows)}, {int64(sourceRows + 10)}, {int64(1)}}
	var got []string
	err := kr.ReadKeys(ctxFor(t), tbl, []string{col.Name}, keys, func(b *model.RowBatch) error {
		for _, r := range b.Rows {
			k := keyOf(tbl, r)
			w, ok := want[k]
			if !ok || !reflect.DeepEqual(w, r) {
				t.Errorf("ReadKeys gave %v; a whole read gave %v", r, w)
			}
			got = append(got, k)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	wantKeys := []string{fmt.Sprint(int64(1)), fmt.Sprint(int64(3)), fmt.Sprint(int64(sourceRows))}
	slices.Sort(wantKeys)
	if !slices.Equal(got, wantKeys) {
		t.Fatalf("ReadKeys of 1, 3, %d and the absent %d read %v", sourceRows, sourceRows+10, got)
	}
}
