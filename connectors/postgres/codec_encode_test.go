package postgres

import (
	"bytes"
	"testing"

	"github.com/ferrydb/ferry/model"
)

// textParam is appendText's output, for every kind (without the copy where
// the text is the string itself).
func TestTextParamIsAppendText(t *testing.T) {
	txt := model.Type{Kind: model.KindText}
	values := []struct {
		t model.Type
		v any
	}{
		{txt, "plain"}, {txt, ""}, {txt, "with \x00 NUL"}, {txt, int64(3)},
		{model.Type{Kind: model.KindJSON}, `{"a": [1, "b"]}`},
		{model.Type{Kind: model.KindDecimal}, "-12.50"},
		{model.Type{Kind: model.KindUUID}, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{model.Type{Kind: model.KindEnum}, "red"},
		{model.Type{Kind: model.KindInet}, "10.0.0.1/32"},
		{model.Type{Kind: model.KindCIDR}, "10.0.0.0/8"},
		{model.Type{Kind: model.KindMACAddr}, "08:00:2b:01:02:03"},
		{model.Type{Kind: model.KindBytes}, []byte{0, 1, 0xff}},
		{model.Type{Kind: model.KindInt64}, int64(-7)},
		{model.Type{Kind: model.KindBool}, true},
		{model.Type{Kind: model.KindArray, Elem: &txt}, []any{"a", nil, `q"uote`}},
	}
	for _, c := range values {
		want, werr := appendText(nil, c.t, c.v)
		got, gerr := textParam(c.t, c.v)
		if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
			t.Errorf("%s %#v: textParam %q, %v; appendText %q, %v", c.t, c.v, got, gerr, want, werr)
		}
		// nil is what the driver sends as NULL.
		if gerr == nil && got == nil {
			t.Errorf("%s %#v: textParam is nil, a NULL", c.t, c.v)
		}
	}
}
