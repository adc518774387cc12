package connector_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	_ "github.com/ferrydb/ferry/connectors/mysql"
	_ "github.com/ferrydb/ferry/connectors/postgres"
	"github.com/ferrydb/ferry/errs"
)

// connStrings are the shapes a password is typed into. Port 1 refuses
// connections at once, so Open fails fast after parsing. ambiguous says
// which passwords make a shape mean something else, whoever reads it.
var connStrings = []struct {
	conn      func(pw string) string
	ambiguous func(pw string) bool
}{
	{conn: func(pw string) string { return "postgres://postgres:" + pw + "@127.0.0.1:1/t7" }},
	{conn: func(pw string) string { return "postgresql://postgres:" + pw + "@127.0.0.1:1/t7?sslmode=disable" }},
	{conn: func(pw string) string { return "postgres://postgres:" + url.PathEscape(pw) + "@127.0.0.1:1/t7" }},
	// An '&' ends a query parameter's value: password=a&b is the
	// password "a" and a parameter "b".
	{conn: func(pw string) string { return "postgres://127.0.0.1:1/t7?sslmode=disable&password=" + pw },
		ambiguous: func(pw string) bool { return strings.Contains(pw, "&") }},
	{conn: func(pw string) string { return "mysql://root:" + pw + "@127.0.0.1:1/t7" }},
	// A space ends an unquoted value: password=a b=c is the password "a"
	// and a keyword "b".
	{conn: func(pw string) string { return "host=127.0.0.1 port=1 user=postgres password=" + pw + " dbname=t7" },
		ambiguous: func(pw string) bool { return strings.ContainsAny(pw, " \t\n\r\v\f") }},
	{conn: func(pw string) string {
		q := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(pw)
		return "host=127.0.0.1 port=1 user=postgres password='" + q + "' dbname=t7"
	}},
	// root://pw@tcp(...) is a URL with the user "pw" and no password.
	{conn: func(pw string) string { return "root:" + pw + "@tcp(127.0.0.1:1)/t7" },
		ambiguous: func(pw string) bool { return strings.HasPrefix(pw, "//") }},
}

// FuzzSecretsNeverShown builds malformed and well-formed connection strings
// around a known password and checks that no error ferry can make of them
// (ParseURL, Open of the real postgres and mysql connectors) and no
// redaction shows it, and that the scrubber made of the string hides it in
// the string itself.
func FuzzSecretsNeverShown(f *testing.F) {
	for _, pw := range []string{"Sup3r/Secret", "Sup3r#Secret", "Sup3r?Secret", "123/Secret", "p@ss/w?rd#x", "Sup3rSecret",
		"a b'c\\d", "50%zz", "x:y@z", "'quoted", "é/ü", "pass word", "=@=", "//", "@"} {
		for shape := range connStrings {
			f.Add(pw, uint8(shape))
		}
	}
	f.Fuzz(func(t *testing.T, fuzzed string, shape uint8) {
		// The marker makes the password impossible to meet anywhere but
		// where it leaked (no message, host or example holds "K7Q3"), and
		// keeps it long enough to be scrubbed.
		pw := fuzzed + "K7Q3"
		if strings.ContainsAny(pw, "\x00\r\n\t") {
			// Control characters end a shell argument or a line; url.Parse
			// refuses them whatever surrounds them.
			return
		}
		cs := connStrings[int(shape)%len(connStrings)]
		if cs.ambiguous != nil && cs.ambiguous(pw) {
			return
		}
		raw := cs.conn(pw)
		leaked := func(what, text string) {
			if strings.Contains(text, pw) {
				t.Fatalf("%s of %q shows the password %q:\n%s", what, raw, pw, text)
			}
		}
		leaked("Redact", errs.Redact(raw))
		if _, _, err := connector.ParseURL(raw); err != nil {
			leaked("ParseURL's error", err.Error())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := connector.Open(ctx, raw)
		if err == nil {
			c.Close()
		} else {
			leaked("Open's error", err.Error())
		}
		leaked("Scrub", errs.NewScrubber(raw).Scrub("connect "+raw+" failed"))
	})
}
