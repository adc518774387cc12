package mysql

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ferrydb/ferry/model"
)

// keyset orders a table by its primary key for partition bounds, cursors
// and keyset pagination.
type keyset struct {
	cols   []model.Column
	idx    []int // key column positions in the table
	names  []string
	params []keyParam
}

// keyParam converts a canonical key value to the query parameter that
// compares with the column exactly as the server orders it.
type keyParam struct {
	placeholder string // "?", or a cast for types a string would compare as a double
	conv        func(v any) (any, error)
}

func keysetFor(t *model.Table) (*keyset, error) {
	if len(t.PrimaryKey) == 0 {
		return nil, nil
	}
	ks := &keyset{}
	for _, name := range t.PrimaryKey {
		i := t.ColumnIndex(name)
		if i < 0 {
			return nil, fmt.Errorf("table %s: primary key column %q is not a column", t.Namespace, name)
		}
		col := t.Columns[i]
		p, err := paramFor(col)
		if err != nil {
			return nil, fmt.Errorf("table %s: key column %s: %w", t.Namespace, name, err)
		}
		ks.cols = append(ks.cols, col)
		ks.idx = append(ks.idx, i)
		ks.names = append(ks.names, quoteIdent(name))
		ks.params = append(ks.params, p)
	}
	return ks, nil
}

func paramFor(col model.Column) (keyParam, error) {
	ct, _ := parseColType(col.Type.Native) // a zero colType when Native is not MySQL's
	plain := keyParam{placeholder: "?", conv: func(v any) (any, error) { return v, nil }}
	switch col.Type.Kind {
	case model.KindBool:
		return keyParam{placeholder: "?", conv: func(v any) (any, error) {
			if b, _ := v.(bool); b {
				return int64(1), nil
			}
			return int64(0), nil
		}}, nil
	case model.KindInt16, model.KindInt32, model.KindInt64, model.KindFloat32, model.KindFloat64, model.KindText, model.KindUUID, model.KindInet:
		if ct.name == "set" {
			labels := ct.args
			return keyParam{placeholder: "?", conv: func(v any) (any, error) {
				s, _ := v.(string)
				var mask uint64
				if s != "" {
					for _, l := range strings.Split(s, ",") {
						found := false
						for i, have := range labels {
							if have == l {
								mask |= 1 << uint(i)
								found = true
							}
						}
						if !found {
							return nil, fmt.Errorf("set label %q is not in the column's definition", l)
						}
					}
				}
				return mask, nil
			}}, nil
		}
		return plain, nil
	case model.KindDecimal:
		if ct.name == "bigint" { // bigint unsigned
			return keyParam{placeholder: "?", conv: func(v any) (any, error) {
				s, _ := v.(string)
				return strconv.ParseUint(s, 10, 64)
			}}, nil
		}
		p, s := col.Type.Precision, col.Type.Scale
		if p == 0 {
			p, s = 65, 30
		}
		// A string parameter would compare with a DECIMAL as a double.
		return keyParam{placeholder: fmt.Sprintf("CAST(? AS DECIMAL(%d,%d))", p, s), conv: plain.conv}, nil
	case model.KindEnum:
		labels := col.Type.EnumValues
		// ENUM columns sort by index, and compare by index with a number.
		return keyParam{placeholder: "?", conv: func(v any) (any, error) {
			s, _ := v.(string)
			if s == "" {
				return int64(0), nil
			}
			for i, l := range labels {
				if l == s {
					return int64(i + 1), nil
				}
			}
			return nil, fmt.Errorf("enum label %q is not in the column's definition", s)
		}}, nil
	case model.KindBytes:
		if ct.name == "bit" {
			return keyParam{placeholder: "?", conv: func(v any) (any, error) {
				b, _ := v.([]byte)
				var u uint64
				for _, c := range b {
					u = u<<8 | uint64(c)
				}
				return u, nil
			}}, nil
		}
		return plain, nil
	case model.KindDate:
		return keyParam{placeholder: "?", conv: func(v any) (any, error) {
			t, _ := v.(time.Time)
			return t.Format("2006-01-02"), nil
		}}, nil
	case model.KindTimestamp, model.KindTimestampTZ:
		return keyParam{placeholder: "?", conv: func(v any) (any, error) {
			t, _ := v.(time.Time)
			return t.UTC().Format("2006-01-02 15:04:05.999999"), nil
		}}, nil
	case model.KindTime:
		return keyParam{placeholder: "?", conv: func(v any) (any, error) {
			d, _ := v.(time.Duration)
			return fmt.Sprintf("%02d:%02d:%02d.%06d", d/time.Hour, (d%time.Hour)/time.Minute, (d%time.Minute)/time.Second, (d%time.Second)/time.Microsecond), nil
		}}, nil
	}
	return keyParam{}, fmt.Errorf("a %s column cannot order a partition", col.Type)
}

// cond renders the condition "key op bound" (op is >, >= or <) as a
// disjunction of equalities and one strict comparison, which the optimizer
// turns into index ranges, and returns the parameters in order.
func (ks *keyset) cond(op string, vals []any) (string, []any, error) {
	params := make([]any, len(vals))
	for i, v := range vals {
		p, err := ks.params[i].conv(v)
		if err != nil {
			return "", nil, fmt.Errorf("key column %s: %w", ks.cols[i].Name, err)
		}
		params[i] = p
	}
	strict := strings.TrimSuffix(op, "=")
	var ors []string
	var args []any
	for i := range ks.names {
		var ands []string
		for j := 0; j < i; j++ {
			ands = append(ands, ks.names[j]+" = "+ks.params[j].placeholder)
			args = append(args, params[j])
		}
		o := strict
		if i == len(ks.names)-1 {
			o = op
		}
		ands = append(ands, ks.names[i]+" "+o+" "+ks.params[i].placeholder)
		args = append(args, params[i])
		ors = append(ors, strings.Join(ands, " AND "))
	}
	if len(ors) == 1 {
		return ors[0], args, nil
	}
	// The leading column's range lets the optimizer use the index.
	lead := ks.names[0] + " " + strict + "= " + ks.params[0].placeholder
	return "(" + lead + " AND (" + strings.Join(ors, " OR ") + "))", append([]any{params[0]}, args...), nil
}

func (ks *keyset) orderBy() string { return strings.Join(ks.names, ", ") }

// Bounds and cursors hold canonical key values as a JSON array in ferry's
// JSON form (numbers stay exact, bytes are base64, times RFC 3339).

func (ks *keyset) encode(vals []any) (string, error) {
	out := make([]any, len(vals))
	for i, v := range vals {
		j, err := model.ToJSON(ks.cols[i].Type, v)
		if err != nil {
			return "", fmt.Errorf("key column %s: %w", ks.cols[i].Name, err)
		}
		out[i] = j
	}
	b, err := json.Marshal(out)
	return string(b), err
}

func (ks *keyset) decode(s string) ([]any, error) {
	if s == "" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var raw []any
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("key %q: %w", s, err)
	}
	if len(raw) != len(ks.cols) {
		return nil, fmt.Errorf("key %q has %d values, the table's key has %d", s, len(raw), len(ks.cols))
	}
	out := make([]any, len(raw))
	for i, r := range raw {
		v, err := model.FromJSON(ks.cols[i].Type, r)
		if err != nil {
			return nil, fmt.Errorf("key %q, column %s: %w", s, ks.cols[i].Name, err)
		}
		out[i] = v
	}
	return out, nil
}

// keyOf returns the key values of a canonical row.
func (ks *keyset) keyOf(row model.Row) []any {
	k := make([]any, len(ks.idx))
	for i, j := range ks.idx {
		k[i] = row[j]
	}
	return k
}
