package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/internal/faultpoint"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// busMsg is one message as a consumer of a bus reads it.
type busMsg struct {
	ID, Subject string
	Key, Value  []byte
}

// rebuilt is the state a consumer rebuilds from change events: per
// subject, per key, the row's last image.
type rebuilt map[string]map[string]map[string]any

// rebuild applies Debezium change events in order, as a consumer does: r,
// c and u set the key's row (a value the source did not send, Debezium's
// placeholder, keeps the previous one), d deletes it, a tombstone (no
// value) does nothing.
func rebuild(t *testing.T, msgs []busMsg) rebuilt {
	t.Helper()
	return rebuildEvents(t, msgs, true)
}

// rebuildOverlapping is rebuild for a source whose snapshot overlaps its
// change stream (MySQL: the stream starts where the copy started, so a
// change made during the copy may come after the row's read event, or
// delete a row the snapshot no longer had).
func rebuildOverlapping(t *testing.T, msgs []busMsg) rebuilt {
	t.Helper()
	return rebuildEvents(t, msgs, false)
}

func rebuildEvents(t *testing.T, msgs []busMsg, strict bool) rebuilt {
	t.Helper()
	st := rebuilt{}
	for _, m := range msgs {
		if m.Value == nil || strings.HasSuffix(m.Subject, "__schema") {
			continue // a tombstone; a schema event (CREATE, ALTER, DROP)
		}
		var ev struct {
			Op     string         `json:"op"`
			Before map[string]any `json:"before"`
			After  map[string]any `json:"after"`
		}
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatalf("message %s on %s is not a change event: %v: %s", m.ID, m.Subject, err, m.Value)
		}
		tbl := st[m.Subject]
		if tbl == nil {
			tbl = map[string]map[string]any{}
			st[m.Subject] = tbl
		}
		k := string(m.Key)
		switch ev.Op {
		case "r", "c", "u":
			prev := tbl[k]
			for c, v := range ev.After {
				if v == "__debezium_unavailable_value" {
					ev.After[c] = prev[c]
				}
			}
			tbl[k] = ev.After
		case "d":
			if _, ok := tbl[k]; !ok && strict {
				t.Errorf("delete of key %s on %s, which no earlier event created", k, m.Subject)
			}
			delete(tbl, k)
		default:
			t.Fatalf("message %s: unexpected op %q", m.ID, ev.Op)
		}
	}
	return st
}

// uniqueIDs fails the test if a consumer read one change twice.
func uniqueIDs(t *testing.T, msgs []busMsg) {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range msgs {
		if seen[m.ID] {
			t.Errorf("the consumer read change %s twice", m.ID)
		}
		seen[m.ID] = true
	}
}

// sourceRows reads a table of the source as JSON objects keyed as the
// events key them: the key columns as a JSON object, in key order.
func sourceRows(t *testing.T, srv *pgtest.Server, db, query string) map[string]map[string]any {
	t.Helper()
	c := srv.Connect(t, db)
	rows, err := c.Query(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	return keyedRows(t, rows)
}

// keyedRows reads the (key JSON, row JSON) rows of a query, from either
// driver, as a map of row objects by key.
func keyedRows(t *testing.T, rows interface {
	Next() bool
	Scan(...any) error
	Err() error
}) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for rows.Next() {
		var key, row string
		if err := rows.Scan(&key, &row); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(row), &m); err != nil {
			t.Fatal(err)
		}
		out[key] = m
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameState compares the rows rebuilt from events with the source's, on
// the columns the source query selected.
func sameState(t *testing.T, what string, got, want map[string]map[string]any) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d rows rebuilt from the events, %d at the source", what, len(got), len(want))
	}
	var bad []string
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			bad = append(bad, fmt.Sprintf("key %s missing", k))
			continue
		}
		for c, wv := range w {
			if !reflect.DeepEqual(g[c], wv) {
				bad = append(bad, fmt.Sprintf("key %s column %s: %v from events, %v at the source", k, c, g[c], wv))
			}
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			bad = append(bad, fmt.Sprintf("key %s rebuilt from events, absent at the source", k))
		}
	}
	sort.Strings(bad)
	if len(bad) > 10 {
		bad = append(bad[:10], fmt.Sprintf("... %d more", len(bad)-10))
	}
	for _, b := range bad {
		t.Errorf("%s: %s", what, b)
	}
}

// The source queries: key JSON as the events write it, and the columns
// compared, in the events' JSON forms (numeric as its text, text[] as an
// array of strings).
const (
	ordersQuery = `SELECT '{"id":' || id || '}', json_build_object('id', id, 'customer', customer, 'amount', amount::text, 'note', note, 'tags', tags)::text FROM orders`
	linesQuery  = `SELECT '{"order_id":' || order_id || ',"line":' || line || '}', json_build_object('order_id', order_id, 'line', line, 'sku', sku, 'qty', qty)::text FROM lines`
)

// startFerryHeld starts ferry held at an event destination's point
// between its events and their checkpoint.
func startFerryHeld(t *testing.T, args ...string) *background {
	t.Helper()
	os.Setenv(faultpoint.Env, faultpoint.EventsSent) //nolint:errcheck // tests run one at a time here
	defer os.Unsetenv(faultpoint.Env)                //nolint:errcheck
	return startFerry(t, args...)
}

// checkSources checks the Debezium source block of the change events (c,
// u, d): the source's connector and database, and the position fields
// the source gives (lsn and txId for PostgreSQL; file and pos for MySQL);
// snapshot says "true" on read events only.
func checkSources(t *testing.T, msgs []busMsg, connector, db string, fields map[string]bool) {
	t.Helper()
	bad := 0
	for _, m := range msgs {
		if m.Value == nil {
			continue
		}
		var ev struct {
			Op     string         `json:"op"`
			Source map[string]any `json:"source"`
		}
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatal(err)
		}
		s := ev.Source
		ok := s["connector"] == connector && s["db"] == db && (s["snapshot"] == "true") == (ev.Op == "r")
		if ev.Op != "r" {
			for f := range fields {
				if _, has := s[f]; !has {
					ok = false
				}
			}
		}
		if !ok && bad < 5 {
			t.Errorf("message %s (op %s): source block %v, want connector %s, db %s, fields %v", m.ID, ev.Op, s, connector, db, fields)
		}
		if !ok {
			bad++
		}
	}
}
