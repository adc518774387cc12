package transform

import (
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// users is a keyed table with the kinds the tests read.
func users() *model.Table {
	return &model.Table{
		Namespace: model.Namespace{Schema: "shop", Table: "users"},
		Columns: []model.Column{
			{Name: "id", Type: model.Type{Kind: model.KindInt64, Native: "bigint"}, Identity: &model.Identity{Always: true}},
			{Name: "email", Type: model.Type{Kind: model.KindText, Native: "character varying(50)", Length: 50}, Nullable: true, Collation: `pg_catalog."C"`},
			{Name: "name", Type: model.Type{Kind: model.KindText}, Nullable: true},
			{Name: "active", Type: model.Type{Kind: model.KindBool}, Nullable: true, Default: "true"},
			{Name: "balance", Type: model.Type{Kind: model.KindDecimal, Precision: 10, Scale: 2, Native: "numeric(10,2)"}, Nullable: true},
			{Name: "born", Type: model.Type{Kind: model.KindDate}, Nullable: true},
		},
		PrimaryKey: []string{"id"},
		Indexes: []model.Index{
			{Name: "users_email", Unique: true, Columns: []string{"email"}, Native: "btree (email)"},
			{Name: "users_name", Columns: []string{"name"}, Native: "btree (name) WHERE (active IS TRUE)"},
			{Name: "users_lower_email", Native: "btree (lower((email)::text))"},
			{Name: "users_active_name", Columns: []string{"active", "name"}, Native: "btree (active, name)"},
		},
	}
}

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// alice is a row of users.
func alice() model.Row {
	return model.Row{int64(7), "alice@example.com", "Alice", true, "12.50", day(1990, 5, 17)}
}

// events is a table without a primary key whose changes carry the whole
// old row.
func events() *model.Table {
	return &model.Table{
		Namespace: model.Namespace{Schema: "shop", Table: "events"},
		Columns: []model.Column{
			{Name: "kind", Type: model.Type{Kind: model.KindText}},
			{Name: "amount", Type: model.Type{Kind: model.KindInt32}, Nullable: true},
		},
		FullRowIdentity: true,
	}
}

func bind(t *testing.T, s Spec, table *model.Table) *Table {
	t.Helper()
	if s.Salt == "" {
		s.Salt = salt
	}
	r, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	x, err := r.For(table)
	if err != nil {
		t.Fatalf("For: %v", err)
	}
	if x == nil {
		t.Fatalf("For(%s): no rule matched", table.Namespace)
	}
	return x
}

// refused checks that binding s to table is a configuration error (exit
// code 2) whose message holds every one of want.
func refused(t *testing.T, s Spec, table *model.Table, want ...string) {
	t.Helper()
	if s.Salt == "" {
		s.Salt = salt
	}
	r, err := Parse(s)
	if err == nil {
		_, err = r.For(table)
	}
	isConfig(t, err, want...)
}

func isConfig(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one saying %q", want)
	}
	if !errs.IsConfigError(err) {
		t.Errorf("error %q is not a configuration error (exit code 2)", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

func names(t *model.Table) []string {
	out := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		out[i] = c.Name
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
