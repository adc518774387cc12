package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// Under --rename, the schema step builds each constraint on its table's
// destination table and a foreign key to where its referenced table went;
// a check that calls a function of the renamed schema and a foreign key to
// a table outside the flow cannot be mapped: they are not built, and the
// report lists them.
func TestCutoverSchemaStepMapsRenamesAndListsWhatItCannot(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "src"), srv.CreateDatabase(t, "dst")
	srv.Exec(t, src, `CREATE SCHEMA app;
		CREATE FUNCTION app.positive(n int) RETURNS boolean IMMUTABLE LANGUAGE sql AS 'SELECT n > 0';
		CREATE TABLE app.customers (id bigint PRIMARY KEY);
		CREATE TABLE app.parent (id bigint PRIMARY KEY, code text UNIQUE);
		CREATE TABLE app.child (id bigint PRIMARY KEY, parent_id bigint REFERENCES app.parent ON DELETE CASCADE,
			customer_id bigint CONSTRAINT child_customer_fkey REFERENCES app.customers,
			qty int CONSTRAINT child_qty_positive CHECK (app.positive(qty)), CONSTRAINT child_qty_small CHECK (qty < 1000));
		INSERT INTO app.customers VALUES (1);
		INSERT INTO app.parent SELECT g, 'c' || g FROM generate_series(1, 20) g;
		INSERT INTO app.child SELECT g, 1 + g % 20, 1, g FROM generate_series(1, 100) g;`)
	cfg := flow.Config{Source: srv.URL(src), Destination: srv.URL(dst), Mode: flow.ModeSnapshot, StateDir: t.TempDir(),
		Tables: []string{"app.parent", "app.child"}, Rename: []string{"app.*=shop.*"}}
	e, _, _, _ := openEngine(t, cfg)
	ctx := context.Background()
	if err := e.Run(ctx, ctx); err != nil {
		t.Fatal(err)
	}
	r := cutOver(t, e)
	var detail string
	for _, s := range r.Steps {
		if s.Name == engine.StepSchema {
			detail = s.Detail
		}
	}
	for _, want := range []string{"3 constraint(s) built, 0 already there", "2 not built",
		"app.child.child_customer_fkey refers to app.customers, which is not in the flow",
		"app.child.child_qty_positive names schema app"} {
		if !strings.Contains(detail, want) {
			t.Errorf("schema step detail %q lacks %q", detail, want)
		}
	}
	conn := srv.Connect(t, dst)
	var got string
	if err := conn.QueryRow(ctx, `SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), '; ' ORDER BY conname)
		FROM pg_constraint WHERE connamespace = 'shop'::regnamespace AND contype <> 'p'`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	want := "child_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES shop.parent(id) ON DELETE CASCADE; child_qty_small CHECK ((qty < 1000)); parent_code_key UNIQUE (code)"
	if got != want {
		t.Fatalf("destination constraints:\n%s\nwant:\n%s", got, want)
	}
	// The check's function came with its table, in its source schema, as
	// types do: the objects step finds it there and does not list it.
	for _, s := range r.Steps {
		if s.Name == engine.StepObjects && s.Detail != "0 function(s), 0 procedure(s), 0 view(s), 0 materialized view(s), 0 trigger(s) created, 1 already there" {
			t.Errorf("objects step detail %q, want app.positive(integer) already there", s.Detail)
		}
	}
}

// Under --rename, the objects step creates the functions and views that
// name no renamed table, and lists, with their definitions, those that do
// (a view over the renamed table, its trigger, a function whose body names
// it): ferry does not rewrite definitions.
func TestCutoverObjectsStepListsWhatRenamesTouch(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "src"), srv.CreateDatabase(t, "dst")
	srv.Exec(t, src, `CREATE SCHEMA app;
		CREATE TABLE app.orders (id bigint PRIMARY KEY, qty int);
		CREATE TABLE app.other (id bigint PRIMARY KEY);
		CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE app.orders SET qty = qty WHERE false; RETURN NEW; END $$;
		CREATE FUNCTION app.double(n int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT n * 2';
		CREATE TRIGGER orders_touch AFTER INSERT ON app.orders FOR EACH ROW EXECUTE FUNCTION app.touch();
		CREATE VIEW app.order_view AS SELECT id FROM app.orders;
		CREATE VIEW app.other_view AS SELECT app.double(id::int) AS d FROM app.other;
		INSERT INTO app.orders VALUES (1, 1); INSERT INTO app.other VALUES (1);`)
	cfg := flow.Config{Source: srv.URL(src), Destination: srv.URL(dst), Mode: flow.ModeSnapshot, StateDir: t.TempDir(),
		Tables: []string{"app.*"}, Rename: []string{"app.orders=app.sales"}}
	e, _, _, _ := openEngine(t, cfg)
	ctx := context.Background()
	if err := e.Run(ctx, ctx); err != nil {
		t.Fatal(err)
	}
	r := cutOver(t, e)
	var detail string
	for _, s := range r.Steps {
		if s.Name == engine.StepObjects {
			detail = s.Detail
		}
	}
	for _, want := range []string{"1 function(s), 0 procedure(s), 1 view(s), 0 materialized view(s), 0 trigger(s) created", "3 not as the source's",
		"function app.touch() (not created): it names table app.orders, renamed app.sales at the destination",
		"view app.order_view (not created): it uses table app.orders, renamed app.sales",
		"trigger orders_touch ON app.orders (not created): it uses table app.orders",
		"to fix: create it at the destination with the destination's names: CREATE VIEW app.order_view AS SELECT orders.id FROM app.orders"} {
		if !strings.Contains(detail, want) {
			t.Errorf("objects step detail %q lacks %q", detail, want)
		}
	}
	var got string
	if err := srv.Connect(t, dst).QueryRow(ctx, `SELECT (SELECT string_agg(relname, ', ' ORDER BY relname) FROM pg_class WHERE relnamespace = 'app'::regnamespace AND relkind = 'v')
		|| '; ' || (SELECT string_agg(proname, ', ' ORDER BY proname) FROM pg_proc WHERE pronamespace = 'app'::regnamespace)`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "other_view; double" {
		t.Fatalf("the destination has %q, want other_view; double", got)
	}
}
