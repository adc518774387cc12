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
)

// Opener opens a connector from a parsed URL.
type Opener func(ctx context.Context, u *url.URL) (Connector, error)

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

// ParseURL parses a connector URL and checks its scheme is known. Its errors
// never contain the URL's password.
func ParseURL(raw string) (*url.URL, *Registration, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, nil, &ConfigError{Msg: "empty URL", Fix: "give a URL such as " + exampleList()}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, nil, &ConfigError{Msg: fmt.Sprintf("malformed URL %q: %s", shown(raw), redactErr(err, raw)), Fix: "URLs look like " + exampleList()}
	}
	if u.Scheme == "" {
		return nil, nil, &ConfigError{Msg: fmt.Sprintf("URL %q has no scheme", shown(raw)), Fix: "URLs look like " + exampleList()}
	}
	r, ok := Lookup(u.Scheme)
	if !ok {
		return nil, nil, &ConfigError{Msg: fmt.Sprintf("unknown scheme %q in %q", u.Scheme, shown(raw)), Fix: "known schemes: " + strings.Join(schemes(), ", ")}
	}
	return u, r, nil
}

// Open parses and opens a connector URL.
func Open(ctx context.Context, raw string) (Connector, error) {
	u, r, err := ParseURL(raw)
	if err != nil {
		return nil, err
	}
	c, err := r.Open(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", shown(raw), err)
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
		return ue.Err.Error()
	}
	msg := err.Error()
	for _, s := range Secrets(raw) {
		msg = strings.ReplaceAll(msg, s, "xxxxx")
	}
	return msg
}

// shown is a URL as messages show it: redacted, and cut to its first 200
// bytes, so a hostile or mistaken megabyte-long URL is not echoed whole.
func shown(raw string) string {
	const limit = 200
	s := Redact(raw)
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s...(%d bytes)", s[:cut], len(s))
}
