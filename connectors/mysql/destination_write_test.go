package mysql

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/model"
)

// pgLike is a table as a PostgreSQL source describes it: types MySQL does
// not have, a composite key of a UUID and unbounded text.
func pgLike() *model.Table {
	ty := func(k model.Kind, native string) model.Type { return model.Type{Kind: k, Native: native} }
	return &model.Table{
		Namespace:  model.Namespace{Schema: "public", Table: "events"},
		PrimaryKey: []string{"id", "name"},
		Columns: []model.Column{
			{Name: "id", Type: ty(model.KindUUID, "uuid")},
			{Name: "name", Type: ty(model.KindText, "text")},
			{Name: "amount", Type: ty(model.KindDecimal, "numeric"), Nullable: true},
			{Name: "ratio", Type: ty(model.KindFloat32, "real"), Nullable: true},
			{Name: "flag", Type: ty(model.KindBool, "boolean"), Nullable: true},
			{Name: "payload", Type: ty(model.KindJSON, "jsonb"), Nullable: true},
			{Name: "raw", Type: ty(model.KindBytes, "bytea"), Nullable: true},
			{Name: "at", Type: ty(model.KindTimestampTZ, "timestamp with time zone"), Nullable: true},
			{Name: "local", Type: ty(model.KindTimestamp, "timestamp without time zone"), Nullable: true},
			{Name: "wait", Type: ty(model.KindInterval, "interval"), Nullable: true},
			{Name: "opens", Type: ty(model.KindTimeTZ, "time with time zone"), Nullable: true},
			{Name: "tags", Type: model.Type{Kind: model.KindArray, Elem: &model.Type{Kind: model.KindText}, Native: "text[]"}, Nullable: true},
			{Name: "ip", Type: ty(model.KindInet, "inet"), Nullable: true},
			{Name: "mac", Type: ty(model.KindMACAddr, "macaddr"), Nullable: true},
			{Name: "mood", Type: model.Type{Kind: model.KindEnum, EnumValues: []string{"happy", "sad"}, Native: "mood"}, Nullable: true},
			{Name: "day", Type: ty(model.KindDate, "date"), Nullable: true},
			{Name: "noon", Type: ty(model.KindTime, "time without time zone"), Nullable: true},
		},
	}
}

func pgRows() []model.Row {
	return []model.Row{
		{"0b9f5c3e-4d1a-4c2b-9e8f-1a2b3c4d5e6f", "Zoë 😀", "123456789012345678901234567890.123456789", 0.25, true, `{"b": [1, 2], "a": "x"}`, []byte{0, 1, 255},
			time.Date(2023, 5, 6, 7, 8, 9, 123456000, time.UTC), time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC),
			model.Interval{Months: 14, Days: -3, Micros: 4500000}, model.TimeTZ{Time: 9 * time.Hour, Offset: 19800},
			[]any{"a", "b,c", `q"uote`}, "2001:db8::1/64", "08:00:2b:01:02:03", "sad", time.Date(2000, 2, 29, 0, 0, 0, 0, time.UTC), 24 * time.Hour},
		{"0b9f5c3e-4d1a-4c2b-9e8f-1a2b3c4d5e6f", "zoe", nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
		// A uuid PostgreSQL holds and MariaDB's UUID type refuses (version
		// 10, variant 0): the column must be char(36).
		{"c2aee861-57b4-a40b-7813-2f1e71a9e6f1", "a ", "-1", float64(float32(math.SmallestNonzeroFloat32)), false, "[]", []byte{}, time.Unix(0, 0).UTC(),
			time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), model.Interval{}, model.TimeTZ{}, []any{}, "10.0.0.1", "", "happy", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Duration(0)},
	}
}

func TestDestinationFromAnotherEngine(t *testing.T) {
	for _, load := range []string{"load-data", "insert"} {
		t.Run(load, func(t *testing.T) { testDestinationFromAnotherEngine(t, load == "insert") })
	}
}

func testDestinationFromAnotherEngine(t *testing.T, noInfile bool) {
	s := mysqltest.Shared(t)
	ctx := context.Background()
	db := newDB(t, s, "fromother")
	dst := openConn(t, s.URL(db))
	dst.dest.noInfile = noInfile
	if !noInfile && !dst.server.localInfile {
		t.Skip("the server refuses LOAD DATA LOCAL INFILE")
	}
	tb := pgLike()
	if err := dst.CreateTables(ctx, []*model.Table{tb}); err != nil {
		t.Fatal(err)
	}
	w, _ := dst.OpenWriter(ctx)
	rows := pgRows()
	cp := &model.Checkpoint{Flow: "f", Key: "partition/p", Value: `{"rows":3}`}
	if err := w.WriteRows(ctx, &model.RowBatch{Table: tb, Partition: "p", Rows: rows, Checkpoint: cp}); err != nil {
		t.Fatal(err)
	}
	// Keys differing only by case or a trailing space are distinct keys.
	tables, err := dst.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	back := tableNamed(t, tables, "events")
	got := readAll(t, dst, back, connector.PlanOptions{})
	if len(got) != len(rows) {
		t.Fatalf("%d rows back, want %d", len(got), len(rows))
	}
	byKey := map[string]model.Row{}
	for _, r := range got {
		conv := make(model.Row, len(r))
		for i, v := range r {
			c, err := model.Coerce(tb.Columns[i].Type, v) // as verify does
			if err != nil {
				t.Fatalf("column %s: %v", tb.Columns[i].Name, err)
			}
			conv[i] = c
		}
		byKey[conv[0].(string)+"/"+conv[1].(string)] = conv
	}
	for _, want := range rows {
		g, ok := byKey[want[0].(string)+"/"+want[1].(string)]
		if !ok {
			t.Fatalf("row %v/%q missing; have %v", want[0], want[1], byKey)
		}
		sameRow(t, "row "+want[1].(string), tb.Columns, g, want)
	}
	cps, err := dst.LoadCheckpoints(ctx, "f")
	if err != nil || cps["partition/p"] != `{"rows":3}` {
		t.Fatalf("checkpoints %v, %v", cps, err)
	}

	// Values MySQL would change are refused, naming the key.
	bad := append(model.Row(nil), rows[1]...)
	bad[3] = math.NaN()
	err = w.WriteRows(ctx, &model.RowBatch{Table: tb, Partition: "p", Rows: []model.Row{bad}})
	if !contains(err, "column ratio", "key (id=0b9f5c3e-4d1a-4c2b-9e8f-1a2b3c4d5e6f, name=zoe)", "NaN") {
		t.Fatalf("NaN: %v", err)
	}
	bad[3], bad[2] = nil, "1e-40"
	if err := w.WriteRows(ctx, &model.RowBatch{Table: tb, Partition: "p", Rows: []model.Row{bad}}); !contains(err, "column amount", "after the point") {
		t.Fatalf("a decimal finer than decimal(65,30): %v", err)
	}

	// Changes: deletes by composite key, upserts, and a row with an
	// unchanged value keeps the stored one.
	ap, _ := dst.OpenApplier(ctx)
	partial := append(model.Row(nil), rows[0]...)
	partial[2], partial[5] = "7", model.Unchanged
	err = ap.ApplyChanges(ctx, &model.ApplyBatch{
		Tables:     []*model.TableChanges{{Table: tb, Deletes: []model.Row{{rows[1][0], "zoe"}, {rows[1][0], "missing"}}, Upserts: []model.Row{partial}}},
		Checkpoint: &model.Checkpoint{Flow: "f", Key: "cdc/0", Value: "binlog.000001:4"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var amount, payload string
	if err := s.Connect(t, db).QueryRow("SELECT count(*) FROM events").Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d rows after the delete, %v", n, err)
	}
	if err := s.Connect(t, db).QueryRow("SELECT CAST(amount AS CHAR), payload FROM events WHERE name = 'Zoë 😀'").Scan(&amount, &payload); err != nil {
		t.Fatal(err)
	}
	if strings.TrimRight(strings.TrimRight(amount, "0"), ".") != "7" || !strings.Contains(payload, `"a"`) {
		t.Fatalf("after a partial update: amount %s, payload %s", amount, payload)
	}
	missing := append(model.Row(nil), partial...)
	missing[1] = "nobody"
	err = ap.ApplyChanges(ctx, &model.ApplyBatch{Tables: []*model.TableChanges{{Table: tb, Upserts: []model.Row{missing}}}})
	if !contains(err, "does not exist at the destination", "payload") {
		t.Fatalf("a partial update of a missing row: %v", err)
	}

	// An added column is added (once: a replay is harmless); anything else
	// is refused.
	wider := tb.Clone()
	wider.Columns = append(wider.Columns, model.Column{Name: "extra", Type: model.Type{Kind: model.KindInt64}, Nullable: true})
	for range 2 {
		if err := dst.AlterTable(ctx, tb, model.SchemaChange{Table: wider}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteRows(ctx, &model.RowBatch{Table: wider, Partition: "p", Rows: []model.Row{append(append(model.Row(nil), rows[2]...), int64(5))}}); err != nil {
		t.Fatal(err)
	}
	// A narrowing is refused, naming the column and how to go on.
	narrower := wider.Clone()
	narrower.Columns[len(narrower.Columns)-1].Type = model.Type{Kind: model.KindInt16}
	if err := dst.AlterTable(ctx, wider, model.SchemaChange{Table: narrower}); !contains(err, "column extra", "from int64 to int16", "--ddl stop") {
		t.Fatalf("a narrowed column: %v", err)
	}
	if err := dst.ReplaceCheckpoints(ctx, "f", "cdc/", map[string]string{"cdc/1": "binlog.000001:8"}); err != nil {
		t.Fatal(err)
	}
	cps, _ = dst.LoadCheckpoints(ctx, "f")
	if cps["cdc/0"] != "" || cps["cdc/1"] != "binlog.000001:8" || cps["partition/p"] == "" {
		t.Fatalf("after ReplaceCheckpoints: %v", cps)
	}
	if err := dst.DropCheckpoints(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	if cps, _ = dst.LoadCheckpoints(ctx, "f"); len(cps) != 0 {
		t.Fatalf("after DropCheckpoints: %v", cps)
	}
}

// A value the destination column cannot hold is an error on either load
// path (LOAD DATA LOCAL would only warn).
func TestDestinationRefusesTruncation(t *testing.T) {
	s := mysqltest.Shared(t)
	ctx := context.Background()
	for _, noInfile := range []bool{false, true} {
		db := newDB(t, s, "trunc")
		s.Exec(t, "CREATE TABLE `"+db+"`.t (id int PRIMARY KEY, name varchar(3))")
		dst := openConn(t, s.URL(db))
		dst.dest.noInfile = noInfile
		tb := &model.Table{Namespace: model.Namespace{Schema: "x", Table: "t"}, PrimaryKey: []string{"id"}, Columns: []model.Column{
			{Name: "id", Type: model.Type{Kind: model.KindInt32}}, {Name: "name", Type: model.Type{Kind: model.KindText}, Nullable: true}}}
		if err := dst.CreateTables(ctx, []*model.Table{tb}); err != nil {
			t.Fatal(err)
		}
		w, _ := dst.OpenWriter(ctx)
		err := w.WriteRows(ctx, &model.RowBatch{Table: tb, Partition: "p", Rows: []model.Row{{int64(1), "ok"}, {int64(2), "too long"}}})
		if err == nil || !strings.Contains(err.Error(), "name") {
			t.Fatalf("insert-only %v: a value longer than varchar(3): %v", noInfile, err)
		}
		if !noInfile && !strings.Contains(err.Error(), "key (id=2)") {
			t.Fatalf("LOAD DATA: the error does not name the key: %v", err)
		}
		var n int
		if err := s.Connect(t, db).QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 0 {
			t.Fatalf("insert-only %v: %d rows kept after the failed batch, %v", noInfile, n, err)
		}
	}
}

// An infinite date has no MySQL value: the batch fails at its row, naming
// the column and the key and how to exclude the table, and keeps nothing.
func TestDestinationRefusesInfinity(t *testing.T) {
	s := mysqltest.Shared(t)
	ctx := context.Background()
	for _, noInfile := range []bool{false, true} {
		db := newDB(t, s, "inf")
		dst := openConn(t, s.URL(db))
		dst.dest.noInfile = noInfile
		tb := &model.Table{Namespace: model.Namespace{Schema: "x", Table: "t"}, PrimaryKey: []string{"id"}, Columns: []model.Column{
			{Name: "id", Type: model.Type{Kind: model.KindInt32}}, {Name: "due", Type: model.Type{Kind: model.KindDate}, Nullable: true}}}
		if err := dst.CreateTables(ctx, []*model.Table{tb}); err != nil {
			t.Fatal(err)
		}
		w, _ := dst.OpenWriter(ctx)
		err := w.WriteRows(ctx, &model.RowBatch{Table: tb, Partition: "p", Rows: []model.Row{
			{int64(1), time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}, {int64(2), model.PosInfinity}}})
		for _, want := range []string{"column due", "key (id=2)", "infinity: MySQL dates and timestamps have no infinity", "--tables '!x.t'"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("insert-only %v: the error lacks %q: %v", noInfile, want, err)
			}
		}
		var n int
		if err := s.Connect(t, db).QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 0 {
			t.Fatalf("insert-only %v: %d rows kept after the failed batch, %v", noInfile, n, err)
		}
	}
}
