package events

import (
	"encoding/base64"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ferrydb/ferry/model"
)

// Unavailable stands for a value the source did not send (PostgreSQL's
// unchanged TOAST), as Debezium's unavailable.value.placeholder does.
const Unavailable = "__debezium_unavailable_value"

var epoch = time.Unix(0, 0).UTC()

// Value is v of type t as Debezium's JSON converter writes it (schemas
// off): integers and floats as numbers, decimals as strings
// (decimal.handling.mode=string), bytes as base64, dates as days since
// 1970-01-01, times as microseconds since midnight, timestamps as
// microseconds since the epoch, timestamptz as an ISO-8601 string in UTC,
// intervals as ISO-8601 durations (interval.handling.mode=string), json,
// uuid and the rest as strings; infinite dates and timestamps as the
// strings "infinity" and "-infinity".
func Value(t model.Type, v any) any {
	if v == nil {
		return nil
	}
	if model.IsUnchanged(v) {
		return Unavailable
	}
	if inf, ok := v.(model.Infinity); ok {
		if inf < 0 {
			return "-infinity"
		}
		return "infinity"
	}
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Sprint(x) // "NaN", "+Inf", "-Inf": JSON has no number for them
		}
		return x
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case time.Time:
		switch t.Kind {
		case model.KindDate:
			return int32(x.Sub(epoch).Hours() / 24)
		case model.KindTimestamp:
			return x.UnixMicro()
		}
		return x.UTC().Format("2006-01-02T15:04:05.999999Z")
	case time.Duration:
		return x.Microseconds()
	case model.TimeTZ:
		return timeTZ(x)
	case model.Interval:
		return interval(x)
	case []any:
		out := make([]any, len(x))
		elem := model.Type{}
		if t.Elem != nil {
			elem = *t.Elem
		}
		for i, e := range x {
			out[i] = Value(elem, e)
		}
		return out
	}
	return v // bool, int64, string
}

// timeTZ is Debezium's ZonedTime: the time in UTC, ISO-8601.
func timeTZ(x model.TimeTZ) string {
	d := (x.Time - time.Duration(x.Offset)*time.Second) % (24 * time.Hour)
	if d < 0 {
		d += 24 * time.Hour
	}
	return time.Unix(0, 0).UTC().Add(d).Format("15:04:05.999999Z")
}

// interval is an ISO-8601 duration: P1Y2M3DT4H5M6.5S.
func interval(x model.Interval) string {
	var b strings.Builder
	b.WriteString("P")
	if y := x.Months / 12; y != 0 {
		fmt.Fprintf(&b, "%dY", y)
	}
	if m := x.Months % 12; m != 0 {
		fmt.Fprintf(&b, "%dM", m)
	}
	if x.Days != 0 {
		fmt.Fprintf(&b, "%dD", x.Days)
	}
	us := x.Micros
	if us != 0 {
		b.WriteString("T")
		if h := us / 3600e6; h != 0 {
			fmt.Fprintf(&b, "%dH", h)
			us -= h * 3600e6
		}
		if m := us / 60e6; m != 0 {
			fmt.Fprintf(&b, "%dM", m)
			us -= m * 60e6
		}
		if us != 0 {
			s := fmt.Sprintf("%d.%06d", us/1e6, abs(us%1e6))
			if us < 0 && us > -1e6 {
				s = "-" + s
			}
			fmt.Fprintf(&b, "%sS", strings.TrimRight(strings.TrimRight(s, "0"), "."))
		}
	}
	if b.Len() == 1 {
		return "P0D"
	}
	return b.String()
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// Check tells whether v is a value of t as model.Kind documents it, so a
// wrong value stops the batch instead of reaching consumers.
func Check(t model.Type, v any) error {
	if v == nil || model.IsUnchanged(v) {
		return nil
	}
	ok := true
	switch t.Kind {
	case model.KindBool:
		_, ok = v.(bool)
	case model.KindInt16, model.KindInt32, model.KindInt64:
		_, ok = v.(int64)
	case model.KindFloat32, model.KindFloat64:
		_, ok = v.(float64)
	case model.KindDecimal, model.KindText, model.KindJSON, model.KindUUID, model.KindEnum, model.KindInet, model.KindCIDR, model.KindMACAddr:
		_, ok = v.(string)
	case model.KindBytes:
		_, ok = v.([]byte)
	case model.KindDate, model.KindTimestamp, model.KindTimestampTZ:
		switch v.(type) {
		case time.Time, model.Infinity:
		default:
			ok = false
		}
	case model.KindTime:
		_, ok = v.(time.Duration)
	case model.KindTimeTZ:
		_, ok = v.(model.TimeTZ)
	case model.KindInterval:
		_, ok = v.(model.Interval)
	case model.KindArray:
		_, ok = v.([]any)
	}
	if !ok {
		return fmt.Errorf("a %T value (%v) in a %s column", v, v, t)
	}
	return nil
}
