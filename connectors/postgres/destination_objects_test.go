package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/internal/testsupport"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/model"
)

// shopTables are the tables the objects of shopObjects use, created at
// both ends; shopObjects are functions, a procedure, views (one over
// another, one with options and a check option), a materialized view with
// an index, triggers (one INSTEAD OF on a view) and comments; the functions of an extension in the
// schema are the extension's, not read.
const (
	shopTables = `CREATE SCHEMA shop;
		CREATE EXTENSION citext SCHEMA shop;
		CREATE TABLE shop.orders (id bigint PRIMARY KEY, qty integer NOT NULL, price numeric(10,2) NOT NULL, note shop.citext);
		CREATE TABLE shop.audit (id bigserial PRIMARY KEY, order_id bigint, op text);
		INSERT INTO shop.orders SELECT g, g % 5, g * 1.5 FROM generate_series(1, 40) g;`
	shopObjects = `
		CREATE FUNCTION shop.line_total(qty integer, price numeric) RETURNS numeric LANGUAGE sql IMMUTABLE
			AS $$ SELECT qty * price $$;
		CREATE FUNCTION shop.log_order() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN INSERT INTO shop.audit (order_id, op) VALUES (NEW.id, TG_OP); RETURN NEW; END $$;
		COMMENT ON FUNCTION shop.log_order() IS 'keeps the audit';
		CREATE PROCEDURE shop.clear_audit() LANGUAGE sql AS $$ DELETE FROM shop.audit $$;
		CREATE VIEW shop.big_orders WITH (security_barrier = true) AS
			SELECT id, qty, shop.line_total(qty, price) AS total FROM shop.orders WHERE qty > 2
			WITH LOCAL CHECK OPTION;
		COMMENT ON VIEW shop.big_orders IS 'orders worth a look';
		COMMENT ON COLUMN shop.big_orders.total IS 'qty times price';
		CREATE VIEW shop.big_totals AS SELECT qty, sum(total) AS total FROM shop.big_orders GROUP BY qty;
		CREATE MATERIALIZED VIEW shop.daily AS SELECT qty, count(*) AS n FROM shop.orders GROUP BY qty;
		CREATE UNIQUE INDEX daily_qty ON shop.daily (qty);
		COMMENT ON MATERIALIZED VIEW shop.daily IS 'refreshed nightly';
		CREATE FUNCTION shop.top_total() RETURNS numeric LANGUAGE sql AS $$ SELECT max(total) FROM shop.big_totals $$;
		CREATE TRIGGER orders_audit AFTER INSERT OR UPDATE ON shop.orders FOR EACH ROW EXECUTE FUNCTION shop.log_order();
		COMMENT ON TRIGGER orders_audit ON shop.orders IS 'audit every write';
		CREATE TRIGGER orders_audit_always AFTER DELETE ON shop.orders FOR EACH ROW EXECUTE FUNCTION shop.log_order();
		ALTER TABLE shop.orders ENABLE ALWAYS TRIGGER orders_audit_always;
		CREATE FUNCTION shop.add_big() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN INSERT INTO shop.orders (id, qty, price) VALUES (NEW.id, NEW.qty, 1); RETURN NEW; END $$;
		CREATE TRIGGER big_orders_insert INSTEAD OF INSERT ON shop.big_orders FOR EACH ROW EXECUTE FUNCTION shop.add_big();`
)

// TestObjectsAreCreatedAsTheSources: the functions, views, materialized
// view and triggers the source reads are created at the destination in an
// order that works (a SQL function over a view created after it, a view
// over a view), owned by the source's owners, pg_dump -s prints the same
// on both sides, the
// materialized view holds the destination's rows and a second build
// creates nothing.
func TestObjectsAreCreatedAsTheSources(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	// The role is the cluster's, so the destination has it too.
	owner := testsupport.UniqueName("analyst")
	p.srv.Exec(t, p.src, shopTables+shopObjects+`CREATE ROLE `+owner+`; ALTER MATERIALIZED VIEW shop.daily OWNER TO `+owner+`;
		ALTER FUNCTION shop.top_total() OWNER TO `+owner)
	p.srv.Exec(t, p.dst, shopTables)
	src, dst := open(t, p.srcURL()), open(t, p.dstURL())
	tables := []model.Namespace{{Schema: "shop", Table: "orders"}, {Schema: "shop", Table: "audit"}}
	objs, err := src.Objects(ctx, tables)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, o := range objs {
		ids = append(ids, o.String())
	}
	want := "trigger big_orders_insert ON shop.big_orders, trigger orders_audit ON shop.orders, trigger orders_audit_always ON shop.orders, " +
		"function shop.add_big(), view shop.big_orders, view shop.big_totals, procedure shop.clear_audit(), materialized view shop.daily, " +
		"function shop.line_total(integer,numeric), function shop.log_order(), function shop.top_total()"
	if got := strings.Join(ids, ", "); got != want {
		t.Fatalf("the source's objects:\n%s\nwant\n%s", got, want)
	}
	done, err := dst.BuildObjects(ctx, objs)
	if err != nil {
		t.Fatal(err)
	}
	if len(done.Issues) != 0 || done.Present != 0 || done.Created[model.ObjectFunction] != 4 || done.Created[model.ObjectProcedure] != 1 ||
		done.Created[model.ObjectView] != 2 || done.Created[model.ObjectMaterializedView] != 1 || done.Created[model.ObjectTrigger] != 3 {
		t.Fatalf("BuildObjects: %+v", done)
	}
	if want, got := p.srv.SchemaDump(t, p.src, "shop"), p.srv.SchemaDump(t, p.dst, "shop"); got != want {
		t.Fatalf("the destination's schema differs from the source's:\n--- source\n%s\n--- destination\n%s", want, got)
	}
	dconn := p.srv.Connect(t, p.dst)
	var owners string
	if err := dconn.QueryRow(ctx, `SELECT pg_get_userbyid(c.relowner) || ' ' || pg_get_userbyid(p.proowner)
		FROM pg_class c, pg_proc p WHERE c.oid = 'shop.daily'::regclass AND p.oid = 'shop.top_total()'::regprocedure`).Scan(&owners); err != nil || owners != owner+" "+owner {
		t.Fatalf("the destination's materialized view and function are owned by %q (%v), want %s as at the source", owners, err, owner)
	}
	var n int
	if err := dconn.QueryRow(ctx, `SELECT sum(n) FROM shop.daily`).Scan(&n); err != nil || n != 40 {
		t.Fatalf("the materialized view at the destination counts %d rows (%v), want 40", n, err)
	}
	var top string
	if err := dconn.QueryRow(ctx, `SELECT shop.top_total()::text`).Scan(&top); err != nil || top == "" {
		t.Fatalf("shop.top_total() at the destination: %q, %v", top, err)
	}
	again, err := dst.BuildObjects(ctx, objs)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Created) != 0 || again.Present != len(objs) {
		t.Fatalf("a second BuildObjects: %+v, want all %d there", again, len(objs))
	}
}

// TestObjectsNeedingWhatTheDestinationLacks: an owner role the destination
// lacks, a SECURITY DEFINER function's owner, a language it lacks and a
// table it lacks are each listed with the statement to run, as is an
// aggregate (not read); the SECURITY DEFINER function, the function in the
// missing language and the view over the missing table (and the view over
// that view) are not created,
// the rest is, owned by ferry's role.
func TestObjectsNeedingWhatTheDestinationLacks(t *testing.T) {
	srcSrv := pgtest.Shared(t)
	dstSrv := pgtest.Start(t)
	src, dst := srcSrv.CreateDatabase(t, "objsrc"), dstSrv.CreateDatabase(t, "objdst")
	role := testsupport.UniqueName("reporter")
	srcSrv.Exec(t, src, `CREATE ROLE `+role+`;
		CREATE FUNCTION public.fake_handler() RETURNS language_handler AS 'plpgsql', 'plpgsql_call_handler' LANGUAGE c;
		CREATE LANGUAGE fakelang HANDLER public.fake_handler;
		CREATE SCHEMA shop;
		CREATE TABLE shop.orders (id bigint PRIMARY KEY, qty integer);
		CREATE TABLE shop.extra (id bigint PRIMARY KEY);
		CREATE VIEW shop.report AS SELECT id, qty FROM shop.orders;
		ALTER VIEW shop.report OWNER TO `+role+`;
		CREATE FUNCTION shop.wipe() RETURNS void LANGUAGE sql SECURITY DEFINER AS $$ DELETE FROM shop.orders $$;
		ALTER FUNCTION shop.wipe() OWNER TO `+role+`;
		CREATE FUNCTION shop.odd() RETURNS int LANGUAGE fakelang AS $$ whatever $$;
		CREATE VIEW shop.extras AS SELECT id FROM shop.extra;
		CREATE VIEW shop.extras_too AS SELECT id FROM shop.extras;
		CREATE AGGREGATE shop.total_qty(integer) (SFUNC = int4pl, STYPE = integer);`)
	dstSrv.Exec(t, dst, `CREATE SCHEMA shop; CREATE TABLE shop.orders (id bigint PRIMARY KEY, qty integer);`)
	ctx := context.Background()
	objs, err := open(t, srcSrv.URL(src)).Objects(ctx, []model.Namespace{{Schema: "shop", Table: "orders"}, {Schema: "shop", Table: "extra"}})
	if err != nil {
		t.Fatal(err)
	}
	done, err := open(t, dstSrv.URL(dst)).BuildObjects(ctx, objs)
	if err != nil {
		t.Fatal(err)
	}
	issues := map[string]connector.ObjectIssue{}
	for _, is := range done.Issues {
		issues[is.Object] = is
	}
	for obj, want := range map[string]struct {
		created bool
		fix     string
	}{
		"view shop.report":     {true, "CREATE ROLE " + role + "; ALTER VIEW shop.report OWNER TO " + role},
		"function shop.wipe()": {false, "CREATE ROLE " + role + "; GRANT " + role + " TO postgres at the destination, then run ferry cutover again"},
		"function shop.odd()":  {false, "install language fakelang on the destination server (its package), then CREATE EXTENSION fakelang and run ferry cutover again"},
		"view shop.extras":     {false, "add shop.extra to the flow (--tables) or create it at the destination, then run ferry cutover again"},
		"view shop.extras_too": {false, "fix what keeps that one from being created, then run ferry cutover again"},
	} {
		is, ok := issues[obj]
		if !ok || is.Created != want.created || is.Fix != want.fix {
			t.Errorf("%s: listed %v as %+v, want created=%v, fix %q", obj, ok, is, want.created, want.fix)
		}
	}
	if len(done.Issues) != 6 || done.Created[model.ObjectView] != 1 || len(done.Created) != 1 {
		t.Fatalf("BuildObjects: %+v", done)
	}
	var have string
	if err := dstSrv.Connect(t, dst).QueryRow(ctx, `SELECT string_agg(x, ', ' ORDER BY x) FROM (
		SELECT c.oid::regclass::text || ' ' || pg_get_userbyid(c.relowner) AS x FROM pg_class c WHERE c.relnamespace = 'shop'::regnamespace AND c.relkind = 'v'
		UNION ALL SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = 'shop'::regnamespace) s`).Scan(&have); err != nil {
		t.Fatal(err)
	}
	if have != "shop.report postgres" {
		t.Fatalf("the destination has %q, want only shop.report, owned by postgres", have)
	}
}

// TestObjectsFailingToBeCreatedLeaveNothing: a view whose creation fails
// (the destination holds a table of its name) fails the build with the
// object and the statement, and none of the objects is left, not even
// the function created before it.
func TestObjectsFailingToBeCreatedLeaveNothing(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	p.srv.Exec(t, p.src, shopTables+shopObjects)
	p.srv.Exec(t, p.dst, shopTables+`CREATE TABLE shop.big_totals (qty integer);`)
	objs, err := open(t, p.srcURL()).Objects(ctx, []model.Namespace{{Schema: "shop", Table: "orders"}, {Schema: "shop", Table: "audit"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = open(t, p.dstURL()).BuildObjects(ctx, objs)
	if err == nil || !strings.Contains(err.Error(), `create view shop.big_totals: ERROR: relation "big_totals" already exists`) ||
		!strings.Contains(err.Error(), "nothing of this step was created") {
		t.Fatalf("BuildObjects over a table named as a view: %v", err)
	}
	var n int
	if err := p.srv.Connect(t, p.dst).QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_proc p WHERE pronamespace = 'shop'::regnamespace
			AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.objid = p.oid AND e.deptype = 'e'))
		+ (SELECT count(*) FROM pg_class WHERE relnamespace = 'shop'::regnamespace AND relkind IN ('v', 'm'))
		+ (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'shop.orders'::regclass)`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d functions, views and triggers left at the destination (%v), want none", n, err)
	}
}
