package connector

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/model"
)

func TestWidens(t *testing.T) {
	ty := func(k model.Kind) model.Type { return model.Type{Kind: k} }
	dec := func(p, s int) model.Type { return model.Type{Kind: model.KindDecimal, Precision: p, Scale: s} }
	txt := func(n int) model.Type { return model.Type{Kind: model.KindText, Length: n} }
	enum := func(labels ...string) model.Type { return model.Type{Kind: model.KindEnum, EnumValues: labels} }
	for _, c := range []struct {
		from, to model.Type
		want     bool
	}{
		{ty(model.KindInt16), ty(model.KindInt32), true},
		{ty(model.KindInt32), ty(model.KindInt64), true},
		{ty(model.KindInt64), ty(model.KindInt32), false},
		{ty(model.KindInt32), dec(12, 2), true},
		{ty(model.KindInt64), dec(12, 2), false},
		{ty(model.KindInt64), dec(0, 0), true},
		{ty(model.KindFloat32), ty(model.KindFloat64), true},
		{ty(model.KindFloat64), ty(model.KindFloat32), false},
		{ty(model.KindInt32), ty(model.KindFloat64), false},
		{dec(10, 2), dec(12, 2), true},
		{dec(10, 2), dec(12, 4), true},
		{dec(10, 2), dec(10, 3), false}, // one integer digit fewer
		{dec(10, 2), dec(10, 1), false},
		{dec(0, 0), dec(38, 10), false},
		{dec(10, 2), dec(0, 0), true},
		{txt(10), txt(20), true},
		{txt(20), txt(10), false},
		{txt(10), txt(0), true},
		{txt(0), txt(10), false},
		{model.Type{Kind: model.KindText, Native: "citext", TextForm: true}, txt(0), true},
		{txt(0), model.Type{Kind: model.KindText, Native: "citext", TextForm: true}, false},
		{ty(model.KindText), ty(model.KindInt64), false},
		{enum("a", "b"), txt(0), true},
		{enum("a", "b"), enum("a", "b", "c"), true},
		{enum("a", "b"), enum("b", "a"), false},
		{ty(model.KindTimestamp), ty(model.KindTimestampTZ), false},
		{model.Type{Kind: model.KindBytes, Length: 4}, model.Type{Kind: model.KindBytes}, true},
	} {
		if got := Widens(c.from, c.to); got != c.want {
			t.Errorf("Widens(%s, %s) = %v, want %v", TypeName(c.from), TypeName(c.to), got, c.want)
		}
	}
}

// steps renders a plan as "op:old>new" strings, in order.
func steps(p *AlterPlan) string {
	var out []string
	for _, s := range p.Steps {
		switch s.Op {
		case AlterDrop:
			out = append(out, "drop:"+s.Old.Name)
		case AlterRename:
			out = append(out, "rename:"+s.Old.Name+">"+s.Column.Name)
		case AlterAdd:
			out = append(out, fmt.Sprintf("add:%s=%v", s.Column.Name, s.Fill))
		case AlterRetype:
			out = append(out, fmt.Sprintf("retype:%s>%s:%v", s.Old.Name, s.Column.Name, s.Widening))
		}
	}
	return strings.Join(out, " ")
}

func TestPlanAlter(t *testing.T) {
	col := func(name string, k model.Kind) model.Column {
		return model.Column{Name: name, Type: model.Type{Kind: k}, Nullable: name != "id"}
	}
	tbl := func(cols ...model.Column) *model.Table {
		return &model.Table{Namespace: model.Namespace{Schema: "s", Table: "t"}, PrimaryKey: []string{"id"}, Columns: cols}
	}
	id, a, b, c := col("id", model.KindInt64), col("a", model.KindText), col("b", model.KindInt32), col("c", model.KindText)
	bWide := col("b", model.KindInt64)
	a2 := a
	a2.Name = "a2"
	bAsA := b
	bAsA.Name = "a"
	from := tbl(id, a, b)
	for _, tc := range []struct {
		what    string
		ch      model.SchemaChange
		present []string
		want    string
	}{
		{"add filled", model.SchemaChange{Table: tbl(id, a, b, c), Filled: map[string]any{"c": "x"}}, []string{"id", "a", "b"}, "add:c=x"},
		{"add again", model.SchemaChange{Table: tbl(id, a, b, c), Filled: map[string]any{"c": "x"}}, []string{"id", "a", "b", "c"}, ""},
		{"drop", model.SchemaChange{Table: tbl(id, b)}, []string{"id", "a", "b"}, "drop:a"},
		{"drop again", model.SchemaChange{Table: tbl(id, b)}, []string{"id", "b"}, ""},
		{"rename", model.SchemaChange{Table: tbl(id, a2, b), Renamed: map[string]string{"a2": "a"}}, []string{"id", "a", "b"}, "rename:a>a2"},
		{"rename again", model.SchemaChange{Table: tbl(id, a2, b), Renamed: map[string]string{"a2": "a"}}, []string{"id", "a2", "b"}, ""},
		{"rename, old name re-added", model.SchemaChange{Table: tbl(id, a2, b, a), Renamed: map[string]string{"a2": "a"}}, []string{"id", "a", "b"}, "rename:a>a2 add:a=<nil>"},
		{"rename, old name re-added, again", model.SchemaChange{Table: tbl(id, a2, b, a), Renamed: map[string]string{"a2": "a"}}, []string{"id", "a", "b", "a2"}, ""},
		{"drop a, rename b to a", model.SchemaChange{Table: tbl(id, bAsA), Renamed: map[string]string{"a": "b"}}, []string{"id", "a", "b"}, "drop:a rename:b>a"},
		{"drop a, rename b to a, again", model.SchemaChange{Table: tbl(id, bAsA), Renamed: map[string]string{"a": "b"}}, []string{"id", "a"}, ""},
		{"widen", model.SchemaChange{Table: tbl(id, a, bWide)}, []string{"id", "a", "b"}, "retype:b>b:true"},
		{"unchanged", model.SchemaChange{Table: tbl(id, a, b)}, []string{"id", "a", "b"}, ""},
		{"case only (folded)", model.SchemaChange{Table: tbl(id, col("A", model.KindText), b), Renamed: map[string]string{"A": "a"}}, []string{"id", "a", "b"}, ""},
	} {
		p, err := PlanAlter(from, tc.ch, tc.present, strings.ToLower)
		if err != nil {
			t.Errorf("%s: %v", tc.what, err)
			continue
		}
		if got := steps(p); got != tc.want {
			t.Errorf("%s: steps %q, want %q", tc.what, got, tc.want)
		}
	}
	narrow := tbl(id, a, col("b", model.KindInt16))
	p, err := PlanAlter(from, model.SchemaChange{Table: narrow}, []string{"id", "a", "b"}, nil)
	if err != nil || steps(p) != "retype:b>b:false" {
		t.Errorf("narrowing: %v, %v", p, err)
	}
	rekeyed := tbl(id, a, b)
	rekeyed.PrimaryKey = []string{"a"}
	if _, err := PlanAlter(from, model.SchemaChange{Table: rekeyed}, []string{"id", "a", "b"}, nil); err == nil || !strings.Contains(err.Error(), "primary key") {
		t.Errorf("a key change: %v", err)
	}
	both := model.SchemaChange{Table: tbl(id, a2, b), Renamed: map[string]string{"a2": "a"}}
	if _, err := PlanAlter(from, both, []string{"id", "a", "a2", "b"}, nil); err == nil || !strings.Contains(err.Error(), "both names") {
		t.Errorf("a rename whose names are both there: %v", err)
	}
}
