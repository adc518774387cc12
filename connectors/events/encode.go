package events

import (
	"encoding/json"
	"math"
	"strconv"
)

// The envelope is written by hand, into one buffer per message: through
// encoding/json, each row's object went through reflection and was
// compacted again after its MarshalJSON, most of the cost of an event
// (bench/results.md). The output is byte for byte encoding/json's (the
// golden files hold it).

func (e *envelope) encode() ([]byte, error) {
	b := make([]byte, 0, 320)
	var err error
	b = append(b, `{"before":`...)
	if b, err = e.Before.appendJSON(b); err != nil {
		return nil, err
	}
	b = append(b, `,"after":`...)
	if b, err = e.After.appendJSON(b); err != nil {
		return nil, err
	}
	b = append(b, `,"source":`...)
	if b, err = e.Source.appendJSON(b); err != nil {
		return nil, err
	}
	b = append(b, `,"op":`...)
	b = appendString(b, e.Op)
	b = append(b, `,"ts_ms":`...)
	b = strconv.AppendInt(b, e.TsMs, 10)
	return append(b, '}'), nil
}

func (s *source) appendJSON(b []byte) ([]byte, error) {
	str := func(name, v string, omitEmpty bool) {
		if omitEmpty && v == "" {
			return
		}
		b = append(b, ',', '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		b = appendString(b, v)
	}
	num := func(name string, v int64) {
		b = append(b, ',', '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		b = strconv.AppendInt(b, v, 10)
	}
	b = append(b, `{"version":`...)
	b = appendString(b, s.Version)
	str("connector", s.Connector, false)
	str("name", s.Name, false)
	num("ts_ms", s.TsMs)
	str("snapshot", s.Snapshot, false)
	str("db", s.DB, false)
	str("schema", s.Schema, true)
	str("table", s.Table, false)
	if s.TxID != nil {
		b = append(b, `,"txId":`...)
		var err error
		if b, err = appendValue(b, s.TxID); err != nil {
			return nil, err
		}
	}
	if s.LSN != nil {
		num("lsn", *s.LSN)
	}
	str("file", s.File, true)
	if s.Pos != nil {
		num("pos", *s.Pos)
	}
	str("gtid", s.GTID, true)
	str("position", s.Position, true)
	return append(b, '}'), nil
}

func (o orderedObject) appendJSON(b []byte) ([]byte, error) {
	if o == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '{')
	var err error
	for i, f := range o {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, f.name)
		b = append(b, ':')
		if b, err = appendValue(b, f.v); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendValue appends v as encoding/json writes it, by hand for the
// types Value returns most.
func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, x), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int32:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case float64:
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			return appendFloat(b, x), nil
		}
	case []any:
		b = append(b, '[')
		var err error
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendValue(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, j...), nil
}

// appendFloat is encoding/json's float64 form.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendString appends s as a JSON string: directly when it holds only
// printable ASCII that encoding/json leaves as is, else through it.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			j, _ := json.Marshal(s)
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
