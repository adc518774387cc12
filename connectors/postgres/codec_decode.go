package postgres

import (
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/ferrydb/ferry/model"
)

// decoder turns PostgreSQL's text output of a value (under ferry's session
// settings: DateStyle ISO, IntervalStyle iso_8601, TimeZone UTC,
// lc_monetary C, bytea_output hex) into its canonical Go value. The copy and
// the change stream both read text, so both go through the same decoders.
type decoder func(s string) (any, error)

func decodeText(s string) (any, error) { return s, nil }

func decodeBool(s string) (any, error) {
	switch s {
	case "t", "true":
		return true, nil
	case "f", "false":
		return false, nil
	}
	return nil, fmt.Errorf("invalid boolean %q", s)
}

func decodeInt(s string) (any, error) { return strconv.ParseInt(s, 10, 64) }

func decodeFloat64(s string) (any, error) { return parseFloat(s, 64) }

func decodeFloat32(s string) (any, error) { return parseFloat(s, 32) }

func parseFloat(s string, bits int) (float64, error) {
	switch s {
	case "NaN":
		return math.NaN(), nil
	case "Infinity":
		return math.Inf(1), nil
	case "-Infinity":
		return math.Inf(-1), nil
	}
	f, err := strconv.ParseFloat(s, bits)
	if err != nil {
		return 0, fmt.Errorf("invalid float %q", s)
	}
	return f, nil
}

// decodeMoney reads money's output under lc_monetary C: "-$1,234.56".
func decodeMoney(s string) (any, error) {
	var b strings.Builder
	neg := false
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9', r == '.':
			b.WriteRune(r)
		case r == '-', r == '(':
			neg = true
		}
	}
	out := b.String()
	if out == "" {
		return nil, fmt.Errorf("invalid money %q", s)
	}
	if neg {
		out = "-" + out
	}
	return out, nil
}

func decodeBytea(s string) (any, error) {
	if !strings.HasPrefix(s, `\x`) {
		return nil, fmt.Errorf("bytea %q is not in hex format", truncate(s))
	}
	return hex.DecodeString(s[2:])
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

// splitBC removes a trailing " BC" and reports whether it was there.
func splitBC(s string) (string, bool) {
	if strings.HasSuffix(s, " BC") {
		return s[:len(s)-3], true
	}
	return s, false
}

// parseYMD reads "Y-MM-DD" at the start of s (the year may have more than
// four digits) and returns the rest.
func parseYMD(s string) (y, m, d int, rest string, err error) {
	i := strings.IndexByte(s, '-')
	if i <= 0 || len(s) < i+6 || s[i+3] != '-' {
		return 0, 0, 0, "", fmt.Errorf("invalid date %q", s)
	}
	if y, err = strconv.Atoi(s[:i]); err != nil {
		return 0, 0, 0, "", fmt.Errorf("invalid date %q", s)
	}
	if m, err = strconv.Atoi(s[i+1 : i+3]); err != nil {
		return 0, 0, 0, "", fmt.Errorf("invalid date %q", s)
	}
	if d, err = strconv.Atoi(s[i+4 : i+6]); err != nil {
		return 0, 0, 0, "", fmt.Errorf("invalid date %q", s)
	}
	return y, m, d, s[i+6:], nil
}

// astroYear turns a year of the BC/AD calendar into Go's (1 BC is year 0).
func astroYear(y int, bc bool) int {
	if bc {
		return 1 - y
	}
	return y
}

func decodeDate(s string) (any, error) {
	switch s {
	case "infinity":
		return model.PosInfinity, nil
	case "-infinity":
		return model.NegInfinity, nil
	}
	body, bc := splitBC(s)
	y, m, d, rest, err := parseYMD(body)
	if err != nil || rest != "" {
		return nil, fmt.Errorf("invalid date %q", s)
	}
	return time.Date(astroYear(y, bc), time.Month(m), d, 0, 0, 0, 0, time.UTC), nil
}

// parseClock reads "HH:MM:SS[.ffffff]" at the start of s, returning the
// duration since midnight and the rest.
func parseClock(s string) (time.Duration, string, error) {
	if len(s) < 8 || s[2] != ':' || s[5] != ':' {
		return 0, "", fmt.Errorf("invalid time %q", s)
	}
	h, err1 := strconv.Atoi(s[0:2])
	m, err2 := strconv.Atoi(s[3:5])
	sec, err3 := strconv.Atoi(s[6:8])
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, "", fmt.Errorf("invalid time %q", s)
	}
	d := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec)*time.Second
	rest := s[8:]
	if len(rest) > 0 && rest[0] == '.' {
		j := 1
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		frac := rest[1:j]
		if len(frac) == 0 || len(frac) > 9 {
			return 0, "", fmt.Errorf("invalid time %q", s)
		}
		n, err := strconv.Atoi(frac + strings.Repeat("0", 9-len(frac)))
		if err != nil {
			return 0, "", fmt.Errorf("invalid time %q", s)
		}
		d += time.Duration(n)
		rest = rest[j:]
	}
	return d, rest, nil
}

// parseOffset reads "+HH[:MM[:SS]]" (east of UTC) as seconds.
func parseOffset(s string) (int32, error) {
	if len(s) < 3 || (s[0] != '+' && s[0] != '-') {
		return 0, fmt.Errorf("invalid UTC offset %q", s)
	}
	parts := strings.Split(s[1:], ":")
	if len(parts) > 3 {
		return 0, fmt.Errorf("invalid UTC offset %q", s)
	}
	mult := [3]int{3600, 60, 1}
	total := 0
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || len(p) != 2 {
			return 0, fmt.Errorf("invalid UTC offset %q", s)
		}
		total += n * mult[i]
	}
	if s[0] == '-' {
		total = -total
	}
	return int32(total), nil
}

func decodeTime(s string) (any, error) {
	d, rest, err := parseClock(s)
	if err != nil || rest != "" {
		return nil, fmt.Errorf("invalid time %q", s)
	}
	return d, nil
}

func decodeTimeTZ(s string) (any, error) {
	d, rest, err := parseClock(s)
	if err != nil {
		return nil, err
	}
	off, err := parseOffset(rest)
	if err != nil {
		return nil, fmt.Errorf("invalid time with time zone %q", s)
	}
	return model.TimeTZ{Time: d, Offset: off}, nil
}

func decodeTimestamp(s string) (any, error) {
	return parseTimestamp(s, false)
}

func decodeTimestampTZ(s string) (any, error) {
	return parseTimestamp(s, true)
}

func parseTimestamp(s string, zoned bool) (any, error) {
	switch s {
	case "infinity":
		return model.PosInfinity, nil
	case "-infinity":
		return model.NegInfinity, nil
	}
	body, bc := splitBC(s)
	y, m, d, rest, err := parseYMD(body)
	if err != nil || len(rest) < 1 || rest[0] != ' ' {
		return nil, fmt.Errorf("invalid timestamp %q", s)
	}
	clock, rest, err := parseClock(rest[1:])
	if err != nil {
		return nil, fmt.Errorf("invalid timestamp %q", s)
	}
	var off int32
	if zoned {
		if off, err = parseOffset(rest); err != nil {
			return nil, fmt.Errorf("invalid timestamp with time zone %q", s)
		}
	} else if rest != "" {
		return nil, fmt.Errorf("invalid timestamp %q", s)
	}
	t := time.Date(astroYear(y, bc), time.Month(m), d, 0, 0, 0, 0, time.UTC).Add(clock)
	return t.Add(-time.Duration(off) * time.Second), nil
}

// decodeInterval reads IntervalStyle iso_8601 output: "P1Y2M3DT4H5M6.5S",
// each part signed, "PT0S" for zero.
func decodeInterval(s string) (any, error) {
	bad := func() (any, error) { return nil, fmt.Errorf("invalid interval %q", s) }
	if len(s) < 3 || s[0] != 'P' {
		return bad()
	}
	var iv model.Interval
	var months, days, micros int64
	inTime := false
	rest := s[1:]
	for rest != "" {
		if rest[0] == 'T' {
			if inTime {
				return bad()
			}
			inTime = true
			rest = rest[1:]
			continue
		}
		j := 0
		if rest[j] == '-' || rest[j] == '+' {
			j++
		}
		for j < len(rest) && (rest[j] >= '0' && rest[j] <= '9' || rest[j] == '.') {
			j++
		}
		if j == 0 || j >= len(rest) {
			return bad()
		}
		num, unit := rest[:j], rest[j]
		rest = rest[j+1:]
		if unit == 'S' && inTime {
			us, err := decimalMicros(num)
			if err != nil {
				return bad()
			}
			micros += us
			continue
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return bad()
		}
		switch {
		case !inTime && unit == 'Y':
			months += n * 12
		case !inTime && unit == 'M':
			months += n
		case !inTime && unit == 'W':
			days += n * 7
		case !inTime && unit == 'D':
			days += n
		case inTime && unit == 'H':
			micros += n * 3600_000_000
		case inTime && unit == 'M':
			micros += n * 60_000_000
		default:
			return bad()
		}
	}
	if months < math.MinInt32 || months > math.MaxInt32 || days < math.MinInt32 || days > math.MaxInt32 {
		return bad()
	}
	iv.Months, iv.Days, iv.Micros = int32(months), int32(days), micros
	return iv, nil
}

// decimalMicros converts a decimal number of seconds to microseconds exactly.
func decimalMicros(s string) (int64, error) {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, fmt.Errorf("invalid seconds %q", s)
	}
	r.Mul(r, big.NewRat(1_000_000, 1))
	if !r.IsInt() || !r.Num().IsInt64() {
		return 0, fmt.Errorf("invalid seconds %q", s)
	}
	return r.Num().Int64(), nil
}

// decoderFor returns the decoder of a canonical type as this connector's
// discovery makes it, so a plan made by another process reads the same.
func decoderFor(t model.Type) (decoder, error) {
	switch t.Kind {
	case model.KindBool:
		return decodeBool, nil
	case model.KindInt16, model.KindInt32, model.KindInt64:
		return decodeInt, nil
	case model.KindFloat32:
		return decodeFloat32, nil
	case model.KindFloat64:
		return decodeFloat64, nil
	case model.KindDecimal:
		if t.Native == "money" {
			return decodeMoney, nil
		}
		return decodeText, nil
	case model.KindText, model.KindJSON, model.KindUUID, model.KindEnum, model.KindInet, model.KindCIDR, model.KindMACAddr:
		return decodeText, nil
	case model.KindBytes:
		return decodeBytea, nil
	case model.KindDate:
		return decodeDate, nil
	case model.KindTime:
		return decodeTime, nil
	case model.KindTimeTZ:
		return decodeTimeTZ, nil
	case model.KindTimestamp:
		return decodeTimestamp, nil
	case model.KindTimestampTZ:
		return decodeTimestampTZ, nil
	case model.KindInterval:
		return decodeInterval, nil
	case model.KindArray:
		if t.Elem == nil {
			return nil, fmt.Errorf("array type without element type")
		}
		e, err := decoderFor(*t.Elem)
		if err != nil {
			return nil, err
		}
		return arrayDecoder(e), nil
	}
	return nil, fmt.Errorf("type %s (%s) cannot be copied", t.Native, t.Kind)
}

func tableDecoders(t *model.Table) ([]decoder, error) {
	decs := make([]decoder, len(t.Columns))
	for i, col := range t.Columns {
		d, err := decoderFor(col.Type)
		if err != nil {
			return nil, fmt.Errorf("table %s, column %s: %w", t.Namespace, col.Name, err)
		}
		decs[i] = d
	}
	return decs, nil
}
