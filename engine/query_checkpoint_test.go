package engine

import (
	"testing"

	"github.com/ferrydb/ferry/model"
)

// TestQueryRangeStart: a range resumes after its cursor of this run, from
// its start without one or with one of an older run, and is done at its
// end.
func TestQueryRangeStart(t *testing.T) {
	ns := model.Namespace{Schema: "rep", Table: "t"}
	run := QueryRun{ID: "b", Ranges: []QueryRunRange{{UpTo: "10"}, {After: "10", UpTo: "20"}, {After: "20", UpTo: "30"}, {After: "30", UpTo: "40"}}}
	cps := map[string]string{
		queryRangeKey(ns, 0): `{"run":"b","cursor":"7"}`,
		queryRangeKey(ns, 1): `{"run":"a","cursor":"15"}`, // an older run's
		queryRangeKey(ns, 3): `{"run":"b","cursor":"40"}`,
	}
	for i, want := range []struct {
		from string
		done bool
	}{{"7", false}, {"10", false}, {"20", false}, {"40", true}} {
		from, done, err := run.rangeStart(cps, ns, i)
		if err != nil || from != want.from || done != want.done {
			t.Errorf("range %d resumes from %q (done %v, %v), want %q (done %v)", i, from, done, err, want.from, want.done)
		}
	}
	if _, _, err := run.rangeStart(map[string]string{queryRangeKey(ns, 0): "{"}, ns, 0); err == nil {
		t.Error("a damaged checkpoint is taken")
	}
}
