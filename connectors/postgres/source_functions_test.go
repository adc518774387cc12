package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/model"
)

// The source reads, with a table, the functions its definition calls:
// through a default, a generated column, a domain's CHECK, a CHECK
// constraint, an index expression, and what a BEGIN ATOMIC body calls in
// turn (a Need); a function over the table's row type is not among them,
// nor one the table does not call.
func TestFunctionsATableCallsAreReadWithIt(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `CREATE SCHEMA app;
		CREATE FUNCTION app.new_code() RETURNS text LANGUAGE sql VOLATILE AS $$ SELECT 'C-' || substr(md5(random()::text), 1, 8) $$;
		CREATE FUNCTION app.norm(e text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT lower(trim(e)) $$;
		CREATE FUNCTION app.domain_of(e text) RETURNS text LANGUAGE sql IMMUTABLE BEGIN ATOMIC SELECT app.norm(split_part(e, '@', 2)); END;
		CREATE FUNCTION app.is_email(e text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RETURN position('@' in e) > 1; END $$;
		CREATE FUNCTION app.valid_sku(s text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RETURN s ~ '^[A-Z]{3}-[0-9]+$'; END $$;
		CREATE FUNCTION app.unused() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;
		CREATE DOMAIN app.sku AS text CONSTRAINT sku_ok CHECK (app.valid_sku(VALUE));
		CREATE TABLE app.users (
			id bigint PRIMARY KEY,
			code text NOT NULL DEFAULT app.new_code(),
			email text NOT NULL CONSTRAINT users_email_ok CHECK (app.is_email(email)),
			email_norm text GENERATED ALWAYS AS (lower(email)) STORED,
			skus app.sku[]);
		CREATE INDEX users_domain ON app.users (app.domain_of(email));
		CREATE FUNCTION app.label(u app.users) RETURNS text LANGUAGE sql STABLE AS $$ SELECT u.code $$;`)
	tables, err := open(t, p.srcURL()).Tables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) != 1 {
		t.Fatalf("%d tables", len(tables))
	}
	var got []string
	for _, f := range tables[0].Functions {
		s := f.ID
		if len(f.Needs) > 0 {
			s += " needs " + strings.Join(f.Needs, ", ")
		}
		if !strings.HasPrefix(f.Create, "CREATE OR REPLACE FUNCTION "+strings.SplitN(f.ID, "(", 2)[0]+"(") {
			t.Fatalf("%s is created by %q", f.ID, f.Create)
		}
		got = append(got, s)
	}
	want := "app.domain_of(text) needs app.norm(text); app.is_email(text); app.new_code(); app.norm(text); app.valid_sku(text)"
	if strings.Join(got, "; ") != want {
		t.Fatalf("the functions app.users calls:\n%s\nwant\n%s", strings.Join(got, "; "), want)
	}
	// The cutover's objects step reads the same dependencies: the
	// function over the table's row type waits for the table.
	objs, err := open(t, p.srcURL()).Objects(context.Background(), []model.Namespace{tables[0].Namespace})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.ID == "app.label(app.users)" && (len(o.Tables) != 1 || o.Tables[0] != tables[0].Namespace) {
			t.Fatalf("the objects step reads %s as using tables %v, want app.users", o.ID, o.Tables)
		}
		if o.ID == "app.domain_of(text)" && strings.Join(o.Needs, ",") != "app.norm(text)" {
			t.Fatalf("the objects step reads %s as needing %v, want app.norm(text)", o.ID, o.Needs)
		}
	}
}
