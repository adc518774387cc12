package engine

import (
	"context"
	"fmt"
	"testing"

	"github.com/ferrydb/ferry/model"
)

// Under --apply-mode transactional, the parts of a huge source transaction
// go to the writer one by one as Continues batches, each holding its share
// of the flight budget, when the destination applies a transaction in
// parts (SpanApply); the part that ends it goes as an ordinary batch. A
// destination without it gets the whole transaction in one batch, the
// parts' budget returned at once.
func TestTransactionalPartsGoOnAloneWithSpanApply(t *testing.T) {
	for _, span := range []bool{true, false} {
		bt, job := testBatcher(t, "1")
		bt.tx, bt.span = true, span
		var released int64
		bt.release = func(n int64) { released += n }
		fc := foldChanges{bt.e.tables[0]}
		ctx := context.Background()
		take := func(partial bool, bytes int64, ids ...int64) {
			t.Helper()
			b := &model.ChangeBatch{Position: "1", Partial: partial}
			for _, id := range ids {
				b.Changes = append(b.Changes, fc.ins(id, "v"))
			}
			if !partial {
				b.Position = "9"
			}
			if err := bt.take(ctx, sourceBatch{b: b, bytes: bytes}); err != nil {
				t.Fatal(err)
			}
		}
		take(true, 10, 1, 2)
		take(true, 20, 3, 4, 5)
		take(false, 30, 6)
		if err := bt.flush(ctx); err != nil {
			t.Fatal(err)
		}
		var got []string
		for len(job) > 0 {
			j := <-job
			got = append(got, fmtJob(j))
		}
		want := []string{"2 changes at 1, continues, 10 bytes held", "3 changes at 1, continues, 20 bytes held", "1 changes at 9, ends, 30 bytes held"}
		wantReleased := int64(0)
		if !span {
			want = []string{"6 changes at 9, ends, 30 bytes held"}
			wantReleased = 30
		}
		if len(got) != len(want) || released != wantReleased {
			t.Fatalf("span=%v: sent %q and released %d bytes, want %q and %d", span, got, released, want, wantReleased)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("span=%v: batch %d is %q, want %q", span, i, got[i], want[i])
			}
		}
		if p := bt.e.progress.CDC.HeldPeak.Load(); (span && p != 3) || (!span && p != 6) {
			t.Errorf("span=%v: held peak %d", span, p)
		}
	}
}

func fmtJob(j applyJob) string {
	end := "ends"
	if j.batch.Continues {
		end = "continues"
	}
	return fmt.Sprintf("%d changes at %s, %s, %d bytes held", j.batch.Len(), j.position, end, j.bytes)
}
