package sqlite

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferrydb/ferry/model"
)

// A SQLite column stores any value; its declared type only sets an affinity
// that converts some values on the way in (TEXT "1.50" into the REAL 1.5 in a
// NUMERIC column, the REAL -0.0 into the INTEGER 0 in a REAL column). ferry
// therefore declares types whose affinity leaves its values exactly as bound,
// and whose names let discovery recover the canonical kind:
//
//	kind         declared type             affinity  stored as
//	bool         BOOLEAN                   NUMERIC   INTEGER 0/1
//	int16        SMALLINT                  INTEGER   INTEGER
//	int32        INT32                     INTEGER   INTEGER
//	int64        INTEGER                   INTEGER   INTEGER
//	decimal      DECIMAL_TEXT[(p,s)]       TEXT      TEXT, the exact spelling
//	float32      FLOAT32_BLOB              BLOB      REAL; NaN as TEXT 'NaN'
//	float64      FLOAT64_BLOB              BLOB      REAL; NaN as TEXT 'NaN'
//	text         TEXT or VARCHAR(n)        TEXT      TEXT (bytes verbatim)
//	bytes        BLOB or BLOB(n)           BLOB      BLOB
//	json         JSON_TEXT                 TEXT      TEXT
//	uuid         UUID_TEXT                 TEXT      TEXT
//	date         DATE_TEXT                 TEXT      TEXT 2006-01-02 (or infinity, -infinity)
//	time         TIME_TEXT                 TEXT      TEXT 15:04:05.999999999
//	timetz       TIMETZ_TEXT               TEXT      TEXT 15:04:05.999999999+07:00
//	timestamp    TIMESTAMP_TEXT            TEXT      TEXT 2006-01-02 15:04:05.999999999
//	timestamptz  TIMESTAMPTZ_TEXT          TEXT      TEXT 2006-01-02 15:04:05.999999999+00:00
//	interval     INTERVAL_TEXT             INTEGER*  TEXT P<m>M<d>DT<s>S
//	array        ARRAY_TEXT OF <elem>      TEXT*     TEXT, a JSON array (nested: multi-dimensional)
//	enum         ENUM_TEXT                 TEXT      TEXT
//	inet         INET_TEXT                 TEXT      TEXT
//	cidr         CIDR_TEXT                 TEXT      TEXT
//	macaddr      MACADDR_TEXT              TEXT      TEXT
//
// (*) a name containing "INT" has INTEGER affinity, which only converts text
// that looks like a number; an interval's text starts with "P" and an array's
// with "[", so they are stored verbatim too.
//
// Dates and timestamps are in SQLite's own date-function format, which also
// sorts as text in time order (the "+00:00" suffix sorts before any fraction);
// infinite ones are the text 'infinity' and '-infinity', which sort after and
// before them. Years outside 0000-9999 are refused at the row.
// Floats live in a BLOB-affinity column because a REAL column stores -0.0 as
// the integer 0 and SQLite turns a NaN into NULL.

const arrayPrefix = "ARRAY_TEXT OF "

// declType returns the declared SQLite type for a canonical type.
func declType(t model.Type) (string, error) {
	switch t.Kind {
	case model.KindBool:
		return "BOOLEAN", nil
	case model.KindInt16:
		return "SMALLINT", nil
	case model.KindInt32:
		return "INT32", nil
	case model.KindInt64:
		return "INTEGER", nil
	case model.KindDecimal:
		if t.Precision > 0 {
			return fmt.Sprintf("DECIMAL_TEXT(%d,%d)", t.Precision, t.Scale), nil
		}
		return "DECIMAL_TEXT", nil
	case model.KindFloat32:
		return "FLOAT32_BLOB", nil
	case model.KindFloat64:
		return "FLOAT64_BLOB", nil
	case model.KindText:
		if t.Length > 0 {
			return fmt.Sprintf("VARCHAR(%d)", t.Length), nil
		}
		return "TEXT", nil
	case model.KindBytes:
		if t.Length > 0 {
			return fmt.Sprintf("BLOB(%d)", t.Length), nil
		}
		return "BLOB", nil
	case model.KindJSON:
		return "JSON_TEXT", nil
	case model.KindUUID:
		return "UUID_TEXT", nil
	case model.KindDate:
		return "DATE_TEXT", nil
	case model.KindTime:
		return "TIME_TEXT", nil
	case model.KindTimeTZ:
		return "TIMETZ_TEXT", nil
	case model.KindTimestamp:
		return "TIMESTAMP_TEXT", nil
	case model.KindTimestampTZ:
		return "TIMESTAMPTZ_TEXT", nil
	case model.KindInterval:
		return "INTERVAL_TEXT", nil
	case model.KindEnum:
		return "ENUM_TEXT", nil
	case model.KindInet:
		return "INET_TEXT", nil
	case model.KindCIDR:
		return "CIDR_TEXT", nil
	case model.KindMACAddr:
		return "MACADDR_TEXT", nil
	case model.KindArray:
		if t.Elem == nil {
			return "", fmt.Errorf("array type without element type")
		}
		e, err := declType(*t.Elem)
		if err != nil {
			return "", fmt.Errorf("array element: %w", err)
		}
		return arrayPrefix + e, nil
	}
	return "", fmt.Errorf("type %s has no SQLite mapping", t)
}

// parseDeclType maps a declared type back to a canonical type: ferry's own
// names exactly, the usual names of hand-made tables (INT, VARCHAR(20),
// REAL, DATETIME, ...) by meaning, and anything else by SQLite's affinity
// rules, unknown names as text.
func parseDeclType(decl string) model.Type {
	d := strings.Join(strings.Fields(strings.ToUpper(decl)), " ")
	native := strings.TrimSpace(decl)
	if rest, ok := strings.CutPrefix(d, arrayPrefix); ok {
		elem := parseDeclType(rest)
		return model.Type{Kind: model.KindArray, Elem: &elem, Native: native}
	}
	name, args := d, []int(nil)
	if i := strings.IndexByte(d, '('); i >= 0 {
		name = strings.TrimSpace(d[:i])
		inner := strings.TrimSuffix(strings.TrimSpace(d[i+1:]), ")")
		for _, a := range strings.Split(inner, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(a))
			if err != nil {
				args = nil // not numbers: ignore the parameters
				break
			}
			args = append(args, n)
		}
	}
	arg := func(i int) int {
		if i < len(args) {
			return args[i]
		}
		return 0
	}
	t := model.Type{Native: native}
	switch name {
	case "BOOLEAN", "BOOL":
		t.Kind = model.KindBool
	case "SMALLINT", "TINYINT", "INT2", "INT16":
		t.Kind = model.KindInt16
	case "INT32", "INT4", "MEDIUMINT":
		t.Kind = model.KindInt32
	case "INTEGER", "INT", "BIGINT", "INT8", "INT64", "UNSIGNED BIG INT":
		t.Kind = model.KindInt64
	case "DECIMAL_TEXT", "DECIMAL", "NUMERIC":
		t.Kind = model.KindDecimal
		t.Precision, t.Scale = arg(0), arg(1)
	case "FLOAT32_BLOB", "FLOAT4":
		t.Kind = model.KindFloat32
	case "FLOAT64_BLOB", "REAL", "DOUBLE", "DOUBLE PRECISION", "FLOAT", "FLOAT8":
		t.Kind = model.KindFloat64
	case "TEXT", "CLOB":
		t.Kind = model.KindText
	case "VARCHAR", "CHAR", "CHARACTER", "NCHAR", "NVARCHAR", "VARYING CHARACTER", "NATIVE CHARACTER", "CHARACTER VARYING":
		t.Kind = model.KindText
		t.Length = arg(0)
	case "BLOB":
		t.Kind = model.KindBytes
		t.Length = arg(0)
	case "JSON_TEXT", "JSON":
		t.Kind = model.KindJSON
	case "UUID_TEXT", "UUID":
		t.Kind = model.KindUUID
	case "DATE_TEXT", "DATE":
		t.Kind = model.KindDate
	case "TIME_TEXT", "TIME":
		t.Kind = model.KindTime
	case "TIMETZ_TEXT":
		t.Kind = model.KindTimeTZ
	case "TIMESTAMP_TEXT", "TIMESTAMP", "DATETIME":
		t.Kind = model.KindTimestamp
	case "TIMESTAMPTZ_TEXT", "TIMESTAMPTZ":
		t.Kind = model.KindTimestampTZ
	case "INTERVAL_TEXT":
		t.Kind = model.KindInterval
	case "ENUM_TEXT":
		t.Kind = model.KindEnum
	case "INET_TEXT":
		t.Kind = model.KindInet
	case "CIDR_TEXT":
		t.Kind = model.KindCIDR
	case "MACADDR_TEXT":
		t.Kind = model.KindMACAddr
	default:
		switch affinity(d) {
		case affInteger:
			t.Kind = model.KindInt64
		case affReal:
			t.Kind = model.KindFloat64
		case affBlob:
			if d != "" {
				t.Kind = model.KindBytes
			} else {
				t.Kind = model.KindText // no declared type: any value, read as text
			}
		default:
			t.Kind = model.KindText
		}
	}
	return t
}

type aff int

const (
	affNumeric aff = iota
	affInteger
	affText
	affBlob
	affReal
)

func (a aff) String() string {
	return [...]string{"NUMERIC", "INTEGER", "TEXT", "BLOB", "REAL"}[a]
}

// affinity applies SQLite's rules (https://sqlite.org/datatype3.html, 3.1) to
// a declared type.
func affinity(decl string) aff {
	d := strings.ToUpper(decl)
	switch {
	case strings.Contains(d, "INT"):
		return affInteger
	case strings.Contains(d, "CHAR"), strings.Contains(d, "CLOB"), strings.Contains(d, "TEXT"):
		return affText
	case strings.Contains(d, "BLOB"), strings.TrimSpace(d) == "":
		return affBlob
	case strings.Contains(d, "REAL"), strings.Contains(d, "FLOA"), strings.Contains(d, "DOUB"):
		return affReal
	}
	return affNumeric
}

const (
	dateLayout        = "2006-01-02"
	timestampLayout   = "2006-01-02 15:04:05.999999999"
	timestampTZLayout = "2006-01-02 15:04:05.999999999-07:00"
)

// toSQLite converts a canonical value of type t to what ferry binds for it.
func toSQLite(t model.Type, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	bad := func() (any, error) { return nil, fmt.Errorf("value of Go type %T is not a canonical %s", v, t) }
	if inf, ok := v.(model.Infinity); ok && model.IsTimeKind(t.Kind) {
		// Stored as PostgreSQL spells it, which also sorts as text after
		// ("i" > "9") or before ("-" < "0") every date.
		return inf.String(), nil
	}
	switch t.Kind {
	case model.KindBool:
		b, ok := v.(bool)
		if !ok {
			return bad()
		}
		if b {
			return int64(1), nil
		}
		return int64(0), nil
	case model.KindInt16, model.KindInt32, model.KindInt64:
		i, ok := v.(int64)
		if !ok {
			return bad()
		}
		return i, nil
	case model.KindFloat32, model.KindFloat64:
		f, ok := v.(float64)
		if !ok {
			return bad()
		}
		if math.IsNaN(f) {
			return "NaN", nil // SQLite would store a NaN as NULL
		}
		return f, nil
	case model.KindDecimal, model.KindText, model.KindJSON, model.KindUUID,
		model.KindEnum, model.KindInet, model.KindCIDR, model.KindMACAddr:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		return s, nil
	case model.KindBytes:
		b, ok := v.([]byte)
		if !ok {
			return bad()
		}
		if b == nil {
			return []byte{}, nil // the driver binds a nil slice as NULL
		}
		return b, nil
	case model.KindDate:
		ts, ok := v.(time.Time)
		if !ok {
			return bad()
		}
		if err := checkYear(ts); err != nil {
			return nil, err
		}
		return ts.Format(dateLayout), nil
	case model.KindTimestamp:
		ts, ok := v.(time.Time)
		if !ok {
			return bad()
		}
		if err := checkYear(ts); err != nil {
			return nil, err
		}
		return ts.Format(timestampLayout), nil
	case model.KindTimestampTZ:
		ts, ok := v.(time.Time)
		if !ok {
			return bad()
		}
		ts = ts.UTC()
		if err := checkYear(ts); err != nil {
			return nil, err
		}
		return ts.Format(timestampTZLayout), nil
	case model.KindTime:
		d, ok := v.(time.Duration)
		if !ok {
			return bad()
		}
		return model.FormatTimeOfDay(d)
	case model.KindTimeTZ:
		x, ok := v.(model.TimeTZ)
		if !ok {
			return bad()
		}
		s, err := model.FormatTimeOfDay(x.Time)
		if err != nil {
			return nil, err
		}
		return s + model.FormatOffset(x.Offset), nil
	case model.KindInterval:
		if _, ok := v.(model.Interval); !ok {
			return bad()
		}
		return model.FormatText(t, v)
	case model.KindArray:
		// AppendCanonical checks every element's Go type, which FormatText
		// assumes; a JSON string cannot carry invalid UTF-8 exactly.
		if _, err := model.AppendCanonical(nil, t, v); err != nil {
			return nil, err
		}
		if err := checkArrayText(t, v); err != nil {
			return nil, err
		}
		return model.FormatText(t, v)
	}
	return nil, fmt.Errorf("type %s has no SQLite mapping", t)
}

func checkYear(ts time.Time) error {
	if y := ts.Year(); y < 0 || y > 9999 {
		return cannotHold{fmt.Errorf("%s: year %d is outside 0000-9999, which SQLite's date format cannot hold", ts.Format(time.RFC3339Nano), y)}
	}
	return nil
}

// cannotHold marks a value no SQLite column of its type can hold.
type cannotHold struct{ error }

func (e cannotHold) Unwrap() error { return e.error }

// valueErr names the column and the row's key of a value that cannot be
// written, and for a value SQLite cannot hold at all, how to go on.
func valueErr(t *model.Table, col string, row model.Row, err error) error {
	msg := "column " + col
	if key := model.KeyText(t, row); key != "" {
		msg += ", key " + key
	}
	if errors.As(err, new(cannotHold)) || errors.Is(err, model.ErrMultiDimJSONArray) {
		return fmt.Errorf("%s: %w; exclude the table with --tables '!%s' or copy it to another destination", msg, err, t.Namespace)
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// checkArrayText refuses text elements that are not valid UTF-8: the JSON
// form of an array would replace their invalid bytes.
func checkArrayText(t model.Type, v any) error {
	arr, _ := v.([]any) // AppendCanonical has checked the type
	for i, e := range arr {
		switch x := e.(type) {
		case string:
			if !utf8.ValidString(x) {
				return fmt.Errorf("array element %d: text is not valid UTF-8 and cannot be stored in a JSON array exactly", i)
			}
		case []any: // a sub-array of a multi-dimensional array
			if err := checkArrayText(t, x); err != nil {
				return fmt.Errorf("array element %d: %w", i, err)
			}
		}
	}
	return nil
}

// fromSQLite converts a value read from SQLite to the canonical value of t.
// Values written by ferry convert exactly; hand-made tables may hold any
// storage class in any column, so numbers read as text where text is wanted.
func fromSQLite(t model.Type, v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []byte:
		if x == nil {
			x = []byte{} // a non-NULL empty blob
		}
		if t.Kind == model.KindBytes {
			return x, nil
		}
		v = x
	case int64:
		if isTextKind(t.Kind) {
			return strconv.FormatInt(x, 10), nil
		}
	case float64:
		if isTextKind(t.Kind) {
			return strconv.FormatFloat(x, 'g', -1, 64), nil
		}
		if t.Kind.IsInteger() && x != math.Trunc(x) {
			return nil, fmt.Errorf("REAL %v is not an integer", x)
		}
	case string:
		if t.Kind == model.KindText {
			return x, nil
		}
	}
	return model.Coerce(t, v)
}

func isTextKind(k model.Kind) bool {
	switch k {
	case model.KindText, model.KindEnum, model.KindInet, model.KindCIDR, model.KindMACAddr:
		return true
	}
	return false
}
