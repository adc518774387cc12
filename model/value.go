package model

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Coerce converts a loosely typed driver value (int, []byte, string, time.Time,
// ...) to the canonical representation of t. Connectors call it on what their
// driver returns; verify calls it to compare a destination's values with the
// source's types.
func Coerce(t Type, v any) (any, error) {
	if v == nil || IsUnchanged(v) {
		return v, nil
	}
	if inf, ok := v.(Infinity); ok && IsTimeKind(t.Kind) {
		return inf, nil
	}
	switch t.Kind {
	case KindBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			return parseBool(x)
		case []byte:
			return parseBool(string(x))
		}
		if i, ok := asInt(v); ok {
			return i != 0, nil
		}
	case KindInt16, KindInt32, KindInt64:
		if i, ok := asInt(v); ok {
			return i, nil
		}
		switch x := v.(type) {
		case string:
			return strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		case []byte:
			return strconv.ParseInt(strings.TrimSpace(string(x)), 10, 64)
		case float64:
			if x == math.Trunc(x) && math.Abs(x) < 1<<63 {
				return int64(x), nil
			}
		}
	case KindDecimal:
		switch x := v.(type) {
		case string:
			return checkDecimal(x)
		case []byte:
			return checkDecimal(string(x))
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64), nil
		case float32:
			return strconv.FormatFloat(float64(x), 'f', -1, 32), nil
		}
		if i, ok := asInt(v); ok {
			return strconv.FormatInt(i, 10), nil
		}
		if u, ok := v.(uint64); ok {
			return strconv.FormatUint(u, 10), nil
		}
	case KindFloat32, KindFloat64:
		switch x := v.(type) {
		case float64:
			return x, nil
		case float32:
			return float64(x), nil
		case string:
			return parseFloatKind(x, t.Kind)
		case []byte:
			return parseFloatKind(string(x), t.Kind)
		}
		if i, ok := asInt(v); ok {
			return float64(i), nil
		}
	case KindText, KindEnum, KindInet, KindCIDR, KindMACAddr:
		switch x := v.(type) {
		case string:
			return x, nil
		case []byte:
			return string(x), nil
		}
	case KindJSON:
		switch x := v.(type) {
		case string:
			return x, nil
		case []byte:
			return string(x), nil
		case json.RawMessage:
			return string(x), nil
		default:
			b, err := json.Marshal(x)
			if err != nil {
				return nil, err
			}
			return string(b), nil
		}
	case KindUUID:
		switch x := v.(type) {
		case string:
			return parseUUID(x)
		case []byte:
			if len(x) == 16 {
				return formatUUID(x), nil
			}
			return parseUUID(string(x))
		case [16]byte:
			return formatUUID(x[:]), nil
		}
	case KindBytes:
		switch x := v.(type) {
		case []byte:
			return x, nil
		case string:
			return []byte(x), nil
		}
	case KindDate:
		switch x := v.(type) {
		case time.Time:
			y, m, d := x.Date()
			return time.Date(y, m, d, 0, 0, 0, 0, time.UTC), nil
		case string:
			return ParseText(t, x)
		case []byte:
			return ParseText(t, string(x))
		}
	case KindTime:
		switch x := v.(type) {
		case time.Duration:
			return x, nil
		case string:
			return ParseText(t, x)
		case []byte:
			return ParseText(t, string(x))
		}
	case KindTimeTZ:
		switch x := v.(type) {
		case TimeTZ:
			return x, nil
		case string:
			return ParseText(t, x)
		case []byte:
			return ParseText(t, string(x))
		}
	case KindTimestamp:
		switch x := v.(type) {
		case time.Time:
			y, m, d := x.Date()
			return time.Date(y, m, d, x.Hour(), x.Minute(), x.Second(), x.Nanosecond(), time.UTC), nil
		case string:
			return ParseText(t, x)
		case []byte:
			return ParseText(t, string(x))
		}
	case KindTimestampTZ:
		switch x := v.(type) {
		case time.Time:
			return x.UTC(), nil
		case string:
			return ParseText(t, x)
		case []byte:
			return ParseText(t, string(x))
		}
	case KindInterval:
		switch x := v.(type) {
		case Interval:
			return x, nil
		case string:
			return ParseText(t, x)
		case []byte:
			return ParseText(t, string(x))
		}
	case KindArray:
		if t.Elem == nil {
			return nil, fmt.Errorf("array type without element type")
		}
		switch x := v.(type) {
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				et := *t.Elem
				if _, sub := e.([]any); sub && t.Elem.Kind != KindArray {
					et = t // a sub-array of a multi-dimensional array
				}
				c, err := Coerce(et, e)
				if err != nil {
					return nil, fmt.Errorf("array element %d: %w", i, err)
				}
				out[i] = c
			}
			return out, nil
		case string:
			return ParseText(t, x)
		case []byte:
			return ParseText(t, string(x))
		}
	}
	return nil, fmt.Errorf("cannot convert %T to %s", v, t)
}

func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case int16:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	case uint:
		if uint64(x) <= math.MaxInt64 {
			return int64(x), true
		}
	}
	return 0, false
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "t", "true", "1", "y", "yes", "on":
		return true, nil
	case "f", "false", "0", "n", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("invalid boolean %q", s)
}

func parseFloat(s string) (float64, error) {
	switch strings.TrimSpace(s) {
	case "NaN", "nan":
		return math.NaN(), nil
	case "Infinity", "inf", "+Inf", "+Infinity":
		return math.Inf(1), nil
	case "-Infinity", "-inf", "-Inf":
		return math.Inf(-1), nil
	}
	return strconv.ParseFloat(strings.TrimSpace(s), 64)
}

// parseFloatKind parses a float and rounds it to float32 for a float32
// column, so its shortest spelling reads back as the same value.
func parseFloatKind(s string, k Kind) (float64, error) {
	f, err := parseFloat(s)
	if err == nil && k == KindFloat32 {
		f = float64(float32(f))
	}
	return f, err
}

func checkDecimal(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "NaN", "Infinity", "-Infinity":
		return s, nil
	}
	if _, ok := new(big.Rat).SetString(s); !ok {
		return "", fmt.Errorf("invalid decimal %q", s)
	}
	return s, nil
}

// NormalizeDecimal returns the shortest exact spelling of a decimal: no
// exponent, no trailing fractional zeros, no "-0". Two decimals are equal
// exactly when their normalized spellings are.
func NormalizeDecimal(s string) string {
	switch s {
	case "NaN", "Infinity", "-Infinity":
		return s
	}
	if out, ok := plainDecimal(s); ok {
		return out
	}
	return normalizeDecimalRat(s)
}

// normalizeDecimalRat is NormalizeDecimal for any spelling big.Rat reads
// (exponents, a leading '+' or '.'); s itself when it reads none.
func normalizeDecimalRat(s string) string {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return s
	}
	if r.IsInt() {
		return r.Num().String()
	}
	// A decimal's denominator is a product of 2s and 5s: find the scale.
	scale := 0
	den := new(big.Int).Set(r.Denom())
	ten := big.NewInt(10)
	for scale < 1000 {
		scale++
		if new(big.Int).Mod(new(big.Int).Exp(ten, big.NewInt(int64(scale)), nil), den).Sign() == 0 {
			break
		}
	}
	out := r.FloatString(scale)
	if strings.Contains(out, ".") {
		out = strings.TrimRight(strings.TrimRight(out, "0"), ".")
	}
	return out
}

// plainDecimal normalizes a decimal spelled [-]digits[.digits] (what MySQL
// and PostgreSQL print) without big-number arithmetic: no trailing
// fractional zeros, no leading integer zeros, no "-0". ok is false for any
// other spelling.
func plainDecimal(s string) (string, bool) {
	neg := strings.HasPrefix(s, "-")
	body := strings.TrimPrefix(s, "-")
	intPart, frac, hasDot := strings.Cut(body, ".")
	if intPart == "" || (hasDot && frac == "") {
		return "", false
	}
	for i := 0; i < len(intPart); i++ {
		if intPart[i] < '0' || intPart[i] > '9' {
			return "", false
		}
	}
	for i := 0; i < len(frac); i++ {
		if frac[i] < '0' || frac[i] > '9' {
			return "", false
		}
	}
	intPart = strings.TrimLeft(intPart, "0")
	if intPart == "" {
		intPart = "0"
	}
	frac = strings.TrimRight(frac, "0")
	out := intPart
	if frac != "" {
		out += "." + frac
	}
	if neg && out != "0" {
		out = "-" + out
	}
	return out, true
}

func parseUUID(s string) (string, error) {
	h := strings.ToLower(strings.Trim(strings.TrimSpace(s), "{}"))
	h = strings.ReplaceAll(h, "-", "")
	if len(h) != 32 {
		return "", fmt.Errorf("invalid uuid %q", s)
	}
	b := make([]byte, 16)
	for i := 0; i < 16; i++ {
		v, err := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		if err != nil {
			return "", fmt.Errorf("invalid uuid %q", s)
		}
		b[i] = byte(v)
	}
	return formatUUID(b), nil
}

func formatUUID(b []byte) string {
	const hx = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hx[c>>4], hx[c&15])
	}
	return string(out)
}

const (
	dateLayout      = "2006-01-02"
	timeLayout      = "15:04:05.999999999"
	timestampLayout = "2006-01-02T15:04:05.999999999"
)

// FormatText renders a canonical value as ferry's text form: the form used in
// CSV files, cursors and error messages. ParseText is its inverse.
func FormatText(t Type, v any) (string, error) {
	if v == nil {
		return "", fmt.Errorf("NULL has no text form")
	}
	if inf, ok := v.(Infinity); ok && IsTimeKind(t.Kind) {
		return inf.String(), nil
	}
	switch t.Kind {
	case KindBool:
		if v.(bool) {
			return "true", nil
		}
		return "false", nil
	case KindInt16, KindInt32, KindInt64:
		return strconv.FormatInt(v.(int64), 10), nil
	case KindDecimal, KindText, KindEnum, KindInet, KindCIDR, KindMACAddr, KindJSON, KindUUID:
		return v.(string), nil
	case KindFloat32, KindFloat64:
		return formatFloat(v.(float64), t.Kind), nil
	case KindBytes:
		return base64.StdEncoding.EncodeToString(v.([]byte)), nil
	case KindDate:
		return v.(time.Time).Format(dateLayout), nil
	case KindTime:
		return formatTimeOfDay(v.(time.Duration)), nil
	case KindTimeTZ:
		x := v.(TimeTZ)
		return formatTimeOfDay(x.Time) + FormatOffset(x.Offset), nil
	case KindTimestamp:
		return v.(time.Time).Format(timestampLayout), nil
	case KindTimestampTZ:
		return v.(time.Time).UTC().Format(time.RFC3339Nano), nil
	case KindInterval:
		x := v.(Interval)
		return fmt.Sprintf("P%dM%dDT%sS", x.Months, x.Days, formatMicros(x.Micros)), nil
	case KindArray:
		j, err := ToJSON(t, v)
		if err != nil {
			return "", err
		}
		b, err := json.Marshal(j)
		return string(b), err
	}
	return "", fmt.Errorf("type %s has no text form", t)
}

func formatFloat(f float64, k Kind) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	if k == KindFloat32 {
		return strconv.FormatFloat(f, 'g', -1, 32)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// formatTimeOfDay is the text form of a time of day, to the nanosecond.
func formatTimeOfDay(d time.Duration) string {
	if d == 24*time.Hour {
		return "24:00:00" // PostgreSQL's end of day
	}
	return time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Add(d).Format(timeLayout)
}

// FormatTimeOfDay renders a time of day to the nanosecond, as
// HH:MM:SS[.fraction] without trailing zeros ("24:00:00" for the end of the
// day), for a destination that stores times as text or SQL literals. It
// refuses a duration outside 00:00:00-24:00:00, which no time of day is.
func FormatTimeOfDay(d time.Duration) (string, error) {
	if d < 0 || d > 24*time.Hour {
		return "", fmt.Errorf("time of day %s is outside 00:00:00-24:00:00", d)
	}
	h, m := d/time.Hour, (d%time.Hour)/time.Minute
	s, ns := (d%time.Minute)/time.Second, d%time.Second
	out := fmt.Sprintf("%02d:%02d:%02d", h, m, s)
	if ns != 0 {
		out += strings.TrimRight(fmt.Sprintf(".%09d", ns), "0")
	}
	return out, nil
}

// FormatOffset renders a zone offset in seconds east of UTC as +HH:MM, with
// :SS when it has seconds: the offset of a time with time zone's text form.
func FormatOffset(sec int32) string {
	sign := '+'
	if sec < 0 {
		sign, sec = '-', -sec
	}
	s := fmt.Sprintf("%c%02d:%02d", sign, sec/3600, (sec%3600)/60)
	if sec%60 != 0 {
		s += fmt.Sprintf(":%02d", sec%60)
	}
	return s
}

func formatMicros(us int64) string {
	neg := us < 0
	if neg {
		us = -us
	}
	s := strconv.FormatInt(us/1e6, 10)
	if frac := us % 1e6; frac != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%06d", frac), "0")
	}
	if neg {
		s = "-" + s
	}
	return s
}

// ParseText parses ferry's text form of a value of type t.
func ParseText(t Type, s string) (any, error) {
	if IsTimeKind(t.Kind) {
		if inf, ok := parseInfinity(s); ok {
			return inf, nil
		}
	}
	switch t.Kind {
	case KindBool:
		return parseBool(s)
	case KindInt16, KindInt32, KindInt64:
		return strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	case KindDecimal:
		return checkDecimal(s)
	case KindText, KindEnum, KindInet, KindCIDR, KindMACAddr, KindJSON:
		return s, nil
	case KindUUID:
		return parseUUID(s)
	case KindFloat32, KindFloat64:
		return parseFloatKind(s, t.Kind)
	case KindBytes:
		return base64.StdEncoding.DecodeString(s)
	case KindDate:
		d, err := parseTimeLayout(dateLayout, strings.TrimSpace(s))
		if err != nil {
			// Accept a timestamp spelling of a date (drivers return them).
			if ts, err2 := parseAnyTimestamp(s); err2 == nil {
				y, m, dd := ts.Date()
				return time.Date(y, m, dd, 0, 0, 0, 0, time.UTC), nil
			}
			return nil, fmt.Errorf("invalid date %q", s)
		}
		return d, nil
	case KindTime:
		return parseTimeOfDay(s)
	case KindTimeTZ:
		s = strings.TrimSpace(s)
		i := strings.LastIndexAny(s, "+-Z")
		if i < 0 {
			return nil, fmt.Errorf("invalid time with zone %q: no offset", s)
		}
		d, err := parseTimeOfDay(s[:i])
		if err != nil {
			return nil, err
		}
		off, err := parseOffset(s[i:])
		if err != nil {
			return nil, fmt.Errorf("invalid time with zone %q: %w", s, err)
		}
		return TimeTZ{Time: d, Offset: off}, nil
	case KindTimestamp:
		ts, err := parseAnyTimestamp(s)
		if err != nil {
			return nil, err
		}
		y, m, d := ts.Date()
		return time.Date(y, m, d, ts.Hour(), ts.Minute(), ts.Second(), ts.Nanosecond(), time.UTC), nil
	case KindTimestampTZ:
		ts, err := parseAnyTimestamp(s)
		if err != nil {
			return nil, err
		}
		return ts.UTC(), nil
	case KindInterval:
		var iv Interval
		var secs string
		if _, err := fmt.Sscanf(strings.TrimSpace(s), "P%dM%dDT%s", &iv.Months, &iv.Days, &secs); err != nil || !strings.HasSuffix(secs, "S") {
			return nil, fmt.Errorf("invalid interval %q: want P<months>M<days>DT<seconds>S", s)
		}
		us, err := parseMicros(strings.TrimSuffix(secs, "S"))
		if err != nil {
			return nil, fmt.Errorf("invalid interval %q: %w", s, err)
		}
		iv.Micros = us
		return iv, nil
	case KindArray:
		var raw []any
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("invalid array %q: %w", s, err)
		}
		return FromJSON(t, raw)
	}
	return nil, fmt.Errorf("type %s has no text form", t)
}

func parseAnyTimestamp(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, timestampLayout, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999-07", "2006-01-02 15:04:05.999999999", dateLayout} {
		if ts, err := parseTimeLayout(layout, s); err == nil {
			return ts, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid timestamp %q", s)
}

func parseTimeOfDay(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	ts, err := time.Parse("15:04:05.999999999", s)
	if err != nil {
		if s == "24:00:00" {
			return 24 * time.Hour, nil
		}
		return 0, fmt.Errorf("invalid time %q", s)
	}
	return time.Duration(ts.Hour())*time.Hour + time.Duration(ts.Minute())*time.Minute +
		time.Duration(ts.Second())*time.Second + time.Duration(ts.Nanosecond()), nil
}

func parseOffset(s string) (int32, error) {
	if s == "Z" {
		return 0, nil
	}
	sign := int32(1)
	if s[0] == '-' {
		sign = -1
	}
	parts := strings.Split(s[1:], ":")
	var total int32
	mult := []int32{3600, 60, 1}
	if len(parts) > 3 {
		return 0, fmt.Errorf("bad offset %q", s)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return 0, fmt.Errorf("bad offset %q", s)
		}
		total += int32(n) * mult[i]
	}
	return sign * total, nil
}

func parseMicros(s string) (int64, error) {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, fmt.Errorf("invalid seconds %q", s)
	}
	r.Mul(r, big.NewRat(1e6, 1))
	if !r.IsInt() {
		return 0, fmt.Errorf("seconds %q finer than a microsecond", s)
	}
	return r.Num().Int64(), nil
}

// ErrMultiDimJSONArray refuses a multi-dimensional array of json values in
// ferry's JSON and text forms: [[1,2]] would read back as a one-dimensional
// array holding the document [1,2].
var ErrMultiDimJSONArray = errors.New("a multi-dimensional array of json values has no unambiguous JSON form (its sub-arrays read back as JSON documents)")

// ToJSON converts a canonical value to a value encoding/json writes in
// ferry's JSON form: numbers stay numbers where exact, JSON documents are
// embedded as JSON, everything else uses its text form.
func ToJSON(t Type, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch t.Kind {
	case KindBool:
		return v.(bool), nil
	case KindInt16, KindInt32, KindInt64:
		return v.(int64), nil
	case KindFloat32, KindFloat64:
		f := v.(float64)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return formatFloat(f, t.Kind), nil
		}
		return json.Number(formatFloat(f, t.Kind)), nil
	case KindJSON:
		s := v.(string)
		if !json.Valid([]byte(s)) {
			return nil, fmt.Errorf("invalid JSON document")
		}
		return json.RawMessage(s), nil
	case KindArray:
		arr := v.([]any)
		out := make([]any, len(arr))
		for i, e := range arr {
			et := *t.Elem
			if _, sub := e.([]any); sub && t.Elem.Kind != KindArray {
				// A sub-array of a multi-dimensional array nests in JSON,
				// which for json elements reads back as a 1-D array of
				// JSON arrays: refused rather than written ambiguously.
				if t.Elem.Kind == KindJSON {
					return nil, ErrMultiDimJSONArray
				}
				et = t
			}
			j, err := ToJSON(et, e)
			if err != nil {
				return nil, err
			}
			out[i] = j
		}
		return out, nil
	}
	return FormatText(t, v)
}

// FromJSON is the inverse of ToJSON, for a value decoded with UseNumber.
func FromJSON(t Type, j any) (any, error) {
	if j == nil {
		return nil, nil
	}
	switch t.Kind {
	case KindInt16, KindInt32, KindInt64:
		if n, ok := j.(json.Number); ok {
			return n.Int64()
		}
	case KindFloat32, KindFloat64:
		switch x := j.(type) {
		case json.Number:
			return parseFloatKind(string(x), t.Kind)
		case string:
			return parseFloatKind(x, t.Kind)
		}
	case KindBool:
		if b, ok := j.(bool); ok {
			return b, nil
		}
	case KindJSON:
		switch x := j.(type) {
		case json.RawMessage:
			return string(x), nil
		default:
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(x); err != nil {
				return nil, err
			}
			return strings.TrimSuffix(buf.String(), "\n"), nil
		}
	case KindArray:
		arr, ok := j.([]any)
		if !ok {
			break
		}
		if t.Elem.Kind != KindArray && t.Elem.Kind != KindJSON {
			if _, err := arrayShape(arr); err != nil {
				return nil, err
			}
		}
		out := make([]any, len(arr))
		for i, e := range arr {
			et := *t.Elem
			if _, sub := e.([]any); sub && t.Elem.Kind != KindArray && t.Elem.Kind != KindJSON {
				et = t // a sub-array of a multi-dimensional array
			}
			v, err := FromJSON(et, e)
			if err != nil {
				return nil, fmt.Errorf("array element %d: %w", i, err)
			}
			out[i] = v
		}
		return out, nil
	default:
		if s, ok := j.(string); ok {
			return ParseText(t, s)
		}
	}
	return nil, fmt.Errorf("JSON value %v is not a %s", j, t)
}

// arrayShape returns the dimensions of an array, refusing one that is not
// rectangular as PostgreSQL requires ([[1,2],[3]], [1,[2]], [[1],null]):
// a hand-written file could hold one that no database would take.
func arrayShape(arr []any) ([]int, error) {
	subs := 0
	var inner []int
	for _, e := range arr {
		sub, ok := e.([]any)
		if !ok {
			continue
		}
		s, err := arrayShape(sub)
		if err != nil {
			return nil, err
		}
		if subs == 0 {
			inner = s
		} else if !slices.Equal(s, inner) {
			return nil, fmt.Errorf("invalid multi-dimensional array: sub-arrays of different lengths")
		}
		subs++
	}
	switch {
	case subs == 0:
		return []int{len(arr)}, nil
	case subs != len(arr):
		return nil, fmt.Errorf("invalid multi-dimensional array: sub-arrays mixed with elements or NULL")
	}
	return append([]int{len(arr)}, inner...), nil
}
