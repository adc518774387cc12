package mysql

import (
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferrydb/ferry/model"
)

// errZeroDate marks a zero date ("0000-00-00", or a month or day of 0), which
// no canonical value represents.
var errZeroDate = errors.New("zero date")

// cannotHold marks a value no MySQL column of its type can hold.
type cannotHold struct{ error }

func (e cannotHold) Unwrap() error { return e.error }

// codec converts one source column's values, from the driver (snapshot
// reads) or from the binlog (CDC), to canonical values.
type codec struct {
	name string
	typ  model.Type
	ct   colType
	// zeroNull reads zero dates as NULL (zero_dates=null).
	zeroNull bool
	// setLabels are a SET column's labels, in definition order.
	setLabels []string
	// charset is the column's character set, for binlog text (the binlog
	// carries the stored bytes; snapshot reads arrive as utf8mb4).
	charset string
}

func newCodec(c model.Column, charset string, zeroNull bool) (*codec, error) {
	cd := &codec{name: c.Name, typ: c.Type, zeroNull: zeroNull, charset: strings.ToLower(charset)}
	if c.Type.Native != "" {
		ct, err := parseColType(c.Type.Native)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", c.Name, err)
		}
		cd.ct = ct
		if ct.name == "set" {
			cd.setLabels = ct.args
		}
	}
	return cd, nil
}

// decode converts a driver or binlog value. fromBinlog says the value comes
// from a row event: enum and set values are then indexes and bit masks, and
// text is in the column's character set.
func (cd *codec) decode(v any, fromBinlog bool) (any, error) {
	if v == nil {
		return nil, nil
	}
	if p, ok := v.(*sql.RawBytes); ok {
		// A snapshot read's bytes (rowScanner), valid until the next row:
		// copied once here.
		switch {
		case *p == nil:
			return nil, nil
		case cd.typ.Kind == model.KindBytes:
			return append([]byte{}, *p...), nil
		}
		return cd.decode(string(*p), false)
	}
	switch cd.typ.Kind {
	case model.KindBool:
		i, err := cd.integer(v)
		if err != nil {
			return nil, err
		}
		switch i {
		case 0:
			return false, nil
		case 1:
			return true, nil
		}
		return nil, fmt.Errorf("value %d of a tinyint(1) column is not a boolean (0 or 1); ferry reads tinyint(1) as bool: change the column to tinyint(2) (or smallint) to copy it as a number", i)
	case model.KindInt16, model.KindInt32, model.KindInt64:
		return cd.integer(v)
	case model.KindDecimal:
		if cd.ct.name == "bigint" { // bigint unsigned
			return cd.unsigned64(v)
		}
		s, ok := asString(v)
		if !ok {
			return nil, badValue(cd, v)
		}
		if !isPlainDecimal(s) {
			if _, ok := new(big.Rat).SetString(s); !ok {
				return nil, fmt.Errorf("invalid decimal %q", s)
			}
		}
		return s, nil
	case model.KindFloat32, model.KindFloat64:
		var f float64
		switch x := v.(type) {
		case float32:
			f = float64(x)
		case float64:
			f = x
		default:
			s, ok := asString(v)
			if !ok {
				return nil, badValue(cd, v)
			}
			var err error
			if f, err = strconv.ParseFloat(s, 64); err != nil {
				return nil, fmt.Errorf("invalid float %q", s)
			}
		}
		if cd.typ.Kind == model.KindFloat32 {
			f = float64(float32(f))
		}
		return f, nil
	case model.KindText:
		if cd.setLabels != nil {
			if mask, ok := intValue(v); ok {
				return cd.setText(mask)
			}
		}
		return cd.text(v, fromBinlog)
	case model.KindEnum:
		if idx, ok := intValue(v); ok {
			if idx == 0 {
				return "", nil // MySQL's "invalid value" index
			}
			if idx < 0 || int(idx) > len(cd.typ.EnumValues) {
				return nil, fmt.Errorf("enum index %d outside the %d labels of the column's definition", idx, len(cd.typ.EnumValues))
			}
			return cd.typ.EnumValues[idx-1], nil
		}
		return cd.text(v, fromBinlog)
	case model.KindJSON:
		s, ok := asString(v)
		if !ok {
			return nil, badValue(cd, v)
		}
		if s == "" {
			return "null", nil // an empty binlog JSON value is JSON null
		}
		if fromBinlog && cd.charset != "" && !isUTF8Charset(cd.charset) {
			return cd.text(v, true)
		}
		return s, nil
	case model.KindBytes:
		if cd.ct.name == "bit" {
			if i, ok := intValue(v); ok {
				n := cd.typ.Length
				b := make([]byte, n)
				for j := n - 1; j >= 0; j-- {
					b[j] = byte(i)
					i >>= 8
				}
				return b, nil
			}
		}
		var b []byte
		switch x := v.(type) {
		case []byte:
			b = append([]byte{}, x...)
		case string:
			b = []byte(x)
		default:
			return nil, badValue(cd, v)
		}
		// The binlog drops a BINARY(n) value's trailing zero bytes; the
		// column holds (and SELECT returns) them.
		if fromBinlog && cd.ct.name == "binary" {
			if n := cd.ct.intArg(0); len(b) < n {
				b = append(b, make([]byte, n-len(b))...)
			}
		}
		return b, nil
	case model.KindUUID:
		if b, ok := v.([]byte); ok && len(b) == 16 {
			return nil, fmt.Errorf("binary UUID value; ferry cannot decode MariaDB's UUID storage format from the binlog")
		}
		s, ok := asString(v)
		if !ok {
			return nil, badValue(cd, v)
		}
		return model.Coerce(cd.typ, s)
	case model.KindInet:
		switch x := v.(type) {
		case []byte:
			if fromBinlog && (len(x) == 4 || len(x) == 16) {
				return inetText(x), nil
			}
			return string(x), nil
		case string:
			if fromBinlog && (len(x) == 4 || len(x) == 16) {
				return inetText([]byte(x)), nil
			}
			return x, nil
		}
		return nil, badValue(cd, v)
	case model.KindDate:
		s, ok := asString(v)
		if !ok {
			return nil, badValue(cd, v)
		}
		return cd.zero(parseDate(s))
	case model.KindTimestamp, model.KindTimestampTZ:
		s, ok := asString(v)
		if !ok {
			return nil, badValue(cd, v)
		}
		return cd.zero(parseDateTime(s))
	case model.KindTime:
		s, ok := asString(v)
		if !ok {
			return nil, badValue(cd, v)
		}
		d, err := parseTime(s)
		if err != nil {
			return nil, err
		}
		if d < 0 || d > 24*time.Hour {
			return nil, fmt.Errorf("TIME value %s is outside 00:00:00-24:00:00, which ferry's time of day cannot hold (MySQL's TIME also measures durations); store durations in another type, or exclude the table", s)
		}
		return d, nil
	}
	return nil, fmt.Errorf("type %s has no MySQL mapping", cd.typ)
}

func (cd *codec) zero(t time.Time, err error) (any, error) {
	if errors.Is(err, errZeroDate) {
		if cd.zeroNull {
			return nil, nil
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

// bytesOnWire reports a column whose values a prepared statement's binary
// protocol returns as bytes; integers and floats come as numbers, and so do
// BIGINT UNSIGNED values (read as decimals).
func (cd *codec) bytesOnWire() bool {
	switch cd.typ.Kind {
	case model.KindText, model.KindEnum, model.KindJSON, model.KindBytes, model.KindUUID, model.KindInet,
		model.KindDate, model.KindTime, model.KindTimestamp, model.KindTimestampTZ:
		return true
	case model.KindDecimal:
		return cd.ct.name == "decimal"
	}
	return false
}

func badValue(cd *codec, v any) error {
	return fmt.Errorf("unexpected value of Go type %T for a %s column", v, cd.typ)
}

// integer reads an integer, undoing the binlog's signed view of an
// unsigned column.
func (cd *codec) integer(v any) (int64, error) {
	u := cd.ct.unsigned
	switch x := v.(type) {
	case int64:
		if u && x < 0 {
			switch cd.ct.name {
			case "tinyint":
				return int64(uint8(x)), nil
			case "smallint":
				return int64(uint16(x)), nil
			case "mediumint":
				return x & 0xffffff, nil
			case "int":
				return int64(uint32(x)), nil
			}
			return 0, fmt.Errorf("unsigned value %d does not fit a signed 64-bit integer", uint64(x))
		}
		return x, nil
	case int8:
		if u {
			return int64(uint8(x)), nil
		}
		return int64(x), nil
	case int16:
		if u {
			return int64(uint16(x)), nil
		}
		return int64(x), nil
	case int32:
		if u {
			if cd.ct.name == "mediumint" {
				return int64(x) & 0xffffff, nil
			}
			return int64(uint32(x)), nil
		}
		return int64(x), nil
	case int:
		return int64(x), nil
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint64:
		if x > math.MaxInt64 {
			return 0, fmt.Errorf("unsigned value %d does not fit a signed 64-bit integer", x)
		}
		return int64(x), nil
	}
	s, ok := asString(v)
	if !ok {
		return 0, badValue(cd, v)
	}
	i, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid integer %q", s)
	}
	return i, nil
}

// unsigned64 reads a bigint unsigned value as decimal text.
func (cd *codec) unsigned64(v any) (any, error) {
	switch x := v.(type) {
	case int64:
		return strconv.FormatUint(uint64(x), 10), nil // the binlog's signed view
	case uint64:
		return strconv.FormatUint(x, 10), nil
	}
	s, ok := asString(v)
	if !ok {
		return nil, badValue(cd, v)
	}
	if _, err := strconv.ParseUint(s, 10, 64); err != nil {
		return nil, fmt.Errorf("invalid unsigned integer %q", s)
	}
	return s, nil
}

func (cd *codec) setText(mask int64) (string, error) {
	var labels []string
	for i, l := range cd.setLabels {
		if mask&(1<<uint(i)) != 0 {
			labels = append(labels, l)
		}
	}
	if extra := uint64(mask) >> uint(len(cd.setLabels)); len(cd.setLabels) < 64 && extra != 0 {
		return "", fmt.Errorf("set value %#x has bits beyond the column's %d labels", mask, len(cd.setLabels))
	}
	return strings.Join(labels, ","), nil
}

func (cd *codec) text(v any, fromBinlog bool) (string, error) {
	var b []byte
	switch x := v.(type) {
	case string:
		if !fromBinlog || isUTF8Charset(cd.charset) {
			return x, nil
		}
		b = []byte(x)
	case []byte:
		if !fromBinlog || isUTF8Charset(cd.charset) {
			return string(x), nil
		}
		b = x
	default:
		return "", badValue(cd, v)
	}
	switch cd.charset {
	case "latin1":
		return latin1ToUTF8(b), nil
	case "ascii":
		if !utf8.Valid(b) {
			return "", fmt.Errorf("ascii column holds non-ASCII bytes")
		}
		return string(b), nil
	}
	return "", fmt.Errorf("character set %s is not supported by ferry's binlog reader; convert the column to utf8mb4", cd.charset)
}

// isUTF8Charset reports a character set whose bytes are UTF-8 (or a column
// without one).
func isUTF8Charset(cs string) bool {
	switch cs {
	case "", "utf8", "utf8mb3", "utf8mb4", "binary":
		return true
	}
	return false
}

// cp1252High is MySQL's latin1 (Windows-1252, with the five undefined bytes
// mapped to the C1 controls) for bytes 0x80-0x9f.
var cp1252High = [32]rune{
	0x20ac, 0x0081, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008d, 0x017d, 0x008f,
	0x0090, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x009d, 0x017e, 0x0178,
}

func latin1ToUTF8(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b) + len(b)/4)
	for _, c := range b {
		switch {
		case c < 0x80:
			sb.WriteByte(c)
		case c < 0xa0:
			sb.WriteRune(cp1252High[c-0x80])
		default:
			sb.WriteRune(rune(c))
		}
	}
	return sb.String()
}

func inetText(b []byte) string {
	if len(b) == 4 {
		return netip.AddrFrom4([4]byte(b)).String()
	}
	return netip.AddrFrom16([16]byte(b)).String()
}

func asString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case []byte:
		return string(x), true
	}
	return "", false
}

func intValue(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case uint64:
		return int64(x), true
	}
	return 0, false
}

// parseDate parses "YYYY-MM-DD" (a datetime's date part is accepted too).
func parseDate(s string) (time.Time, error) {
	if len(s) > 10 {
		s = s[:10]
	}
	y, m, d, ok := ymd(s)
	if !ok {
		return time.Time{}, fmt.Errorf("invalid date %q", s)
	}
	if m == 0 || d == 0 {
		return time.Time{}, fmt.Errorf("%w %s", errZeroDate, s)
	}
	return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC), nil
}

// parseDateTime parses "YYYY-MM-DD HH:MM:SS[.ffffff]" as a UTC wall clock.
func parseDateTime(s string) (time.Time, error) {
	if len(s) < 19 || s[10] != ' ' && s[10] != 'T' {
		if len(s) == 10 {
			return parseDate(s)
		}
		return time.Time{}, fmt.Errorf("invalid datetime %q", s)
	}
	y, m, d, ok := ymd(s[:10])
	if !ok {
		return time.Time{}, fmt.Errorf("invalid datetime %q", s)
	}
	if m == 0 || d == 0 {
		return time.Time{}, fmt.Errorf("%w %s", errZeroDate, s)
	}
	hh, mm, ss, ns, ok := hms(s[11:])
	if !ok || hh > 23 {
		return time.Time{}, fmt.Errorf("invalid datetime %q", s)
	}
	return time.Date(y, time.Month(m), d, hh, mm, ss, ns, time.UTC), nil
}

// parseTime parses MySQL's TIME text "[-]HHH:MM:SS[.ffffff]".
func parseTime(s string) (time.Duration, error) {
	neg := strings.HasPrefix(s, "-")
	body := strings.TrimPrefix(s, "-")
	i := strings.IndexByte(body, ':')
	if i < 1 {
		return 0, fmt.Errorf("invalid time %q", s)
	}
	h, err := strconv.Atoi(body[:i])
	if err != nil {
		return 0, fmt.Errorf("invalid time %q", s)
	}
	_, mm, ss, ns, ok := hms("00" + body[i:])
	if !ok {
		return 0, fmt.Errorf("invalid time %q", s)
	}
	d := time.Duration(h)*time.Hour + time.Duration(mm)*time.Minute + time.Duration(ss)*time.Second + time.Duration(ns)
	if neg {
		d = -d
	}
	return d, nil
}

func ymd(s string) (y, m, d int, ok bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, 0, 0, false
	}
	y, e1 := strconv.Atoi(s[:4])
	m, e2 := strconv.Atoi(s[5:7])
	d, e3 := strconv.Atoi(s[8:10])
	if e1 != nil || e2 != nil || e3 != nil || m > 12 || d > 31 {
		return 0, 0, 0, false
	}
	return y, m, d, true
}

// hms parses "HH:MM:SS[.fraction]".
func hms(s string) (h, m, sec, ns int, ok bool) {
	if len(s) < 8 || s[2] != ':' || s[5] != ':' {
		return 0, 0, 0, 0, false
	}
	h, e1 := strconv.Atoi(s[:2])
	m, e2 := strconv.Atoi(s[3:5])
	sec, e3 := strconv.Atoi(s[6:8])
	if e1 != nil || e2 != nil || e3 != nil || m > 59 || sec > 59 {
		return 0, 0, 0, 0, false
	}
	if rest := s[8:]; rest != "" {
		if rest[0] != '.' || len(rest) > 10 || len(rest) < 2 {
			return 0, 0, 0, 0, false
		}
		frac := rest[1:]
		n, err := strconv.Atoi(frac)
		if err != nil || n < 0 {
			return 0, 0, 0, 0, false
		}
		for i := len(frac); i < 9; i++ {
			n *= 10
		}
		ns = n
	}
	return h, m, sec, ns, true
}

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
		if d < 0 || d > 24*time.Hour {
			return nil, fmt.Errorf("time of day %s is outside 00:00:00-24:00:00", d)
		}
		if err := checkFraction(int(d%time.Second), c.ct); err != nil {
			return nil, fmt.Errorf("time %s: %w", d, err)
		}
		h, m, s := d/time.Hour, (d%time.Hour)/time.Minute, (d%time.Minute)/time.Second
		lit := fmt.Sprintf("'%02d:%02d:%02d", h, m, s)
		if frac := d % time.Second; frac != 0 {
			lit += strings.TrimRight(fmt.Sprintf(".%09d", frac), "0")
		}
		return append(buf, lit+"'"...), nil
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
	norm, ok := plainDecimal(s)
	if !ok {
		norm = model.NormalizeDecimal(s) // exponents and other spellings: the slow way
		if _, ok := new(big.Rat).SetString(norm); !ok {
			return "", fmt.Errorf("invalid decimal %q", s)
		}
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

// isPlainDecimal reports whether s is spelled [-]digits[.digits], the way
// MySQL prints a DECIMAL, without allocating.
func isPlainDecimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	digits, dot := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot && digits > 0 && i+1 < len(s):
			dot = true
		default:
			return false
		}
	}
	return digits > 0
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
