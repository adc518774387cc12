// Package duckdbcheck checks that DuckDB reads the Parquet files the file
// connector writes, value by value. It is a package of its own because the
// DuckDB driver is cgo with a large prebuilt library: only this package's
// test links it, so no other package's build waits for it.
package duckdbcheck

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connectors/file"
	"github.com/ferrydb/ferry/model"
)

func TestDuckDBReadsParquet(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	u, _ := url.Parse("file://" + dir + "?format=parquet")
	c, err := file.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	k := func(k model.Kind) model.Type { return model.Type{Kind: k} }
	i64, txt := k(model.KindInt64), k(model.KindText)
	tbl := &model.Table{Namespace: model.Namespace{Schema: "public", Table: "all"}, PrimaryKey: []string{"id"}, Columns: []model.Column{
		{Name: "id", Type: i64},
		{Name: "i16", Type: k(model.KindInt16), Nullable: true},
		{Name: "i32", Type: k(model.KindInt32), Nullable: true},
		{Name: "i64", Type: i64, Nullable: true},
		{Name: "d9", Type: model.Type{Kind: model.KindDecimal, Precision: 9, Scale: 2}, Nullable: true},
		{Name: "d18", Type: model.Type{Kind: model.KindDecimal, Precision: 18, Scale: 4}, Nullable: true},
		{Name: "d38", Type: model.Type{Kind: model.KindDecimal, Precision: 38, Scale: 10}, Nullable: true},
		{Name: "num", Type: k(model.KindDecimal), Nullable: true},
		{Name: "f32", Type: k(model.KindFloat32), Nullable: true},
		{Name: "f64", Type: k(model.KindFloat64), Nullable: true},
		{Name: "ok", Type: k(model.KindBool), Nullable: true},
		{Name: "txt", Type: txt, Nullable: true},
		{Name: "byt", Type: k(model.KindBytes), Nullable: true},
		{Name: "doc", Type: k(model.KindJSON), Nullable: true},
		{Name: "uid", Type: k(model.KindUUID), Nullable: true},
		{Name: "d", Type: k(model.KindDate), Nullable: true},
		{Name: "ts", Type: k(model.KindTimestamp), Nullable: true},
		{Name: "tstz", Type: k(model.KindTimestampTZ), Nullable: true},
		{Name: "tm", Type: k(model.KindTime), Nullable: true},
		{Name: "ints", Type: model.Type{Kind: model.KindArray, Elem: &i64}, Nullable: true},
		{Name: "words", Type: model.Type{Kind: model.KindArray, Elem: &txt}, Nullable: true},
	}}
	rows := []model.Row{
		{int64(1), int64(-32768), int64(math.MaxInt32), int64(math.MaxInt64), "-1234567.89", "99999999999999.9999",
			"-9999999999999999999999999999.9999999999", "1.50", 3.5, math.Pi, true, "héllo 東京 🚢", []byte{0, 0xff, 0},
			`{"a": [1, 2.50]}`, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
			time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC),
			time.Date(2024, 2, 29, 13, 45, 56, 123456000, time.UTC), 13*time.Hour + 45*time.Minute + 123*time.Microsecond,
			[]any{int64(1), nil, int64(-3)}, []any{"a,b", "", nil}},
		{int64(2), nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
		{int64(3), int64(0), int64(0), int64(math.MinInt64), "0", "0", "0", "NaN", math.Inf(-1), math.NaN(), false, "", []byte{},
			"null", "00000000-0000-0000-0000-000000000000",
			model.PosInfinity, model.NegInfinity, model.PosInfinity, time.Duration(0), []any{}, []any{}},
		{int64(4), nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil,
			time.Date(-4712, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), model.NegInfinity, 24 * time.Hour, nil, nil},
	}
	if err := c.CreateTables(ctx, []*model.Table{tbl}); err != nil {
		t.Fatal(err)
	}
	w, _ := c.OpenWriter(ctx)
	for i, r := range rows { // a partition per row: a file of several row groups
		if err := w.WriteRows(ctx, &model.RowBatch{Table: tbl, Partition: fmt.Sprintf("public.all/%04d", i), Rows: []model.Row{r}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.FinishTable(ctx, tbl); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	path := filepath.Join(dir, "public.all.parquet")
	src := fmt.Sprintf("read_parquet('%s')", path)

	// The types DuckDB sees.
	var types []string
	trows, err := db.QueryContext(ctx, "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "+src+")")
	if err != nil {
		t.Fatal(err)
	}
	for trows.Next() {
		var n, ty string
		if err := trows.Scan(&n, &ty); err != nil {
			t.Fatal(err)
		}
		types = append(types, n+" "+ty)
	}
	trows.Close()
	wantTypes := "id BIGINT, i16 SMALLINT, i32 INTEGER, i64 BIGINT, d9 DECIMAL(9,2), d18 DECIMAL(18,4), d38 DECIMAL(38,10), " +
		"num VARCHAR, f32 FLOAT, f64 DOUBLE, ok BOOLEAN, txt VARCHAR, byt BLOB, doc JSON, uid UUID, d DATE, ts TIMESTAMP, " +
		"tstz TIMESTAMP WITH TIME ZONE, tm TIME, ints BIGINT[], words VARCHAR[]"
	if got := strings.Join(types, ", "); got != wantTypes {
		t.Errorf("DuckDB types:\n%s\nwant\n%s", got, wantTypes)
	}

	// Every value, as DuckDB spells it (timestamptz as epoch microseconds:
	// its text depends on the session's time zone).
	q := `SELECT id, i16::VARCHAR, i32::VARCHAR, i64::VARCHAR, d9::VARCHAR, d18::VARCHAR, d38::VARCHAR, num, f32::VARCHAR, f64::VARCHAR,
		ok::VARCHAR, txt, hex(byt), doc::VARCHAR, uid::VARCHAR, d::VARCHAR, ts::VARCHAR,
		CASE WHEN isinf(tstz) THEN tstz::VARCHAR ELSE epoch_us(tstz)::VARCHAR END, tm::VARCHAR, ints::VARCHAR, words::VARCHAR
		FROM ` + src + ` ORDER BY id`
	res, err := db.QueryContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	var got []string
	for res.Next() {
		vals := make([]sql.NullString, 21)
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := res.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, v := range vals {
			if !v.Valid {
				parts = append(parts, "NULL")
				continue
			}
			parts = append(parts, v.String)
		}
		got = append(got, strings.Join(parts, " | "))
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"1 | -32768 | 2147483647 | 9223372036854775807 | -1234567.89 | 99999999999999.9999 | -9999999999999999999999999999.9999999999 | 1.50 | 3.5 | 3.141592653589793 | true | héllo 東京 🚢 | 00FF00 | {\"a\": [1, 2.50]} | a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 | 1969-12-31 | 1969-12-31 23:59:59.999999 | 1709214356123456 | 13:45:00.000123 | [1, NULL, -3] | ['a,b', '', NULL]",
		"2 | NULL | NULL | NULL | NULL | NULL | NULL | NULL | NULL | NULL | NULL | NULL | NULL | NULL | NULL | NULL | NULL | NULL | NULL | NULL | NULL",
		"3 | 0 | 0 | -9223372036854775808 | 0.00 | 0.0000 | 0.0000000000 | NaN | -inf | nan | false |  |  | null | 00000000-0000-0000-0000-000000000000 | infinity | -infinity | infinity | 00:00:00 | [] | []",
		"4 | NULL | NULL | NULL | NULL | NULL | NULL | NULL | NULL | NULL | NULL | NULL | NULL | NULL | NULL | 4713-01-01 (BC) | 0001-01-01 00:00:00 | -infinity | 24:00:00 | NULL | NULL",
	}
	for i := range max(len(got), len(want)) {
		g, w := "", ""
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("row %d as DuckDB reads it:\n%s\nwant\n%s", i+1, g, w)
		}
	}
}

// TestDuckDBReadsChangeFiles: the change files of a table read as one
// relation with a glob, in the order of their names.
func TestDuckDBReadsChangeFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	u, _ := url.Parse("file://" + dir + "?format=parquet&changes=files")
	c, err := file.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	cf := &file.ChangeFiles{Conn: c}
	tbl := &model.Table{Namespace: model.Namespace{Schema: "public", Table: "items"}, PrimaryKey: []string{"id"}, Columns: []model.Column{
		{Name: "id", Type: model.Type{Kind: model.KindInt64}},
		{Name: "price", Type: model.Type{Kind: model.KindDecimal, Precision: 10, Scale: 2}, Nullable: true},
	}}
	if _, err := cf.LoadCheckpoints(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	ev := func(op model.Op, pos string, row, key model.Row) connector.Event {
		return connector.Event{Op: op, Table: tbl, Source: tbl.Namespace, Row: row, Key: key, ID: pos + "/0", Position: model.Position(pos)}
	}
	for i, evs := range [][]connector.Event{
		{ev(model.OpInsert, "1", model.Row{int64(1), "1.50"}, nil), ev(model.OpUpdate, "2", model.Row{int64(1), "2.00"}, nil)},
		{ev(model.OpDelete, "3", nil, model.Row{int64(1)})},
	} {
		pos := fmt.Sprint(i + 1)
		if err := cf.WriteEvents(ctx, &connector.EventBatch{Events: evs, Position: model.Position(pos),
			Checkpoint: &model.Checkpoint{Flow: "f", Key: "cdc", Value: pos}}); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := fmt.Sprintf(`SELECT string_agg(_op || ' ' || id || ' ' || coalesce(price::VARCHAR, 'NULL'), '; ' ORDER BY filename, file_row_number)
		FROM read_parquet('%s/public.items.changes/*.parquet', filename = true, file_row_number = true)`, dir)
	var got string
	if err := db.QueryRowContext(ctx, q).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := "insert 1 1.50; update 1 2.00; delete 1 NULL"; got != want {
		t.Errorf("DuckDB reads the changes as %q, want %q", got, want)
	}
}
