package connector

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/ferrydb/ferry/errs"
)

// Opener opens a connector from a parsed URL.
type Opener func(ctx context.Context, u *url.URL) (Connector, error)

// OpenerOf makes a connector's Open function, which returns its own type,
// the Opener a Registration takes. A failed open is a nil Connector, never
// a nil pointer of that type inside the interface.
func OpenerOf[C Connector](open func(context.Context, *url.URL) (C, error)) Opener {
	return func(ctx context.Context, u *url.URL) (Connector, error) {
		c, err := open(ctx, u)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

// Registration describes one connector.
type Registration struct {
	Scheme string
	// Aliases are other schemes that open the same connector ("postgresql").
	Aliases []string
	// Summary says in a line what the connector is.
	Summary string
	// Example is a URL a user can start from.
	Example string
	Open    Opener
	// Prototype is a zero value of the connector's type, used to describe its
	// abilities without opening anything.
	Prototype Connector
}

var (
	mu       sync.RWMutex
	registry = map[string]*Registration{}
)

// Register adds a connector; it panics on a duplicate scheme, which is a
// programming error found at start-up.
func Register(r Registration) {
	mu.Lock()
	defer mu.Unlock()
	for _, s := range append([]string{r.Scheme}, r.Aliases...) {
		if _, dup := registry[s]; dup {
			panic("connector: scheme registered twice: " + s)
		}
		reg := r
		registry[s] = &reg
	}
}

// Registered lists the registered connectors, by scheme, without aliases.
func Registered() []Registration {
	mu.RLock()
	defer mu.RUnlock()
	var out []Registration
	for s, r := range registry {
		if s == r.Scheme {
			out = append(out, *r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Scheme < out[j].Scheme })
	return out
}

// Lookup finds the registration for a scheme.
func Lookup(scheme string) (*Registration, bool) {
	mu.RLock()
	defer mu.RUnlock()
	r, ok := registry[strings.ToLower(scheme)]
	return r, ok
}

// ParseURL parses a connector URL and checks its scheme is known. A
// PostgreSQL keyword/value string (host=h user=u password=p dbname=d) is
// taken too, as the postgres URL that means the same. Its errors never
// contain a password: they show the string redacted, and never quote what
// a parser said about a malformed one (url.Parse quotes the part of a
// password it took for a port).
func ParseURL(raw string) (*url.URL, *Registration, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, nil, &errs.ConfigError{Msg: "empty URL", Fix: "give a URL such as " + exampleList()}
	}
	if errs.IsKeywordValue(raw) {
		return parseKeywordValueURL(raw)
	}
	u, err := url.Parse(raw)
	if err != nil || !errs.FitsURL(raw, u) {
		if s, e, ok := errs.PasswordSpan(raw); ok {
			// Judge the URL with its password masked: if that reads well,
			// the password is what needs encoding; if not, the error about
			// the rest cannot quote the password.
			masked := raw[:s] + "xxxxx" + raw[e:]
			mu, merr := url.Parse(masked)
			switch {
			case merr == nil && errs.FitsURL(masked, mu):
				return nil, nil, malformedPassword(raw, raw[s:e])
			case !strings.Contains(raw, "://"):
				return nil, nil, &errs.ConfigError{Msg: fmt.Sprintf("connection string %q is not a URL", errs.Shown(raw)),
					Fix: "URLs look like " + exampleList() + " (a Go MySQL DSN user:pass@tcp(host:3306)/db is written mysql://user:pass@host:3306/db)"}
			case merr != nil:
				err = merr
			default:
				return nil, nil, &errs.ConfigError{Msg: fmt.Sprintf("malformed URL %q: the user and password end at the last '@', and what follows is not host/database", errs.Shown(raw)),
					Fix: "percent-encode '@' as %40 where it is not the end of the password"}
			}
		}
	}
	if err != nil {
		return nil, nil, &errs.ConfigError{Msg: fmt.Sprintf("malformed URL %q: %s", errs.Shown(raw), redactErr(err, raw)), Fix: "URLs look like " + exampleList()}
	}
	if strings.Contains(raw, "#") {
		// No connector reads a fragment: the '#' belongs to a password or
		// a name, and everything after it would be dropped silently.
		return nil, nil, &errs.ConfigError{Msg: fmt.Sprintf("URL %q holds a '#', which starts a URL fragment", errs.Shown(raw)), Fix: "write '#' as %23 in a password, a parameter or a name"}
	}
	if u.Scheme == "" {
		return nil, nil, &errs.ConfigError{Msg: fmt.Sprintf("URL %q has no scheme", errs.Shown(raw)), Fix: "URLs look like " + exampleList() + "; PostgreSQL also takes host=H port=5432 user=U password=P dbname=D"}
	}
	r, ok := Lookup(u.Scheme)
	if !ok {
		return nil, nil, &errs.ConfigError{Msg: fmt.Sprintf("unknown scheme %q in %q", u.Scheme, errs.Shown(raw)), Fix: "known schemes: " + strings.Join(schemes(), ", ")}
	}
	return u, r, nil
}

// malformedPassword explains a URL whose password holds characters a URL
// must percent-encode: it names the usual delimiters, never the password.
func malformedPassword(raw, password string) error {
	var held, codes []string
	for _, c := range []struct{ char, code string }{{"/", "%2F"}, {"?", "%3F"}, {"#", "%23"}, {"@", "%40"}, {" ", "%20"}} {
		if strings.Contains(password, c.char) {
			held = append(held, fmt.Sprintf("'%s'", c.char))
			codes = append(codes, fmt.Sprintf("'%s' as %s", c.char, c.code))
		}
	}
	if _, err := url.PathUnescape(password); err != nil {
		held = append(held, "a '%' not followed by two hex digits")
		codes = append(codes, "'%' as %25")
	}
	if strings.IndexFunc(password, func(r rune) bool {
		return !(r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~!$&'()*+,;=:%/?#@ ", r)))
	}) >= 0 {
		held = append(held, "other characters")
		codes = append(codes, "any other character outside A-Z a-z 0-9 - . _ ~ as %XX for each of its bytes")
	}
	if len(held) == 0 {
		held = append(held, "characters")
		codes = append(codes, "each character outside A-Z a-z 0-9 - . _ ~ as %XX")
	}
	fix := "write " + strings.Join(codes, ", ") + " in the password"
	if _, ok := Lookup("postgres"); ok {
		fix += "; PostgreSQL also takes host=H port=5432 user=U password='P' dbname=D, which needs no encoding"
	}
	return &errs.ConfigError{Msg: fmt.Sprintf("malformed URL %q: its password holds %s, which a URL must percent-encode", errs.Shown(raw), strings.Join(held, ", ")), Fix: fix}
}

// parseKeywordValueURL takes a keyword/value string as the postgres
// connector's URL.
func parseKeywordValueURL(raw string) (*url.URL, *Registration, error) {
	const fix = "write keyword=value pairs separated by spaces, and quote a value holding spaces or quotes: password='a b\\'c'"
	r, ok := Lookup("postgres")
	if !ok {
		return nil, nil, &errs.ConfigError{Msg: fmt.Sprintf("%q is a PostgreSQL keyword/value string, and this ferry has no postgres connector", errs.Shown(raw)), Fix: "known schemes: " + strings.Join(schemes(), ", ")}
	}
	u, err := errs.KeywordValueURL(raw)
	if err != nil {
		return nil, nil, &errs.ConfigError{Msg: fmt.Sprintf("PostgreSQL connection string %q: %s", errs.Shown(raw), err), Fix: fix}
	}
	return u, r, nil
}

// Open parses and opens a connector URL. A password_file= parameter is
// read here, for every connector: the connector gets the URL with the
// file's password in it and without the parameter.
func Open(ctx context.Context, raw string) (Connector, error) {
	u, r, err := ParseURL(raw)
	if err != nil {
		return nil, err
	}
	if u, err = withPasswordFile(u); err != nil {
		return nil, err
	}
	c, err := r.Open(ctx, u)
	if err != nil {
		// The connector scrubs what it knows; this catches what it missed.
		return nil, fmt.Errorf("open %s: %w", errs.Shown(raw), errs.NewScrubber(raw, u.String()).Err(err))
	}
	return c, nil
}

func schemes() []string {
	var s []string
	for _, r := range Registered() {
		s = append(s, r.Scheme)
	}
	return s
}

func exampleList() string {
	var s []string
	for _, r := range Registered() {
		if r.Example != "" {
			s = append(s, r.Example)
		}
	}
	return strings.Join(s, ", ")
}

// redactErr describes a URL parse error without quoting the URL, which
// may hold a password.
func redactErr(err error, raw string) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return errs.NewScrubber(raw).Scrub(err.Error())
}

// withPasswordFile returns u with the password its password_file= names
// put in its userinfo and the parameter removed (the other parameters
// stay as written); u itself when it names none.
func withPasswordFile(u *url.URL) (*url.URL, error) {
	q := u.Query()
	if !q.Has(errs.PasswordFileParam) {
		return u, nil
	}
	path := q.Get(errs.PasswordFileParam)
	if path == "" {
		return nil, errs.BadConfig(fmt.Sprintf("%s= names no file", errs.PasswordFileParam), "give the path of the file holding the password: password_file=/run/secrets/db-password")
	}
	user := ""
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			return nil, errs.BadConfig(fmt.Sprintf("URL %q has both a password and %s", errs.Shown(u.String()), errs.PasswordFileParam), "keep one: password_file keeps the password off the command line")
		}
		user = u.User.Username()
	}
	p, err := errs.ReadPasswordFile(path)
	if err != nil {
		return nil, err
	}
	out := *u
	out.User = url.UserPassword(user, p)
	var keep []string
	for _, seg := range strings.Split(u.RawQuery, "&") {
		k, _, _ := strings.Cut(seg, "=")
		if name, err := url.QueryUnescape(k); err == nil && name == errs.PasswordFileParam {
			continue
		}
		keep = append(keep, seg)
	}
	out.RawQuery = strings.Join(keep, "&")
	return &out, nil
}
