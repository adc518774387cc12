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
