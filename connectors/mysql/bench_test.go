package mysql

import (
	"testing"
	"time"

	"github.com/ferrydb/ferry/model"
)

// benchTable is an orders-like table: the shape of the load measurements.
func benchTable() (*model.Table, []*target, []model.Row, []*codec, [][]any) {
	natives := []string{"bigint(20)", "varchar(40)", "decimal(12,2)", "int(11)", "double", "enum('new','paid','shipped')", "varchar(100)", "datetime(6)", "json"}
	t := &model.Table{Namespace: model.Namespace{Schema: "s", Table: "orders"}, PrimaryKey: []string{"c0"}}
	var targets []*target
	var codecs []*codec
	for i, n := range natives {
		ct, _ := parseColType(n)
		typ, _ := ct.canonical()
		col := model.Column{Name: "c" + string(rune('0'+i)), Type: typ}
		t.Columns = append(t.Columns, col)
		targets = append(targets, &target{name: col.Name, typ: typ, ct: ct})
		cd, _ := newCodec(col, "utf8mb4", false)
		codecs = append(codecs, cd)
	}
	var rows []model.Row
	var raws [][]any
	for i := range 5000 {
		rows = append(rows, model.Row{int64(i), "customer 1234", "1234.25", int64(42), 123.456, "paid", "xxxxxxxxxxxxxxxxxxxx",
			time.Date(2024, 1, 1, 0, 0, i%60, 0, time.UTC), `{"n": 1234}`})
		raws = append(raws, []any{int64(i), []byte("customer 1234"), []byte("1234.25"), int64(42), 123.456, []byte("paid"),
			[]byte("xxxxxxxxxxxxxxxxxxxx"), []byte("2024-01-01 00:00:12.000000"), []byte(`{"n": 1234}`)})
	}
	return t, targets, rows, codecs, raws
}

func BenchmarkUpsertStatements(b *testing.B) {
	t, targets, rows, _, _ := benchTable()
	c := &Conn{server: serverInfo{maxPacket: 16 << 20}}
	b.ResetTimer()
	for range b.N {
		if err := c.upsertStatements(t, t.Namespace, targets, rows, func([]byte) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(rows))/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkDecodeRow(b *testing.B) {
	t, _, _, codecs, raws := benchTable()
	b.ResetTimer()
	for range b.N {
		for _, r := range raws {
			if _, err := decodeRow(t, codecs, r, false); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(raws))/b.Elapsed().Seconds(), "rows/s")
}
