package testsupport

import (
	"regexp"
	"strings"
	"testing"
)

func TestUniqueName(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		want   string // the name without its random suffix
	}{
		{"src", "src"},
		{"TestSharedServer/sub-test", "testsharedserver_sub_test"},
		{"Zoë", "zo_"},
		{"", "x"},
	} {
		got := UniqueName(tc.prefix)
		if !regexp.MustCompile(`^` + regexp.QuoteMeta(tc.want) + `_[0-9a-f]{8}$`).MatchString(got) {
			t.Errorf("UniqueName(%q) = %q, want %s_<8 hex digits>", tc.prefix, got, tc.want)
		}
	}
	if a, b := UniqueName("same"), UniqueName("same"); a == b {
		t.Errorf("two names for one prefix are both %q", a)
	}
	long := UniqueName(strings.Repeat("Long", 30))
	if len(long) != 60 || !regexp.MustCompile(`^d[a-z_]*_[0-9a-f]{8}$`).MatchString(long) {
		t.Errorf("a long prefix gave %q (%d bytes), want 60 bytes starting with a letter", long, len(long))
	}
}

func TestFreePort(t *testing.T) {
	p, err := FreePort()
	if err != nil || p <= 0 || p > 65535 {
		t.Fatalf("FreePort() = %d, %v", p, err)
	}
}
