package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/model"
)

// TestAlterTableResumesAfterEachStatement: MySQL commits each DDL statement
// on its own, so a flow can stop after any of a change's statements. Run
// again (the same change, the old definition), the change ends the same
// as when nothing stopped it: the dropped column gone, the renamed one with
// its values, the added one with the rows' value and no default left, the
// widened one widened.
func TestAlterTableResumesAfterEachStatement(t *testing.T) {
	srv := mysqltest.Shared(t)
	ctx := context.Background()
	from := &model.Table{PrimaryKey: []string{"id"}, Columns: []model.Column{
		{Name: "id", Type: model.Type{Kind: model.KindInt64}},
		{Name: "old", Type: model.Type{Kind: model.KindText}, Nullable: true},
		{Name: "v", Type: model.Type{Kind: model.KindText, Length: 20}, Nullable: true},
		{Name: "n", Type: model.Type{Kind: model.KindInt32}, Nullable: true},
	}}
	to := from.Clone()
	to.Columns = []model.Column{from.Columns[0],
		{Name: "label", Type: model.Type{Kind: model.KindText, Length: 20}, Nullable: true},
		{Name: "n", Type: model.Type{Kind: model.KindInt64}, Nullable: true},
		{Name: "price", Type: model.Type{Kind: model.KindDecimal, Precision: 8, Scale: 2}},
	}
	ch := model.SchemaChange{Table: to, Renamed: map[string]string{"label": "v"}, Filled: map[string]any{"price": "1.25"}}

	setup := func(t *testing.T) (*Conn, *sql.DB, string) {
		db := newDB(t, srv, "alter")
		c := openConn(t, srv.URL(db))
		f := from.Clone()
		f.Namespace = model.Namespace{Schema: db, Table: "items"}
		if err := c.CreateTables(ctx, []*model.Table{f}); err != nil {
			t.Fatal(err)
		}
		conn := srv.Connect(t, db)
		if _, err := conn.Exec("INSERT INTO items VALUES (1, 'x', 'one', 2147483647), (2, NULL, NULL, NULL)"); err != nil {
			t.Fatal(err)
		}
		return c, conn, db
	}
	names := func(db string) (model.Namespace, *model.Table, model.SchemaChange) {
		f := from.Clone()
		f.Namespace = model.Namespace{Schema: db, Table: "items"}
		c := ch
		c.Table = to.Clone()
		c.Table.Namespace = f.Namespace
		return f.Namespace, f, c
	}
	// The statements a whole run makes.
	c, _, db := setup(t)
	ns, f, c0 := names(db)
	existing, err := c.destColumns(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]destColumn{}
	var present []string
	for _, ec := range existing {
		present = append(present, ec.name)
		byName[strings.ToLower(ec.name)] = ec
	}
	plan, err := connector.PlanAlter(f, c0, present, strings.ToLower)
	if err != nil {
		t.Fatal(err)
	}
	stmts, err := c.alterStatements(ctx, ns, c0.Table, plan, byName)
	if err != nil {
		t.Fatal(err)
	}
	if len(stmts) < 3 {
		t.Fatalf("statements %q: want drops, renames, adds and retypes, defaults apart", stmts)
	}
	for done := 0; done <= len(stmts); done++ {
		t.Run(fmt.Sprintf("stopped after %d of %d", done, len(stmts)), func(t *testing.T) {
			c, conn, db := setup(t)
			ns, f, ch := names(db)
			for _, q := range stmts[:done] {
				if _, err := conn.Exec(strings.ReplaceAll(q, "`"+stmtsDB(stmts)+"`", "`"+db+"`")); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			if err := c.AlterTable(ctx, f, ch); err != nil {
				t.Fatalf("the change run again: %v", err)
			}
			rows, err := conn.Query("SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COALESCE(COLUMN_DEFAULT, 'none') FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'items' ORDER BY ORDINAL_POSITION", ns.Schema)
			if err != nil {
				t.Fatal(err)
			}
			var cols []string
			for rows.Next() {
				var n, typ, null, def string
				if err := rows.Scan(&n, &typ, &null, &def); err != nil {
					t.Fatal(err)
				}
				cols = append(cols, n+" "+typ+" "+null+" "+def)
			}
			rows.Close()
			want := "id bigint(20) NO none|label varchar(20) YES NULL|n bigint(20) YES NULL|price decimal(8,2) NO none"
			if got := strings.Join(cols, "|"); got != want {
				t.Fatalf("columns\n%s\nwant\n%s", got, want)
			}
			var got []string
			r, err := conn.Query("SELECT id, COALESCE(label, '-'), COALESCE(n, 0), price FROM items ORDER BY id")
			if err != nil {
				t.Fatal(err)
			}
			for r.Next() {
				var id, n int64
				var label, price string
				if err := r.Scan(&id, &label, &n, &price); err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%d %s %d %s", id, label, n, price))
			}
			r.Close()
			if strings.Join(got, "|") != "1 one 2147483647 1.25|2 - 0 1.25" {
				t.Fatalf("rows %q", got)
			}
		})
	}
}

// stmtsDB is the database the statements name (`db`.`items`).
func stmtsDB(stmts []string) string {
	s := strings.TrimPrefix(stmts[0], "ALTER TABLE `")
	return s[:strings.Index(s, "`")]
}

// TestAlterTableAddsTimestampWithoutOnUpdate: a MySQL TIMESTAMP column added
// NOT NULL with the rows' value ends as CREATE TABLE makes one (an explicit
// default, no ON UPDATE CURRENT_TIMESTAMP that would rewrite values ferry
// updates), and the rows hold the source's value.
func TestAlterTableAddsTimestampWithoutOnUpdate(t *testing.T) {
	srv := mysqltest.Shared(t)
	ctx := context.Background()
	db := newDB(t, srv, "alter")
	c := openConn(t, srv.URL(db))
	from := &model.Table{Namespace: model.Namespace{Schema: db, Table: "items"}, PrimaryKey: []string{"id"}, Columns: []model.Column{
		{Name: "id", Type: model.Type{Kind: model.KindInt64}},
	}}
	if err := c.CreateTables(ctx, []*model.Table{from}); err != nil {
		t.Fatal(err)
	}
	conn := srv.Connect(t, db)
	if _, err := conn.Exec("INSERT INTO items VALUES (1), (2)"); err != nil {
		t.Fatal(err)
	}
	to := from.Clone()
	to.Columns = append(to.Columns, model.Column{Name: "seen", Type: model.Type{Kind: model.KindTimestampTZ, Native: "timestamp"}})
	at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	for range 2 {
		if err := c.AlterTable(ctx, from, model.SchemaChange{Table: to, Filled: map[string]any{"seen": at}}); err != nil {
			t.Fatal(err)
		}
	}
	var typ, def, extra string
	if err := conn.QueryRow("SELECT COLUMN_TYPE, COALESCE(COLUMN_DEFAULT, 'none'), EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'items' AND COLUMN_NAME = 'seen'", db).Scan(&typ, &def, &extra); err != nil {
		t.Fatal(err)
	}
	if typ != "timestamp" || !strings.Contains(def, "1970-01-01 00:00:01") || extra != "" {
		t.Fatalf("column seen: %s default %s extra %q", typ, def, extra)
	}
	var n int
	if err := conn.QueryRow("SELECT count(*) FROM items WHERE seen = '2024-05-06 07:08:09'").Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d rows with the source's value (%v)", n, err)
	}
}

// TestAlterTableKeepsTheSourceDefault: an added column whose portable
// default the change carries ends with it, as CREATE TABLE would have made
// it (a TEXT column's as an expression), the rows there holding the value
// the source gave them.
func TestAlterTableKeepsTheSourceDefault(t *testing.T) {
	srv := mysqltest.Shared(t)
	ctx := context.Background()
	db := newDB(t, srv, "alter")
	c := openConn(t, srv.URL(db))
	from := &model.Table{Namespace: model.Namespace{Schema: db, Table: "items"}, PrimaryKey: []string{"id"}, Columns: []model.Column{
		{Name: "id", Type: model.Type{Kind: model.KindInt64}},
	}}
	if err := c.CreateTables(ctx, []*model.Table{from}); err != nil {
		t.Fatal(err)
	}
	conn := srv.Connect(t, db)
	if _, err := conn.Exec("INSERT INTO items VALUES (1), (2)"); err != nil {
		t.Fatal(err)
	}
	to := from.Clone()
	to.Columns = append(to.Columns,
		model.Column{Name: "qty", Type: model.Type{Kind: model.KindInt32}, Constant: &model.Constant{Value: "5"}},
		model.Column{Name: "note", Type: model.Type{Kind: model.KindText}, Nullable: true, Constant: &model.Constant{Value: "it's"}})
	for range 2 {
		if err := c.AlterTable(ctx, from, model.SchemaChange{Table: to, Filled: map[string]any{"qty": int64(5), "note": "it's"}}); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := conn.Query("SELECT COLUMN_NAME, COALESCE(COLUMN_DEFAULT, 'none') FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'items' AND COLUMN_NAME <> 'id' ORDER BY ORDINAL_POSITION", db)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var n, d string
		if err := rows.Scan(&n, &d); err != nil {
			t.Fatal(err)
		}
		got = append(got, n+"="+d)
	}
	rows.Close()
	// MariaDB shows the TEXT column's expression default escaped.
	if g := strings.Join(got, " "); g != "qty=5 note='it''s'" && g != `qty=5 note='it\'s'` {
		t.Fatalf("defaults %q", got)
	}
	var n int
	if err := conn.QueryRow("SELECT count(*) FROM items WHERE qty = 5 AND note = 'it''s'").Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d rows with the source's values (%v)", n, err)
	}
}

// TestAlterTableAddsAnotherEnginesType: a column of a type MySQL does not
// have (PostgreSQL's hstore, travelling as its text form) is added as
// CREATE TABLE would make it (longtext), with the rows' value as text.
func TestAlterTableAddsAnotherEnginesType(t *testing.T) {
	srv := mysqltest.Shared(t)
	ctx := context.Background()
	db := newDB(t, srv, "alter")
	c := openConn(t, srv.URL(db))
	from := &model.Table{Namespace: model.Namespace{Schema: db, Table: "items"}, PrimaryKey: []string{"id"}, Columns: []model.Column{
		{Name: "id", Type: model.Type{Kind: model.KindInt64}},
	}}
	if err := c.CreateTables(ctx, []*model.Table{from}); err != nil {
		t.Fatal(err)
	}
	conn := srv.Connect(t, db)
	if _, err := conn.Exec("INSERT INTO items VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	attrs := model.Column{Name: "attrs", Type: model.Type{Kind: model.KindText, Native: "hstore", TextForm: true}, Nullable: true}
	to := from.Clone()
	to.Columns = append(to.Columns, attrs)
	created := from.Clone()
	created.Namespace.Table = "made"
	created.Columns = to.Columns
	if err := c.CreateTables(ctx, []*model.Table{created}); err != nil {
		t.Fatal(err)
	}
	if err := c.AlterTable(ctx, from, model.SchemaChange{Table: to, Filled: map[string]any{"attrs": `"a"=>"1"`}}); err != nil {
		t.Fatal(err)
	}
	var added, made, v string
	q := "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = 'attrs'"
	if err := conn.QueryRow(q, db, "items").Scan(&added); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(q, db, "made").Scan(&made); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow("SELECT attrs FROM items").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if added != made || v != `"a"=>"1"` {
		t.Fatalf("added column %s (CREATE TABLE makes %s), value %s", added, made, v)
	}
}

// TestAlterTableRenamesAJSONColumn: a JSON column renamed is still JSON at
// the destination (MariaDB keeps JSON as longtext with a check named after
// the column), so ferry still reads and compares it as JSON.
func TestAlterTableRenamesAJSONColumn(t *testing.T) {
	srv := mysqltest.Shared(t)
	ctx := context.Background()
	db := newDB(t, srv, "alter")
	c := openConn(t, srv.URL(db))
	from := &model.Table{Namespace: model.Namespace{Schema: db, Table: "items"}, PrimaryKey: []string{"id"}, Columns: []model.Column{
		{Name: "id", Type: model.Type{Kind: model.KindInt64}},
		{Name: "doc", Type: model.Type{Kind: model.KindJSON}, Nullable: true},
	}}
	if err := c.CreateTables(ctx, []*model.Table{from}); err != nil {
		t.Fatal(err)
	}
	conn := srv.Connect(t, db)
	if _, err := conn.Exec(`INSERT INTO items VALUES (1, '{"a": 1}')`); err != nil {
		t.Fatal(err)
	}
	to := from.Clone()
	to.Columns[1].Name = "body"
	for range 2 {
		if err := c.AlterTable(ctx, from, model.SchemaChange{Table: to, Renamed: map[string]string{"body": "doc"}}); err != nil {
			t.Fatal(err)
		}
	}
	tables, err := openConn(t, srv.URL(db)).Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := tableNamed(t, tables, "items")
	if got.Columns[1].Name != "body" || got.Columns[1].Type.Kind != model.KindJSON {
		t.Fatalf("after the rename: column %s of kind %s, want body, json", got.Columns[1].Name, got.Columns[1].Type.Kind)
	}
	if _, err := conn.Exec(`INSERT INTO items VALUES (2, 'not json')`); err == nil {
		t.Fatal("the renamed column takes text that is not JSON")
	}
}
