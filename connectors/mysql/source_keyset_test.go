package mysql

import (
	"testing"

	"github.com/ferrydb/ferry/model"
)

func TestKeysetConditions(t *testing.T) {
	tbl := &model.Table{Namespace: model.Namespace{Schema: "s", Table: "t"}, PrimaryKey: []string{"a", "b"}, Columns: []model.Column{
		{Name: "a", Type: model.Type{Kind: model.KindDecimal, Precision: 30, Scale: 2, Native: "decimal(30,2)"}},
		{Name: "b", Type: model.Type{Kind: model.KindEnum, EnumValues: []string{"x", "y"}, Native: "enum('x','y')"}},
	}}
	ks, err := keysetFor(tbl)
	if err != nil {
		t.Fatal(err)
	}
	cond, args, err := ks.cond(">", []any{"1.50", "y"})
	if err != nil {
		t.Fatal(err)
	}
	want := "(`a` >= CAST(? AS DECIMAL(30,2)) AND (`a` > CAST(? AS DECIMAL(30,2)) OR `a` = CAST(? AS DECIMAL(30,2)) AND `b` > ?))"
	if cond != want || len(args) != 4 || args[3] != int64(2) {
		t.Fatalf("cond = %s %v\nwant %s", cond, args, want)
	}
	enc, err := ks.encode([]any{"1.50", "y"})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := ks.decode(enc)
	if err != nil || dec[0] != "1.50" || dec[1] != "y" {
		t.Fatalf("key %s decodes to %v, %v", enc, dec, err)
	}
}
