package mysql

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ferrydb/ferry/model"
)

// target is a destination column: the canonical type of the values written
// to it and its actual MySQL type, against which values are checked so that
// nothing is rounded or truncated silently.
type target struct {
	name string
	typ  model.Type
	ct   colType
}

// appendLiteral appends v as a SQL literal for column c, for a session with
// NO_BACKSLASH_ESCAPES and time_zone '+00:00'.
func appendLiteral(buf []byte, c *target, v any) ([]byte, error) {
	if v == nil {
		return append(buf, "NULL"...), nil
	}
	bad := func() ([]byte, error) {
		return nil, fmt.Errorf("value of Go type %T is not a canonical %s", v, c.typ)
	}
	if inf, ok := v.(model.Infinity); ok && model.IsTimeKind(c.typ.Kind) {
		// DATE and DATETIME end at 9999-12-31: no value stands for it.
		return nil, cannotHold{fmt.Errorf("%s: MySQL dates and timestamps have no infinity", inf)}
	}
	switch c.typ.Kind {
	case model.KindBool:
		b, ok := v.(bool)
		if !ok {
			return bad()
		}
		if b {
			return append(buf, '1'), nil
		}
		return append(buf, '0'), nil
	case model.KindInt16, model.KindInt32, model.KindInt64:
		i, ok := v.(int64)
		if !ok {
			return bad()
		}
		return strconv.AppendInt(buf, i, 10), nil
	case model.KindDecimal:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		lit, err := decimalLiteral(s, c.ct)
		if err != nil {
			return nil, err
		}
		return append(buf, lit...), nil
	case model.KindFloat32, model.KindFloat64:
		f, ok := v.(float64)
		if !ok {
			return bad()
		}
		switch {
		case math.IsNaN(f) || math.IsInf(f, 0):
			return nil, fmt.Errorf("%v: MySQL floats have no NaN or infinity", f)
		case f == 0 && math.Signbit(f):
			return nil, fmt.Errorf("-0: MySQL stores a negative zero as 0")
		}
		// The float64 spelling of a float32 value: MySQL parses it as a
		// double, which then converts to exactly that float.
		return strconv.AppendFloat(buf, f, 'g', -1, 64), nil
	case model.KindBytes:
		b, ok := v.([]byte)
		if !ok {
			return bad()
		}
		buf = append(buf, "X'"...)
		buf = hex.AppendEncode(buf, b)
		return append(buf, '\''), nil
	case model.KindText, model.KindEnum, model.KindJSON, model.KindUUID, model.KindInet, model.KindCIDR, model.KindMACAddr:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		return appendQuoted(buf, s), nil
	case model.KindDate:
		t, ok := v.(time.Time)
		if !ok {
			return bad()
		}
		if y := t.Year(); y < 0 || y > 9999 {
			return nil, cannotHold{fmt.Errorf("date %s: year %d is outside MySQL's 0000-9999", t.Format("2006-01-02"), y)}
		}
		buf = append(buf, '\'')
		buf = t.AppendFormat(buf, "2006-01-02")
		return append(buf, '\''), nil
	case model.KindTimestamp, model.KindTimestampTZ:
		t, ok := v.(time.Time)
		if !ok {
			return bad()
		}
		if c.typ.Kind == model.KindTimestampTZ {
			t = t.UTC()
		}
		if y := t.Year(); y < 0 || y > 9999 {
			return nil, cannotHold{fmt.Errorf("timestamp %s: year %d is outside MySQL's 0000-9999", t.Format(time.RFC3339Nano), y)}
		}
		if err := checkFraction(t.Nanosecond(), c.ct); err != nil {
			return nil, fmt.Errorf("timestamp %s: %w", t.Format(time.RFC3339Nano), err)
		}
		buf = append(buf, '\'')
		buf = t.AppendFormat(buf, "2006-01-02 15:04:05.999999")
		return append(buf, '\''), nil
	case model.KindTime:
		d, ok := v.(time.Duration)
		if !ok {
			return bad()
		}
		s, err := model.FormatTimeOfDay(d)
		if err != nil {
			return nil, err
		}
		if err := checkFraction(int(d%time.Second), c.ct); err != nil {
			return nil, fmt.Errorf("time %s: %w", d, err)
		}
		buf = append(buf, '\'')
		buf = append(buf, s...)
		return append(buf, '\''), nil
	case model.KindTimeTZ, model.KindInterval, model.KindArray:
		if _, err := model.AppendCanonical(nil, c.typ, v); err != nil {
			return nil, err
		}
		s, err := model.FormatText(c.typ, v)
		if err != nil {
			return nil, err
		}
		return appendQuoted(buf, s), nil
	}
	return nil, fmt.Errorf("type %s has no MySQL mapping", c.typ)
}

// checkFraction refuses a fraction of a second finer than the column keeps:
// MySQL would round it silently.
func checkFraction(ns int, ct colType) error {
	if ns == 0 {
		return nil
	}
	if ns%1000 != 0 {
		return fmt.Errorf("nanoseconds are finer than MySQL's microseconds")
	}
	fsp := ct.fsp()
	switch ct.name {
	case "datetime", "timestamp", "time":
	default:
		fsp = 6 // a text column keeps whatever is written
	}
	us := ns / 1000
	for i := fsp; i < 6; i++ {
		if us%10 != 0 {
			return fmt.Errorf("the fraction of a second has more digits than the column's %d", fsp)
		}
		us /= 10
	}
	return nil
}

// decimalLiteral checks that s fits column type ct exactly (MySQL would round
// extra fractional digits silently) and returns the literal to write.
func decimalLiteral(s string, ct colType) (string, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "NaN", "Infinity", "-Infinity":
		return "", fmt.Errorf("decimal %s: MySQL's DECIMAL has no NaN or infinity", s)
	}
	// A decimal's normal spelling is plain; what is not a decimal comes
	// back as it is.
	norm := model.NormalizeDecimal(s)
	if !isPlainDecimal(norm) {
		return "", fmt.Errorf("invalid decimal %q", s)
	}
	digits := strings.TrimPrefix(norm, "-")
	intPart, frac, _ := strings.Cut(digits, ".")
	intDigits := len(strings.TrimLeft(intPart, "0"))
	switch ct.name {
	case "decimal":
		p, sc := 10, 0
		if len(ct.args) > 0 {
			p, sc = ct.intArg(0), ct.intArg(1)
		}
		if len(frac) > sc {
			return "", fmt.Errorf("decimal %s has %d digits after the point, the column %s keeps %d", s, len(frac), ct, sc)
		}
		if intDigits > p-sc {
			return "", fmt.Errorf("decimal %s has %d digits before the point, the column %s keeps %d", s, intDigits, ct, p-sc)
		}
		if ct.unsigned && strings.HasPrefix(norm, "-") {
			return "", fmt.Errorf("decimal %s is negative, the column %s is unsigned", s, ct)
		}
	case "tinyint", "smallint", "mediumint", "int", "bigint", "year", "bit":
		if frac != "" {
			return "", fmt.Errorf("decimal %s is not an integer, the column is %s", s, ct)
		}
	}
	return norm, nil
}

// appendQuoted appends a string literal for a NO_BACKSLASH_ESCAPES session.
func appendQuoted(buf []byte, s string) []byte {
	buf = append(buf, '\'')
	for {
		i := strings.IndexByte(s, '\'')
		if i < 0 {
			buf = append(buf, s...)
			break
		}
		buf = append(buf, s[:i+1]...)
		buf = append(buf, '\'')
		s = s[i+1:]
	}
	return append(buf, '\'')
}

// quoteIdent quotes a MySQL identifier.
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// quoteName quotes database.table.
func quoteName(ns model.Namespace) string {
	if ns.Schema == "" {
		return quoteIdent(ns.Table)
	}
	return quoteIdent(ns.Schema) + "." + quoteIdent(ns.Table)
}

// quoteString renders a string literal for a session with
// NO_BACKSLASH_ESCAPES, where only the quote needs doubling.
func quoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
