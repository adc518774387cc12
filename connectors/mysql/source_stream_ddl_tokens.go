package mysql

import (
	"strings"
)

type tokKind int

const (
	tokWord   tokKind = iota // a bare word: keyword or identifier
	tokQuoted                // a `quoted` identifier
	tokString                // 'string' or "string"
	tokNumber
	tokPunct
)

type token struct {
	kind tokKind
	text string
	// end is the offset in the statement just past the token, for the
	// statement's text after a name (a CREATE TABLE's body).
	end int
}

func (t token) isName() bool { return t.kind == tokWord || t.kind == tokQuoted }

// tokenize splits a statement into tokens, dropping comments but keeping
// the content of executable comments (/*! ... */ and /*M! ... */).
func tokenize(s string) []token {
	var out []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#' || (c == '-' && strings.HasPrefix(s[i:], "-- ")):
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case strings.HasPrefix(s[i:], "/*!") || strings.HasPrefix(s[i:], "/*M!"):
			i += 3
			if s[i-1] == 'M' {
				i++
			}
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				i++ // the version
			}
		case strings.HasPrefix(s[i:], "/*"):
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return out
			}
			i += end + 4
		case strings.HasPrefix(s[i:], "*/"):
			i += 2 // the end of an executable comment
		case c == '`':
			var b strings.Builder
			i++
			for i < len(s) {
				if s[i] == '`' {
					if i+1 < len(s) && s[i+1] == '`' {
						b.WriteByte('`')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			out = append(out, token{kind: tokQuoted, text: b.String(), end: i})
		case c == '\'' || c == '"':
			q := c
			var b strings.Builder
			i++
			for i < len(s) {
				if s[i] == '\\' && i+1 < len(s) {
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				if s[i] == q {
					if i+1 < len(s) && s[i+1] == q {
						b.WriteByte(q)
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			out = append(out, token{kind: tokString, text: b.String(), end: i})
		case c >= '0' && c <= '9':
			j := i
			for j < len(s) && (isLetter(s[j]) || s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
				j++
			}
			out = append(out, token{kind: tokNumber, text: s[i:j], end: j})
			i = j
		case isLetter(c) || c == '$' || c >= 0x80:
			j := i
			for j < len(s) && (isLetter(s[j]) || s[j] >= '0' && s[j] <= '9' || s[j] == '$' || s[j] >= 0x80) {
				j++
			}
			out = append(out, token{kind: tokWord, text: s[i:j], end: j})
			i = j
		default:
			out = append(out, token{kind: tokPunct, text: string(c), end: i + 1})
			i++
		}
	}
	return out
}
