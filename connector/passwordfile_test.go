package connector

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/errs"
)

// A password_file= parameter becomes the URL's password, trimmed, and
// leaves the URL; the path, never the password, is in what Redact shows,
// and Secrets lists the password so every scrubber removes it.
func TestPasswordFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	if err := os.WriteFile(file, []byte("  s3cret-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	raw := "postgres://app@db:5432/shop?sslmode=disable&password_file=" + file + "&slot=s1"
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	got, err := withPasswordFile(u)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := got.User.Password(); p != "s3cret-from-file" || got.User.Username() != "app" {
		t.Errorf("userinfo %v", got.User)
	}
	if got.RawQuery != "sslmode=disable&slot=s1" {
		t.Errorf("query %q", got.RawQuery)
	}
	if r := errs.Redact(raw); strings.Contains(r, "s3cret") || !strings.Contains(r, file) {
		t.Errorf("redacted %q", r)
	}
	if s := errs.NewScrubber(raw).Scrub("auth failed for s3cret-from-file"); strings.Contains(s, "s3cret") {
		t.Errorf("scrubbed %q", s)
	}
	kv := "host=db user=app dbname=shop password_file=" + file
	if errs.PasswordFile(kv) != file || !strings.Contains(strings.Join(errs.Secrets(kv), " "), "s3cret-from-file") {
		t.Errorf("keyword/value: %q, %v", errs.PasswordFile(kv), errs.Secrets(kv))
	}

	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ raw, want string }{
		{"postgres://app:inline@db/shop?password_file=" + file, "both a password and password_file"},
		{"postgres://app@db/shop?password_file=" + filepath.Join(dir, "missing"), "no such file"},
		{"postgres://app@db/shop?password_file=" + empty, "the file is empty"},
		{"postgres://app@db/shop?password_file=", "names no file"},
	} {
		u, _ := url.Parse(bad.raw)
		_, err := withPasswordFile(u)
		if !errs.IsConfigError(err) || !strings.Contains(err.Error(), bad.want) || strings.Contains(err.Error(), "inline") {
			t.Errorf("%s: %v, want a configuration error saying %q", bad.raw, err, bad.want)
		}
	}
}
