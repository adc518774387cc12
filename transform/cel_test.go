package transform

import (
	"reflect"
	"testing"
	"time"

	"github.com/ferrydb/ferry/model"
)

// allKinds is a table with a column of each kind CEL reads.
func allKinds() *model.Table {
	col := func(name string, k model.Kind) model.Column {
		return model.Column{Name: name, Type: model.Type{Kind: k}}
	}
	return &model.Table{
		Namespace: model.Namespace{Schema: "s", Table: "kinds"},
		Columns: []model.Column{
			col("i16", model.KindInt16), col("i32", model.KindInt32), col("i64", model.KindInt64),
			col("f32", model.KindFloat32), col("f64", model.KindFloat64), col("dec", model.KindDecimal),
			col("txt", model.KindText), col("js", model.KindJSON), col("uid", model.KindUUID),
			col("en", model.KindEnum), col("ip", model.KindInet), col("net", model.KindCIDR), col("mac", model.KindMACAddr),
			col("ok", model.KindBool), col("raw", model.KindBytes),
			col("d", model.KindDate), col("ts", model.KindTimestamp), col("tstz", model.KindTimestampTZ),
			col("tod", model.KindTime), col("iv", model.KindInterval),
			{Name: "tags", Type: model.Type{Kind: model.KindArray, Elem: &model.Type{Kind: model.KindText}}},
			{Name: "order-id", Type: model.Type{Kind: model.KindInt64}},
		},
		PrimaryKey: []string{"i64"},
	}
}

func kindsRow() model.Row {
	return model.Row{int64(1), int64(2), int64(3), float64(1.5), float64(2.5), "10.25",
		"hello", `{"a": 1}`, "0b9c1e8a-1d4f-4c5e-9f7a-2b3c4d5e6f70", "red", "10.0.0.1", "10.0.0.0/8", "08:00:2b:01:02:03",
		true, []byte{1, 2}, day(2024, 2, 29), time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC), time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC),
		90 * time.Minute, model.Interval{Months: 1}, []any{"a", "b"}, int64(9)}
}

// TestCELTypes reads every kind through a filter that is true only when the
// value arrives as the documented CEL type.
func TestCELTypes(t *testing.T) {
	exprs := []string{
		"i16 + i32 + i64 == 6", "f32 + f64 == 4.0", "dec > 10.2 && dec < 10.3",
		"txt.startsWith('he')", "js == '{\"a\": 1}'", "uid.size() == 36", "en == 'red'",
		"ip == '10.0.0.1'", "net.endsWith('/8')", "mac.size() == 17",
		"ok", "raw == b'\\x01\\x02'",
		"d == timestamp('2024-02-29T00:00:00Z')", "ts < tstz + duration('1s')", "tstz.getHours() == 12",
		"tod == duration('90m')", "iv == 'P1M0DT0S'", "'b' in tags && size(tags) == 2",
	}
	for _, e := range exprs {
		x := bind(t, Spec{Filter: []string{"kinds: " + e}}, allKinds())
		if _, ok, err := x.Row(kindsRow()); err != nil || !ok {
			t.Errorf("filter %s: passes %v, error %v", e, ok, err)
		}
	}
}

func TestComputedColumns(t *testing.T) {
	x := bind(t, Spec{Compute: []string{
		"kinds.a = i64 * 2",
		"kinds.b = dec * 2.0",
		"kinds.c = txt + '!'",
		"kinds.e = !ok",
		"kinds.f = raw + b'\\x03'",
		"kinds.g = tstz + duration('1h')",
		"kinds.h = txt.split('l')[0]",
	}}, allKinds())
	out := x.Output().Columns
	wantKinds := []model.Kind{model.KindInt64, model.KindFloat64, model.KindText, model.KindBool, model.KindBytes, model.KindTimestampTZ, model.KindText}
	base := len(allKinds().Columns)
	for i, k := range wantKinds {
		c := out[base+i]
		if c.Type.Kind != k || !c.Nullable {
			t.Errorf("computed column %s: %s nullable %v, want %s nullable", c.Name, c.Type.Kind, c.Nullable, k)
		}
	}
	row, ok, err := x.Row(kindsRow())
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	want := []any{int64(6), float64(20.5), "hello!", false, []byte{1, 2, 3}, time.Date(2024, 3, 1, 13, 0, 0, 0, time.UTC), "he"}
	for i, w := range want {
		if got := row[base+i]; !reflect.DeepEqual(got, w) {
			t.Errorf("computed column %s = %#v, want %#v", out[base+i].Name, got, w)
		}
	}
	if ts := row[base+5].(time.Time); ts.Location() != time.UTC {
		t.Errorf("computed timestamp in %s, want UTC", ts.Location())
	}
}

func TestComputedNull(t *testing.T) {
	x := bind(t, Spec{Compute: []string{"users.b = balance", "users.e = email == null ? 'none' : email"}}, users())
	in := alice()
	in[1], in[4] = nil, nil
	row, _, err := x.Row(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := row[6:]; !reflect.DeepEqual(got, model.Row{nil, "none"}) {
		t.Errorf("computed %v, want [<nil> none]", got)
	}
	if k := x.Output().Columns[6].Type.Kind; k != model.KindFloat64 {
		t.Errorf("a nullable decimal's column is %s, want float64", k)
	}
}

// TestCELRefused: what does not compile or has the wrong type is exit 2
// naming the table and the expression, with CEL's message.
func TestCELRefused(t *testing.T) {
	refused(t, Spec{Filter: []string{"users: activ == true"}}, users(), "table shop.users", `filter "activ == true" does not compile`, "undeclared reference to 'activ'")
	refused(t, Spec{Filter: []string{"users: id > 'a'"}}, users(), "table shop.users", `"id > 'a'"`, "found no matching overload")
	refused(t, Spec{Filter: []string{"users: id + 1"}}, users(), "table shop.users", `filter "id + 1" is of type int, a filter must be bool`)
	refused(t, Spec{Filter: []string{"users: email"}}, users(), `filter "email" is of type wrapper(string)`)
	refused(t, Spec{Compute: []string{"users.x = [id]"}}, users(), `computed column x "[id]" is of type list(int), which ferry cannot store`)
	refused(t, Spec{Compute: []string{"users.x = null"}}, users(), "which ferry cannot store")
	refused(t, Spec{Compute: []string{"users.x = 1u"}}, users(), "uint", "int(x)")
	refused(t, Spec{Filter: []string{"kinds: tags"}}, allKinds(), "is of type dyn")
	// A column whose name is not an identifier cannot be read: say so.
	refused(t, Spec{Filter: []string{"kinds: order-id > 1"}}, allKinds(), "undeclared reference to 'order'", "cannot read a column whose name is not a CEL identifier (order-id)")
}

func TestCELRuntimeErrors(t *testing.T) {
	x := bind(t, Spec{Filter: []string{"users: balance > 5.0"}}, users())
	in := alice()
	in[4] = nil
	_, ok, err := x.Row(in)
	if err == nil || ok {
		t.Fatalf("a NULL in balance > 5.0: ok %v, error %v", ok, err)
	}
	for _, w := range []string{"table shop.users", `filter "balance > 5.0"`, "the row (id=7)", "x != null"} {
		if !contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	// Guarded, it passes over the NULL.
	x = bind(t, Spec{Filter: []string{"users: balance != null && balance > 5.0"}}, users())
	if _, ok, err := x.Row(in); ok || err != nil {
		t.Errorf("guarded filter on NULL: ok %v, error %v", ok, err)
	}
	// A NULL result of a filter leaves the row out, as WHERE does.
	x = bind(t, Spec{Filter: []string{"users: active"}}, users())
	in[3] = nil
	if _, ok, err := x.Row(in); ok || err != nil {
		t.Errorf("filter NULL: ok %v, error %v", ok, err)
	}
	// An infinite date cannot be a CEL timestamp: an error when read.
	x = bind(t, Spec{Compute: []string{"users.y = born > timestamp('2000-01-01T00:00:00Z')"}}, users())
	in = alice()
	in[5] = model.PosInfinity
	if _, _, err := x.Row(in); err == nil || !contains(err.Error(), "born is infinity") {
		t.Errorf("an infinite date: %v", err)
	}
	// A runtime error in a computed column names it too.
	x = bind(t, Spec{Compute: []string{"users.y = 10 / (id - 7)"}}, users())
	if _, _, err := x.Row(alice()); err == nil || !contains(err.Error(), `computed column y "10 / (id - 7)" failed on the row (id=7)`) {
		t.Errorf("division by zero: %v", err)
	}
}

// TestFilterNullableTypes: a nullable column compares with null and with a
// value alike.
func TestFilterNullableTypes(t *testing.T) {
	for _, e := range []string{"email == null", "email != null && email.endsWith('.com')", "born == null || born < timestamp('2000-01-01T00:00:00Z')", "active == true"} {
		bind(t, Spec{Filter: []string{"users: " + e}}, users())
	}
}

// TestSeveralFiltersAnd: every filter matching a table must pass.
func TestSeveralFiltersAnd(t *testing.T) {
	x := bind(t, Spec{Filter: []string{"users: active == true", "shop.*: id > 5"}}, users())
	cases := []struct {
		id     int64
		active bool
		pass   bool
	}{{7, true, true}, {3, true, false}, {7, false, false}}
	for _, c := range cases {
		in := alice()
		in[0], in[3] = c.id, c.active
		if _, ok, err := x.Row(in); ok != c.pass || err != nil {
			t.Errorf("id %d active %v: pass %v, error %v; want %v", c.id, c.active, ok, err, c.pass)
		}
	}
}

func TestComputeReadsExcludedColumn(t *testing.T) {
	x := bind(t, Spec{Exclude: []string{"users.email"}, Compute: []string{"users.domain = email.split('@')[1]"}}, users())
	row, _, err := x.Row(alice())
	if err != nil {
		t.Fatal(err)
	}
	if want := (model.Row{int64(7), "Alice", true, "12.50", day(1990, 5, 17), "example.com"}); !reflect.DeepEqual(row, want) {
		t.Errorf("row %v, want %v", row, want)
	}
}
