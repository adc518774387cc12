package postgres

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ferrydb/ferry/model"
)

// binEncoder appends a canonical value in PostgreSQL's binary format of one
// destination column type (the value is neither nil nor Unchanged).
type binEncoder func(buf []byte, v any) ([]byte, error)

// pgEpoch is PostgreSQL's time zero: 2000-01-01 00:00:00 UTC.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// pgMinDay and pgMaxDay bound PostgreSQL's dates in days from pgEpoch:
// 4714-11-24 BC and 5874897-12-31.
var (
	pgMinDay = time.Date(-4713, 11, 24, 0, 0, 0, 0, time.UTC).Unix()/86400 - pgEpoch.Unix()/86400
	pgMaxDay = time.Date(5874897, 12, 31, 0, 0, 0, 0, time.UTC).Unix()/86400 - pgEpoch.Unix()/86400
)

// binEncoderFor returns the binary encoder writing values of canonical type
// t into a column of type oid, or nil when that pair travels as text
// (arrays, network types, money, enums, types without a canonical kind):
// a table with any such column is written with text COPY.
func binEncoderFor(oid uint32, t model.Type) binEncoder {
	k := t.Kind
	isString := k == model.KindText || k == model.KindEnum || k == model.KindJSON || k == model.KindDecimal ||
		k == model.KindUUID || k == model.KindInet || k == model.KindCIDR || k == model.KindMACAddr
	switch oid {
	case oidBool:
		if k == model.KindBool {
			return encBool
		}
	case oidInt2:
		if k.IsInteger() {
			return encInt(2)
		}
	case oidInt4:
		if k.IsInteger() {
			return encInt(4)
		}
	case oidInt8:
		if k.IsInteger() {
			return encInt(8)
		}
	case oidFloat4:
		if k == model.KindFloat32 {
			return encFloat4
		}
	case oidFloat8:
		if k == model.KindFloat32 || k == model.KindFloat64 {
			return encFloat8
		}
	case oidText, oidVarchar, oidBpchar, oidName, oidJSON:
		if isString {
			return encString
		}
	case oidJSONB:
		if k == model.KindJSON || k == model.KindText {
			return encJSONB
		}
	case oidUUID:
		if k == model.KindUUID {
			return encUUID
		}
	case oidBytea:
		if k == model.KindBytes {
			return encBytes
		}
	case oidNumeric:
		if k == model.KindDecimal && t.Native != "money" {
			return encNumeric
		}
	case oidDate:
		if k == model.KindDate {
			return encDate
		}
	case oidTime:
		if k == model.KindTime {
			return encTime
		}
	case oidTimetz:
		if k == model.KindTimeTZ {
			return encTimetz
		}
	case oidTimestamp, oidTimestamptz:
		if k == model.KindTimestamp || k == model.KindTimestampTZ {
			return encTimestamp
		}
	case oidInterval:
		if k == model.KindInterval {
			return encInterval
		}
	}
	return nil
}

func appendLen(buf []byte, n int) []byte { return binary.BigEndian.AppendUint32(buf, uint32(n)) }

func encBool(buf []byte, v any) ([]byte, error) {
	b, ok := v.(bool)
	if !ok {
		return nil, fmt.Errorf("value of Go type %T is not a bool", v)
	}
	buf = appendLen(buf, 1)
	if b {
		return append(buf, 1), nil
	}
	return append(buf, 0), nil
}

func encInt(size int) binEncoder {
	return func(buf []byte, v any) ([]byte, error) {
		i, ok := v.(int64)
		if !ok {
			return nil, fmt.Errorf("value of Go type %T is not an integer", v)
		}
		switch size {
		case 2:
			if i < math.MinInt16 || i > math.MaxInt16 {
				return nil, fmt.Errorf("%d is out of range for smallint", i)
			}
			return binary.BigEndian.AppendUint16(appendLen(buf, 2), uint16(i)), nil
		case 4:
			if i < math.MinInt32 || i > math.MaxInt32 {
				return nil, fmt.Errorf("%d is out of range for integer", i)
			}
			return binary.BigEndian.AppendUint32(appendLen(buf, 4), uint32(i)), nil
		}
		return binary.BigEndian.AppendUint64(appendLen(buf, 8), uint64(i)), nil
	}
}

func encFloat4(buf []byte, v any) ([]byte, error) {
	f, ok := v.(float64)
	if !ok {
		return nil, fmt.Errorf("value of Go type %T is not a float", v)
	}
	return binary.BigEndian.AppendUint32(appendLen(buf, 4), math.Float32bits(float32(f))), nil
}

func encFloat8(buf []byte, v any) ([]byte, error) {
	f, ok := v.(float64)
	if !ok {
		return nil, fmt.Errorf("value of Go type %T is not a float", v)
	}
	return binary.BigEndian.AppendUint64(appendLen(buf, 8), math.Float64bits(f)), nil
}

func encString(buf []byte, v any) ([]byte, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("value of Go type %T is not a string", v)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return nil, fmt.Errorf("value contains a NUL character (0x00), which PostgreSQL text cannot store; remove it at the source, store the column as binary, or exclude the table with --tables")
	}
	return append(appendLen(buf, len(s)), s...), nil
}

func encJSONB(buf []byte, v any) ([]byte, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("value of Go type %T is not a string", v)
	}
	buf = appendLen(buf, len(s)+1)
	return append(append(buf, 1), s...), nil
}

func encBytes(buf []byte, v any) ([]byte, error) {
	b, ok := v.([]byte)
	if !ok {
		return nil, fmt.Errorf("value of Go type %T is not bytes", v)
	}
	return append(appendLen(buf, len(b)), b...), nil
}

func encUUID(buf []byte, v any) ([]byte, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("value of Go type %T is not a uuid", v)
	}
	h := strings.ReplaceAll(strings.Trim(s, "{}"), "-", "")
	if len(h) != 32 {
		return nil, fmt.Errorf("invalid uuid %q", s)
	}
	buf = appendLen(buf, 16)
	out, err := hex.AppendDecode(buf, []byte(h))
	if err != nil {
		return nil, fmt.Errorf("invalid uuid %q", s)
	}
	return out, nil
}

func encDate(buf []byte, v any) ([]byte, error) {
	var days int64
	switch x := v.(type) {
	case model.Infinity:
		days = math.MaxInt32
		if x < 0 {
			days = math.MinInt32
		}
	case time.Time:
		y, m, d := x.Date()
		days = time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix()/86400 - pgEpoch.Unix()/86400
		// Out of range, a day could wrap or land on infinity's numbers.
		if days < pgMinDay || days > pgMaxDay {
			return nil, fmt.Errorf("date %s is outside PostgreSQL's range (4713 BC to 5874897 AD)", x.Format("2006-01-02"))
		}
	default:
		return nil, fmt.Errorf("value of Go type %T is not a date", v)
	}
	return binary.BigEndian.AppendUint32(appendLen(buf, 4), uint32(int32(days))), nil
}

// micros rounds a duration in nanoseconds to microseconds, as PostgreSQL's
// text input does.
func micros(ns int64) int64 {
	if ns >= 0 {
		return (ns + 500) / 1000
	}
	return -((-ns + 500) / 1000)
}

func encTime(buf []byte, v any) ([]byte, error) {
	d, ok := v.(time.Duration)
	if !ok {
		return nil, fmt.Errorf("value of Go type %T is not a time", v)
	}
	return binary.BigEndian.AppendUint64(appendLen(buf, 8), uint64(micros(int64(d)))), nil
}

func encTimetz(buf []byte, v any) ([]byte, error) {
	x, ok := v.(model.TimeTZ)
	if !ok {
		return nil, fmt.Errorf("value of Go type %T is not a time with time zone", v)
	}
	buf = binary.BigEndian.AppendUint64(appendLen(buf, 12), uint64(micros(int64(x.Time))))
	return binary.BigEndian.AppendUint32(buf, uint32(-x.Offset)), nil // PostgreSQL keeps seconds west
}

func encTimestamp(buf []byte, v any) ([]byte, error) {
	var us int64
	switch x := v.(type) {
	case model.Infinity:
		us = math.MaxInt64
		if x < 0 {
			us = math.MinInt64
		}
	case time.Time:
		// PostgreSQL's range (4713 BC to 294276 AD) keeps this product far
		// from int64's edges; beyond it the server refuses the value.
		if y := x.UTC().Year(); y < -4713 || y > 294276 {
			return nil, fmt.Errorf("timestamp %s is outside PostgreSQL's range (4713 BC to 294276 AD)", x.UTC().Format(time.RFC3339Nano))
		}
		us = (x.Unix()-pgEpoch.Unix())*1_000_000 + micros(int64(x.Nanosecond()))
	default:
		return nil, fmt.Errorf("value of Go type %T is not a timestamp", v)
	}
	return binary.BigEndian.AppendUint64(appendLen(buf, 8), uint64(us)), nil
}

func encInterval(buf []byte, v any) ([]byte, error) {
	x, ok := v.(model.Interval)
	if !ok {
		return nil, fmt.Errorf("value of Go type %T is not an interval", v)
	}
	buf = binary.BigEndian.AppendUint64(appendLen(buf, 16), uint64(x.Micros))
	buf = binary.BigEndian.AppendUint32(buf, uint32(x.Days))
	return binary.BigEndian.AppendUint32(buf, uint32(x.Months)), nil
}

// encNumeric writes a decimal in numeric's binary form: base-10000 digits
// with a weight, a sign and the display scale.
// PostgreSQL numeric's limits: 131072 digits before the point, 16383
// after (NUMERIC_DSCALE_MAX).
const (
	maxNumericIntDigits = 131072
	maxNumericScale     = 16383
)

func encNumeric(buf []byte, v any) ([]byte, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("value of Go type %T is not a decimal", v)
	}
	special := func(sign uint16) []byte {
		buf = appendLen(buf, 8)
		buf = binary.BigEndian.AppendUint16(buf, 0)
		buf = binary.BigEndian.AppendUint16(buf, 0)
		buf = binary.BigEndian.AppendUint16(buf, sign)
		return binary.BigEndian.AppendUint16(buf, 0)
	}
	switch s {
	case "NaN":
		return special(0xC000), nil
	case "Infinity":
		return special(0xD000), nil
	case "-Infinity":
		return special(0xF000), nil
	}
	intPart, frac, neg, err := splitDecimal(s)
	if err != nil {
		return nil, err
	}
	// The digits, padded so the integer part and the fraction are whole
	// groups of four, read in place without building the padded string.
	ipad := (4 - len(intPart)%4) % 4
	n := (ipad + len(intPart) + len(frac) + 3) / 4
	digit := func(j int) uint16 {
		j -= ipad
		switch {
		case j < 0:
			return 0
		case j < len(intPart):
			return uint16(intPart[j] - '0')
		case j-len(intPart) < len(frac):
			return uint16(frac[j-len(intPart)] - '0')
		}
		return 0
	}
	group := func(i int) uint16 {
		return digit(4*i)*1000 + digit(4*i+1)*100 + digit(4*i+2)*10 + digit(4*i+3)
	}
	// Leading and trailing zero groups are not sent.
	first, last := 0, n-1
	for first < n && group(first) == 0 {
		first++
	}
	for last >= first && group(last) == 0 {
		last--
	}
	// numeric's limits (its weight and scale are 16-bit): a larger
	// value would be sent with a wrapped weight, another number.
	if len(intPart) > maxNumericIntDigits || len(frac) > maxNumericScale {
		return nil, fmt.Errorf("decimal of %d digits before the point and %d after is out of PostgreSQL numeric's range (at most %d before, %d after)",
			len(intPart), len(frac), maxNumericIntDigits, maxNumericScale)
	}
	ndigits := last - first + 1
	weight := (ipad+len(intPart))/4 - 1 - first
	sign := uint16(0)
	if neg && ndigits > 0 {
		sign = 0x4000
	}
	if ndigits == 0 {
		weight = 0
	}
	buf = appendLen(buf, 8+2*ndigits)
	buf = binary.BigEndian.AppendUint16(buf, uint16(ndigits))
	buf = binary.BigEndian.AppendUint16(buf, uint16(int16(weight)))
	buf = binary.BigEndian.AppendUint16(buf, sign)
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(frac)))
	for i := first; i <= last; i++ {
		buf = binary.BigEndian.AppendUint16(buf, group(i))
	}
	return buf, nil
}

// splitDecimal splits a decimal's text into its integer digits (no leading
// zeros), fraction digits and sign; an exponent is expanded exactly.
func splitDecimal(s string) (intPart, frac string, neg bool, err error) {
	t := strings.TrimSpace(s)
	if strings.ContainsAny(t, "eE") {
		if t, err = expandExponent(t); err != nil {
			return "", "", false, fmt.Errorf("invalid decimal %q: %w", s, err)
		}
	}
	if t != "" && (t[0] == '-' || t[0] == '+') {
		neg = t[0] == '-'
		t = t[1:]
	}
	intPart, frac, _ = strings.Cut(t, ".")
	if intPart == "" && frac == "" {
		return "", "", false, fmt.Errorf("invalid decimal %q", s)
	}
	for _, part := range []string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return "", "", false, fmt.Errorf("invalid decimal %q", s)
			}
		}
	}
	intPart = strings.TrimLeft(intPart, "0")
	return intPart, frac, neg, nil
}

// maxExponent is the largest exponent PostgreSQL's numeric input takes
// (NUMERIC_MAX_PRECISION): 1E1001 is refused there too.
const maxExponent = 1000

// expandExponent writes a decimal in exponent notation ("-1.25E-3") with
// its digits only ("-0.00125"), exactly: every digit of the mantissa is
// kept, and the fraction has as many digits as the notation implies (as
// PostgreSQL's numeric input gives it), none rounded away.
func expandExponent(t string) (string, error) {
	i := strings.IndexAny(t, "eE")
	mant, exp := t[:i], t[i+1:]
	e, err := strconv.Atoi(exp)
	if err != nil || e > maxExponent || e < -maxExponent {
		return "", fmt.Errorf("the exponent is not a number from -%d to %d (PostgreSQL's numeric takes no other)", maxExponent, maxExponent)
	}
	sign := ""
	if mant != "" && (mant[0] == '-' || mant[0] == '+') {
		if mant[0] == '-' {
			sign = "-"
		}
		mant = mant[1:]
	}
	ip, fp, _ := strings.Cut(mant, ".")
	if ip == "" && fp == "" {
		return "", errors.New("no digits before the exponent")
	}
	digits := ip + fp
	for j := 0; j < len(digits); j++ {
		if digits[j] < '0' || digits[j] > '9' {
			return "", errors.New("not a number")
		}
	}
	point := len(ip) + e // where the point goes in digits
	switch {
	case point <= 0:
		return sign + "0." + strings.Repeat("0", -point) + digits, nil
	case point >= len(digits):
		return sign + digits + strings.Repeat("0", point-len(digits)), nil
	}
	return sign + digits[:point] + "." + digits[point:], nil
}
