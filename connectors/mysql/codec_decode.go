package mysql

import (
	"database/sql"
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

// intValue reads an enum index, a set mask or a bit value from the binlog.
// Unlike model.Coerce it keeps all 64 bits of a uint64 (a set of 64 labels).
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
