package postgres

import (
	"testing"

	"github.com/ferrydb/ferry/model"
)

// TestMapType: catalog types map to canonical ones, modifiers included;
// domains go as their base type, arrays by element, and types without a
// canonical kind as their text form; pseudo-types are refused.
func TestMapType(t *testing.T) {
	const (
		oidPoint     = 600
		oidPointArr  = 1017
		oidInt4Arr   = 1007
		oidMood      = 16400
		oidMoodArr   = 16399
		oidPrice     = 16410 // domain over numeric(12,2)
		oidAnyElem   = 2283
		oidNotLoaded = 99999
	)
	tc := newTypeCache()
	for _, pt := range []*pgType{
		{oid: oidInt4, typtype: 'b', name: "int4"},
		{oid: oidOID, typtype: 'b', name: "oid"},
		{oid: oidNumeric, typtype: 'b', name: "numeric"},
		{oid: oidVarchar, typtype: 'b', name: "varchar"},
		{oid: oidMoney, typtype: 'b', name: "money"},
		{oid: oidPoint, typtype: 'b', name: "point"},
		{oid: oidPointArr, typtype: 'b', name: "_point", elem: oidPoint, isArray: true},
		{oid: oidInt4Arr, typtype: 'b', name: "_int4", elem: oidInt4, isArray: true},
		{oid: oidMood, typtype: 'e', schema: "shop", name: "Mood", enumLabel: []string{"sad", "ok"}},
		{oid: oidMoodArr, typtype: 'b', name: "_Mood", elem: oidMood, isArray: true},
		{oid: oidPrice, typtype: 'd', schema: "shop", name: "price", base: oidNumeric, baseMod: (12<<16 | 2) + 4, baseNative: "numeric(12,2)"},
		{oid: oidAnyElem, typtype: 'p', name: "anyelement"},
	} {
		tc.types[pt.oid] = pt
	}
	i32 := model.Type{Kind: model.KindInt32, Native: "integer"}
	for _, c := range []struct {
		oid    uint32
		typmod int32
		native string
		want   model.Type
	}{
		{oidInt4, -1, "integer", i32},
		{oidOID, -1, "oid", model.Type{Kind: model.KindInt64, Native: "oid"}},
		{oidNumeric, (38<<16 | 10) + 4, "numeric(38,10)", model.Type{Kind: model.KindDecimal, Precision: 38, Scale: 10, Native: "numeric(38,10)"}},
		{oidNumeric, -1, "numeric", model.Type{Kind: model.KindDecimal, Native: "numeric"}},
		{oidVarchar, 24, "character varying(20)", model.Type{Kind: model.KindText, Length: 20, Native: "character varying(20)"}},
		{oidMoney, -1, "money", model.Type{Kind: model.KindDecimal, Native: "money"}},
		{oidPoint, -1, "point", model.Type{Kind: model.KindText, Native: "point", TextForm: true}},
		{oidPointArr, -1, "point[]", model.Type{Kind: model.KindText, Native: "point[]", TextForm: true}},
		{oidInt4Arr, -1, "integer[]", model.Type{Kind: model.KindArray, Elem: &i32, Native: "integer[]"}},
		{oidMood, -1, `shop."Mood"`, model.Type{Kind: model.KindEnum, EnumValues: []string{"sad", "ok"}, Native: `"shop"."Mood"`}},
		{oidMoodArr, -1, `shop."Mood"[]`, model.Type{Kind: model.KindArray, Native: `"shop"."Mood"[]`,
			Elem: &model.Type{Kind: model.KindEnum, EnumValues: []string{"sad", "ok"}, Native: `"shop"."Mood"`}}},
		{oidPrice, -1, "shop.price", model.Type{Kind: model.KindDecimal, Precision: 12, Scale: 2, Native: "numeric(12,2)"}},
	} {
		ct, err := tc.mapType(c.oid, c.typmod, c.native)
		if err != nil {
			t.Fatalf("%s: %v", c.native, err)
		}
		if ct.typ.String() != c.want.String() || ct.typ.Native != c.want.Native || ct.typ.TextForm != c.want.TextForm ||
			ct.typ.Length != c.want.Length || len(ct.typ.EnumValues) != len(c.want.EnumValues) {
			t.Errorf("%s = %s (%s) %+v, want %s (%s) %+v", c.native, ct.typ, ct.typ.Native, ct.typ, c.want, c.want.Native, c.want)
		}
		if ct.fallback != c.want.TextForm {
			t.Errorf("%s: fallback %v, want %v", c.native, ct.fallback, c.want.TextForm)
		}
		if ct.decode == nil {
			t.Errorf("%s: no decoder", c.native)
		}
	}
	for _, oid := range []uint32{oidAnyElem, oidNotLoaded} {
		if ct, err := tc.mapType(oid, -1, "x"); err == nil {
			t.Errorf("type %d mapped to %s, want an error", oid, ct.typ)
		}
	}
	if got := elemNative("numeric(12,2)[]"); got != "numeric(12,2)" {
		t.Errorf("elemNative = %q", got)
	}
}
