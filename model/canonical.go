package model

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"
)

// AppendCanonical appends an unambiguous, deterministic encoding of a value of
// type t (a first byte tells NULL 0, a value 1, an Infinity 2, a sub-array 3
// and Unchanged 0xff apart): equal values (as a user would judge them: 1.50 and 1.5, {"a":1,"b":2}
// and {"b":2,"a":1}) encode to equal bytes. verify hashes it, and CDC folding
// keys on it. The encoding is not stable across ferry versions.
func AppendCanonical(buf []byte, t Type, v any) ([]byte, error) {
	if v == nil {
		return append(buf, 0), nil
	}
	if IsUnchanged(v) {
		return append(buf, 0xff), nil
	}
	if inf, ok := v.(Infinity); ok && IsTimeKind(t.Kind) {
		return append(buf, 2, byte(inf)), nil
	}
	buf = append(buf, 1)
	switch t.Kind {
	case KindBool:
		b, ok := v.(bool)
		if !ok {
			return nil, typeErr(t, v)
		}
		if b {
			return append(buf, 1), nil
		}
		return append(buf, 0), nil
	case KindInt16, KindInt32, KindInt64:
		i, ok := v.(int64)
		if !ok {
			return nil, typeErr(t, v)
		}
		return binary.BigEndian.AppendUint64(buf, uint64(i)), nil
	case KindFloat32, KindFloat64:
		f, ok := v.(float64)
		if !ok {
			return nil, typeErr(t, v)
		}
		if math.IsNaN(f) {
			f = math.NaN()
		}
		return binary.BigEndian.AppendUint64(buf, math.Float64bits(f)), nil
	case KindDecimal:
		s, ok := v.(string)
		if !ok {
			return nil, typeErr(t, v)
		}
		return appendBytes(buf, []byte(NormalizeDecimal(s))), nil
	case KindText, KindEnum, KindInet, KindCIDR, KindMACAddr, KindUUID:
		s, ok := v.(string)
		if !ok {
			return nil, typeErr(t, v)
		}
		return appendBytes(buf, []byte(s)), nil
	case KindBytes:
		b, ok := v.([]byte)
		if !ok {
			return nil, typeErr(t, v)
		}
		return appendBytes(buf, b), nil
	case KindJSON:
		s, ok := v.(string)
		if !ok {
			return nil, typeErr(t, v)
		}
		return appendBytes(buf, normalizeJSON(s)), nil
	case KindDate, KindTimestamp, KindTimestampTZ:
		ts, ok := v.(time.Time)
		if !ok {
			return nil, typeErr(t, v)
		}
		buf = binary.BigEndian.AppendUint64(buf, uint64(ts.Unix()))
		return binary.BigEndian.AppendUint32(buf, uint32(ts.Nanosecond())), nil
	case KindTime:
		d, ok := v.(time.Duration)
		if !ok {
			return nil, typeErr(t, v)
		}
		return binary.BigEndian.AppendUint64(buf, uint64(d)), nil
	case KindTimeTZ:
		x, ok := v.(TimeTZ)
		if !ok {
			return nil, typeErr(t, v)
		}
		buf = binary.BigEndian.AppendUint64(buf, uint64(x.Time))
		return binary.BigEndian.AppendUint32(buf, uint32(x.Offset)), nil
	case KindInterval:
		x, ok := v.(Interval)
		if !ok {
			return nil, typeErr(t, v)
		}
		buf = binary.BigEndian.AppendUint32(buf, uint32(x.Months))
		buf = binary.BigEndian.AppendUint32(buf, uint32(x.Days))
		return binary.BigEndian.AppendUint64(buf, uint64(x.Micros)), nil
	case KindArray:
		arr, ok := v.([]any)
		if !ok || t.Elem == nil {
			return nil, typeErr(t, v)
		}
		return appendArray(buf, t, arr)
	}
	return nil, fmt.Errorf("no canonical encoding for type %s", t)
}

// appendArray encodes an array's elements after its length; a sub-array of
// a multi-dimensional array is tagged 3, apart from any element's encoding.
func appendArray(buf []byte, t Type, arr []any) ([]byte, error) {
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(arr)))
	var err error
	for _, e := range arr {
		if sub, ok := e.([]any); ok && t.Elem.Kind != KindArray {
			if buf, err = appendArray(append(buf, 3), t, sub); err != nil {
				return nil, err
			}
			continue
		}
		if buf, err = AppendCanonical(buf, *t.Elem, e); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

func typeErr(t Type, v any) error {
	return fmt.Errorf("value of Go type %T is not a canonical %s", v, t)
}

func appendBytes(buf, b []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(b)))
	return append(buf, b...)
}

// normalizeJSON re-encodes a JSON document with sorted keys, no insignificant
// whitespace and exact numbers, so jsonb's and json's spellings compare equal.
func normalizeJSON(s string) []byte {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return []byte(s) // not JSON: compare verbatim
	}
	var out bytes.Buffer
	writeJSON(&out, v)
	return out.Bytes()
}

func writeJSON(w *bytes.Buffer, v any) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		w.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				w.WriteByte(',')
			}
			kb, _ := json.Marshal(k) // a string always marshals
			w.Write(kb)
			w.WriteByte(':')
			writeJSON(w, x[k])
		}
		w.WriteByte('}')
	case []any:
		w.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				w.WriteByte(',')
			}
			writeJSON(w, e)
		}
		w.WriteByte(']')
	case json.Number:
		w.WriteString(NormalizeDecimal(string(x)))
	default:
		b, _ := json.Marshal(x) // strings, bools and nil always marshal
		w.Write(b)
	}
}

// AppendRow appends the canonical encoding of every value in row.
func AppendRow(buf []byte, cols []Column, row Row) ([]byte, error) {
	var err error
	for i, c := range cols {
		if buf, err = AppendCanonical(buf, c.Type, row[i]); err != nil {
			return nil, fmt.Errorf("column %s: %w", c.Name, err)
		}
	}
	return buf, nil
}

// KeyOf returns the canonical encoding of the key columns (given by
// KeyIndexes) of row, usable as a map key.
func KeyOf(buf []byte, cols []Column, keyIdx []int, row Row) ([]byte, error) {
	var err error
	for _, i := range keyIdx {
		if buf, err = AppendCanonical(buf, cols[i].Type, row[i]); err != nil {
			return nil, fmt.Errorf("key column %s: %w", cols[i].Name, err)
		}
	}
	return buf, nil
}
