package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connectors/postgres"
	"github.com/ferrydb/ferry/model"
)

// streamFlow plans a CDC flow of every table of c's database and returns
// its tables and T0.
func streamFlow(t *testing.T, c *postgres.Conn, flowName string) ([]*model.Table, model.Position) {
	t.Helper()
	ctx := context.Background()
	tables, err := c.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := c.Plan(ctx, tables, connector.PlanOptions{CDC: true, Flow: flowName})
	if err != nil {
		t.Fatal(err)
	}
	return tables, plan.T0
}

// streamUntil streams the flow's changes from from and returns the batches
// emitted until done says enough (or the stream's error, if it stops first).
func streamUntil(t *testing.T, c *postgres.Conn, flowName string, tables []*model.Table, from model.Position, done func([]*model.ChangeBatch) bool) ([]*model.ChangeBatch, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []*model.ChangeBatch
	err := c.StreamChanges(ctx, tables, from, connector.StreamOptions{Flow: flowName}, func(_ context.Context, b *model.ChangeBatch) error {
		if len(b.Changes) > 0 || len(b.Schemas) > 0 {
			got = append(got, b)
		}
		if done(got) {
			cancel()
		}
		return nil
	})
	if ctx.Err() != nil {
		if context.Cause(ctx) == context.DeadlineExceeded {
			t.Fatalf("stream did not emit what was expected within 30s; got %d batches", len(got))
		}
		return got, nil
	}
	return got, err
}

// changesOf flattens the batches' changes.
func changesOf(bs []*model.ChangeBatch) []model.Change {
	var out []model.Change
	for _, b := range bs {
		out = append(out, b.Changes...)
	}
	return out
}

// schemasOf flattens the batches' schema changes.
func schemasOf(bs []*model.ChangeBatch) []model.SchemaChange {
	var out []model.SchemaChange
	for _, b := range bs {
		out = append(out, b.Schemas...)
	}
	return out
}

// TestTruncateComesOutInOrder: a TRUNCATE is a change in stream order among
// its transaction's others, one per flow table it names (CASCADE included).
func TestTruncateComesOutInOrder(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1), (2);
		CREATE TABLE parts (id int PRIMARY KEY, item int REFERENCES items)`)
	c := open(t, p.srcURL())
	tables, t0 := streamFlow(t, c, "trunc")
	mustExec(t, src, `BEGIN; INSERT INTO items VALUES (3); TRUNCATE items CASCADE; INSERT INTO items VALUES (4); COMMIT`)
	got, err := streamUntil(t, c, "trunc", tables, t0, func(bs []*model.ChangeBatch) bool { return len(changesOf(bs)) >= 4 })
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, ch := range changesOf(got) {
		seen = append(seen, ch.Op.String()+" "+ch.Table.Table)
	}
	want := []string{"insert items", "truncate items", "truncate parts", "insert items"}
	if len(seen) != len(want) {
		t.Fatalf("changes %v, want %v", seen, want)
	}
	// TRUNCATE ... CASCADE names the tables in the server's order.
	middle := seen[1] + ", " + seen[2]
	if seen[0] != want[0] || seen[3] != want[3] || middle != "truncate items, truncate parts" && middle != "truncate parts, truncate items" {
		t.Fatalf("changes %v, want %v", seen, want)
	}
}
