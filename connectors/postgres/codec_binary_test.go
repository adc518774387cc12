package postgres

import (
	"strings"
	"testing"

	"github.com/ferrydb/ferry/model"
)

// FuzzNumericBinary checks that a decimal written in numeric's binary form
// reads back with the same value and the same number of fraction digits.
func FuzzNumericBinary(f *testing.F) {
	for _, s := range []string{"0", "-1.50", "0.00001234", "123456789.000100", "9999999999999999999999999999.9999999999", "-0.0", "10000", "NaN", "-Infinity"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		s = strings.TrimSpace(s)
		enc, err := encNumeric(nil, s)
		if err != nil {
			return
		}
		back, err := decNumeric(enc[4:])
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		got := back.(string)
		if model.NormalizeDecimal(got) != model.NormalizeDecimal(s) && !(got == "0" || model.NormalizeDecimal(got) == "0") {
			t.Fatalf("%q read back as %q", s, got)
		}
		_, frac, _, _ := splitDecimal(s)
		_, gfrac, _, _ := splitDecimal(got)
		if len(frac) != len(gfrac) && !strings.ContainsAny(s, "eE") && got != "NaN" && !strings.HasSuffix(got, "Infinity") {
			t.Fatalf("%q read back as %q: scale changed", s, got)
		}
	})
}
