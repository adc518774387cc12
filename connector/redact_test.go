package connector

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	cases := []struct{ in, want string }{
		{"postgres://app:s3cret@db:5432/shop?sslmode=require", "postgres://app:xxxxx@db:5432/shop?sslmode=require"},
		{"fake://?tables=3&rows=10", "fake://?tables=3&rows=10"},
		{"mysql://root@db/x", "mysql://root@db/x"},
		{"postgres://db/x?password=hunter2&sslmode=disable", "postgres://db/x?password=xxxxx&sslmode=disable"},
		{"postgres://u:p%40ss@db/x", "postgres://u:xxxxx@db/x"},
		{"postgres://u:bad pass@db/x%zz", "postgres://u:xxxxx@db/x%zz"},
	}
	for _, c := range cases {
		if got := Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if s := Secrets("postgres://u:hunter2@db/x?password=other"); len(s) != 2 || s[0] != "hunter2" || s[1] != "other" {
		t.Errorf("Secrets = %v", s)
	}
}

func FuzzRedact(f *testing.F) {
	for _, s := range []string{"postgres://u:pw@h/db", "fake://?rows=1", "::", "mysql://a:b@c:1/d?password=e", "%", "x://u:p@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out := Redact(raw)
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok && p != "xxxxx" {
				ru, err := url.Parse(out)
				if err != nil {
					t.Fatalf("Redact(%q) = %q, which no longer parses: %v", raw, out, err)
				}
				if rp, _ := ru.User.Password(); rp != "xxxxx" {
					t.Fatalf("Redact(%q) = %q keeps the password %q", raw, out, rp)
				}
			}
		}
		// An error may quote only what Redact leaves: a password that appears
		// in the error but not in the redacted URL has leaked.
		if _, _, err := ParseURL(raw); err != nil {
			for _, sec := range Secrets(raw) {
				if len(sec) >= 4 && strings.Contains(err.Error(), sec) && !strings.Contains(fmt.Sprintf("%q", out), sec) {
					t.Fatalf("ParseURL(%q) error %q holds the password", raw, err)
				}
			}
		}
	})
}
