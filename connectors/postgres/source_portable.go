package postgres

import (
	"strconv"
	"strings"
)

// A check PostgreSQL prints (pg_get_expr) is also given in the portable
// SQL of model/portable.go when it is no more than comparisons and logic
// over columns and constants, for a destination of another engine.

// checkWords are the keywords a portable check may use.
var checkWords = map[string]bool{"AND": true, "OR": true, "NOT": true, "IS": true, "NULL": true,
	"BETWEEN": true, "TRUE": true, "FALSE": true}

// literalCasts are the casts pg_get_expr adds to constants, which mean
// nothing for the comparison elsewhere.
var literalCasts = map[string]bool{"text": true, "integer": true, "bigint": true, "smallint": true,
	"numeric": true, "character varying": true, "bpchar": true, "boolean": true}

// portableCheck rewrites a check as PostgreSQL prints it into the portable
// SQL, or says it cannot: a function call, a cast other than of a constant,
// an array, PostgreSQL's own operators (~~ for LIKE, ||) do not pass.
func portableCheck(expr string) (string, bool) {
	toks, ok := pgTokens(expr)
	if !ok {
		return "", false
	}
	var out []string
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t.kind == 'q':
			out = append(out, quoteIdent(t.text))
		case t.kind == 's' || t.kind == 'n':
			if t.kind == 's' {
				out = append(out, quoteLiteral(t.text))
			} else {
				out = append(out, t.text)
			}
			// A constant's cast: ::text, ::character varying.
			if i+2 < len(toks) && toks[i+1].text == "::" && toks[i+2].kind == 'w' {
				typ := strings.ToLower(toks[i+2].text)
				n := 2
				if typ == "character" && i+3 < len(toks) && strings.EqualFold(toks[i+3].text, "varying") {
					typ, n = "character varying", 3
				}
				if !literalCasts[typ] {
					return "", false
				}
				i += n
			}
		case t.kind == 'w':
			w := strings.ToUpper(t.text)
			if checkWords[w] {
				out = append(out, w)
				continue
			}
			if i+1 < len(toks) && toks[i+1].text == "(" {
				return "", false // a function
			}
			out = append(out, quoteIdent(t.text)) // a column
		default:
			switch t.text {
			case "(", ")", ",", "=", "<", ">", "<=", ">=", "<>", "!=", "+", "-", "*", "/":
				out = append(out, t.text)
			default:
				return "", false
			}
		}
	}
	return strings.Join(out, " "), len(out) > 0
}

// pgToken is a token of a PostgreSQL expression: w a bare word, q a quoted
// name, s a string constant, n a number, p an operator or punctuation.
type pgToken struct {
	kind byte
	text string
}

// pgTokens splits an expression pg_get_expr printed; false for what it
// does not know (E'x' strings, dollar quoting, parameters).
func pgTokens(s string) ([]pgToken, bool) {
	var out []pgToken
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\n' || c == '\t':
			i++
		case c == '"' || c == '\'':
			var b strings.Builder
			i++
			closed := false
			for i < len(s) {
				if s[i] == c {
					if i+1 < len(s) && s[i+1] == c {
						b.WriteByte(c)
						i += 2
						continue
					}
					i++
					closed = true
					break
				}
				b.WriteByte(s[i])
				i++
			}
			if !closed {
				return nil, false
			}
			kind := byte('s')
			if c == '"' {
				kind = 'q'
			}
			out = append(out, pgToken{kind, b.String()})
		case c >= '0' && c <= '9':
			j := i
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
				j++
			}
			if _, err := strconv.ParseFloat(s[i:j], 64); err != nil {
				return nil, false
			}
			out = append(out, pgToken{'n', s[i:j]})
			i = j
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80:
			j := i
			for j < len(s) && (s[j] == '_' || s[j] == '$' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9' || s[j] >= 0x80) {
				j++
			}
			if j < len(s) && s[j] == '\'' {
				return nil, false // E'...', B'...'
			}
			out = append(out, pgToken{'w', s[i:j]})
			i = j
		case strings.ContainsRune("()[],", rune(c)):
			out = append(out, pgToken{'p', string(c)})
			i++
		default:
			// An operator: PostgreSQL's are runs of these characters.
			j := i
			for j < len(s) && strings.ContainsRune("+-*/<>=~!@#%^&|`?:", rune(s[j])) {
				j++
			}
			if j == i {
				return nil, false
			}
			out = append(out, pgToken{'p', s[i:j]})
			i = j
		}
	}
	return out, true
}
