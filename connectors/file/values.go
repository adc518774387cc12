package file

import (
	"fmt"
	"time"

	"github.com/ferrydb/ferry/model"
)

// checkValue verifies that v has the Go type the model gives to t's kind, so
// that model.ToJSON and model.FormatText (which assert types) are only ever
// handed values they accept.
func checkValue(t model.Type, v any) error {
	if v == nil {
		return nil
	}
	if model.IsUnchanged(v) {
		return fmt.Errorf("an unchanged marker cannot be written to a file")
	}
	ok := false
	switch t.Kind {
	case model.KindBool:
		_, ok = v.(bool)
	case model.KindInt16, model.KindInt32, model.KindInt64:
		_, ok = v.(int64)
	case model.KindFloat32, model.KindFloat64:
		_, ok = v.(float64)
	case model.KindDecimal, model.KindText, model.KindJSON, model.KindUUID, model.KindEnum,
		model.KindInet, model.KindCIDR, model.KindMACAddr:
		_, ok = v.(string)
	case model.KindBytes:
		_, ok = v.([]byte)
	case model.KindDate, model.KindTimestamp, model.KindTimestampTZ:
		_, ok = v.(time.Time)
		if _, inf := v.(model.Infinity); inf {
			ok = true
		}
	case model.KindTime:
		_, ok = v.(time.Duration)
	case model.KindTimeTZ:
		_, ok = v.(model.TimeTZ)
	case model.KindInterval:
		_, ok = v.(model.Interval)
	case model.KindArray:
		if t.Elem == nil {
			return fmt.Errorf("array type without element type")
		}
		arr, isArr := v.([]any)
		if !isArr {
			break
		}
		for i, e := range arr {
			et := *t.Elem
			if _, sub := e.([]any); sub && t.Elem.Kind != model.KindArray {
				et = t // a sub-array of a multi-dimensional array
			}
			if err := checkValue(et, e); err != nil {
				return fmt.Errorf("array element %d: %w", i, err)
			}
		}
		return nil
	default:
		return fmt.Errorf("type %s cannot be written to a file", t)
	}
	if !ok {
		return fmt.Errorf("value of Go type %T is not a canonical %s", v, t)
	}
	return nil
}

// roundFloat32 makes a float32 column's value the float32 it stands for:
// text forms of float32 values are their shortest float32 spelling, which
// parses as a slightly different float64.
func roundFloat32(t model.Type, v any) any {
	switch t.Kind {
	case model.KindFloat32:
		if f, ok := v.(float64); ok {
			return float64(float32(f))
		}
	case model.KindArray:
		if arr, ok := v.([]any); ok && t.Elem != nil && (t.Elem.Kind == model.KindFloat32 || t.Elem.Kind == model.KindArray) {
			for i, e := range arr {
				if _, sub := e.([]any); sub && t.Elem.Kind != model.KindArray {
					arr[i] = roundFloat32(t, e) // a multi-dimensional array's sub-array
					continue
				}
				arr[i] = roundFloat32(*t.Elem, e)
			}
		}
	}
	return v
}
