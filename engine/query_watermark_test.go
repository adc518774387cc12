package engine

import (
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// TestWatermarkSplit: the ranges of a run hold every value of (after, hi]
// once, start after after (or unbounded), and are never empty of width.
func TestWatermarkSplit(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }
	integer, _ := newWatermark(model.Type{Kind: model.KindInt64})
	date, _ := newWatermark(model.Type{Kind: model.KindDate})
	stamp, _ := newWatermark(model.Type{Kind: model.KindTimestampTZ})
	for _, c := range []struct {
		name          string
		w             watermark
		after, lo, hi any
		n             int
		want          []connector.QueryRange
	}{
		{"first run, four ranges", integer, nil, int64(1), int64(100), 4,
			[]connector.QueryRange{{UpTo: int64(25)}, {After: int64(25), UpTo: int64(49)}, {After: int64(49), UpTo: int64(73)}, {After: int64(73), UpTo: int64(100)}}},
		{"after a mark", integer, int64(10), int64(11), int64(14), 2,
			[]connector.QueryRange{{After: int64(10), UpTo: int64(12)}, {After: int64(12), UpTo: int64(14)}}},
		{"fewer values than ranges", integer, int64(10), int64(11), int64(12), 4,
			[]connector.QueryRange{{After: int64(10), UpTo: int64(12)}}},
		{"one value", integer, nil, int64(7), int64(7), 4,
			[]connector.QueryRange{{UpTo: int64(7)}}},
		{"negative to positive", integer, nil, int64(-100), int64(100), 2,
			[]connector.QueryRange{{UpTo: int64(0)}, {After: int64(0), UpTo: int64(100)}}},
		{"dates cut at whole days", date, day(1), day(2), day(9), 3,
			[]connector.QueryRange{{After: day(1), UpTo: day(4)}, {After: day(4), UpTo: day(6)}, {After: day(6), UpTo: day(9)}}},
		{"timestamps", stamp, nil, day(1), day(3), 2,
			[]connector.QueryRange{{UpTo: day(2)}, {After: day(2), UpTo: day(3)}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := c.w.split(c.after, c.lo, c.hi, c.n)
			if len(got) != len(c.want) {
				t.Fatalf("%d ranges %v, want %v", len(got), got, c.want)
			}
			for i := range got {
				if !connector.SameWatermark(got[i].After, c.want[i].After) || !connector.SameWatermark(got[i].UpTo, c.want[i].UpTo) {
					t.Fatalf("range %d is %v, want %v", i, got[i], c.want[i])
				}
			}
		})
	}
}

// TestWatermarkLookback: a lookback steps the mark back in the
// watermark's own unit, and one of the other unit is refused.
func TestWatermarkLookback(t *testing.T) {
	integer, _ := newWatermark(model.Type{Kind: model.KindInt32})
	date, _ := newWatermark(model.Type{Kind: model.KindDate})
	stamp, _ := newWatermark(model.Type{Kind: model.KindTimestamp})
	at := time.Date(2026, 3, 5, 12, 30, 0, 0, time.UTC)
	if got := integer.minus(int64(1000), flow.Lookback{Count: 50}); got != int64(950) {
		t.Errorf("1000 - 50 = %v", got)
	}
	if got := stamp.minus(at, flow.Lookback{Duration: time.Hour}); !got.(time.Time).Equal(at.Add(-time.Hour)) {
		t.Errorf("%v - 1h = %v", at, got)
	}
	if got := date.minus(time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC), flow.Lookback{Duration: 36 * time.Hour}); !got.(time.Time).Equal(time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("2026-03-05 - 36h = %v, want 2026-03-03", got)
	}
	if integer.minus(nil, flow.Lookback{Count: 5}) != nil {
		t.Error("no mark yet: a lookback makes one")
	}
	if integer.checkLookback(flow.Lookback{Duration: time.Minute}) == nil || stamp.checkLookback(flow.Lookback{Count: 3}) == nil {
		t.Error("a lookback of the other unit is accepted")
	}
	if _, err := newWatermark(model.Type{Kind: model.KindText}); err == nil {
		t.Error("a text watermark is accepted")
	}
	for _, w := range []watermark{integer, date, stamp} {
		for _, v := range []any{int64(42), time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)} {
			if (w.integer()) != (v == int64(42)) {
				continue
			}
			s, err := w.encode(v)
			if err != nil {
				t.Fatal(err)
			}
			back, err := w.decode(s)
			if err != nil || !connector.SameWatermark(back, v) {
				t.Errorf("%s: %v encoded %q decodes to %v (%v)", w.typ.Kind, v, s, back, err)
			}
		}
	}
}

// TestLatestByKey: of rows sharing a key, the last is upserted; a NULL
// key is refused.
func TestLatestByKey(t *testing.T) {
	qt := &queryTable{q: connector.Query{Name: model.Namespace{Table: "t"}}, keyIdx: []int{0, 1},
		dst: &model.Table{Columns: []model.Column{{Name: "a", Type: model.Type{Kind: model.KindInt64}}, {Name: "b", Type: model.Type{Kind: model.KindText}}, {Name: "v", Type: model.Type{Kind: model.KindInt64}}}}}
	got, err := qt.latestByKey([]model.Row{{int64(1), "x", int64(1)}, {int64(1), "y", int64(2)}, {int64(1), "x", int64(3)}, {int64(11), "", int64(4)}, {int64(1), "1x", int64(5)}})
	if err != nil || len(got) != 4 || got[0][2] != int64(3) || got[1][2] != int64(2) {
		t.Fatalf("latest by key: %v (%v)", got, err)
	}
	if _, err := qt.latestByKey([]model.Row{{nil, "x", int64(1)}}); err == nil {
		t.Fatal("a NULL key is accepted")
	}
}
