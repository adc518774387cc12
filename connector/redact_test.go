package connector

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ferrydb/ferry/errs"
)

func TestRedact(t *testing.T) {
	cases := []struct{ in, want string }{
		{"postgres://app:s3cret@db:5432/shop?sslmode=require", "postgres://app:xxxxx@db:5432/shop?sslmode=require"},
		{"fake://?tables=3&rows=10", "fake://?tables=3&rows=10"},
		{"mysql://root@db/x", "mysql://root@db/x"},
		{"postgres://db/x?password=hunter2&sslmode=disable", "postgres://db/x?password=xxxxx&sslmode=disable"},
		{"postgres://u:p%40ss@db/x", "postgres://u:xxxxx@db/x"},
		{"postgres://u:bad pass@db/x%zz", "postgres://u:xxxxx@db/x%zz"},
		// A password holding '@' then '?' ends at the last '@', not where
		// url.Parse's query starts (the clean run's fuzzing found these).
		{"postgres://postgres:@0?=K7Q3@127.0.0.1:1/t7", "postgres://postgres:xxxxx@127.0.0.1:1/t7"},
		{"postgres://postgres:@0/x?a=K7Q3@127.0.0.1:1/t7", "postgres://postgres:xxxxx@127.0.0.1:1/t7"},
		// An unquoted password that starts with two quotes is all secret,
		// not an empty quoted value and a pair after it.
		{"host=h user=u password=''0=K7Q3 dbname=t7", "host=h user=u password=xxxxx dbname=t7"},
		{"host=h password=''password=K7Q3 dbname=t7", "host=h password=xxxxx dbname=t7"},
		// A DSN whose password starts with "/:" has no authority, whatever
		// "://" follows.
		{"root:/://K7Q3@tcp(127.0.0.1:1)/t7", "root:xxxxx@tcp(127.0.0.1:1)/t7"},
	}
	for _, c := range cases {
		if got := errs.Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if s := errs.Secrets("postgres://u:hunter2@db/x?password=other"); len(s) != 2 || s[0] != "hunter2" || s[1] != "other" {
		t.Errorf("Secrets = %v", s)
	}
}

// fixedText is what ParseURL's errors say whatever the URL: the message
// and fix of each kind of error, for URLs whose passwords are too short to
// count. A password that is one of its words ("gres" of "postgres://")
// is in the error without having leaked. It is read once the test's
// connectors are registered (after package variables are set).
var fixedText = sync.OnceValue(func() string {
	var b strings.Builder
	for _, raw := range []string{
		"", "000:pw@", "postgres://u:a/?#@ %zz\x01@h/db", "postgres://u:pw@h:x/db",
		"postgres://h/db#x", "//h/db", "zz://h", "postgres://u:p@h@:x:y/db",
		"host=h password='x", "host=h password", "host=h x=y z",
	} {
		if _, _, err := ParseURL(raw); err != nil {
			b.WriteString(err.Error())
			b.WriteString("\n")
		}
	}
	return b.String()
})

func FuzzRedact(f *testing.F) {
	for _, s := range []string{"postgres://u:pw@h/db", "fake://?rows=1", "::", "mysql://a:b@c:1/d?password=e", "%", "x://u:p@",
		// A password that is also a word of an error's fixed text ("gres"
		// of "postgres://" in the examples) is not a leak (CI's fuzzing).
		"000:gres@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out := errs.Redact(raw)
		// Where url.Parse's reading fits the string, the redacted URL
		// still parses the same; where it does not, the password is found
		// the way a person wrote it (FuzzSecretsNeverShown checks those).
		if u, err := url.Parse(raw); err == nil && u.User != nil && errs.FitsURL(raw, u) && !strings.Contains(raw, "#") {
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
		// in the error but neither in the redacted URL nor in the fixed text
		// ParseURL's errors carry has leaked.
		if _, _, err := ParseURL(raw); err != nil {
			for _, sec := range errs.Secrets(raw) {
				if len(sec) >= 4 && strings.Contains(err.Error(), sec) && !strings.Contains(fmt.Sprintf("%q", out), sec) && !strings.Contains(fixedText(), sec) {
					t.Fatalf("ParseURL(%q) error %q holds the password", raw, err)
				}
			}
		}
	})
}

// TestSecretsOfEveryForm: the secrets of every connection string ferry
// meets, well-formed or not, are found and hidden by Redact.
func TestSecretsOfEveryForm(t *testing.T) {
	cases := []struct {
		in, redacted string
		secrets      []string // each must be among errs.Secrets(in)
	}{
		{"postgres://postgres:Sup3r/Secret@127.0.0.1:1/t7", "postgres://postgres:xxxxx@127.0.0.1:1/t7", []string{"Sup3r/Secret"}},
		{"postgres://postgres:Sup3r#Secret@127.0.0.1:1/t7", "postgres://postgres:xxxxx@127.0.0.1:1/t7", []string{"Sup3r#Secret"}},
		{"postgres://postgres:Sup3r?Secret@127.0.0.1:1/t7?sslmode=disable", "postgres://postgres:xxxxx@127.0.0.1:1/t7?sslmode=disable", []string{"Sup3r?Secret"}},
		// url.Parse reads host "postgres", port 123 and a path: the '@'
		// left in the path gives it away.
		{"postgres://postgres:123/Secret@127.0.0.1:1/t7", "postgres://postgres:xxxxx@127.0.0.1:1/t7", []string{"123/Secret"}},
		{"postgres://postgres:12?Secret@127.0.0.1:1/t7", "postgres://postgres:xxxxx@127.0.0.1:1/t7", []string{"12?Secret"}},
		{"postgres://u:p@ss@h/db", "postgres://u:xxxxx@h/db", []string{"p@ss"}},
		{"postgres://u:p%40ss%2F@h/db", "postgres://u:xxxxx@h/db", []string{"p@ss/", "p%40ss%2F"}},
		{"postgres://h/db?sslpassword=k3yPass&password=p%26w", "postgres://h/db?password=xxxxx&sslpassword=xxxxx", []string{"k3yPass", "p&w", "p%26w"}},
		{"host=127.0.0.1 port=1 user=postgres password=Sup3rSecret dbname=t7", "host=127.0.0.1 port=1 user=postgres password=xxxxx dbname=t7", []string{"Sup3rSecret"}},
		{"host=h password = 'a b\\'c' dbname=t7", "host=h password = xxxxx dbname=t7", []string{"a b'c", `'a b\'c'`}},
		{"host=h sslpassword=k3y\\ pass user=u", "host=h sslpassword=xxxxx user=u", []string{"k3y pass"}},
		// Broken keyword/value strings: an unquoted space, an unclosed quote.
		{"host=h password=Sup3r Secret dbname=t7", "host=h password=xxxxx xxxxx", []string{"Sup3r", "Secret"}},
		{"host=h password='Sup3r Secret dbname=t7", "host=h password=xxxxx", []string{"Sup3r Secret dbname=t7"}},
		// A Go MySQL DSN has no scheme.
		{"root:Sup3rSecret@tcp(127.0.0.1:3306)/t7", "root:xxxxx@tcp(127.0.0.1:3306)/t7", []string{"Sup3rSecret"}},
	}
	for _, c := range cases {
		if got := errs.Redact(c.in); got != c.redacted {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.redacted)
		}
		got := errs.Secrets(c.in)
		for _, s := range c.secrets {
			if !slices.Contains(got, s) {
				t.Errorf("Secrets(%q) = %q lacks %q", c.in, got, s)
			}
		}
		sc := errs.NewScrubber(c.in)
		if msg := sc.Scrub("failed: " + c.in); strings.Contains(msg, c.secrets[0]) {
			t.Errorf("Scrub keeps %q: %s", c.secrets[0], msg)
		}
	}
}

// TestParseURLExplainsUnencodedPasswords: a URL whose password holds what a
// URL must percent-encode is refused with a message naming the characters
// and their encoding, never the password (url.Parse's own error quoted its
// start as a port: invalid port ":Sup3r" after host).
func TestParseURLExplainsUnencodedPasswords(t *testing.T) {
	// No connector is registered here: the password is judged before the
	// scheme is looked up.
	cases := []struct{ in, want string }{
		{"pgtestonly://postgres:Sup3r/Secret@127.0.0.1:1/t7", `holds '/'`},
		{"pgtestonly://postgres:Sup3r#Secret@127.0.0.1:1/t7", `'#' as %23`},
		{"pgtestonly://postgres:Sup3r?Secret@127.0.0.1:1/t7", `'?' as %3F`},
		{"pgtestonly://postgres:123/Secret@127.0.0.1:1/t7", `'/' as %2F`},
		{"pgtestonly://postgres:Sup3r%zzSecret@127.0.0.1:1/t7", `'%' as %25`},
		{"pgtestonly://postgres:Sup3r^Secret@127.0.0.1:1/t7", `other characters`},
		{"root:Sup3rSecret@tcp(127.0.0.1:3306)/t7", "is not a URL"},
	}
	for _, c := range cases {
		_, _, err := ParseURL(c.in)
		if err == nil || !errs.IsConfigError(err) {
			t.Errorf("ParseURL(%q) = %v, want a errs.ConfigError", c.in, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, c.want) || strings.Contains(msg, "Secret") || strings.Contains(msg, "Sup3r") {
			t.Errorf("ParseURL(%q): %s\nwant %q and no part of the password", c.in, msg, c.want)
		}
	}
	// Encoded, the same password is fine: only the scheme is unknown.
	if _, _, err := ParseURL("pgtestonly://postgres:" + url.PathEscape("Sup3r/Se#c?ret") + "@127.0.0.1:1/t7"); err == nil || !strings.Contains(err.Error(), `unknown scheme "pgtestonly"`) {
		t.Fatalf("want only the scheme refused, got %v", err)
	}
}

// TestKeywordValueMeansTheSameURL: the postgres URL a keyword/value string
// becomes gives pgx the same settings as the string itself.
func TestKeywordValueMeansTheSameURL(t *testing.T) {
	for _, kv := range []string{
		"host=127.0.0.1 port=5433 user=postgres password=Sup3r/Se#c?r@t dbname=t7",
		"host=db.internal user=app password='a b\\'c\\\\d' dbname='my db' sslmode=disable application_name=ferry",
		"host = ::1 port = 5432 dbname=x password=p connect_timeout=3",
		"host=/var/run/postgresql dbname=t7 user=u",
		"host=h1,h2 port=5432,5433 dbname=t7 password=pw%zz",
		"dbname=t7",
	} {
		u, err := errs.KeywordValueURL(kv)
		if err != nil {
			t.Fatalf("%q: %v", kv, err)
		}
		want, err := pgconn.ParseConfig(kv)
		if err != nil {
			t.Fatalf("pgx refuses %q: %v", kv, err)
		}
		got, err := pgconn.ParseConfig(u.String())
		if err != nil {
			t.Fatalf("pgx refuses %q (from %q): %v", u, kv, err)
		}
		if got.Host != want.Host || got.Port != want.Port || got.User != want.User || got.Password != want.Password || got.Database != want.Database ||
			fmt.Sprint(got.RuntimeParams) != fmt.Sprint(want.RuntimeParams) || len(got.Fallbacks) != len(want.Fallbacks) || fmt.Sprint(got.TLSConfig == nil) != fmt.Sprint(want.TLSConfig == nil) {
			t.Errorf("%q became %q:\n got %s:%d user %q password %q db %q %v (%d fallbacks)\nwant %s:%d user %q password %q db %q %v (%d fallbacks)", kv, u,
				got.Host, got.Port, got.User, got.Password, got.Database, got.RuntimeParams, len(got.Fallbacks),
				want.Host, want.Port, want.User, want.Password, want.Database, want.RuntimeParams, len(want.Fallbacks))
		}
	}
}
