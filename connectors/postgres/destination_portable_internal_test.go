package postgres

import (
	"strings"
	"testing"

	"github.com/ferrydb/ferry/model"
)

// Constraints in the portable form get PostgreSQL definitions; a
// PostgreSQL source's are left as they are.
func TestPortableConstraint(t *testing.T) {
	orders := model.Namespace{Schema: "shop", Table: "orders"}
	for _, c := range []struct {
		in               model.Constraint
		name, def, index string
	}{
		{model.Constraint{Kind: model.ConstraintUnique, Table: orders, Name: "code", Columns: []string{"code", "Region"}},
			"orders_code", `UNIQUE ("code", "Region")`, `btree ("code", "Region")`},
		{model.Constraint{Kind: model.ConstraintForeignKey, Table: orders, Name: "fk", Columns: []string{"customer_id"},
			RefTable: model.Namespace{Schema: "shop", Table: "customers"}, RefColumns: []string{"id"}, OnDelete: "CASCADE", OnUpdate: "NO ACTION"},
			"fk", `FOREIGN KEY ("customer_id") REFERENCES "shop"."customers"("id") ON DELETE CASCADE`, ""},
		{model.Constraint{Kind: model.ConstraintCheck, Table: orders, Name: "qty", PortableCheck: `"qty" > 0`},
			"qty", `CHECK ("qty" > 0)`, ""},
		{model.Constraint{Kind: model.ConstraintCheck, Table: orders, Name: "pg", Definition: "CHECK ((qty > 0))", Check: "(qty > 0)", PortableCheck: `( "qty" > 0 )`},
			"pg", "CHECK ((qty > 0))", ""},
	} {
		got := portableConstraint(c.in)
		if got.Name != c.name || got.Definition != c.def || got.Index != c.index {
			t.Errorf("portableConstraint(%+v) = name %q definition %q index %q; want %q %q %q", c.in, got.Name, got.Definition, got.Index, c.name, c.def, c.index)
		}
	}
	long := portableIndexName(model.Namespace{Schema: "s", Table: strings.Repeat("t", 40)}, strings.Repeat("é", 20))
	if len(long) > maxIdent || !strings.HasPrefix(long, strings.Repeat("t", 40)+"_é") || !strings.HasSuffix(long, "é") {
		t.Errorf("portableIndexName of a long name: %q (%d bytes)", long, len(long))
	}
}

// A portable default reads as the column's type at PostgreSQL.
func TestConstantSQL(t *testing.T) {
	for _, c := range []struct {
		k    model.Constant
		kind model.Kind
		want string
	}{
		{model.Constant{Value: "it's"}, model.KindText, "'it''s'"},
		{model.Constant{Value: "1"}, model.KindBool, "'1'"},
		{model.Constant{Now: true}, model.KindTimestamp, "LOCALTIMESTAMP"},
		{model.Constant{Now: true}, model.KindTimestampTZ, "CURRENT_TIMESTAMP"},
		{model.Constant{Now: true}, model.KindDate, "CURRENT_DATE"},
	} {
		if got := constantSQL(c.k, c.kind); got != c.want {
			t.Errorf("constantSQL(%+v, %v) = %q, want %q", c.k, c.kind, got, c.want)
		}
	}
}
