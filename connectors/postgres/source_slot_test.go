package postgres

import "testing"

func TestSlotNames(t *testing.T) {
	for flow, want := range map[string]string{
		"pg2pg":                       "ferry_pg2pg",
		"postgres-to-sqlite-0123abcd": "ferry_postgres_to_sqlite_0123abcd_",
	} {
		got := slotName(flow)
		if len(got) > 63 || !slotNameRe.MatchString(got) || got[:len(want)] != want {
			t.Errorf("slotName(%q) = %q, want a valid name starting %q", flow, got, want)
		}
	}
	if slotName("a-b") == slotName("a_b") || slotName("A") == slotName("a") {
		t.Error("distinct flows share a slot name")
	}
}
