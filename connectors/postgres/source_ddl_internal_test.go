package postgres

import "testing"

func TestMissingValue(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want *string
		err  bool
	}{
		{in: `{5}`, want: ptr("5")},
		{in: `{NULL}`},
		{in: `{"NULL"}`, want: ptr("NULL")},
		{in: `{"a \"b\", {c}"}`, want: ptr(`a "b", {c}`)},
		{in: `{"{1,2}"}`, want: ptr("{1,2}")},
		{in: `{"back\\slash"}`, want: ptr(`back\slash`)},
		{in: `{""}`, want: ptr("")},
		{in: `5`, err: true},
		{in: `{"a"`, err: true},
		{in: `{"a","b"}`, err: true},
		{in: `{"open}`, err: true},
	} {
		got, err := missingValue(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("%s: error %v", tc.in, err)
			continue
		}
		if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
			t.Errorf("%s: got %v, want %v", tc.in, deref(got), deref(tc.want))
		}
	}
}

func FuzzMissingValue(f *testing.F) {
	f.Add(`{"a \"b\""}`)
	f.Add(`{5}`)
	f.Fuzz(func(t *testing.T, s string) {
		missingValue(s) //nolint:errcheck // must not panic
	})
}

func ptr(s string) *string { return &s }

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}
