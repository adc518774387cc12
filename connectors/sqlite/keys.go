package sqlite

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ferrydb/ferry/model"
)

// keyset says how a table is ordered for partitioning and resuming: by its
// primary key, or by rowid when it has none.
type keyset struct {
	// exprs are the key's SQL expressions in order.
	exprs []string
	// rowid is set when the key is the rowid, selected as an extra first
	// column ahead of the table's columns.
	rowid bool
	// idx are the key's positions among the selected values.
	idx []int
}

// keysetFor returns the keyset of t.
func keysetFor(t *model.Table) (keyset, error) {
	if len(t.PrimaryKey) == 0 {
		alias, err := rowidAlias(t)
		if err != nil {
			return keyset{}, err
		}
		return keyset{exprs: []string{alias}, rowid: true, idx: []int{0}}, nil
	}
	ks := keyset{}
	for i, name := range t.PrimaryKey {
		ci := t.ColumnIndex(name)
		if ci < 0 {
			return keyset{}, fmt.Errorf("table %s: primary key column %q (key position %d) is not a column", t.Namespace, name, i+1)
		}
		ks.exprs = append(ks.exprs, quoteIdent(name))
		ks.idx = append(ks.idx, ci)
	}
	return ks, nil
}

// rowidAlias finds a name for the rowid that no column shadows.
func rowidAlias(t *model.Table) (string, error) {
	for _, alias := range []string{"rowid", "_rowid_", "oid"} {
		taken := false
		for _, c := range t.Columns {
			if strings.EqualFold(c.Name, alias) {
				taken = true
				break
			}
		}
		if !taken {
			return alias, nil
		}
	}
	return "", fmt.Errorf("table %s has no primary key and columns named rowid, _rowid_ and oid hide its rowid; ferry cannot partition it (add a primary key)", t.Namespace)
}

// cond renders "(k1, k2) op (?, ?)" for the keyset.
func (ks keyset) cond(op string) string {
	if len(ks.exprs) == 1 {
		return ks.exprs[0] + " " + op + " ?"
	}
	ph := strings.Repeat("?, ", len(ks.exprs))
	return "(" + strings.Join(ks.exprs, ", ") + ") " + op + " (" + ph[:len(ph)-2] + ")"
}

func (ks keyset) orderBy() string { return strings.Join(ks.exprs, ", ") }

// Bounds and cursors hold the key's stored SQLite values, so that they compare
// in SQLite exactly as the rows do, as a JSON array: an integer is a number,
// valid UTF-8 text a string, and anything else a one-key object
// ({"real":"1.5"}, {"blob":base64}, {"text64":base64} for text that is not
// valid UTF-8).

func encodeKey(vals []any) (string, error) {
	out := make([]any, len(vals))
	for i, v := range vals {
		switch x := v.(type) {
		case nil:
			out[i] = nil
		case int64:
			out[i] = x
		case float64:
			out[i] = map[string]string{"real": strconv.FormatFloat(x, 'g', -1, 64)}
		case string:
			if utf8.ValidString(x) {
				out[i] = x
			} else {
				out[i] = map[string]string{"text64": base64.StdEncoding.EncodeToString([]byte(x))}
			}
		case []byte:
			out[i] = map[string]string{"blob": base64.StdEncoding.EncodeToString(x)}
		default:
			return "", fmt.Errorf("key value of Go type %T", v)
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func decodeKey(s string, n int) ([]any, error) {
	if s == "" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var raw []any
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("key %q: %w", s, err)
	}
	if len(raw) != n {
		return nil, fmt.Errorf("key %q has %d values, the table's key has %d", s, len(raw), n)
	}
	out := make([]any, n)
	for i, r := range raw {
		switch x := r.(type) {
		case nil:
		case json.Number:
			v, err := x.Int64()
			if err != nil {
				return nil, fmt.Errorf("key %q value %d: %w", s, i, err)
			}
			out[i] = v
		case string:
			out[i] = x
		case map[string]any:
			if len(x) != 1 {
				return nil, fmt.Errorf("key %q value %d: want one of real, blob, text64", s, i)
			}
			for k, v := range x {
				str, ok := v.(string)
				if !ok {
					return nil, fmt.Errorf("key %q value %d: %s is not a string", s, i, k)
				}
				var err error
				switch k {
				case "real":
					var f float64
					f, err = strconv.ParseFloat(str, 64)
					if err == nil && math.IsNaN(f) {
						err = fmt.Errorf("NaN is not a key")
					}
					out[i] = f
				case "blob":
					out[i], err = base64.StdEncoding.DecodeString(str)
				case "text64":
					var b []byte
					b, err = base64.StdEncoding.DecodeString(str)
					out[i] = string(b)
				default:
					err = fmt.Errorf("unknown value kind %q", k)
				}
				if err != nil {
					return nil, fmt.Errorf("key %q value %d: %w", s, i, err)
				}
			}
		default:
			return nil, fmt.Errorf("key %q value %d: unexpected %T", s, i, r)
		}
	}
	return out, nil
}
