package errs

// This file is the one place that knows where the secrets of a connection
// string lie. Connection strings come in three shapes:
//
//   - URLs: scheme://user:password@host:port/db?params, the password possibly
//     percent-encoded, secrets possibly in query parameters (password=,
//     sslpassword=, token=, ...);
//   - URLs as people type them, with a password holding characters a URL must
//     percent-encode but does not ('/', '?', '#', '@', ' ', a lone '%'), and
//     DSNs without a scheme (user:pass@tcp(host:3306)/db). url.Parse refuses
//     them or splits them in the wrong places, so the password is found the
//     way a person reads it: from the userinfo's first ':' to the last '@';
//   - PostgreSQL's keyword/value strings (host=h user=u password='a b'),
//     see keyvalue.go.
//
// Redact shows a connection string without its secrets; Secrets lists them
// for a Scrubber (scrub.go), which removes them from any other text, with
// the password a password_file= parameter names (passwordfile.go).

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

// secretParams are query parameters (and keywords) that carry secrets.
var secretParams = []string{"password", "passwd", "pass", "pwd", "secret", "token", "sslpassword", "access_key", "secret_key"}

func isSecretParam(k string) bool {
	for _, s := range secretParams {
		if strings.EqualFold(strings.TrimSpace(k), s) {
			return true
		}
	}
	return false
}

var (
	schemeRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)
	// looseParamRe finds secret parameters in a string url.Parse refused, or
	// whose query it reads differently (a bad escape, a '#').
	// A value runs to the next '&': a '#' in it is an unencoded part of
	// the secret far more often than the start of a fragment.
	looseParamRe = regexp.MustCompile(`(?i)([?&;]\s*(?:password|passwd|pass|pwd|secret|token|sslpassword|access_key|secret_key)\s*=)([^&]*)`)
)

// Redact returns raw with every secret replaced by "xxxxx", safe to print,
// log or persist (flow names and identities are built from it). It works on
// any connection string, malformed ones included.
func Redact(raw string) string { return redact(raw, false) }

// RedactAsBefore is Redact as ferry spelled it before 2026-12-06, when a
// URL whose query holds an '@' was read strictly (and a DSN whose password
// starts with "/:" too). Flow names and identities were built from it, so
// a flow started then is found by it. Its output may hold a password
// (which is why Redact changed): compare it, hash it, never show or store
// it.
func RedactAsBefore(raw string) string { return redact(raw, true) }

func redact(raw string, before bool) string {
	if IsKeywordValue(raw) {
		return redactKeywordValue(raw)
	}
	u, err := url.Parse(raw)
	// A '#' ends url.Parse's query, but in a connection string it is far
	// more often part of a secret: read such strings loosely too.
	if err != nil || !fitsURL(raw, u, before) || strings.Contains(raw, "#") {
		// Parameters first: an '@' in a secret parameter is not the end
		// of a userinfo.
		out := looseParamRe.ReplaceAllString(raw, "${1}xxxxx")
		if s, e, ok := PasswordSpan(out); ok {
			out = out[:s] + "xxxxx" + out[e:]
		}
		return out
	}
	// A URL that parses keeps its exact text apart from the secrets: flow
	// names hash the redacted URL, so this output must not change.
	out := raw
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			out = redactUserinfo(raw)
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		changed := false
		for k := range q {
			if isSecretParam(k) {
				q.Set(k, "xxxxx")
				changed = true
			}
		}
		if changed {
			out = strings.Replace(out, "?"+u.RawQuery, "?"+q.Encode(), 1)
		}
	}
	// u.Query drops a parameter whose value has a bad escape
	// (password=50%zz); the loose reading does not.
	return looseParamRe.ReplaceAllString(out, "${1}xxxxx")
}

// Secrets returns the secret strings in raw, each as written and as decoded
// (a password typed p%40ss is both p%40ss and p@ss in messages), so a
// Scrubber can remove them from text a driver or a parser produced. Where
// raw is ambiguous, both readings' secrets are listed: scrubbing too much
// is harmless, too little is a leak.
func Secrets(raw string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(ss ...string) {
		for _, s := range ss {
			if s != "" && !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	// A password kept in a file is as secret as one written in the URL.
	add(fileSecret(raw))
	if IsKeywordValue(raw) {
		pairs, tail := keywordValuePairs(raw)
		for _, p := range pairs {
			if isSecretParam(p.key) {
				add(p.value, raw[p.start:p.end], raw[p.start:p.secretEnd()])
			}
		}
		// What follows a broken pair may be the rest of an unquoted
		// password with a space in it.
		add(strings.TrimSpace(tail))
		add(strings.Fields(tail)...)
		return out
	}
	u, err := url.Parse(raw)
	if err == nil {
		if u.User != nil {
			if p, ok := u.User.Password(); ok {
				add(p, rawUserinfoPassword(raw))
			}
		}
		for k, vs := range u.Query() {
			if isSecretParam(k) {
				add(vs...)
			}
		}
		for _, seg := range strings.Split(u.RawQuery, "&") {
			if k, v, ok := strings.Cut(seg, "="); ok && isSecretParam(k) {
				add(v)
			}
		}
	}
	if err != nil || !FitsURL(raw, u) {
		if s, e, ok := PasswordSpan(raw); ok {
			add(raw[s:e])
			if d, err := url.PathUnescape(raw[s:e]); err == nil {
				add(d)
			}
		}
	}
	for _, m := range looseParamRe.FindAllStringSubmatch(raw, -1) {
		add(strings.TrimSpace(m[2]))
		if d, err := url.QueryUnescape(m[2]); err == nil {
			add(strings.TrimSpace(d))
		}
	}
	return out
}

// FitsURL reports whether url.Parse's reading of raw accounts for every
// '@' in it. An '@' after the host (in the path, in a query parameter's
// name or value, in the fragment) or in an opaque
// URL means the userinfo did not end
// where url.Parse thought: the password holds a '/', '?' or '#' that should
// have been percent-encoded, and what url.Parse calls host, port or path is
// part of it.
func FitsURL(raw string, u *url.URL) bool { return fitsURL(raw, u, false) }

// fitsURL is FitsURL, or with before its rules until 2026-12-06
// (RedactAsBefore).
func fitsURL(raw string, u *url.URL, before bool) bool {
	if before {
		return fitsURLBefore(raw, u)
	}
	if !strings.Contains(raw, "@") {
		return true
	}
	if strings.Contains(u.Opaque, "@") || strings.Contains(u.EscapedFragment(), "@") {
		return false
	}
	// A path may hold an '@' only after a host or in scheme:///path form;
	// in user:/pass@host (user:/://pass@host too) it is the end of a
	// userinfo.
	rest := raw
	if u.Scheme != "" {
		rest = raw[len(u.Scheme)+1:]
	}
	if (u.Host != "" || u.User != nil || !strings.HasPrefix(rest, "//")) && strings.Contains(u.EscapedPath(), "@") {
		return false
	}
	// An '@' in a query is far more often the end of a userinfo whose
	// password holds a '?' (scheme://user:1?a=b@host/db reads as host
	// "user", port 1 and a query; scheme://user:@0?=x@host/db as host "0";
	// user:?a=b@tcp(h)/db as the scheme "user" and a query alone) than part
	// of a parameter's value. Read loosely, a value with an '@' hides a
	// little more than it must, which is harmless; read strictly, a
	// password would show.
	if strings.Contains(u.RawQuery, "@") {
		return false
	}
	return true
}

// fitsURLBefore is FitsURL as it was until 2026-12-06: an '@' in a query
// was taken for part of a value unless the query came straight after the
// authority or a parameter's name held it, and any "://" in the string
// allowed an '@' in a path.
func fitsURLBefore(raw string, u *url.URL) bool {
	if !strings.Contains(raw, "@") {
		return true
	}
	if strings.Contains(u.Opaque, "@") || strings.Contains(u.EscapedFragment(), "@") {
		return false
	}
	if (u.Host != "" || u.User != nil || !strings.Contains(raw, "://")) && strings.Contains(u.EscapedPath(), "@") {
		return false
	}
	if u.Path == "" && (u.User == nil || u.Host == "") && strings.Contains(u.RawQuery, "@") {
		return false
	}
	for _, seg := range strings.Split(u.RawQuery, "&") {
		if k, _, _ := strings.Cut(seg, "="); strings.Contains(k, "@") {
			return false
		}
	}
	return true
}

// PasswordSpan finds the password as a person wrote it: the userinfo runs
// from after "scheme://" (or from the start, for a DSN without a scheme) to
// the last '@', and the password from the userinfo's first ':'. It returns
// the password's byte range in raw.
func PasswordSpan(raw string) (start, end int, ok bool) {
	begin := 0
	if i := strings.Index(raw, "://"); i > 0 && schemeRe.MatchString(raw[:i]) {
		begin = i + 3
	}
	at := strings.LastIndex(raw[begin:], "@")
	if at < 0 {
		return 0, 0, false
	}
	colon := strings.Index(raw[begin:begin+at], ":")
	if colon < 0 {
		return 0, 0, false
	}
	return begin + colon + 1, begin + at, true
}

// userinfoPassword returns the range of the password in a URL's raw text
// the way url.Parse splits it: the userinfo ends at the authority's last
// '@', the password starts after the userinfo's first ':'.
func userinfoPassword(raw string) (start, end int, ok bool) {
	begin := strings.Index(raw, "//")
	if begin < 0 {
		return 0, 0, false
	}
	begin += 2
	stop := len(raw)
	if i := strings.IndexAny(raw[begin:], "/?#"); i >= 0 {
		stop = begin + i
	}
	at := strings.LastIndex(raw[begin:stop], "@")
	if at < 0 {
		return 0, 0, false
	}
	colon := strings.Index(raw[begin:begin+at], ":")
	if colon < 0 {
		return 0, 0, false
	}
	return begin + colon + 1, begin + at, true
}

func redactUserinfo(raw string) string {
	s, e, ok := userinfoPassword(raw)
	if !ok {
		return raw
	}
	return raw[:s] + "xxxxx" + raw[e:]
}

func rawUserinfoPassword(raw string) string {
	s, e, ok := userinfoPassword(raw)
	if !ok {
		return ""
	}
	return raw[s:e]
}

// SchemeOf returns the scheme a connection string selects, lower-case:
// "postgres" for a keyword/value string, "" when it names none.
func SchemeOf(raw string) string {
	if IsKeywordValue(raw) {
		return "postgres"
	}
	s, _, ok := strings.Cut(raw, ":")
	if !ok || !schemeRe.MatchString(s) {
		return ""
	}
	return strings.ToLower(s)
}

// Shown is a URL as messages show it: redacted, and cut to its first 200
// bytes, so a hostile or mistaken megabyte-long URL is not echoed whole.
func Shown(raw string) string {
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
