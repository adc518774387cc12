package errs

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
)

// PostgreSQL's keyword/value connection strings (libpq's "conninfo"):
//
//	host=db.internal port=5432 user=app password='s3 cr/t' dbname=shop sslmode=require
//
// libpq users type them, and their passwords need no percent-encoding. ferry
// accepts them wherever it takes a URL, as the postgres connector: ParseURL
// turns one into the equivalent postgres:// URL, and the flow's name and
// identity come from the string itself, redacted.

// kvStartRe is how a keyword/value string begins; no URL does (a URL's
// scheme is followed by ':').
var kvStartRe = regexp.MustCompile(`^\s*[A-Za-z_][A-Za-z0-9_]*\s*=`)

// IsKeywordValue reports whether raw is a keyword/value connection string
// rather than a URL.
func IsKeywordValue(raw string) bool { return kvStartRe.MatchString(raw) }

// kvPair is one keyword=value; start and end are the value's byte range in
// the string as written (quotes included).
type kvPair struct {
	key, value string
	start, end int
	// loose is where the value would end were it not quoted: a password
	// typed unquoted that starts with a quote ('' then more) is read as an
	// empty quoted value and a pair after it, but the person meant all of
	// it. Secrets are hidden to the wider of the two ends.
	loose int
}

// unquotedEnd returns where a value starting at start ends when read
// without quotes: at the first unescaped space.
func unquotedEnd(s string, start int) int {
	pos := start
	for pos < len(s) && !strings.ContainsRune(kvSpace, rune(s[pos])) {
		if s[pos] == '\\' {
			pos++
		}
		pos++
	}
	return min(pos, len(s))
}

// secretEnd is where a secret value's text ends, whichever way it is read.
func (p kvPair) secretEnd() int { return max(p.end, p.loose) }

const kvSpace = " \t\n\r\v\f"

// errKVQuote and errKVPair say what is wrong without quoting the string,
// which may hold a password.
var (
	errKVQuote = errors.New("a quoted value has no closing quote")
	errKVPair  = errors.New("is followed by text that is not keyword=value")
)

// keywordValuePairs reads s the way libpq does: keywords and values
// separated by '=' and optional spaces, pairs by spaces, a value quoted with
// '...' when it holds spaces, a backslash escaping the next character. It
// returns the pairs it could read and, when it stopped early, the text it
// could not read (which may be the rest of a password).
func keywordValuePairs(s string) (pairs []kvPair, tail string) {
	pairs, rest, _ := parseKeywordValue(s)
	return pairs, rest
}

func parseKeywordValue(s string) (pairs []kvPair, tail string, err error) {
	pos := len(s) - len(strings.TrimLeft(s, kvSpace))
	for pos < len(s) {
		eq := strings.IndexByte(s[pos:], '=')
		if eq < 0 {
			return pairs, s[pos:], errKVPair
		}
		key := strings.Trim(s[pos:pos+eq], kvSpace)
		if key == "" || strings.ContainsAny(key, kvSpace) {
			return pairs, s[pos:], errKVPair
		}
		pos += eq + 1
		pos += len(s[pos:]) - len(strings.TrimLeft(s[pos:], kvSpace))
		start := pos
		var val strings.Builder
		if pos < len(s) && s[pos] == '\'' {
			pos++
			closed := false
			for pos < len(s) {
				c := s[pos]
				if c == '\\' && pos+1 < len(s) {
					val.WriteByte(s[pos+1])
					pos += 2
					continue
				}
				pos++
				if c == '\'' {
					closed = true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				// The whole rest is the unclosed value.
				pairs = append(pairs, kvPair{key: key, value: val.String(), start: start, end: len(s)})
				return pairs, "", errKVQuote
			}
		} else {
			for pos < len(s) && !strings.ContainsRune(kvSpace, rune(s[pos])) {
				if s[pos] == '\\' {
					pos++
					if pos == len(s) {
						break // a trailing backslash escapes the end: dropped
					}
				}
				val.WriteByte(s[pos])
				pos++
			}
		}
		pairs = append(pairs, kvPair{key: key, value: val.String(), start: start, end: pos, loose: unquotedEnd(s, start)})
		pos += len(s[pos:]) - len(strings.TrimLeft(s[pos:], kvSpace))
	}
	return pairs, "", nil
}

// redactKeywordValue replaces every secret value, and anything after the
// point the string stops being keyword/value (it may be the rest of a
// password with a space in it).
func redactKeywordValue(s string) string {
	pairs, tail, _ := parseKeywordValue(s)
	var b strings.Builder
	last := 0
	for _, p := range pairs {
		if !isSecretParam(p.key) {
			continue
		}
		if p.start < last {
			// Inside the secret before, read loosely.
			last = max(last, p.secretEnd())
			continue
		}
		b.WriteString(s[last:p.start])
		b.WriteString("xxxxx")
		last = p.secretEnd()
	}
	cut := len(s) - len(tail)
	if tail != "" && cut >= last {
		b.WriteString(s[last:cut])
		b.WriteString("xxxxx")
		return b.String()
	}
	b.WriteString(s[last:])
	return b.String()
}

// KeywordValueURL turns a keyword/value string into the postgres:// URL that
// means the same to pgx: user and password in the userinfo, a single TCP
// host and port in the authority, every other keyword (a socket directory
// or a list of hosts too) as a query parameter. Its errors never quote the
// string.
func KeywordValueURL(s string) (*url.URL, error) {
	pairs, _, err := parseKeywordValue(s)
	if err != nil {
		if errors.Is(err, errKVPair) {
			after := "the start"
			if len(pairs) > 0 {
				after = "the value of " + pairs[len(pairs)-1].key
			}
			return nil, fmt.Errorf("%s %w", after, err)
		}
		return nil, err
	}
	kv := map[string]string{}
	var order []string
	for _, p := range pairs {
		if _, dup := kv[p.key]; !dup {
			order = append(order, p.key)
		}
		kv[p.key] = p.value // the last one wins, as in libpq
	}
	u := &url.URL{Scheme: "postgres", Path: "/"}
	user, hasUser := kv["user"]
	pass, hasPass := kv["password"]
	switch {
	case hasPass:
		u.User = url.UserPassword(user, pass)
	case hasUser:
		u.User = url.User(user)
	}
	host, port := kv["host"], kv["port"]
	if host != "" && !strings.ContainsAny(host, ",/") && !strings.Contains(port, ",") {
		if port != "" {
			u.Host = net.JoinHostPort(host, port)
		} else if strings.Contains(host, ":") {
			u.Host = "[" + host + "]"
		} else {
			u.Host = host
		}
		delete(kv, "host")
		delete(kv, "port")
	}
	delete(kv, "user")
	delete(kv, "password")
	// pgx decodes %XX in query values but not '+', so a space is %20.
	esc := func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
	var q []string
	for _, k := range order {
		if v, ok := kv[k]; ok {
			q = append(q, esc(k)+"="+esc(v))
		}
	}
	u.RawQuery = strings.Join(q, "&")
	return u, nil
}
