package events

import (
	"encoding/json"
	"math"
	"testing"
)

// TestAppendValueIsEncodingJSON: the hand-written encoder writes what
// encoding/json writes, for the values and strings that take its fast
// paths and those that do not.
func TestAppendValueIsEncodingJSON(t *testing.T) {
	vals := []any{nil, true, false, int64(-9007199254740993), int32(19782), 0,
		0.0, 1.5, -3.141592653589793, 1e-7, 1.5e-9, 1e21, 123456789012345678901.0, math.MaxFloat64, math.SmallestNonzeroFloat64, float64(float32(0.1)),
		"", "plain", `q"uote`, `back\slash`, "<a>&", "tab\tnl\n", "héllo 😀", "\u2028", string([]byte{0xff}),
		[]any{int64(1), nil, "x", []any{1.5}}, map[string]any{"k": 1}}
	for _, v := range vals {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendValue(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%#v: %s, encoding/json %s", v, got, want)
		}
	}
	if _, err := appendValue(nil, math.NaN()); err == nil {
		t.Error("NaN: no error (encoding/json refuses it)")
	}
}
