package file

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"

	"github.com/ferrydb/ferry/model"
)

// Parquet type mapping (docs/connectors.md lists it for users). Each model
// column is one top-level Parquet field, in column order, so column i of the
// table is leaf column i of the file (a LIST has a single leaf).

// maxParquetDecimal is the largest precision written as a Parquet DECIMAL:
// DuckDB, Arrow and Spark read no wider decimal, so a wider one is a string.
const maxParquetDecimal = 38

// Infinite dates and timestamps are written as DuckDB writes its own
// infinities into Parquet: the largest (and the negated largest) value of
// the physical type. DuckDB reads them back as infinity, and so does ferry.
const (
	dateInfinity      = math.MaxInt32
	timestampInfinity = math.MaxInt64
)

// pqCodec is how one column's values (or an array column's elements) are
// held in Parquet.
type pqCodec int

const (
	pqBool pqCodec = iota
	pqInt32
	pqInt64
	pqDecimal32
	pqDecimal64
	pqDecimalFixed
	pqFloat
	pqDouble
	pqString // UTF-8 text: model.FormatText of the value for kinds Parquet lacks
	pqBytes
	pqJSON
	pqUUID
	pqDate
	pqTimestamp
	pqTime
)

// pqColumn is the Parquet form of one column.
type pqColumn struct {
	name     string
	typ      model.Type // the column's type
	elemType model.Type // the type of the values the codec holds: typ, or its element type
	codec    pqCodec
	optional bool
	list     bool
	// fixedLen is the byte length of a FIXED_LEN_BYTE_ARRAY decimal.
	fixedLen int
	// maxDef is the definition level of a present value (of an element, for
	// a list).
	maxDef int
}

// parquetLayout is a table's Parquet schema and its columns' codecs.
type parquetLayout struct {
	schema *parquet.Schema
	cols   []pqColumn
}

func newParquetLayout(t *model.Table) (*parquetLayout, error) {
	l := &parquetLayout{}
	fields := make([]parquet.Field, len(t.Columns))
	for i, c := range t.Columns {
		if c.Name == "" || strings.ContainsRune(c.Name, 0) {
			return nil, fmt.Errorf("column %q: Parquet cannot name a column so", c.Name)
		}
		pc := pqColumn{name: c.Name, typ: c.Type, elemType: c.Type, optional: c.Nullable}
		if c.Type.Kind == model.KindArray {
			if c.Type.Elem == nil {
				return nil, fmt.Errorf("column %q: array type without element type", c.Name)
			}
			if c.Type.Elem.Kind == model.KindArray {
				return nil, fmt.Errorf("column %q: an array of arrays has no Parquet form here", c.Name)
			}
			pc.list, pc.elemType = true, *c.Type.Elem
		}
		leaf, err := pc.leaf()
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", c.Name, err)
		}
		node := leaf
		if pc.list {
			// optional group c (LIST) { repeated group list { optional element } }
			node = parquet.List(parquet.Optional(leaf))
			pc.maxDef = 2
		}
		if pc.optional {
			node = parquet.Optional(node)
			pc.maxDef++
		}
		fields[i] = &pqField{Node: node, name: c.Name}
		l.cols = append(l.cols, pc)
	}
	l.schema = parquet.NewSchema("ferry", &orderedGroup{fields: fields})
	return l, nil
}

// leaf chooses the codec and Parquet leaf node of the column's values.
func (c *pqColumn) leaf() (parquet.Node, error) {
	t := c.elemType
	switch t.Kind {
	case model.KindBool:
		c.codec = pqBool
		return parquet.Leaf(parquet.BooleanType), nil
	case model.KindInt16:
		c.codec = pqInt32
		return parquet.Int(16), nil
	case model.KindInt32:
		c.codec = pqInt32
		return parquet.Int(32), nil
	case model.KindInt64:
		c.codec = pqInt64
		return parquet.Int(64), nil
	case model.KindDecimal:
		p, s := t.Precision, t.Scale
		switch {
		case p <= 0 || p > maxParquetDecimal || s < 0 || s > p:
			// Unconstrained (or wider than readers take): a Parquet DECIMAL
			// has one scale for the column, these values have their own.
			c.codec = pqString
			return parquet.String(), nil
		case p <= 9:
			c.codec = pqDecimal32
			return parquet.Decimal(s, p, parquet.Int32Type), nil
		case p <= 18:
			c.codec = pqDecimal64
			return parquet.Decimal(s, p, parquet.Int64Type), nil
		}
		c.codec, c.fixedLen = pqDecimalFixed, decimalBytes(p)
		return parquet.Decimal(s, p, parquet.FixedLenByteArrayType(c.fixedLen)), nil
	case model.KindFloat32:
		c.codec = pqFloat
		return parquet.Leaf(parquet.FloatType), nil
	case model.KindFloat64:
		c.codec = pqDouble
		return parquet.Leaf(parquet.DoubleType), nil
	case model.KindBytes:
		c.codec = pqBytes
		return parquet.Leaf(parquet.ByteArrayType), nil
	case model.KindJSON:
		c.codec = pqJSON
		return parquet.JSON(), nil
	case model.KindUUID:
		c.codec = pqUUID
		return parquet.UUID(), nil
	case model.KindDate:
		c.codec = pqDate
		return parquet.Date(), nil
	case model.KindTimestamp:
		c.codec = pqTimestamp
		return parquet.TimestampAdjusted(parquet.Microsecond, false), nil
	case model.KindTimestampTZ:
		c.codec = pqTimestamp
		return parquet.TimestampAdjusted(parquet.Microsecond, true), nil
	case model.KindTime:
		c.codec = pqTime
		return parquet.TimeAdjusted(parquet.Microsecond, false), nil
	case model.KindText, model.KindEnum, model.KindInet, model.KindCIDR, model.KindMACAddr,
		model.KindTimeTZ, model.KindInterval:
		c.codec = pqString
		return parquet.String(), nil
	}
	return nil, fmt.Errorf("type %s cannot be written to a file", t)
}

// decimalBytes is the fewest bytes whose two's complement holds every
// unscaled value of a decimal of precision p.
func decimalBytes(p int) int {
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(p)), nil)
	n := 1
	for new(big.Int).Lsh(big.NewInt(1), uint(8*n-1)).Cmp(limit) < 0 {
		n++
	}
	return n
}

// orderedGroup is a Parquet group whose fields keep the table's column
// order (parquet.Group, a map, sorts them by name).
type orderedGroup struct {
	parquet.Group
	fields []parquet.Field
}

func (g *orderedGroup) Fields() []parquet.Field { return g.fields }

// GoType is never used (rows are built as parquet.Row); parquet.Group's
// would panic on a column name with a comma.
func (g *orderedGroup) GoType() reflect.Type { return reflect.TypeFor[map[string]any]() }

type pqField struct {
	parquet.Node
	name string
}

func (f *pqField) Name() string                      { return f.name }
func (f *pqField) Value(reflect.Value) reflect.Value { return reflect.Value{} }

// appendRow appends the Parquet values of row, leaf column by leaf column.
func (l *parquetLayout) appendRow(out parquet.Row, row model.Row) (parquet.Row, error) {
	for i := range l.cols {
		c := &l.cols[i]
		v := row[i]
		if err := checkValue(c.typ, v); err != nil {
			return nil, fmt.Errorf("column %q: %w", c.name, err)
		}
		if v == nil {
			if !c.optional {
				return nil, fmt.Errorf("column %q: NULL in a column that is not nullable", c.name)
			}
			out = append(out, parquet.NullValue().Level(0, 0, i))
			continue
		}
		present := 0
		if c.optional {
			present = 1
		}
		if !c.list {
			pv, err := c.value(v)
			if err != nil {
				return nil, fmt.Errorf("column %q: %w", c.name, err)
			}
			out = append(out, pv.Level(0, present, i))
			continue
		}
		arr := v.([]any) // checkValue made sure
		if len(arr) == 0 {
			out = append(out, parquet.NullValue().Level(0, present, i))
			continue
		}
		for j, e := range arr {
			rep := 0
			if j > 0 {
				rep = 1
			}
			if e == nil {
				out = append(out, parquet.NullValue().Level(rep, c.maxDef-1, i))
				continue
			}
			if _, sub := e.([]any); sub {
				return nil, fmt.Errorf("column %q: %w", c.name, errParquetMultiDim)
			}
			pv, err := c.value(e)
			if err != nil {
				return nil, fmt.Errorf("column %q: array element %d: %w", c.name, j, err)
			}
			out = append(out, pv.Level(rep, c.maxDef, i))
		}
	}
	return out, nil
}

// errParquetMultiDim refuses a multi-dimensional array: the column's LIST
// has one level, fixed by its type, which does not say how many a value has.
var errParquetMultiDim = errors.New("a multi-dimensional array has no Parquet LIST form here")

var errSubMicro = errors.New("has a fraction of a microsecond, which Parquet's MICROS unit cannot hold")

// value converts one non-NULL canonical value of the codec's type.
func (c *pqColumn) value(v any) (parquet.Value, error) {
	t := c.elemType
	switch c.codec {
	case pqBool:
		return parquet.BooleanValue(v.(bool)), nil
	case pqInt32:
		i := v.(int64)
		if i < math.MinInt32 || i > math.MaxInt32 || (t.Kind == model.KindInt16 && (i < math.MinInt16 || i > math.MaxInt16)) {
			return parquet.Value{}, fmt.Errorf("%d is out of range for %s", i, t)
		}
		return parquet.Int32Value(int32(i)), nil
	case pqInt64:
		return parquet.Int64Value(v.(int64)), nil
	case pqDecimal32, pqDecimal64, pqDecimalFixed:
		u, err := unscaledDecimal(v.(string), t.Precision, t.Scale)
		if err != nil {
			return parquet.Value{}, err
		}
		switch c.codec {
		case pqDecimal32:
			return parquet.Int32Value(int32(u.Int64())), nil
		case pqDecimal64:
			return parquet.Int64Value(u.Int64()), nil
		}
		return parquet.FixedLenByteArrayValue(twosComplement(u, c.fixedLen)), nil
	case pqFloat:
		return parquet.FloatValue(float32(v.(float64))), nil
	case pqDouble:
		return parquet.DoubleValue(v.(float64)), nil
	case pqBytes:
		return parquet.ByteArrayValue(v.([]byte)), nil
	case pqJSON:
		return parquet.ByteArrayValue([]byte(v.(string))), nil
	case pqUUID:
		b, err := parseUUID(v.(string))
		if err != nil {
			return parquet.Value{}, err
		}
		return parquet.FixedLenByteArrayValue(b), nil
	case pqDate:
		if inf, ok := v.(model.Infinity); ok {
			return parquet.Int32Value(int32(inf) * dateInfinity), nil
		}
		d := v.(time.Time)
		days := d.Unix() / 86400
		if d.Unix()%86400 != 0 || days < -dateInfinity+1 || days > dateInfinity-1 {
			return parquet.Value{}, fmt.Errorf("date %s is not a whole day Parquet's DATE holds", d.Format(time.RFC3339Nano))
		}
		return parquet.Int32Value(int32(days)), nil
	case pqTimestamp:
		if inf, ok := v.(model.Infinity); ok {
			return parquet.Int64Value(int64(inf) * timestampInfinity), nil
		}
		ts := v.(time.Time)
		if ts.Nanosecond()%1000 != 0 {
			return parquet.Value{}, fmt.Errorf("timestamp %s %w", ts.Format(time.RFC3339Nano), errSubMicro)
		}
		// Unix microseconds overflow int64 near PostgreSQL's last year
		// (294276 AD), and ±MaxInt64 stand for the infinities.
		if sec := ts.Unix(); sec >= timestampInfinity/1_000_000 || sec <= -timestampInfinity/1_000_000 {
			return parquet.Value{}, fmt.Errorf("timestamp %s is outside the range of Parquet's TIMESTAMP(MICROS)", ts.Format(time.RFC3339Nano))
		}
		return parquet.Int64Value(ts.UnixMicro()), nil
	case pqTime:
		d := v.(time.Duration)
		if d%time.Microsecond != 0 {
			return parquet.Value{}, fmt.Errorf("time %s %w", d, errSubMicro)
		}
		return parquet.Int64Value(d.Microseconds()), nil
	case pqString:
		var s string
		if str, ok := v.(string); ok {
			s = str
		} else {
			var err error
			if s, err = model.FormatText(t, v); err != nil {
				return parquet.Value{}, err
			}
		}
		if !utf8.ValidString(s) {
			return parquet.Value{}, errors.New("text is not valid UTF-8, which a Parquet STRING must be (format=csv keeps any bytes)")
		}
		return parquet.ByteArrayValue([]byte(s)), nil
	}
	return parquet.Value{}, fmt.Errorf("no Parquet form for %s", t)
}

// unscaledDecimal is the decimal text s times 10^scale, refused when that
// loses digits or needs more than precision digits.
func unscaledDecimal(s string, precision, scale int) (*big.Int, error) {
	switch s {
	case "NaN", "Infinity", "-Infinity":
		return nil, fmt.Errorf("decimal %s has no Parquet DECIMAL form", s)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, fmt.Errorf("invalid decimal %q", s)
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)))
	if !r.IsInt() {
		return nil, fmt.Errorf("decimal %s has more than %d fractional digits, the column's scale", s, scale)
	}
	u := r.Num()
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(precision)), nil)
	if new(big.Int).Abs(u).Cmp(limit) >= 0 {
		return nil, fmt.Errorf("decimal %s does not fit decimal(%d,%d)", s, precision, scale)
	}
	return u, nil
}

// twosComplement is u as n big-endian bytes of two's complement.
func twosComplement(u *big.Int, n int) []byte {
	b := make([]byte, n)
	if u.Sign() >= 0 {
		u.FillBytes(b)
		return b
	}
	m := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), uint(8*n)), u)
	m.FillBytes(b)
	return b
}

// fromTwosComplement reads big-endian two's complement bytes.
func fromTwosComplement(b []byte) *big.Int {
	u := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		u.Sub(u, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return u
}

// scaledDecimal spells an unscaled value with exactly scale fractional
// digits, as the column's type does.
func scaledDecimal(u *big.Int, scale int) string {
	neg := u.Sign() < 0
	digits := new(big.Int).Abs(u).String()
	if scale > 0 {
		if len(digits) <= scale {
			digits = strings.Repeat("0", scale-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

func parseUUID(s string) ([]byte, error) {
	h := strings.ReplaceAll(s, "-", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 16 || len(s) != 36 {
		return nil, fmt.Errorf("invalid UUID %q", s)
	}
	return b, nil
}

func formatUUID(b []byte) string {
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// decodeRow converts one Parquet row back to a model row.
func (l *parquetLayout) decodeRow(row parquet.Row) (model.Row, error) {
	out := make(model.Row, len(l.cols))
	var err error
	row.Range(func(i int, vals []parquet.Value) bool {
		if i >= len(l.cols) {
			err = fmt.Errorf("leaf column %d is not a column of the table", i)
			return false
		}
		c := &l.cols[i]
		if !c.list {
			if len(vals) != 1 {
				err = fmt.Errorf("column %q: %d values in one row", c.name, len(vals))
				return false
			}
			if vals[0].IsNull() {
				return true
			}
			if out[i], err = c.decode(vals[0]); err != nil {
				err = fmt.Errorf("column %q: %w", c.name, err)
				return false
			}
			return true
		}
		present := 0
		if c.optional {
			present = 1
		}
		if len(vals) == 1 && vals[0].IsNull() && vals[0].DefinitionLevel() < present+1 {
			if vals[0].DefinitionLevel() == present {
				out[i] = []any{}
			}
			return true
		}
		arr := make([]any, 0, len(vals))
		for _, v := range vals {
			if v.IsNull() {
				arr = append(arr, nil)
				continue
			}
			e, derr := c.decode(v)
			if derr != nil {
				err = fmt.Errorf("column %q: %w", c.name, derr)
				return false
			}
			arr = append(arr, e)
		}
		out[i] = arr
		return true
	})
	return out, err
}

// decode converts one non-NULL Parquet value of the codec.
func (c *pqColumn) decode(v parquet.Value) (any, error) {
	t := c.elemType
	switch c.codec {
	case pqBool:
		return v.Boolean(), nil
	case pqInt32:
		return int64(v.Int32()), nil
	case pqInt64:
		return v.Int64(), nil
	case pqDecimal32:
		return scaledDecimal(big.NewInt(int64(v.Int32())), t.Scale), nil
	case pqDecimal64:
		return scaledDecimal(big.NewInt(v.Int64()), t.Scale), nil
	case pqDecimalFixed:
		return scaledDecimal(fromTwosComplement(v.ByteArray()), t.Scale), nil
	case pqFloat:
		return float64(v.Float()), nil
	case pqDouble:
		return v.Double(), nil
	case pqBytes:
		return append([]byte{}, v.ByteArray()...), nil
	case pqJSON:
		return string(v.ByteArray()), nil
	case pqUUID:
		b := v.ByteArray()
		if len(b) != 16 {
			return nil, fmt.Errorf("UUID of %d bytes", len(b))
		}
		return formatUUID(b), nil
	case pqDate:
		d := v.Int32()
		if d == dateInfinity || d == -dateInfinity {
			return model.Infinity(d / dateInfinity), nil
		}
		return time.Unix(int64(d)*86400, 0).UTC(), nil
	case pqTimestamp:
		x := v.Int64()
		if x == timestampInfinity || x == -timestampInfinity {
			return model.Infinity(x / timestampInfinity), nil
		}
		return time.UnixMicro(x).UTC(), nil
	case pqTime:
		return time.Duration(v.Int64()) * time.Microsecond, nil
	case pqString:
		s := string(v.ByteArray())
		switch t.Kind {
		case model.KindTimeTZ, model.KindInterval:
			return model.ParseText(t, s)
		case model.KindDecimal:
			return model.ParseText(t, s)
		}
		return s, nil
	}
	return nil, fmt.Errorf("no Parquet form for %s", t)
}
