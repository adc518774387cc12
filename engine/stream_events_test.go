package engine

import (
	"context"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// A source emits the changes of a transaction before a schema change in
// it, or of a huge one, in parts at the previous commit's position (a
// safe resume point): their events must not take the IDs of that previous
// transaction's events, which a bus would drop as duplicates (NATS) or a
// consumer deduplicating by ID would.
func TestEventIDsOfATransactionInParts(t *testing.T) {
	tr := foldTestTable()
	e := &Engine{name: "f", byNS: map[model.Namespace]*tableRun{tr.src.Namespace: tr}, tables: []*tableRun{tr}}
	es := &eventStream{e: e}
	fc := foldChanges{tr}
	batches := []*model.ChangeBatch{
		{Position: "5", Changes: []model.Change{fc.ins(1, "a"), fc.ins(2, "b")}},                // T0, whole
		{Position: "5", Partial: true, Changes: []model.Change{fc.upd(1, "c", "b")}},            // T1, its first part
		{Position: "5", Partial: true, Changes: []model.Change{fc.upd(2, "d", "b")}},            // T1, the next
		{Position: "7", Changes: []model.Change{fc.del(1)}},                                     // T1, its end
		{Position: "7", Partial: true, Changes: []model.Change{fc.ins(3, "e"), fc.ins(4, "f")}}, // T2, in parts too
		{Position: "9", Changes: []model.Change{fc.del(2)}},
	}
	// The same batches read again after a resume from 5 (T1 whole again)
	// give T1's and T2's events the same IDs.
	run := func(bs []*model.ChangeBatch) []string {
		var ids []string
		for _, b := range bs {
			eb := &connector.EventBatch{}
			if err := es.add(context.Background(), eb, b); err != nil {
				t.Fatal(err)
			}
			for _, ev := range eb.Events {
				ids = append(ids, ev.ID)
			}
		}
		return ids
	}
	ids := run(batches)
	seen := map[string]int{}
	for i, id := range ids {
		if j, ok := seen[id]; ok {
			t.Errorf("events %d and %d share the ID %s", j, i, id)
		}
		seen[id] = i
	}
	es.lastPos, es.lastPartial, es.index = "", false, 0
	again := run(batches[1:])
	for i, id := range again {
		if id != ids[i+2] {
			t.Errorf("after a resume from 5, event %d has the ID %s, was %s", i, id, ids[i+2])
		}
	}
}
