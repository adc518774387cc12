package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/model"
)

// alterFixture is table public.items (id bigint key, v text, n integer)
// holding three rows, created by the destination itself.
func alterFixture(t *testing.T) (srv *pgtest.Server, db string, tbl *model.Table) {
	t.Helper()
	srv = pgtest.Shared(t)
	db = srv.CreateDatabase(t, "alter")
	tbl = &model.Table{Namespace: model.Namespace{Schema: "public", Table: "items"}, PrimaryKey: []string{"id"}, Columns: []model.Column{
		{Name: "id", Type: model.Type{Kind: model.KindInt64}},
		{Name: "v", Type: model.Type{Kind: model.KindText}, Nullable: true},
		{Name: "n", Type: model.Type{Kind: model.KindInt32}, Nullable: true},
	}}
	d := open(t, srv.URL(db))
	if err := d.CreateTables(context.Background(), []*model.Table{tbl}); err != nil {
		t.Fatal(err)
	}
	srv.Exec(t, db, "INSERT INTO items VALUES (1, 'a', 1), (2, NULL, 2), (3, 'c', NULL)")
	return srv, db, tbl
}

func withCols(tbl *model.Table, cols ...model.Column) *model.Table {
	out := tbl.Clone()
	out.Columns = cols
	return out
}

// TestAlterTableFastDefault: a column added with the existing rows' value
// is added without rewriting the table (PostgreSQL keeps the value as the
// column's missing value), and keeps no default afterwards: the
// destination's tables get their defaults at cutover.
func TestAlterTableFastDefault(t *testing.T) {
	srv, db, tbl := alterFixture(t)
	conn := srv.Connect(t, db)
	before := count(t, conn, "SELECT relfilenode::bigint FROM pg_class WHERE oid = 'items'::regclass")
	at := time.Date(2025, 6, 1, 12, 0, 0, 500000000, time.UTC)
	to := withCols(tbl, append(tbl.Clone().Columns,
		model.Column{Name: "created", Type: model.Type{Kind: model.KindTimestampTZ, Native: "timestamp with time zone"}},
		model.Column{Name: "tags", Type: model.Type{Kind: model.KindArray, Elem: &model.Type{Kind: model.KindText}, Native: "text[]"}, Nullable: true})...)
	d := open(t, srv.URL(db))
	ch := model.SchemaChange{Table: to, Filled: map[string]any{"created": at, "tags": []any{"x", `a "b"`, nil}}}
	if err := d.AlterTable(context.Background(), tbl, ch); err != nil {
		t.Fatal(err)
	}
	if after := count(t, conn, "SELECT relfilenode::bigint FROM pg_class WHERE oid = 'items'::regclass"); after != before {
		t.Errorf("the table was rewritten (relfilenode %d, then %d)", before, after)
	}
	if n := count(t, conn, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname IN ('created', 'tags') AND atthasdef"); n != 0 {
		t.Errorf("%d added columns keep a default", n)
	}
	if n := count(t, conn, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'created' AND attnotnull"); n != 1 {
		t.Errorf("created is not NOT NULL")
	}
	got := textRows(t, conn, "items", "id")
	for _, r := range got {
		if show(r[3]) != `"2025-06-01 12:00:00.5+00"` || show(r[4]) != `"{x,\"a \\\"b\\\"\",NULL}"` {
			t.Fatalf("row %s: created %s, tags %s", show(r[0]), show(r[3]), show(r[4]))
		}
	}
}

// TestAlterTableOneTransaction: a change that fails at the server midway
// (NULLs where the source now says NOT NULL) leaves nothing of it applied:
// the drop before it is rolled back with it.
func TestAlterTableOneTransaction(t *testing.T) {
	srv, db, tbl := alterFixture(t)
	id, v, n := tbl.Columns[0], tbl.Columns[1], tbl.Columns[2]
	vNotNull := v
	vNotNull.Nullable = false
	to := withCols(tbl, id, vNotNull)
	err := open(t, srv.URL(db)).AlterTable(context.Background(), tbl, model.SchemaChange{Table: to})
	if err == nil || !strings.Contains(err.Error(), "items") {
		t.Fatalf("SET NOT NULL over a NULL: %v", err)
	}
	if got := columnNames(t, srv.Connect(t, db), "items"); strings.Join(got, ",") != "id,v,n" {
		t.Fatalf("after a failed change: columns %v, want id, v, n (the drop of %s rolled back)", got, n.Name)
	}
}

// TestAlterTableAfterAHandChange: a narrowing stops the flow; once the user
// changed the destination column as the message says, the same change
// (the flow run again) goes through.
func TestAlterTableAfterAHandChange(t *testing.T) {
	srv, db, tbl := alterFixture(t)
	n16 := tbl.Columns[2]
	n16.Type = model.Type{Kind: model.KindInt16, Native: "smallint"}
	to := withCols(tbl, tbl.Columns[0], tbl.Columns[1], n16)
	d := open(t, srv.URL(db))
	err := d.AlterTable(context.Background(), tbl, model.SchemaChange{Table: to})
	if err == nil || !strings.Contains(err.Error(), "column n") || !strings.Contains(err.Error(), "(to smallint)") {
		t.Fatalf("a narrowing: %v", err)
	}
	srv.Exec(t, db, "ALTER TABLE items ALTER COLUMN n TYPE smallint")
	if err := d.AlterTable(context.Background(), tbl, model.SchemaChange{Table: to}); err != nil {
		t.Fatalf("the same change after the column was changed by hand: %v", err)
	}
}

// TestAlterTableWidensNumericAndVarchar: numeric precision up and varchar
// longer keep the values, and the columns then hold what the source can.
func TestAlterTableWidensNumericAndVarchar(t *testing.T) {
	srv := pgtest.Shared(t)
	db := srv.CreateDatabase(t, "alter")
	srv.Exec(t, db, `CREATE TABLE items (id bigint PRIMARY KEY, amount numeric(6,2), name varchar(3) COLLATE "C")`)
	srv.Exec(t, db, "INSERT INTO items VALUES (1, 9999.99, 'abc')")
	tbl := &model.Table{Namespace: model.Namespace{Schema: "public", Table: "items"}, PrimaryKey: []string{"id"}, Columns: []model.Column{
		{Name: "id", Type: model.Type{Kind: model.KindInt64, Native: "bigint"}},
		{Name: "amount", Type: model.Type{Kind: model.KindDecimal, Precision: 6, Scale: 2, Native: "numeric(6,2)"}, Nullable: true},
		{Name: "name", Type: model.Type{Kind: model.KindText, Length: 3, Native: "character varying(3)"}, Nullable: true, Collation: `pg_catalog."C"`},
	}}
	to := withCols(tbl, tbl.Columns[0],
		model.Column{Name: "amount", Type: model.Type{Kind: model.KindDecimal, Precision: 12, Scale: 4, Native: "numeric(12,4)"}, Nullable: true},
		model.Column{Name: "name", Type: model.Type{Kind: model.KindText, Native: "text"}, Nullable: true, Collation: `pg_catalog."C"`})
	d := open(t, srv.URL(db))
	for range 2 {
		if err := d.AlterTable(context.Background(), tbl, model.SchemaChange{Table: to}); err != nil {
			t.Fatal(err)
		}
	}
	srv.Exec(t, db, "INSERT INTO items VALUES (2, 12345678.1234, 'longer than three')")
	got := textRows(t, srv.Connect(t, db), "items", "id")
	if show(got[0][1]) != `"9999.9900"` || show(got[0][2]) != `"abc"` || show(got[1][1]) != `"12345678.1234"` {
		t.Fatalf("rows after widening: %v %v", got[0], got[1])
	}
	// The widened column keeps its collation.
	if n := count(t, srv.Connect(t, db), `SELECT count(*) FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation
		WHERE a.attrelid = 'items'::regclass AND a.attname = 'name' AND c.collname = 'C' AND a.atttypid = 'text'::regtype`); n != 1 {
		t.Fatalf("column name is not text COLLATE \"C\" after widening")
	}
}

// TestAlterTableKeepsTheSourceDefault: an added column whose source default
// the change carries ends with it, as CREATE TABLE would have made it, while
// the rows there hold the value the source gave them.
func TestAlterTableKeepsTheSourceDefault(t *testing.T) {
	srv, db, tbl := alterFixture(t)
	to := withCols(tbl, append(tbl.Clone().Columns,
		model.Column{Name: "qty", Type: model.Type{Kind: model.KindInt32, Native: "integer"}, Default: "5"},
		model.Column{Name: "note", Type: model.Type{Kind: model.KindText, Native: "text"}, Nullable: true, Default: "'none'::text"})...)
	d := open(t, srv.URL(db))
	for range 2 {
		if err := d.AlterTable(context.Background(), tbl, model.SchemaChange{Table: to, Filled: map[string]any{"qty": int64(5), "note": "none"}}); err != nil {
			t.Fatal(err)
		}
	}
	conn := srv.Connect(t, db)
	var defs string
	if err := conn.QueryRow(context.Background(), `SELECT string_agg(a.attname || '=' || pg_get_expr(d.adbin, d.adrelid), ' ' ORDER BY a.attnum)
		FROM pg_attribute a JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attrelid = 'items'::regclass`).Scan(&defs); err != nil {
		t.Fatal(err)
	}
	if defs != "qty=5 note='none'::text" {
		t.Fatalf("defaults %q", defs)
	}
	if n := count(t, conn, "SELECT count(*) FROM items WHERE qty = 5 AND note = 'none'"); n != 3 {
		t.Fatalf("%d rows with the source's values, want 3", n)
	}
}
