package file

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/ferrydb/ferry/model"
)

// jsonlKeys pre-encodes each column's `"name":` prefix.
func jsonlKeys(cols []model.Column) ([][]byte, error) {
	keys := make([][]byte, len(cols))
	for i, c := range cols {
		k, err := appendJSONString(nil, c.Name)
		if err != nil {
			return nil, fmt.Errorf("column name %q: %w", c.Name, err)
		}
		keys[i] = append(k, ':')
	}
	return keys, nil
}

// appendJSONLRow appends row as one line holding a JSON object whose keys are
// the column names in column order (encoding/json would sort a map's keys).
func appendJSONLRow(buf []byte, cols []model.Column, keys [][]byte, row model.Row) ([]byte, error) {
	buf = append(buf, '{')
	for i, c := range cols {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, keys[i]...)
		if err := checkValue(c.Type, row[i]); err != nil {
			return nil, fmt.Errorf("column %q: %w", c.Name, err)
		}
		j, err := model.ToJSON(c.Type, row[i])
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", c.Name, err)
		}
		if buf, err = appendJSON(buf, j); err != nil {
			return nil, fmt.Errorf("column %q: %w", c.Name, err)
		}
	}
	return append(buf, '}', '\n'), nil
}

// appendJSON appends a value produced by model.ToJSON.
func appendJSON(buf []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(buf, "null"...), nil
	case bool:
		return strconv.AppendBool(buf, x), nil
	case int64:
		return strconv.AppendInt(buf, x, 10), nil
	case json.Number:
		return append(buf, x...), nil
	case string:
		return appendJSONString(buf, x)
	case json.RawMessage:
		// A document may be pretty-printed; a JSON Lines row must fit on one
		// line. Raw newlines can only be insignificant whitespace in valid
		// JSON, so only then is the document compacted.
		if bytes.ContainsAny(x, "\r\n") {
			var out bytes.Buffer
			if err := json.Compact(&out, x); err != nil {
				return nil, fmt.Errorf("invalid JSON document: %w", err)
			}
			return append(buf, out.Bytes()...), nil
		}
		return append(buf, x...), nil
	case []any:
		buf = append(buf, '[')
		for i, e := range x {
			if i > 0 {
				buf = append(buf, ',')
			}
			var err error
			if buf, err = appendJSON(buf, e); err != nil {
				return nil, fmt.Errorf("array element %d: %w", i, err)
			}
		}
		return append(buf, ']'), nil
	}
	return nil, fmt.Errorf("no JSON form for Go type %T", v)
}

var errInvalidUTF8 = errors.New("text is not valid UTF-8, which JSON cannot hold (format=csv keeps any bytes)")

// appendJSONString appends s as a JSON string. Unlike encoding/json it does
// not escape <, > and &, and it refuses invalid UTF-8 instead of silently
// replacing it.
func appendJSONString(buf []byte, s string) ([]byte, error) {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return nil, errInvalidUTF8
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"'), nil
}

// jsonlDecoder turns lines into rows of a table.
type jsonlDecoder struct {
	cols  []model.Column
	index map[string]int
	m     map[string]json.RawMessage
}

func newJSONLDecoder(cols []model.Column) *jsonlDecoder {
	index := make(map[string]int, len(cols))
	for i, c := range cols {
		index[c.Name] = i
	}
	return &jsonlDecoder{cols: cols, index: index}
}

// decode parses one line (without its end of line). A key missing from the
// object is NULL; a key that is not a column is an error, since dropping it
// would silently lose data.
func (d *jsonlDecoder) decode(line []byte) (model.Row, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' {
		return nil, fmt.Errorf("want a JSON object, got %s", preview(line))
	}
	clear(d.m)
	if err := json.Unmarshal(line, &d.m); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	row := make(model.Row, len(d.cols))
	found := 0
	for i, c := range d.cols {
		raw, ok := d.m[c.Name]
		if !ok {
			continue
		}
		found++
		v, err := decodeJSONValue(c.Type, raw)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", c.Name, err)
		}
		row[i] = v
	}
	if found < len(d.m) {
		var unknown []string
		for k := range d.m {
			if _, ok := d.index[k]; !ok {
				unknown = append(unknown, k)
			}
		}
		slices.Sort(unknown)
		return nil, fmt.Errorf("key %q is not a column of the table", unknown[0])
	}
	return row, nil
}

// decodeJSONValue converts one JSON value to the canonical value of t.
func decodeJSONValue(t model.Type, raw json.RawMessage) (any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, fmt.Errorf("empty JSON value")
	}
	if string(raw) == "null" {
		return nil, nil
	}
	if t.Kind == model.KindJSON {
		return string(raw), nil // the document exactly as written
	}
	var j any
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		j = s
	case 't':
		j = true
	case 'f':
		j = false
	case '{', '[':
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&j); err != nil {
			return nil, err
		}
	default:
		n := json.Number(raw)
		if t.Kind == model.KindDecimal {
			// Hand-written files hold prices as numbers; their text is exact.
			j = string(n)
		} else {
			j = n
		}
	}
	v, err := model.FromJSON(t, j)
	if err != nil {
		return nil, err
	}
	return roundFloat32(t, v), nil
}

func preview(b []byte) string {
	const max = 40
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}

// inferLines is how many rows of a JSON Lines file without a schema sidecar
// decide its columns and their types.
const inferLines = 1000

// inferJSONL reads the columns of a JSON Lines file without a sidecar from its
// first inferLines rows: the union of their keys in order of first appearance;
// strings are text, integers int64 (decimal beyond int64), other numbers
// float64, booleans bool, objects and arrays json; a column whose rows mix
// kinds is json (each value kept as its JSON text), one that is always null
// is text.
func inferJSONL(r io.Reader, path string) ([]model.Column, error) {
	lr := newLineReader(r)
	var cols []model.Column
	index := map[string]int{}
	for n := 0; n < inferLines; {
		start := lr.off
		line, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		line = bytes.TrimSpace(line)
		if start == 0 {
			line = bytes.TrimPrefix(line, utf8BOM)
		}
		if len(line) == 0 {
			continue
		}
		n++
		if err := inferLine(line, &cols, index); err != nil {
			return nil, fmt.Errorf("%s: %w", locate(path, start), err)
		}
	}
	for i := range cols {
		if cols[i].Type.Kind == model.KindUnknown {
			cols[i].Type.Kind = model.KindText
		}
	}
	return cols, nil
}

func inferLine(line []byte, cols *[]model.Column, index map[string]int) error {
	if !json.Valid(line) {
		var v any
		return fmt.Errorf("invalid JSON: %w", json.Unmarshal(line, &v))
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("want a JSON object, got %s", preview(line))
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("invalid JSON: %w", err)
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("invalid JSON: object key %v is not a string", tok)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("invalid JSON in key %q: %w", key, err)
		}
		i, seen := index[key]
		if !seen {
			i = len(*cols)
			index[key] = i
			*cols = append(*cols, model.Column{Name: key, Nullable: true})
		}
		c := &(*cols)[i]
		c.Type.Kind = mergeKinds(c.Type.Kind, kindOfJSON(raw))
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	return nil
}

// kindOfJSON is the kind a JSON value suggests; KindUnknown for null.
func kindOfJSON(raw json.RawMessage) model.Kind {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return model.KindUnknown
	}
	switch raw[0] {
	case 'n':
		return model.KindUnknown
	case '"':
		return model.KindText
	case 't', 'f':
		return model.KindBool
	case '{', '[':
		return model.KindJSON
	}
	if !bytes.ContainsAny(raw, ".eE") {
		if _, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			return model.KindInt64
		}
		return model.KindDecimal
	}
	return model.KindFloat64
}

func mergeKinds(a, b model.Kind) model.Kind {
	switch {
	case a == model.KindUnknown:
		return b
	case b == model.KindUnknown || a == b:
		return a
	}
	numeric := func(k model.Kind) bool {
		return k == model.KindInt64 || k == model.KindFloat64 || k == model.KindDecimal
	}
	if numeric(a) && numeric(b) {
		if a == model.KindDecimal || b == model.KindDecimal {
			return model.KindDecimal // exact for every number
		}
		return model.KindFloat64
	}
	return model.KindJSON
}
