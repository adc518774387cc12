package connector

import (
	"net/url"
	"regexp"
	"strings"
)

// secretParams are query parameters that carry secrets in connector URLs.
var secretParams = []string{"password", "passwd", "pass", "secret", "token", "sslpassword", "access_key", "secret_key"}

var userinfoRe = regexp.MustCompile(`(//[^/@:]*:)[^@/]*@`)

// Redact returns raw with any password replaced by "xxxxx", safe to print,
// log or persist. It works on URLs that do not parse too.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return userinfoRe.ReplaceAllString(raw, "${1}xxxxx@")
	}
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
			for _, s := range secretParams {
				if strings.EqualFold(k, s) {
					q.Set(k, "xxxxx")
					changed = true
				}
			}
		}
		if changed {
			out = strings.Replace(out, "?"+u.RawQuery, "?"+q.Encode(), 1)
		}
	}
	return out
}

// redactUserinfo replaces the password of the authority the way url.Parse
// splits it: the userinfo ends at the authority's last '@', the password
// starts after the userinfo's first ':'.
func redactUserinfo(raw string) string {
	start := strings.Index(raw, "//")
	if start < 0 {
		return raw
	}
	start += 2
	end := len(raw)
	if i := strings.IndexAny(raw[start:], "/?#"); i >= 0 {
		end = start + i
	}
	at := strings.LastIndex(raw[start:end], "@")
	if at < 0 {
		return raw
	}
	userinfo := raw[start : start+at]
	colon := strings.Index(userinfo, ":")
	if colon < 0 {
		return raw
	}
	return raw[:start+colon+1] + "xxxxx" + raw[start+at:]
}

// Secrets returns the secret strings in raw (passwords), so a caller can scrub
// them from text a driver produced.
func Secrets(raw string) []string {
	var out []string
	u, err := url.Parse(raw)
	if err != nil {
		if m := userinfoRe.FindStringSubmatch(raw); m != nil {
			i := strings.Index(raw, m[0])
			out = append(out, raw[i+len(m[1]):i+len(m[0])-1])
		}
		return out
	}
	if u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			out = append(out, p)
		}
	}
	for k, vs := range u.Query() {
		for _, s := range secretParams {
			if strings.EqualFold(k, s) {
				for _, v := range vs {
					if v != "" {
						out = append(out, v)
					}
				}
			}
		}
	}
	return out
}
