package mysql

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/model"

	_ "github.com/ferrydb/ferry/connectors/sqlite" // sqlite://, a destination in the round trip
)

// typesDDL has a column of every MySQL type ferry maps.
const typesDDL = `CREATE TABLE types (
	id int NOT NULL PRIMARY KEY,
	b tinyint(1), ti tinyint, tiu tinyint unsigned, si smallint, siu smallint unsigned,
	mi mediumint, miu mediumint unsigned, i int, iu int unsigned, bi bigint, biu bigint unsigned,
	d decimal(65,30), d2 decimal(10,2), f float, dbl double,
	c char(5), vc varchar(50), t text, lt longtext, l1 varchar(20) CHARACTER SET latin1,
	bn binary(4), vb varbinary(20), bl blob,
	j json, e enum('small','médium','large 😀'), st set('a','b','c'),
	dt date, tm time(6), dtm datetime(6), ts timestamp(6) NULL DEFAULT NULL, y year, bt bit(10), bt1 bit(1)
) DEFAULT CHARSET=utf8mb4`

var typesInsert = []string{
	`INSERT INTO types VALUES (1, 1, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295,
		9223372036854775807, 18446744073709551615,
		99999999999999999999999999999999999.999999999999999999999999999999, 99999999.99,
		3.4028234663852886e38, 1.7976931348623157e308,
		'ab', 'héllo 😀 "quoted" \\ back', 'line1\nline2\ttab', REPEAT('x', 70000), 'café €',
		X'00010200', X'00FF00', X'',
		'{"a": [1, 2.5, "x"], "b": null, "emoji": "😀"}', 'large 😀', 'a,c',
		'9999-12-31', '23:59:59.999999', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999', 2155, b'1111111111', b'1')`,
	`INSERT INTO types VALUES (2, 0, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0,
		-9223372036854775808, 0,
		-0.000000000000000000000000000001, -99999999.99,
		-1.1754943508222875e-38, 4.9e-324,
		'', '', '', '', '',
		X'00000000', X'', X'00',
		'[]', 'small', '',
		'1000-01-01', '00:00:00', '1000-01-01 00:00:00', '1970-01-01 00:00:01', 1901, b'0', b'0')`,
	`INSERT INTO types (id) VALUES (3)`,
	`INSERT INTO types VALUES (4, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, -12.5, 0.10, 0.1, 0.1,
		'x', 'it''s', 'text', 'long', 'naïve',
		X'61626364', X'01', X'DEADBEEF',
		'{"k": "v"}', 'médium', 'b',
		'2024-02-29', '12:34:56.5', '2024-02-29 12:00:00', '2024-02-29 12:00:00.123456', 2024, b'101', b'1')`,
}

func ts(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05.999999", s)
	if err != nil {
		panic(err)
	}
	return t
}

func day(s string) time.Time { return ts(s + " 00:00:00") }

// typesRows are the canonical values of typesInsert, by column.
var typesRows = []model.Row{
	{int64(1), true, int64(127), int64(255), int64(32767), int64(65535), int64(8388607), int64(16777215), int64(2147483647), int64(4294967295),
		int64(math.MaxInt64), "18446744073709551615",
		"99999999999999999999999999999999999.999999999999999999999999999999", "99999999.99",
		float64(math.MaxFloat32), math.MaxFloat64,
		"ab", `héllo 😀 "quoted" \ back`, "line1\nline2\ttab", strings.Repeat("x", 70000), "café €",
		[]byte{0, 1, 2, 0}, []byte{0, 0xff, 0}, []byte{},
		`{"a": [1, 2.5, "x"], "b": null, "emoji": "😀"}`, "large 😀", "a,c",
		day("9999-12-31"), 24*time.Hour - time.Microsecond, ts("9999-12-31 23:59:59.999999"), ts("2038-01-19 03:14:07.999999"), int64(2155), []byte{0x03, 0xff}, []byte{1}},
	{int64(2), false, int64(-128), int64(0), int64(-32768), int64(0), int64(-8388608), int64(0), int64(math.MinInt32), int64(0),
		int64(math.MinInt64), "0",
		"-0.000000000000000000000000000001", "-99999999.99",
		-1.1754943508222875e-38, 5e-324,
		"", "", "", "", "",
		[]byte{0, 0, 0, 0}, []byte{}, []byte{0},
		"[]", "small", "",
		day("1000-01-01"), time.Duration(0), ts("1000-01-01 00:00:00"), ts("1970-01-01 00:00:01"), int64(1901), []byte{0, 0}, []byte{0}},
	{int64(3), nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
	{int64(4), false, int64(1), int64(2), int64(3), int64(4), int64(5), int64(6), int64(7), int64(8), int64(9), "10", "-12.5", "0.1",
		float64(float32(0.1)), 0.1,
		"x", "it's", "text", "long", "naïve",
		[]byte("abcd"), []byte{1}, []byte{0xde, 0xad, 0xbe, 0xef},
		`{"k": "v"}`, "médium", "b",
		day("2024-02-29"), 12*time.Hour + 34*time.Minute + 56*time.Second + 500*time.Millisecond, ts("2024-02-29 12:00:00"), ts("2024-02-29 12:00:00.123456"), int64(2024), []byte{0, 5}, []byte{1}},
}

func createTypes(t *testing.T, s *mysqltest.Server, db string, rows bool) {
	t.Helper()
	s.Exec(t, "USE `"+db+"`; "+typesDDL)
	if rows {
		for _, q := range typesInsert {
			s.Exec(t, "USE `"+db+"`; "+q)
		}
	}
}

func TestTypesRoundTrip(t *testing.T) {
	s := mysqltest.Shared(t)
	ctx := context.Background()
	srcDB := newDB(t, s, "types_src")
	createTypes(t, s, srcDB, true)
	src := openConn(t, s.URL(srcDB))
	tables, err := src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tb := tableNamed(t, tables, "types")
	if tb.Namespace.Schema != srcDB || strings.Join(tb.PrimaryKey, ",") != "id" {
		t.Fatalf("discovered %s with key %v", tb.Namespace, tb.PrimaryKey)
	}
	kinds := map[string]string{"b": "bool", "tiu": "int16", "siu": "int32", "iu": "int64", "biu": "decimal(20,0)", "f": "float32",
		"j": "json", "e": "enum", "st": "text", "ts": "timestamptz", "dtm": "timestamp", "y": "int16", "bt": "bytes", "bn": "bytes"}
	for _, c := range tb.Columns {
		if want, ok := kinds[c.Name]; ok && c.Type.String() != want {
			t.Errorf("column %s (%s) is %s, want %s", c.Name, c.Type.Native, c.Type, want)
		}
	}

	got := readAll(t, src, tb, connector.PlanOptions{})
	checkRows(t, "snapshot read", tb, got)

	// MySQL to MySQL: the same types, the same values.
	dstDB := newDB(t, s, "types_dst")
	dst := openConn(t, s.URL(dstDB))
	if err := dst.CreateTables(ctx, []*model.Table{tb}); err != nil {
		t.Fatal(err)
	}
	w, err := dst.OpenWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // writing twice is writing once
		if err := w.WriteRows(ctx, &model.RowBatch{Table: tb, Partition: "p", Rows: got}); err != nil {
			t.Fatal(err)
		}
	}
	dtables, err := dst.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dtb := tableNamed(t, dtables, "types")
	for i, c := range dtb.Columns {
		// MySQL's 64 KiB TEXT and BLOB widen to LONGTEXT and LONGBLOB: other
		// engines call unbounded types by those names.
		widened := (c.Name == "t" && c.Type.Native == "longtext") || (c.Name == "bl" && c.Type.Native == "longblob")
		if c.Type.Native != tb.Columns[i].Type.Native && !widened {
			t.Errorf("destination column %s is %s, source %s", c.Name, c.Type.Native, tb.Columns[i].Type.Native)
		}
	}
	checkRows(t, "MySQL to MySQL", tb, readAll(t, dst, dtb, connector.PlanOptions{}))

	// Without BIT columns the copy goes through LOAD DATA: the same values.
	if dst.server.localInfile {
		nobits := tb.Clone()
		nobits.Columns = nobits.Columns[:len(nobits.Columns)-2]
		var trimmed []model.Row
		for _, r := range got {
			trimmed = append(trimmed, r[:len(r)-2])
		}
		ldDB := newDB(t, s, "types_ld")
		ld := openConn(t, s.URL(ldDB))
		if !ld.canLoadInfile([]*target{{ct: colType{name: "int"}}}) {
			t.Fatal("LOAD DATA is not used")
		}
		if err := ld.CreateTables(ctx, []*model.Table{nobits}); err != nil {
			t.Fatal(err)
		}
		lw, _ := ld.OpenWriter(ctx)
		if err := lw.WriteRows(ctx, &model.RowBatch{Table: nobits, Partition: "p", Rows: trimmed}); err != nil {
			t.Fatal(err)
		}
		back := readAll(t, ld, nobits, connector.PlanOptions{})
		for i := range back {
			sameRow(t, "LOAD DATA", nobits.Columns, back[i], typesRows[i][:len(typesRows[i])-2])
		}
	}

	// MySQL to SQLite.
	lite, err := connector.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "types.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	ld := lite.(connector.Destination)
	if err := ld.CreateTables(ctx, []*model.Table{tb}); err != nil {
		t.Fatal(err)
	}
	lw, err := ld.OpenWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := lw.WriteRows(ctx, &model.RowBatch{Table: tb, Partition: "p", Rows: got}); err != nil {
		t.Fatal(err)
	}
	ls := lite.(connector.Source)
	ltables, err := ls.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkRows(t, "MySQL to SQLite", tb, readAll(t, ls, tableNamed(t, ltables, "types"), connector.PlanOptions{}))
}

// checkRows compares rows read back (by id order) with typesRows, after
// converting them to the source table's types as verify does.
func checkRows(t *testing.T, what string, tb *model.Table, got []model.Row) {
	t.Helper()
	if len(got) != len(typesRows) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(typesRows))
	}
	for i, want := range typesRows {
		row := make(model.Row, len(got[i]))
		for j, v := range got[i] {
			c, err := model.Coerce(tb.Columns[j].Type, v)
			if err != nil {
				t.Fatalf("%s, row %d, column %s: %v", what, i+1, tb.Columns[j].Name, err)
			}
			row[j] = c
		}
		sameRow(t, what+", id "+formatValue(tb.Columns[0].Type, want[0]), tb.Columns, row, want)
	}
}

func TestZeroDates(t *testing.T) {
	s := mysqltest.Shared(t)
	ctx := context.Background()
	db := newDB(t, s, "zero")
	s.Exec(t, "USE `"+db+"`; SET SESSION sql_mode = ''; CREATE TABLE z (id int PRIMARY KEY, d date NOT NULL, dt datetime NOT NULL, tsv timestamp NULL);"+
		"INSERT INTO z VALUES (1, '2020-01-01', '2020-01-01 00:00:00', '2020-01-01 00:00:00'), (2, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00')")
	src := openConn(t, s.URL(db))
	tables, err := src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tb := tableNamed(t, tables, "z")
	plan, err := src.Plan(ctx, []*model.Table{tb}, connector.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = src.ReadPartition(ctx, tb, plan.Partitions[0], "", func(*model.RowBatch) error { return nil })
	if !contains(err, db+".z", "column d", "key (id=2)", "zero date 0000-00-00", "zero_dates=null") {
		t.Fatalf("reading a zero date: %v", err)
	}

	nulls := openConn(t, s.URL(db)+"?zero_dates=null")
	tables, err = nulls.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tb = tableNamed(t, tables, "z")
	if !tb.Columns[1].Nullable {
		t.Error("with zero_dates=null a NOT NULL date column is not reported nullable")
	}
	rows := readAll(t, nulls, tb, connector.PlanOptions{})
	if len(rows) != 2 || rows[1][1] != nil || rows[1][2] != nil || rows[1][3] != nil || rows[0][1] == nil {
		t.Fatalf("zero_dates=null read %v", rows)
	}
}

func TestPartitionsCoverEveryRowOnce(t *testing.T) {
	s := mysqltest.Shared(t)
	ctx := context.Background()
	db := newDB(t, s, "parts")
	s.Exec(t, "USE `"+db+"`; CREATE TABLE p (a int NOT NULL, b varchar(10) NOT NULL, v int, PRIMARY KEY (a, b)) COLLATE utf8mb4_general_ci;"+
		"INSERT INTO p SELECT seq DIV 3, ELT(1 + seq MOD 3, 'x', 'Y', 'z'), seq FROM seq_0_to_5999")
	src := openConn(t, s.URL(db))
	tables, err := src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tb := tableNamed(t, tables, "p")
	tb.EstimatedRows = 6000 // fresh InnoDB statistics may say anything
	plan, err := src.Plan(ctx, []*model.Table{tb}, connector.PlanOptions{PartitionRows: 1000, BatchRows: 333})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(plan.Partitions); n < 5 || n > 7 {
		t.Fatalf("%d partitions for 6000 rows of 1000", n)
	}
	seen := map[int64]int{}
	resumed := false
	for _, p := range plan.Partitions {
		var cursor model.Cursor
		err := src.ReadPartition(ctx, tb, p, "", func(b *model.RowBatch) error {
			for _, r := range b.Rows {
				seen[r[2].(int64)]++
			}
			if cursor == "" {
				cursor = b.Cursor
				return errStop
			}
			return nil
		})
		if err != errStop && err != nil {
			t.Fatal(err)
		}
		// Resume after the first batch.
		err = src.ReadPartition(ctx, tb, p, cursor, func(b *model.RowBatch) error {
			resumed = true
			for _, r := range b.Rows {
				seen[r[2].(int64)]++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != 6000 || !resumed {
		t.Fatalf("read %d distinct rows (resumed %v), want 6000", len(seen), resumed)
	}
	for v, n := range seen {
		if n != 1 {
			t.Fatalf("row %d read %d times", v, n)
		}
	}

	// A table without a key: one partition, resumable by offset.
	s.Exec(t, "USE `"+db+"`; CREATE TABLE nokey (v int); INSERT INTO nokey SELECT seq FROM seq_1_to_1000")
	tables, err = src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nk := tableNamed(t, tables, "nokey")
	nplan, err := src.Plan(ctx, []*model.Table{nk}, connector.PlanOptions{PartitionRows: 100, BatchRows: 300})
	if err != nil || len(nplan.Partitions) != 1 {
		t.Fatalf("plan of a table without a key: %v, %v", nplan, err)
	}
	var first []int64
	var cur model.Cursor
	err = src.ReadPartition(ctx, nk, nplan.Partitions[0], "", func(b *model.RowBatch) error {
		for _, r := range b.Rows {
			first = append(first, r[0].(int64))
		}
		cur = b.Cursor
		return errStop
	})
	if err != errStop || cur != "offset:300" {
		t.Fatalf("first batch: cursor %q, %v", cur, err)
	}
	var rest []int64
	if err := src.ReadPartition(ctx, nk, nplan.Partitions[0], cur, func(b *model.RowBatch) error {
		for _, r := range b.Rows {
			rest = append(rest, r[0].(int64))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(first)+len(rest) != 1000 || rest[0] != 301 {
		t.Fatalf("resumed read: %d + %d rows, rest starts at %v", len(first), len(rest), rest[:1])
	}
}

type stopErr struct{}

func (stopErr) Error() string { return "stop" }

var errStop error = stopErr{}

// formatValue renders a value for a test message.
func formatValue(t model.Type, v any) string {
	if v == nil {
		return "NULL"
	}
	if _, err := model.AppendCanonical(nil, t, v); err != nil {
		return fmt.Sprintf("%v", v)
	}
	s, err := model.FormatText(t, v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return s
}
