package postgres

import (
	"fmt"
	"strings"
)

// arrayDecoder decodes an array literal with the element decoder. A
// multi-dimensional array ({{1,2},{3,4}}) decodes to nested []any. Arrays
// with other lower bounds than 1 have no canonical form and are refused.
func arrayDecoder(elem decoder) decoder {
	var decode func(items []any) ([]any, error)
	decode = func(items []any) ([]any, error) {
		out := make([]any, len(items))
		for i, it := range items {
			var err error
			switch x := it.(type) {
			case string:
				out[i], err = elem(x)
			case []any:
				out[i], err = decode(x)
			}
			if err != nil {
				return nil, fmt.Errorf("array element %d: %w", i+1, err)
			}
		}
		return out, nil
	}
	return func(s string) (any, error) {
		items, err := parseArray(s)
		if err != nil {
			return nil, err
		}
		return decode(items)
	}
}

// maxArrayDims is PostgreSQL's MAXDIM.
const maxArrayDims = 6

// parseArray splits an array literal into its elements: a string, nil for
// NULL, or for a multi-dimensional array a []any sub-array.
func parseArray(s string) ([]any, error) {
	if strings.HasPrefix(s, "[") {
		return nil, fmt.Errorf("array %q has explicit bounds; ferry copies arrays whose dimensions start at 1 only", truncate(s))
	}
	p := arrayParser{s: s}
	out, err := p.array(1)
	if err != nil {
		return nil, err
	}
	if p.i != len(s) {
		return nil, fmt.Errorf("invalid array %q", truncate(s))
	}
	return out, nil
}

type arrayParser struct {
	s string
	i int
}

func (p *arrayParser) bad() error { return fmt.Errorf("invalid array %q", truncate(p.s)) }

// array reads "{...}" at p.i; depth counts the dimensions so far.
func (p *arrayParser) array(depth int) ([]any, error) {
	if depth > maxArrayDims {
		return nil, fmt.Errorf("array %q has more than %d dimensions", truncate(p.s), maxArrayDims)
	}
	if p.i >= len(p.s) || p.s[p.i] != '{' {
		return nil, p.bad()
	}
	p.i++
	out := []any{}
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return out, nil
	}
	subs := 0
	for {
		if p.i >= len(p.s) {
			return nil, p.bad()
		}
		switch p.s[p.i] {
		case '{':
			sub, err := p.array(depth + 1)
			if err != nil {
				return nil, err
			}
			out = append(out, sub)
			subs++
		case '"':
			v, err := p.quoted()
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		default:
			var b strings.Builder
			for p.i < len(p.s) && p.s[p.i] != ',' && p.s[p.i] != '}' {
				if p.s[p.i] == '\\' && p.i+1 < len(p.s) {
					p.i++
				}
				b.WriteByte(p.s[p.i])
				p.i++
			}
			if v := b.String(); strings.EqualFold(v, "NULL") {
				out = append(out, nil)
			} else {
				out = append(out, v)
			}
		}
		if p.i >= len(p.s) {
			return nil, p.bad()
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			// PostgreSQL's arrays are rectangular: sub-arrays or elements.
			if subs != 0 && subs != len(out) {
				return nil, p.bad()
			}
			return out, nil
		default:
			return nil, p.bad()
		}
	}
}

// quoted reads a double-quoted element at p.i.
func (p *arrayParser) quoted() (string, error) {
	var b strings.Builder
	p.i++
	for {
		if p.i >= len(p.s) {
			return "", fmt.Errorf("invalid array %q: unterminated quote", truncate(p.s))
		}
		c := p.s[p.i]
		if c == '\\' && p.i+1 < len(p.s) {
			b.WriteByte(p.s[p.i+1])
			p.i += 2
			continue
		}
		p.i++
		if c == '"' {
			return b.String(), nil
		}
		b.WriteByte(c)
	}
}
