package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/model"
)

// TestForeignNativeTypesGoByKind: a destination column keeps the source's
// Native only when it is PostgreSQL's own spelling. MySQL's char(10), which
// PostgreSQL also parses, strips trailing spaces where PostgreSQL's
// character(10) pads them: it must become varchar(10), so "abc" stays "abc".
func TestForeignNativeTypesGoByKind(t *testing.T) {
	srv := pgtest.Shared(t)
	db := srv.CreateDatabase(t, "natives")
	c := open(t, srv.URL(db))
	ctx := context.Background()
	text10 := func(native string) model.Type { return model.Type{Kind: model.KindText, Length: 10, Native: native} }
	tbl := &model.Table{
		Namespace: model.Namespace{Schema: "shop", Table: "natives"},
		Columns: []model.Column{
			{Name: "id", Type: model.Type{Kind: model.KindInt32, Native: "int"}},
			{Name: "mysql_char", Type: text10("char(10)"), Nullable: true},
			{Name: "pg_char", Type: text10("character(10)"), Nullable: true},
			{Name: "mysql_time", Type: model.Type{Kind: model.KindTime, Native: "time(6)"}, Nullable: true},
			{Name: "pg_time", Type: model.Type{Kind: model.KindTime, Native: "time(3) without time zone"}, Nullable: true},
			{Name: "pg_numeric", Type: model.Type{Kind: model.KindArray, Elem: &model.Type{Kind: model.KindDecimal, Precision: 12, Scale: 2, Native: "numeric(12,2)"}, Native: "numeric(12,2)[]"}, Nullable: true},
			{Name: "pg_interval", Type: model.Type{Kind: model.KindInterval, Native: "interval day to second(3)"}, Nullable: true},
		},
		PrimaryKey: []string{"id"},
	}
	if err := c.CreateTables(ctx, []*model.Table{tbl}); err != nil {
		t.Fatal(err)
	}
	conn := srv.Connect(t, db)
	want := map[string]string{
		"id":          "integer",
		"mysql_char":  "character varying(10)",
		"pg_char":     "character(10)",
		"mysql_time":  "time without time zone",
		"pg_time":     "time(3) without time zone",
		"pg_numeric":  "numeric(12,2)[]",
		"pg_interval": "interval day to second(3)",
	}
	for col, typ := range want {
		var got string
		if err := conn.QueryRow(ctx, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'shop.natives'::regclass AND attname = $1`, col).Scan(&got); err != nil || got != typ {
			t.Errorf("column %s: %q (%v), want %q", col, got, err, typ)
		}
	}
	w, err := c.OpenWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	row := model.Row{int64(1), "abc", "abc", time.Hour, time.Hour, []any{"1.5"}, model.Interval{Micros: 1500}}
	if err := w.WriteRows(ctx, &model.RowBatch{Table: tbl, Partition: "p", Rows: []model.Row{row}}); err != nil {
		t.Fatal(err)
	}
	var mc, pc string
	if err := conn.QueryRow(ctx, `SELECT mysql_char, pg_char FROM shop.natives`).Scan(&mc, &pc); err != nil {
		t.Fatal(err)
	}
	if mc != "abc" || pc != "abc       " {
		t.Fatalf("mysql_char %q (want %q), pg_char %q (want %q)", mc, "abc", pc, "abc       ")
	}
}
