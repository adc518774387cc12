package engine

import (
	"fmt"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// watermark is the type of a query's watermark column: it encodes values
// for checkpoints, orders them, steps them back by a lookback and splits a
// range of them into parallel reads.
type watermark struct {
	typ model.Type
}

func newWatermark(t model.Type) (watermark, error) {
	switch t.Kind {
	case model.KindInt16, model.KindInt32, model.KindInt64, model.KindDate, model.KindTimestamp, model.KindTimestampTZ:
		return watermark{typ: t}, nil
	}
	return watermark{}, fmt.Errorf("its type is %s; a watermark is an integer, a date or a timestamp", t)
}

func (w watermark) integer() bool { return w.typ.Kind.IsInteger() }

// encode is a value's text in a checkpoint; "" for nil.
func (w watermark) encode(v any) (string, error) {
	if v == nil {
		return "", nil
	}
	if _, inf := v.(model.Infinity); inf {
		return "", fmt.Errorf("the watermark is %v; rows at infinity cannot be bounded", v)
	}
	return model.FormatText(w.typ, v)
}

// decode is encode's inverse.
func (w watermark) decode(s string) (any, error) {
	if s == "" {
		return nil, nil
	}
	return model.ParseText(w.typ, s)
}

// less orders two non-nil values.
func (w watermark) less(a, b any) bool {
	if w.integer() {
		return a.(int64) < b.(int64)
	}
	return a.(time.Time).Before(b.(time.Time))
}

// minus steps v back by the lookback; a lookback of the wrong kind for
// the watermark is refused before (checkLookback).
func (w watermark) minus(v any, lb flow.Lookback) any {
	if v == nil || lb.Zero() {
		return v
	}
	if w.integer() {
		return v.(int64) - lb.Count
	}
	t := v.(time.Time).Add(-lb.Duration)
	if w.typ.Kind == model.KindDate {
		t = t.Truncate(24 * time.Hour)
	}
	return t
}

// checkLookback refuses a lookback of the wrong kind for the watermark.
func (w watermark) checkLookback(lb flow.Lookback) error {
	switch {
	case lb.Count != 0 && !w.integer():
		return fmt.Errorf("--lookback %d is a number of values, and the watermark is a %s: give a duration such as 10m", lb.Count, w.typ.Kind)
	case lb.Duration != 0 && w.integer():
		return fmt.Errorf("--lookback %s is a duration, and the watermark is an integer: give a number of values such as 1000", lb.Duration)
	}
	return nil
}

// split divides (after, hi] into at most n ranges of about equal width,
// the first starting after after (nil: unbounded) and the others at even
// steps from lo, the smallest value above after. Each range's UpTo is the
// next one's After, so together they hold every value once.
func (w watermark) split(after, lo, hi any, n int) []connector.QueryRange {
	if n < 1 {
		n = 1
	}
	var cuts []any
	switch {
	case w.integer():
		a, b := lo.(int64), hi.(int64)
		span := uint64(b - a)
		step := span / uint64(n)
		for i := 1; i < n && step > 0; i++ {
			cuts = append(cuts, a+int64(step*uint64(i)))
		}
	default:
		a, b := lo.(time.Time), hi.(time.Time)
		span := b.Sub(a) // saturates at about 292 years
		step := span / time.Duration(n)
		for i := 1; i < n && step > 0; i++ {
			c := a.Add(step * time.Duration(i))
			if w.typ.Kind == model.KindDate {
				c = c.Truncate(24 * time.Hour)
			}
			cuts = append(cuts, c)
		}
	}
	out := []connector.QueryRange{}
	prev := after
	for _, c := range cuts {
		if (prev != nil && !w.less(prev, c)) || !w.less(c, hi) {
			continue
		}
		out = append(out, connector.QueryRange{After: prev, UpTo: c})
		prev = c
	}
	return append(out, connector.QueryRange{After: prev, UpTo: hi})
}
