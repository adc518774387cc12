package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/ferrydb/ferry/model"
)

// A query's checkpoints, under "query/<table>/": mark is the watermark
// every run so far reached; run, while a run is under way, its bounds and
// ranges; range/<i>, the last watermark written of range i of the run.
func queryPrefix(ns model.Namespace) string  { return "query/" + ns.String() + "/" }
func queryMarkKey(ns model.Namespace) string { return queryPrefix(ns) + "mark" }
func queryRunKey(ns model.Namespace) string  { return queryPrefix(ns) + "run" }
func queryRangeKey(ns model.Namespace, i int) string {
	return queryPrefix(ns) + "range/" + strconv.Itoa(i)
}

// queryColumnKey records the watermark column the mark is a value of.
func queryColumnKey(ns model.Namespace) string { return queryPrefix(ns) + "watermark" }

// QueryRun is a run's record: planned once, so a killed run resumes the
// same ranges. Values are the watermark's text; After "" is unbounded.
// Its JSON is the run's checkpoint, and in scale-out mode what the
// workflow hands each range's activity.
type QueryRun struct {
	ID   string `json:"id"`
	From string `json:"from,omitempty"`
	Hi   string `json:"hi"`
	// Ranges are the run's parallel reads; none when the run found
	// nothing past the mark (then it is not recorded).
	Ranges []QueryRunRange `json:"ranges"`
	// Resumed says the run was recorded by an earlier start and is
	// resumed (never part of the checkpoint).
	Resumed bool `json:"resumed,omitempty"`
}

// QueryRunRange is one range of a run: After < watermark <= UpTo.
type QueryRunRange struct {
	After string `json:"after,omitempty"`
	UpTo  string `json:"up_to"`
}

// queryCursor is a range's checkpoint: the run it belongs to (a stale
// record of an older run is ignored) and the last watermark written.
type queryCursor struct {
	Run    string `json:"run"`
	Cursor string `json:"cursor"`
}

// saveQuery records values under the query's prefix: at a destination
// that keeps checkpoints, replacing all the query's records (so the
// ranges of a finished run go); otherwise in the local state, where a
// stale range record is told by its run.
func (f *QueryFlow) saveQuery(ctx context.Context, ns model.Namespace, values map[string]string) error {
	if k := f.dst.CheckpointKeeper; k != nil {
		if err := k.ReplaceCheckpoints(ctx, f.name, queryPrefix(ns), values); err != nil {
			return fmt.Errorf("query %s: save checkpoint: %w", ns, err)
		}
		return nil
	}
	return f.ckpt.saveLocal(ctx, values)
}

// rangeStart is where range i of the run resumes: after its cursor when
// its checkpoint belongs to this run (a stale one of an older run, left in
// a local state that cannot delete it, is ignored), else at its start.
// done: the range was written to its end.
func (r QueryRun) rangeStart(cps map[string]string, ns model.Namespace, i int) (from string, done bool, err error) {
	from = r.Ranges[i].After
	if s := cps[queryRangeKey(ns, i)]; s != "" {
		var c queryCursor
		if err := json.Unmarshal([]byte(s), &c); err != nil {
			return "", false, fmt.Errorf("query %s: range %d's checkpoint %q: %w", ns, i, s, err)
		}
		if c.Run == r.ID {
			from = c.Cursor
		}
	}
	return from, from == r.Ranges[i].UpTo, nil
}
