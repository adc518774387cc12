package postgres

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ferrydb/ferry/model"
)

// binDecoder decodes a value in PostgreSQL's binary format. The copy reads
// the types whose binary form is simple in binary (cheaper for the source
// server and for ferry), and everything else as text.
//
// Values are boxed from the reader's slab (model.Slab): one allocation for
// hundreds of values.
type binDecoder func(s *model.Slab, b []byte) (any, error)

// isPlainText reports whether native spells a text type whose binary form
// is its text.
func isPlainText(native string) bool {
	if native == "" || native == "text" || native == "name" || native == `"char"` {
		return true
	}
	return strings.HasPrefix(native, "character varying") || strings.HasPrefix(native, "character(") || native == "character"
}

// binDecoderFor returns the binary decoder of a column, or nil to read it
// as text. oids lists the type OIDs the column may have, to check the
// server's row description against the plan's types.
func binDecoderFor(t model.Type) (binDecoder, []uint32) {
	switch t.Kind {
	case model.KindBool:
		return decBool, []uint32{oidBool}
	case model.KindInt16, model.KindInt32, model.KindInt64:
		if t.Native == "oid" {
			return nil, nil
		}
		return decInt, []uint32{oidInt2, oidInt4, oidInt8}
	case model.KindFloat32:
		return decFloat4, []uint32{oidFloat4}
	case model.KindFloat64:
		return decFloat8, []uint32{oidFloat8}
	case model.KindDecimal:
		if t.Native == "money" {
			return nil, nil
		}
		return decNumeric, []uint32{oidNumeric}
	case model.KindText:
		if !isPlainText(t.Native) {
			return nil, nil
		}
		return decString, []uint32{oidText, oidVarchar, oidBpchar, oidName, oidChar}
	case model.KindJSON:
		if t.Native == "jsonb" {
			return decJSONB, []uint32{oidJSONB}
		}
		return decString, []uint32{oidJSON}
	case model.KindBytes:
		return decBytes, []uint32{oidBytea}
	case model.KindUUID:
		return decUUID, []uint32{oidUUID}
	case model.KindDate:
		return decDate, []uint32{oidDate}
	case model.KindTime:
		return decTime, []uint32{oidTime}
	case model.KindTimeTZ:
		return decTimetz, []uint32{oidTimetz}
	case model.KindTimestamp, model.KindTimestampTZ:
		return decTimestamp, []uint32{oidTimestamp, oidTimestamptz}
	case model.KindInterval:
		return decInterval, []uint32{oidInterval}
	}
	return nil, nil
}

func wantLen(b []byte, n int, what string) error {
	if len(b) != n {
		return fmt.Errorf("%s: %d bytes in binary form, want %d", what, len(b), n)
	}
	return nil
}

func decBool(s *model.Slab, b []byte) (any, error) {
	if err := wantLen(b, 1, "boolean"); err != nil {
		return nil, err
	}
	return b[0] != 0, nil
}

func decInt(s *model.Slab, b []byte) (any, error) {
	switch len(b) {
	case 2:
		return s.Int64(int64(int16(binary.BigEndian.Uint16(b)))), nil
	case 4:
		return s.Int64(int64(int32(binary.BigEndian.Uint32(b)))), nil
	case 8:
		return s.Int64(int64(binary.BigEndian.Uint64(b))), nil
	}
	return nil, fmt.Errorf("integer: %d bytes in binary form", len(b))
}

func decFloat4(s *model.Slab, b []byte) (any, error) {
	if err := wantLen(b, 4, "real"); err != nil {
		return nil, err
	}
	return s.Float64(float64(math.Float32frombits(binary.BigEndian.Uint32(b)))), nil
}

func decFloat8(s *model.Slab, b []byte) (any, error) {
	if err := wantLen(b, 8, "double precision"); err != nil {
		return nil, err
	}
	return s.Float64(math.Float64frombits(binary.BigEndian.Uint64(b))), nil
}

func decString(s *model.Slab, b []byte) (any, error) { return s.String(s.Text(b)), nil }

func decJSONB(s *model.Slab, b []byte) (any, error) {
	if len(b) < 1 || b[0] != 1 {
		return nil, fmt.Errorf("jsonb: unknown binary format version")
	}
	return s.String(s.Text(b[1:])), nil
}

func decBytes(s *model.Slab, b []byte) (any, error) { return s.Bytes(b), nil }

func decUUID(s *model.Slab, b []byte) (any, error) {
	if err := wantLen(b, 16, "uuid"); err != nil {
		return nil, err
	}
	const hx = "0123456789abcdef"
	var out [36]byte
	o := 0
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[o] = '-'
			o++
		}
		out[o], out[o+1] = hx[c>>4], hx[c&15]
		o += 2
	}
	return s.String(s.Text(out[:])), nil
}

func decDate(s *model.Slab, b []byte) (any, error) {
	if err := wantLen(b, 4, "date"); err != nil {
		return nil, err
	}
	switch d := int32(binary.BigEndian.Uint32(b)); d {
	case math.MaxInt32:
		return model.PosInfinity, nil
	case math.MinInt32:
		return model.NegInfinity, nil
	default:
		return s.Time(pgEpoch.AddDate(0, 0, int(d))), nil
	}
}

func decTime(s *model.Slab, b []byte) (any, error) {
	if err := wantLen(b, 8, "time"); err != nil {
		return nil, err
	}
	return time.Duration(int64(binary.BigEndian.Uint64(b))) * time.Microsecond, nil
}

func decTimetz(s *model.Slab, b []byte) (any, error) {
	if err := wantLen(b, 12, "time with time zone"); err != nil {
		return nil, err
	}
	us := int64(binary.BigEndian.Uint64(b))
	west := int32(binary.BigEndian.Uint32(b[8:]))
	return model.TimeTZ{Time: time.Duration(us) * time.Microsecond, Offset: -west}, nil
}

func decTimestamp(s *model.Slab, b []byte) (any, error) {
	if err := wantLen(b, 8, "timestamp"); err != nil {
		return nil, err
	}
	switch us := int64(binary.BigEndian.Uint64(b)); us {
	case math.MaxInt64:
		return model.PosInfinity, nil
	case math.MinInt64:
		return model.NegInfinity, nil
	default:
		sec, rem := us/1_000_000, us%1_000_000
		if rem < 0 {
			sec, rem = sec-1, rem+1_000_000
		}
		return s.Time(time.Unix(pgEpoch.Unix()+sec, rem*1000).UTC()), nil
	}
}

func decInterval(s *model.Slab, b []byte) (any, error) {
	if err := wantLen(b, 16, "interval"); err != nil {
		return nil, err
	}
	return model.Interval{
		Micros: int64(binary.BigEndian.Uint64(b)),
		Days:   int32(binary.BigEndian.Uint32(b[8:])),
		Months: int32(binary.BigEndian.Uint32(b[12:])),
	}, nil
}

// decNumeric renders numeric's binary form as PostgreSQL's text output:
// exactly dscale digits after the point.
func decNumeric(s *model.Slab, b []byte) (any, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("numeric: %d bytes in binary form", len(b))
	}
	ndigits := int(binary.BigEndian.Uint16(b))
	weight := int(int16(binary.BigEndian.Uint16(b[2:])))
	sign := binary.BigEndian.Uint16(b[4:])
	dscale := int(binary.BigEndian.Uint16(b[6:]))
	switch sign {
	case 0xC000:
		return "NaN", nil
	case 0xD000:
		return "Infinity", nil
	case 0xF000:
		return "-Infinity", nil
	}
	if len(b) != 8+2*ndigits {
		return nil, fmt.Errorf("numeric: %d bytes for %d digits", len(b), ndigits)
	}
	digit := func(i int) int { // base-10000 digit i (weight-relative), 0 outside
		if i < 0 || i >= ndigits {
			return 0
		}
		return int(binary.BigEndian.Uint16(b[8+2*i:]))
	}
	var sb strings.Builder
	if sign == 0x4000 {
		sb.WriteByte('-')
	}
	// Integer part: groups for weights weight..0.
	if weight < 0 {
		sb.WriteByte('0')
	} else {
		for i := 0; i <= weight; i++ {
			d := digit(i)
			if i == 0 {
				sb.WriteString(strconv.Itoa(d))
			} else {
				fmt.Fprintf(&sb, "%04d", d)
			}
		}
	}
	if dscale > 0 {
		sb.WriteByte('.')
		var frac strings.Builder
		for i := weight + 1; frac.Len() < dscale; i++ {
			fmt.Fprintf(&frac, "%04d", digit(i))
		}
		sb.WriteString(frac.String()[:dscale])
	}
	return s.String(sb.String()), nil
}
