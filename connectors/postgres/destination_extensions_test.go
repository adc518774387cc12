package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// extensionSchema is a source whose columns use extensions installed in
// their own schema (a type, an array of it, a default calling an
// extension's function), with comments on the table, its columns, a domain
// and a sequence.
const extensionSchema = `CREATE SCHEMA ext; CREATE EXTENSION citext WITH SCHEMA ext; CREATE EXTENSION "uuid-ossp" WITH SCHEMA ext;
	CREATE SCHEMA shop;
	CREATE DOMAIN shop.handle AS ext.citext CHECK (VALUE <> '');
	CREATE SEQUENCE shop.people_no;
	COMMENT ON DOMAIN shop.handle IS 'a login name';
	COMMENT ON SEQUENCE shop.people_no IS 'numbers people';
	CREATE TABLE shop.people (id int PRIMARY KEY, login shop.handle, no bigint DEFAULT nextval('shop.people_no'), email ext.citext NOT NULL, aliases ext.citext[],
		token uuid DEFAULT ext.uuid_generate_v4(), note text);
	COMMENT ON TABLE shop.people IS 'who buys: it''s the \ list';
	COMMENT ON COLUMN shop.people.email IS 'compared without case';
	COMMENT ON COLUMN shop.people.token IS 'made by uuid-ossp'`

// extensionTables is a pair whose source holds extensionSchema, and the
// source's tables.
func extensionTables(t *testing.T) (*pair, []*model.Table) {
	p := newPair(t)
	p.srv.Exec(t, p.src, extensionSchema)
	tables, err := open(t, p.srcURL()).Tables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p, tables
}

// TestCreateTablesCreatesExtensionsAndComments: a destination without the
// extensions the source's columns use gets them, in the source's schema,
// and the table the source has: same types, defaults and comments.
func TestCreateTablesCreatesExtensionsAndComments(t *testing.T) {
	ctx := context.Background()
	p, tables := extensionTables(t)
	dst := open(t, p.dstURL())
	conv, err := dst.CheckTables(ctx, tables)
	if err != nil || len(conv) != 0 {
		t.Fatalf("CheckTables = %v, %v; want nothing to list: the extensions are available", conv, err)
	}
	if err := dst.CreateTables(ctx, tables); err != nil {
		t.Fatal(err)
	}
	want, got := p.srv.SchemaDump(t, p.src, "shop"), p.srv.SchemaDump(t, p.dst, "shop")
	if got != want {
		t.Fatalf("the destination's schema differs from the source's:\n--- source\n%s\n--- destination\n%s", want, got)
	}
	if !strings.Contains(got, "COMMENT ON COLUMN shop.people.email IS 'compared without case'") || !strings.Contains(got, "ext.citext") {
		t.Fatalf("the dump lacks the comment or the citext column:\n%s", got)
	}
	db := p.srv.Connect(t, p.dst)
	var exts string
	if err := db.QueryRow(ctx, `SELECT string_agg(x.extname || ' in ' || n.nspname, ', ' ORDER BY x.extname)
		FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace WHERE x.extname <> 'plpgsql'`).Scan(&exts); err != nil {
		t.Fatal(err)
	}
	if exts != "citext in ext, uuid-ossp in ext" {
		t.Fatalf("destination extensions: %s", exts)
	}
	// The type behaves as the source's: a case-insensitive match, and the
	// default fills the token.
	mustExec(t, db, `INSERT INTO shop.people (id, email) VALUES (1, 'Ann@Example.org')`)
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM shop.people WHERE email OPERATOR(ext.=) 'ANN@EXAMPLE.ORG'::ext.citext AND token IS NOT NULL`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("case-insensitive match with a token: %d rows, %v", n, err)
	}
}

// TestExtensionUnavailableRefused: an extension the destination's server
// does not have is refused before anything is written, with the statement
// to run once its package is installed.
func TestExtensionUnavailableRefused(t *testing.T) {
	ctx := context.Background()
	p, tables := extensionTables(t)
	// Both databases share one server, which has every contrib extension:
	// the source's extension gets a name no server ships.
	found := false
	for _, tb := range tables {
		for i := range tb.Extensions {
			if tb.Extensions[i].Name == "citext" {
				tb.Extensions[i].Name, found = "ferry_absent_citext", true
			}
		}
	}
	if !found {
		t.Fatal("the source does not list extension citext for shop.people")
	}
	dst := open(t, p.dstURL())
	for what, run := range map[string]func() error{
		"CheckTables":  func() error { _, err := dst.CheckTables(ctx, tables); return err },
		"CreateTables": func() error { return dst.CreateTables(ctx, tables) },
	} {
		err := run()
		var ce *errs.ConfigError
		if !errors.As(err, &ce) {
			t.Fatalf("%s: %v, want a configuration error", what, err)
		}
		if !strings.Contains(ce.Msg, "shop.people") || !strings.Contains(ce.Msg, "ferry_absent_citext (columns aliases, email, login)") ||
			!strings.Contains(ce.Fix, "CREATE EXTENSION IF NOT EXISTS ferry_absent_citext WITH SCHEMA ext") {
			t.Fatalf("%s: %v, want the table, the extension with its columns and the CREATE EXTENSION to run", what, err)
		}
	}
	var n int
	if err := p.srv.Connect(t, p.dst).QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname IN ('shop', 'ext')`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the destination holds %d of the schemas (%v), want nothing written", n, err)
	}
}

// TestDomainOverExtensionType: a column whose domain is over an extension's
// type gets the extension, then the domain, at the destination.
func TestDomainOverExtensionType(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	p.srv.Exec(t, p.src, `CREATE EXTENSION hstore; CREATE SCHEMA shop; CREATE DOMAIN shop.attrs AS hstore;
		CREATE TABLE shop.items (id int PRIMARY KEY, a shop.attrs, b shop.attrs[])`)
	tables, err := open(t, p.srcURL()).Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := open(t, p.dstURL()).CreateTables(ctx, tables); err != nil {
		t.Fatal(err)
	}
	if want, got := p.srv.SchemaDump(t, p.src, "shop"), p.srv.SchemaDump(t, p.dst, "shop"); got != want {
		t.Fatalf("the destination's schema differs from the source's:\n--- source\n%s\n--- destination\n%s", want, got)
	}
}
