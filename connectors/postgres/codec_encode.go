package postgres

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/ferrydb/ferry/model"
)

// textParam is v's PostgreSQL input text (appendText) as a statement
// parameter. A string that is its own text form is passed as it is, not
// copied: the driver only reads parameters, copying them into its message,
// and a copy here would double the memory of a large value once more. An
// empty text is never nil, which the driver sends as NULL.
func textParam(t model.Type, v any) ([]byte, error) {
	s, ok := v.(string)
	if !ok || !verbatimText(t.Kind) || strings.IndexByte(s, 0) >= 0 {
		p, err := appendText(nil, t, v)
		if p == nil && err == nil {
			p = []byte{}
		}
		return p, err
	}
	if s == "" {
		return []byte{}, nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s)), nil
}

// verbatimText reports the kinds whose string values appendText writes as
// they are.
func verbatimText(k model.Kind) bool {
	switch k {
	case model.KindDecimal, model.KindText, model.KindJSON, model.KindUUID, model.KindEnum,
		model.KindInet, model.KindCIDR, model.KindMACAddr:
		return true
	}
	return false
}

// appendText appends the PostgreSQL input text of canonical value v of type
// t, the inverse of the decoders: the destination parses it with the
// column type's own input function, so every value arrives exactly. v must
// not be nil or Unchanged.
func appendText(buf []byte, t model.Type, v any) ([]byte, error) {
	switch t.Kind {
	case model.KindBool:
		b, ok := v.(bool)
		if !ok {
			return nil, typeErr(t, v)
		}
		if b {
			return append(buf, 't'), nil
		}
		return append(buf, 'f'), nil
	case model.KindInt16, model.KindInt32, model.KindInt64:
		i, ok := v.(int64)
		if !ok {
			return nil, typeErr(t, v)
		}
		return strconv.AppendInt(buf, i, 10), nil
	case model.KindFloat32, model.KindFloat64:
		f, ok := v.(float64)
		if !ok {
			return nil, typeErr(t, v)
		}
		switch {
		case math.IsNaN(f):
			return append(buf, "NaN"...), nil
		case math.IsInf(f, 1):
			return append(buf, "Infinity"...), nil
		case math.IsInf(f, -1):
			return append(buf, "-Infinity"...), nil
		}
		bits := 64
		if t.Kind == model.KindFloat32 {
			bits = 32
		}
		return strconv.AppendFloat(buf, f, 'g', -1, bits), nil
	case model.KindDecimal, model.KindText, model.KindJSON, model.KindUUID, model.KindEnum,
		model.KindInet, model.KindCIDR, model.KindMACAddr:
		s, ok := v.(string)
		if !ok {
			return nil, typeErr(t, v)
		}
		if strings.IndexByte(s, 0) >= 0 {
			return nil, fmt.Errorf("%s value contains a NUL character (0x00), which PostgreSQL text cannot store; remove it at the source, store the column as binary, or exclude the table with --tables", t)
		}
		return append(buf, s...), nil
	case model.KindBytes:
		b, ok := v.([]byte)
		if !ok {
			return nil, typeErr(t, v)
		}
		buf = append(buf, `\x`...)
		return hex.AppendEncode(buf, b), nil
	case model.KindDate:
		if inf, ok := v.(model.Infinity); ok {
			return append(buf, inf.String()...), nil
		}
		ts, ok := v.(time.Time)
		if !ok {
			return nil, typeErr(t, v)
		}
		y, bc := bcYear(ts.Year())
		buf = appendYMD(buf, y, int(ts.Month()), ts.Day())
		if bc {
			buf = append(buf, " BC"...)
		}
		return buf, nil
	case model.KindTime:
		d, ok := v.(time.Duration)
		if !ok {
			return nil, typeErr(t, v)
		}
		return appendClock(buf, d), nil
	case model.KindTimeTZ:
		x, ok := v.(model.TimeTZ)
		if !ok {
			return nil, typeErr(t, v)
		}
		buf = appendClock(buf, x.Time)
		return appendOffset(buf, x.Offset), nil
	case model.KindTimestamp, model.KindTimestampTZ:
		if inf, ok := v.(model.Infinity); ok {
			return append(buf, inf.String()...), nil
		}
		ts, ok := v.(time.Time)
		if !ok {
			return nil, typeErr(t, v)
		}
		ts = ts.UTC()
		y, bc := bcYear(ts.Year())
		buf = appendYMD(buf, y, int(ts.Month()), ts.Day())
		buf = append(buf, ' ')
		buf = appendClock(buf, time.Duration(ts.Hour())*time.Hour+time.Duration(ts.Minute())*time.Minute+
			time.Duration(ts.Second())*time.Second+time.Duration(ts.Nanosecond()))
		if t.Kind == model.KindTimestampTZ {
			buf = append(buf, "+00"...)
		}
		if bc {
			buf = append(buf, " BC"...)
		}
		return buf, nil
	case model.KindInterval:
		x, ok := v.(model.Interval)
		if !ok {
			return nil, typeErr(t, v)
		}
		// The postgres style with explicit signs: the time part is read as
		// integers, so microseconds stay exact at any magnitude.
		buf = strconv.AppendInt(buf, int64(x.Months), 10)
		buf = append(buf, " mons "...)
		buf = strconv.AppendInt(buf, int64(x.Days), 10)
		buf = append(buf, " days "...)
		us := x.Micros
		if us < 0 {
			buf = append(buf, '-')
			if us == math.MinInt64 {
				return nil, fmt.Errorf("interval microseconds out of range")
			}
			us = -us
		} else {
			buf = append(buf, '+')
		}
		buf = strconv.AppendInt(buf, us/3600_000_000, 10)
		us %= 3600_000_000
		buf = append(buf, ':')
		buf = append2(buf, int(us/60_000_000))
		us %= 60_000_000
		buf = append(buf, ':')
		buf = append2(buf, int(us/1_000_000))
		if frac := us % 1_000_000; frac != 0 {
			buf = append(buf, '.')
			buf = append(buf, fmt.Sprintf("%06d", frac)...)
		}
		return buf, nil
	case model.KindArray:
		arr, ok := v.([]any)
		if !ok || t.Elem == nil {
			return nil, typeErr(t, v)
		}
		buf = append(buf, '{')
		var elem []byte
		for i, e := range arr {
			if i > 0 {
				buf = append(buf, ',')
			}
			if e == nil {
				buf = append(buf, "NULL"...)
				continue
			}
			var err error
			if sub, ok := e.([]any); ok && t.Elem.Kind != model.KindArray {
				// A sub-array of a multi-dimensional array: {{1,2},{3,4}}.
				if buf, err = appendText(buf, t, sub); err != nil {
					return nil, err
				}
				continue
			}
			elem, err = appendText(elem[:0], *t.Elem, e)
			if err != nil {
				return nil, fmt.Errorf("array element %d: %w", i+1, err)
			}
			buf = appendQuoted(buf, elem)
		}
		return append(buf, '}'), nil
	}
	return nil, fmt.Errorf("no PostgreSQL text form for type %s", t)
}

func typeErr(t model.Type, v any) error {
	return fmt.Errorf("value of Go type %T is not a canonical %s", v, t)
}

// appendQuoted appends an array element in double quotes.
func appendQuoted(buf, s []byte) []byte {
	buf = append(buf, '"')
	for _, c := range s {
		if c == '"' || c == '\\' {
			buf = append(buf, '\\')
		}
		buf = append(buf, c)
	}
	return append(buf, '"')
}

// bcYear converts Go's year (0 is 1 BC) to the BC/AD calendar.
func bcYear(y int) (int, bool) {
	if y <= 0 {
		return 1 - y, true
	}
	return y, false
}

func appendYMD(buf []byte, y, m, d int) []byte {
	ys := strconv.Itoa(y)
	for i := len(ys); i < 4; i++ {
		buf = append(buf, '0')
	}
	buf = append(buf, ys...)
	buf = append(buf, '-')
	buf = append2(buf, m)
	buf = append(buf, '-')
	return append2(buf, d)
}

func append2(buf []byte, n int) []byte {
	return append(buf, byte('0'+n/10), byte('0'+n%10))
}

// appendClock appends a time of day "HH:MM:SS[.ffffff]" (24:00:00 included);
// PostgreSQL keeps microseconds, so finer digits are rounded by the server.
func appendClock(buf []byte, d time.Duration) []byte {
	h := int(d / time.Hour)
	d -= time.Duration(h) * time.Hour
	m := int(d / time.Minute)
	d -= time.Duration(m) * time.Minute
	s := int(d / time.Second)
	ns := int(d - time.Duration(s)*time.Second)
	buf = append2(buf, h)
	buf = append(buf, ':')
	buf = append2(buf, m)
	buf = append(buf, ':')
	buf = append2(buf, s)
	if ns != 0 {
		frac := fmt.Sprintf("%09d", ns)
		buf = append(buf, '.')
		buf = append(buf, strings.TrimRight(frac, "0")...)
	}
	return buf
}

func appendOffset(buf []byte, off int32) []byte {
	if off < 0 {
		buf = append(buf, '-')
		off = -off
	} else {
		buf = append(buf, '+')
	}
	buf = append2(buf, int(off/3600))
	buf = append(buf, ':')
	buf = append2(buf, int(off%3600/60))
	if off%60 != 0 {
		buf = append(buf, ':')
		buf = append2(buf, int(off%60))
	}
	return buf
}

// appendCopyEscaped appends a field in COPY's text format.
func appendCopyEscaped(buf, s []byte) []byte {
	for _, c := range s {
		switch c {
		case '\\':
			buf = append(buf, '\\', '\\')
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		default:
			buf = append(buf, c)
		}
	}
	return buf
}
