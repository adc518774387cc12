//go:build cgo && duckdb

package duckdb

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	duck "github.com/duckdb/duckdb-go/v2"

	"github.com/ferrydb/ferry/model"
)

// Every canonical kind maps to a DuckDB column type from which discovery
// recovers the same kind; where DuckDB's type alone cannot say it (a JSON
// document or an inet address held as VARCHAR), the column's comment names
// the kind ("ferry:json"), so a file written by ferry reads back exactly:
//
//	kind         DuckDB type                      comment
//	bool         BOOLEAN
//	int16        SMALLINT
//	int32        INTEGER
//	int64        BIGINT
//	decimal      DECIMAL(p,s) for 1 <= p <= 38, 0 <= s <= p;
//	             else VARCHAR (the exact text)    ferry:decimal[(p,s)]
//	float32      FLOAT
//	float64      DOUBLE
//	text         VARCHAR
//	bytes        BLOB
//	json         VARCHAR (the document's exact text)  ferry:json
//	uuid         UUID
//	date         DATE
//	time         TIME
//	timetz       TIME WITH TIME ZONE
//	timestamp    TIMESTAMP
//	timestamptz  TIMESTAMP WITH TIME ZONE
//	interval     INTERVAL
//	array        <element type>[]                 the element's comment
//	enum         VARCHAR                          ferry:enum
//	inet         VARCHAR                          ferry:inet
//	cidr         VARCHAR                          ferry:cidr
//	macaddr      VARCHAR                          ferry:macaddr
//
// Refused at the row, naming table, column and key: a NaN or infinite
// value in a DECIMAL(p,s) column, an infinite date or timestamp (DuckDB has
// them, its appender does not take them), a time of 24:00:00, a time or
// timestamp with nanoseconds (DuckDB keeps microseconds), text that is not
// valid UTF-8, and a multi-dimensional array.

const commentPrefix = "ferry:"

// colType returns the DuckDB type of a canonical type and the kind its
// comment must name ("" when the type says it).
func colType(t model.Type) (decl, marker string, err error) {
	switch t.Kind {
	case model.KindBool:
		return "BOOLEAN", "", nil
	case model.KindInt16:
		return "SMALLINT", "", nil
	case model.KindInt32:
		return "INTEGER", "", nil
	case model.KindInt64:
		return "BIGINT", "", nil
	case model.KindDecimal:
		if nativeDecimal(t) {
			return fmt.Sprintf("DECIMAL(%d,%d)", t.Precision, t.Scale), "", nil
		}
		if t.Precision > 0 {
			return "VARCHAR", fmt.Sprintf("decimal(%d,%d)", t.Precision, t.Scale), nil
		}
		return "VARCHAR", "decimal", nil
	case model.KindFloat32:
		return "FLOAT", "", nil
	case model.KindFloat64:
		return "DOUBLE", "", nil
	case model.KindText:
		return "VARCHAR", "", nil
	case model.KindBytes:
		return "BLOB", "", nil
	case model.KindJSON, model.KindEnum, model.KindInet, model.KindCIDR, model.KindMACAddr:
		return "VARCHAR", t.Kind.String(), nil
	case model.KindUUID:
		return "UUID", "", nil
	case model.KindDate:
		return "DATE", "", nil
	case model.KindTime:
		return "TIME", "", nil
	case model.KindTimeTZ:
		return "TIME WITH TIME ZONE", "", nil
	case model.KindTimestamp:
		return "TIMESTAMP", "", nil
	case model.KindTimestampTZ:
		return "TIMESTAMP WITH TIME ZONE", "", nil
	case model.KindInterval:
		return "INTERVAL", "", nil
	case model.KindArray:
		if t.Elem == nil {
			return "", "", fmt.Errorf("array type without element type")
		}
		if t.Elem.Kind == model.KindArray {
			return "", "", fmt.Errorf("array of arrays has no DuckDB mapping")
		}
		d, m, err := colType(*t.Elem)
		if err != nil {
			return "", "", fmt.Errorf("array element: %w", err)
		}
		return d + "[]", m, nil
	}
	return "", "", fmt.Errorf("type %s has no DuckDB mapping", t)
}

func nativeDecimal(t model.Type) bool {
	return t.Precision >= 1 && t.Precision <= 38 && t.Scale >= 0 && t.Scale <= t.Precision
}

// parseColType maps a DuckDB column type and comment back to a canonical
// type: ferry's own columns exactly, other columns by meaning; a type ferry
// has no kind for is read as its text form.
func parseColType(decl, comment string) (model.Type, bool) {
	d := strings.ToUpper(strings.TrimSpace(decl))
	marker := ""
	if m, ok := strings.CutPrefix(comment, commentPrefix); ok {
		marker = m
	}
	if elem, ok := strings.CutSuffix(d, "[]"); ok {
		e, ok := parseColType(elem, comment)
		if !ok || e.Kind == model.KindArray {
			return model.Type{Kind: model.KindText, Native: decl, TextForm: true}, false
		}
		return model.Type{Kind: model.KindArray, Elem: &e, Native: decl}, true
	}
	t := model.Type{Native: decl}
	name, args := d, ""
	if i := strings.IndexByte(d, '('); i >= 0 {
		name, args = d[:i], strings.TrimSuffix(d[i+1:], ")")
	}
	switch name {
	case "BOOLEAN":
		t.Kind = model.KindBool
	case "TINYINT", "SMALLINT", "UTINYINT":
		t.Kind = model.KindInt16
	case "INTEGER", "USMALLINT":
		t.Kind = model.KindInt32
	case "BIGINT", "UINTEGER":
		t.Kind = model.KindInt64
	case "DECIMAL":
		t.Kind = model.KindDecimal
		if p, s, ok := strings.Cut(args, ","); ok {
			t.Precision, _ = strconv.Atoi(strings.TrimSpace(p))
			t.Scale, _ = strconv.Atoi(strings.TrimSpace(s))
		}
	case "HUGEINT", "UBIGINT", "UHUGEINT":
		t.Kind = model.KindDecimal
	case "FLOAT":
		t.Kind = model.KindFloat32
	case "DOUBLE":
		t.Kind = model.KindFloat64
	case "VARCHAR":
		t.Kind = model.KindText
		if args, ok := strings.CutPrefix(marker, "decimal("); ok {
			p, s, _ := strings.Cut(strings.TrimSuffix(args, ")"), ",")
			t.Kind = model.KindDecimal
			t.Precision, _ = strconv.Atoi(p)
			t.Scale, _ = strconv.Atoi(s)
		} else if k, err := model.ParseKind(marker); err == nil && marker != "" {
			switch k {
			case model.KindDecimal, model.KindJSON, model.KindEnum, model.KindInet, model.KindCIDR, model.KindMACAddr:
				t.Kind = k
			}
		}
	case "JSON":
		t.Kind = model.KindJSON
	case "BLOB":
		t.Kind = model.KindBytes
	case "UUID":
		t.Kind = model.KindUUID
	case "DATE":
		t.Kind = model.KindDate
	case "TIME":
		t.Kind = model.KindTime
	case "TIME WITH TIME ZONE":
		t.Kind = model.KindTimeTZ
	case "TIMESTAMP":
		t.Kind = model.KindTimestamp
	case "TIMESTAMP WITH TIME ZONE":
		t.Kind = model.KindTimestampTZ
	case "INTERVAL":
		t.Kind = model.KindInterval
	default:
		return model.Type{Kind: model.KindText, Native: decl, TextForm: true}, false
	}
	return t, true
}

// cannotHold marks a value no DuckDB column of its type can hold.
type cannotHold struct{ error }

func (e cannotHold) Unwrap() error { return e.error }

func refuse(format string, args ...any) error { return cannotHold{fmt.Errorf(format, args...)} }

// valueErr names the column and the row's key of a value that cannot be
// written, and for a value DuckDB cannot hold at all, how to go on.
func valueErr(t *model.Table, col string, row model.Row, err error) error {
	msg := fmt.Sprintf("table %s, column %s", t.Namespace, col)
	if key := model.KeyText(t, row); key != "" {
		msg += ", key " + key
	}
	if errors.As(err, new(cannotHold)) {
		return fmt.Errorf("%s: %w; exclude the table with --tables '!%s' or copy it to another destination", msg, err, t.Namespace)
	}
	return fmt.Errorf("%s: %w", msg, err)
}

var (
	// DuckDB's infinite dates and timestamps, as the driver reads them.
	dateInfinity    = time.Date(5881580, time.July, 11, 0, 0, 0, 0, time.UTC)
	dateNegInfinity = time.Date(-5877641, time.June, 24, 0, 0, 0, 0, time.UTC)
	tsInfinity      = time.UnixMicro(math.MaxInt64).UTC()
	tsNegInfinity   = time.UnixMicro(-math.MaxInt64).UTC()
)

// toDuck converts a canonical value of type t to what ferry appends for it.
func toDuck(t model.Type, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	bad := func() (any, error) { return nil, fmt.Errorf("value of Go type %T is not a canonical %s", v, t) }
	if inf, ok := v.(model.Infinity); ok && model.IsTimeKind(t.Kind) {
		return nil, refuse("%s %s: DuckDB's appender takes no infinite dates or timestamps", t.Kind, inf)
	}
	switch t.Kind {
	case model.KindBool:
		b, ok := v.(bool)
		if !ok {
			return bad()
		}
		return b, nil
	case model.KindInt16, model.KindInt32, model.KindInt64:
		i, ok := v.(int64)
		if !ok {
			return bad()
		}
		switch t.Kind {
		case model.KindInt16:
			if i < math.MinInt16 || i > math.MaxInt16 {
				return nil, fmt.Errorf("%d is out of range for int16", i)
			}
			return int16(i), nil
		case model.KindInt32:
			if i < math.MinInt32 || i > math.MaxInt32 {
				return nil, fmt.Errorf("%d is out of range for int32", i)
			}
			return int32(i), nil
		}
		return i, nil
	case model.KindFloat32, model.KindFloat64:
		f, ok := v.(float64)
		if !ok {
			return bad()
		}
		if t.Kind == model.KindFloat32 {
			return float32(f), nil
		}
		return f, nil
	case model.KindDecimal:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		if !nativeDecimal(t) {
			return s, nil
		}
		return unscaled(s, t.Precision, t.Scale)
	case model.KindText, model.KindJSON, model.KindEnum, model.KindInet, model.KindCIDR, model.KindMACAddr:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		if !utf8.ValidString(s) {
			return nil, refuse("text is not valid UTF-8, which a DuckDB VARCHAR cannot hold")
		}
		return s, nil
	case model.KindBytes:
		b, ok := v.([]byte)
		if !ok {
			return bad()
		}
		if b == nil {
			return []byte{}, nil
		}
		return b, nil
	case model.KindUUID:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		var u duck.UUID
		h := strings.ReplaceAll(s, "-", "")
		if len(h) != 32 {
			return nil, fmt.Errorf("uuid %q is not 32 hex digits", s)
		}
		if _, err := hex.Decode(u[:], []byte(h)); err != nil {
			return nil, fmt.Errorf("uuid %q: %w", s, err)
		}
		return u, nil
	case model.KindDate, model.KindTimestamp, model.KindTimestampTZ:
		ts, ok := v.(time.Time)
		if !ok {
			return bad()
		}
		ts = ts.UTC()
		if ts.Nanosecond()%1000 != 0 {
			return nil, refuse("%s has nanoseconds; DuckDB keeps microseconds", ts.Format(time.RFC3339Nano))
		}
		if y := ts.Year(); y < -290307 || y > 294246 {
			return nil, refuse("%s: year %d is outside DuckDB's range", ts.Format(time.RFC3339Nano), y)
		}
		return ts, nil
	case model.KindTime:
		d, ok := v.(time.Duration)
		if !ok {
			return bad()
		}
		return timeOfDay(d, time.UTC)
	case model.KindTimeTZ:
		x, ok := v.(model.TimeTZ)
		if !ok {
			return bad()
		}
		return timeOfDay(x.Time, time.FixedZone("", int(x.Offset)))
	case model.KindInterval:
		iv, ok := v.(model.Interval)
		if !ok {
			return bad()
		}
		return duck.Interval{Months: iv.Months, Days: iv.Days, Micros: iv.Micros}, nil
	case model.KindArray:
		arr, ok := v.([]any)
		if !ok {
			return bad()
		}
		if t.Elem == nil {
			return nil, fmt.Errorf("array type without element type")
		}
		out := make([]any, len(arr))
		for i, e := range arr {
			if _, nested := e.([]any); nested {
				return nil, refuse("a multi-dimensional array has no DuckDB mapping here (element %d is an array)", i)
			}
			x, err := toDuck(*t.Elem, e)
			if err != nil {
				return nil, fmt.Errorf("array element %d: %w", i, err)
			}
			out[i] = x
		}
		return out, nil
	}
	return nil, fmt.Errorf("type %s has no DuckDB mapping", t)
}

func timeOfDay(d time.Duration, loc *time.Location) (any, error) {
	if d < 0 || d >= 24*time.Hour {
		return nil, refuse("time of day %s is outside 00:00:00-23:59:59.999999 (DuckDB's driver reads 24:00:00 back as 00:00:00)", d)
	}
	if d%time.Microsecond != 0 {
		return nil, refuse("time of day %s has nanoseconds; DuckDB keeps microseconds", d)
	}
	return time.Date(1970, 1, 1, 0, 0, 0, 0, loc).Add(d), nil
}

// unscaled turns exact decimal text into the unscaled integer of a
// DECIMAL(p,s), refusing what the column cannot hold exactly.
func unscaled(s string, p, scale int) (any, error) {
	txt := strings.TrimSpace(s)
	switch strings.ToLower(strings.TrimLeft(txt, "+-")) {
	case "nan", "infinity", "inf":
		return nil, refuse("decimal %s: DuckDB's DECIMAL(%d,%d) holds no NaN or infinity", s, p, scale)
	}
	neg := strings.HasPrefix(txt, "-")
	txt = strings.TrimLeft(txt, "+-")
	exp := 0
	if i := strings.IndexAny(txt, "eE"); i >= 0 {
		e, err := strconv.Atoi(txt[i+1:])
		if err != nil {
			return nil, fmt.Errorf("decimal %q: %w", s, err)
		}
		exp, txt = e, txt[:i]
	}
	intPart, frac, _ := strings.Cut(txt, ".")
	digits := intPart + frac
	exp -= len(frac)
	// value = digits * 10^exp; want digits' * 10^-scale.
	shift := exp + scale
	if shift < 0 {
		cut := -shift
		if cut > len(digits) {
			cut = len(digits)
		}
		if strings.Trim(digits[len(digits)-cut:], "0") != "" {
			return nil, refuse("decimal %s has more than %d digits after the point, which DECIMAL(%d,%d) would round", s, scale, p, scale)
		}
		digits = digits[:len(digits)-cut]
	} else {
		digits += strings.Repeat("0", shift)
	}
	n, ok := new(big.Int).SetString("0"+digits, 10)
	if !ok {
		return nil, fmt.Errorf("decimal %q is not a number", s)
	}
	if len(strings.TrimLeft(n.String(), "0")) > p {
		return nil, refuse("decimal %s has more than %d digits, which DECIMAL(%d,%d) cannot hold", s, p, p, scale)
	}
	if neg {
		n.Neg(n)
	}
	if p <= 18 {
		return n.Int64(), nil
	}
	return n, nil
}

// fromDuck converts a value read from DuckDB to the canonical value of t.
func fromDuck(t model.Type, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if t.TextForm {
		return textForm(v), nil
	}
	switch t.Kind {
	case model.KindBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case model.KindInt16, model.KindInt32, model.KindInt64:
		switch x := v.(type) {
		case int8:
			return int64(x), nil
		case int16:
			return int64(x), nil
		case int32:
			return int64(x), nil
		case int64:
			return x, nil
		case uint8:
			return int64(x), nil
		case uint16:
			return int64(x), nil
		case uint32:
			return int64(x), nil
		}
	case model.KindDecimal:
		switch x := v.(type) {
		case duck.Decimal:
			return formatDecimal(x.Value, int(x.Scale)), nil
		case string:
			return x, nil
		case *big.Int:
			return x.String(), nil
		case uint64:
			return strconv.FormatUint(x, 10), nil
		}
	case model.KindFloat32:
		if f, ok := v.(float32); ok {
			return float64(f), nil
		}
	case model.KindFloat64:
		if f, ok := v.(float64); ok {
			return f, nil
		}
	case model.KindText, model.KindJSON, model.KindEnum, model.KindInet, model.KindCIDR, model.KindMACAddr:
		switch x := v.(type) {
		case string:
			return x, nil
		default:
			return textForm(v), nil
		}
	case model.KindBytes:
		if b, ok := v.([]byte); ok {
			if b == nil {
				b = []byte{}
			}
			return b, nil
		}
	case model.KindUUID:
		if b, ok := v.([]byte); ok && len(b) == 16 {
			h := hex.EncodeToString(b)
			return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
		}
	case model.KindDate:
		if ts, ok := v.(time.Time); ok {
			switch {
			case ts.Equal(dateInfinity):
				return model.PosInfinity, nil
			case ts.Equal(dateNegInfinity):
				return model.NegInfinity, nil
			}
			y, m, d := ts.Date()
			return time.Date(y, m, d, 0, 0, 0, 0, time.UTC), nil
		}
	case model.KindTimestamp, model.KindTimestampTZ:
		if ts, ok := v.(time.Time); ok {
			switch {
			case ts.Equal(tsInfinity):
				return model.PosInfinity, nil
			case ts.Equal(tsNegInfinity):
				return model.NegInfinity, nil
			}
			return ts.UTC(), nil
		}
	case model.KindTime:
		if ts, ok := v.(time.Time); ok {
			return sinceMidnight(ts), nil
		}
	case model.KindTimeTZ:
		if ts, ok := v.(time.Time); ok {
			_, off := ts.Zone()
			return model.TimeTZ{Time: sinceMidnight(ts), Offset: int32(off)}, nil
		}
	case model.KindInterval:
		if iv, ok := v.(duck.Interval); ok {
			return model.Interval{Months: iv.Months, Days: iv.Days, Micros: iv.Micros}, nil
		}
	case model.KindArray:
		if arr, ok := v.([]any); ok && t.Elem != nil {
			out := make([]any, len(arr))
			for i, e := range arr {
				x, err := fromDuck(*t.Elem, e)
				if err != nil {
					return nil, fmt.Errorf("array element %d: %w", i, err)
				}
				out[i] = x
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("DuckDB value of Go type %T is not a %s", v, t)
}

func sinceMidnight(ts time.Time) time.Duration {
	h, m, s := ts.Clock()
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second + time.Duration(ts.Nanosecond())
}

// formatDecimal renders an unscaled integer with scale digits after the
// point, as PostgreSQL prints a numeric(p,s).
func formatDecimal(n *big.Int, scale int) string {
	if n == nil {
		return "0"
	}
	s := new(big.Int).Abs(n).String()
	if scale > 0 {
		if len(s) <= scale {
			s = strings.Repeat("0", scale-len(s)+1) + s
		}
		s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	}
	if n.Sign() < 0 {
		s = "-" + s
	}
	return s
}

// textForm renders a value of a DuckDB type ferry has no kind for.
func textForm(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case time.Time:
		return x.Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}
