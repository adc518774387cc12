package errs

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestShownURLsAreCut: a megabyte-long URL is not echoed whole in a
// message, the cut keeps UTF-8 valid, and the password stays hidden.
func TestShownURLsAreCut(t *testing.T) {
	long := "postgres://app:hunter2@db/shop?application_name=" + strings.Repeat("é", 100_000)
	s := Shown(long)
	if len(s) > 260 || strings.Contains(s, "hunter2") || !strings.Contains(s, "bytes)") || !strings.HasPrefix(s, "postgres://app:xxxxx@db/shop") {
		t.Fatalf("Shown: %q", s)
	}
	if !utf8.ValidString(s) {
		t.Fatalf("cut inside a character: %q", s)
	}
	if short := "fake://?tables=1"; Shown(short) != short {
		t.Fatalf("a short URL changed: %q", Shown(short))
	}
}
