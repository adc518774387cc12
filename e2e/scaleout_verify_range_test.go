package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// rangeVerified is what a verification's JSON says of one table, the
// fields a user compares between single-process and scale-out runs.
type rangeVerified struct {
	Table            string `json:"table"`
	SourceRows       int64  `json:"source_rows"`
	DestinationRows  int64  `json:"destination_rows"`
	Buckets          int    `json:"buckets"`
	DifferentBuckets int    `json:"different_buckets"`
	DifferentKeys    int    `json:"different_keys"`
	Pushdown         bool   `json:"pushdown"`
	RowsRead         int64  `json:"rows_read"`
	Diffs            []struct {
		Key     string   `json:"key"`
		Kind    string   `json:"kind"`
		Columns []string `json:"columns"`
	} `json:"diffs"`
}

// rangesScheduled reads the verify-table activities a verification's
// history scheduled: for each table, the bucket ranges they compared, and
// the workers that ran them.
func rangesScheduled(t *testing.T, history string) (map[string][]string, map[string]int) {
	t.Helper()
	var h struct {
		Events []struct {
			ID      string `json:"eventId"`
			Started *struct {
				Scheduled string `json:"scheduledEventId"`
				Identity  string `json:"identity"`
			} `json:"activityTaskStartedEventAttributes"`
			Attrs *struct {
				Type  struct{ Name string } `json:"activityType"`
				Input struct {
					Payloads []struct{ Data []byte } `json:"payloads"`
				} `json:"input"`
			} `json:"activityTaskScheduledEventAttributes"`
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(history), &h); err != nil {
		t.Fatalf("history: %v", err)
	}
	out, workers := map[string][]string{}, map[string]int{}
	ours := map[string]bool{}
	for _, e := range h.Events {
		if e.Started != nil && ours[e.Started.Scheduled] {
			workers[e.Started.Identity]++
		}
		if e.Attrs == nil || e.Attrs.Type.Name != "verify-table" || len(e.Attrs.Input.Payloads) != 1 {
			continue
		}
		var in struct {
			Pair struct {
				Source struct {
					Namespace struct{ Table string } `json:"namespace"`
				} `json:"source"`
			} `json:"pair"`
			Range *struct{ Lo, Hi, Of int } `json:"range"`
		}
		if err := json.Unmarshal(e.Attrs.Input.Payloads[0].Data, &in); err != nil {
			t.Fatalf("verify-table input: %v", err)
		}
		r := "whole"
		if in.Range != nil {
			r = fmt.Sprintf("[%d,%d) of %d", in.Range.Lo, in.Range.Hi, in.Range.Of)
		}
		out[in.Pair.Source.Namespace.Table] = append(out[in.Pair.Source.Namespace.Table], r)
		ours[e.ID] = true
	}
	return out, workers
}

func rangeVerifiedTables(t *testing.T, r result) []rangeVerified {
	t.Helper()
	var v struct {
		Tables []rangeVerified `json:"tables"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, r)
	}
	return v.Tables
}

// TestScaleoutVerifySplitsALargeTableIntoRanges: ferry flow verify of a
// PostgreSQL-to-PostgreSQL flow compares each large table in ranges of its
// buckets, one activity each, on two workers; a difference in one range
// is reported, and the merged result is the one ferry verify gives in one
// process (same counts, same keys). With FERRY_RECORD_VERIFY_HISTORY set,
// it writes the verification's history for the replay test.
func TestScaleoutVerifySplitsALargeTableIntoRanges(t *testing.T) {
	ts := startTemporal(t)
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "vrsrc"), srv.CreateDatabase(t, "vrdst")
	pgShop(t, srv, src, 100000) // orders 100,000 rows, lines 100,000: 4 ranges each at --parallel 4
	conns := []string{"src=" + srv.URL(src), "dst=" + srv.URL(dst)}
	ts.worker(t, conns...)
	ts.worker(t, conns...)
	mustFerry(t, "run", "--temporal", ts.addr, "--source", "src", "--destination", "dst", "--name", "vrange",
		"--mode", "snapshot", "--parallel", "4", "--progress", "none")
	srv.Exec(t, dst, `ANALYZE`)

	r := mustFerry(t, "flow", "verify", "vrange", "--temporal", ts.addr)
	if !strings.Contains(r.stdout, "all 2 table(s) equal") {
		t.Fatalf("flow verify of an equal copy: %s", r)
	}
	h := verifyHistory(t, ts)
	perTable, workers := rangesScheduled(t, h)
	if len(perTable) != 2 || len(perTable["orders"]) != 4 || len(perTable["lines"]) != 4 {
		t.Fatalf("verify-table activities by table and range, for 2 tables of 4 ranges each: %v", perTable)
	}
	t.Logf("ranges %v, compared by workers %v", perTable, workers)
	if os.Getenv("FERRY_RECORD_VERIFY_HISTORY") != "" {
		if err := os.WriteFile("../scaleout/testdata/history-verify-by-range.json", []byte(h), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	srv.Exec(t, dst, `DELETE FROM orders WHERE id = 17; UPDATE orders SET note = 'tampered' WHERE id = 4242;
		UPDATE orders SET amount = 0 WHERE id = 90001`)
	r = ferry(t, "flow", "verify", "vrange", "--temporal", ts.addr, "--json")
	if r.code != 1 {
		t.Fatalf("flow verify of changed rows: want exit 1: %s", r)
	}
	scaled := rangeVerifiedTables(t, r)
	single := rangeVerifiedTables(t, ferry(t, "verify", "--json", srv.URL(src), srv.URL(dst)))
	// The reads differ: each range totals its buckets' hashes first and
	// reads the buckets only where the totals differ.
	for i := range scaled {
		scaled[i].RowsRead = 0
	}
	for i := range single {
		single[i].RowsRead = 0
	}
	a, _ := json.Marshal(scaled)
	b, _ := json.Marshal(single)
	if string(a) != string(b) {
		t.Fatalf("scale-out verify by range:\n%s\nferry verify in one process:\n%s", a, b)
	}
	byName := map[string]rangeVerified{}
	for _, tb := range scaled {
		byName[tb.Table] = tb
	}
	o := byName["public.orders"]
	if o.SourceRows != 100000 || o.DestinationRows != 99999 || o.DifferentKeys != 3 || !o.Pushdown || len(o.Diffs) != 3 ||
		o.Diffs[0].Key != "id=17" || o.Diffs[0].Kind != "missing" || o.Diffs[1].Key != "id=4242" || strings.Join(o.Diffs[1].Columns, ",") != "note" ||
		o.Diffs[2].Key != "id=90001" || byName["public.lines"].SourceRows != 100000 || byName["public.lines"].DifferentKeys != 0 {
		t.Fatalf("scale-out verify of changed rows: %s", a)
	}
}
