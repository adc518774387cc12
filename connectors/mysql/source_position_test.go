package mysql

import (
	"testing"

	"github.com/ferrydb/ferry/model"
)

func TestPositions(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"binlog.000001:325", "binlog.000001:326", -1},
		{"binlog.000002:4", "binlog.000001:999999", 1},
		{"binlog.000010:4", "binlog.000009:4", 1},
		{"binlog.000001:325", "binlog.000001:325", 0},
	}
	c := &Conn{}
	for _, x := range cases {
		got, err := c.ComparePositions(model.Position(x.a), model.Position(x.b))
		if err != nil || got != x.want {
			t.Errorf("compare(%s, %s) = %d, %v; want %d", x.a, x.b, got, err, x.want)
		}
	}
	for _, bad := range []string{"", "binlog", "binlog.000001", "binlog.x:4", "binlog.000001:-1"} {
		if _, err := parsePosition(model.Position(bad)); err == nil {
			t.Errorf("parsePosition(%q) accepted", bad)
		}
	}
	if _, err := c.ComparePositions("a.000001:4", "b.000001:4"); err == nil {
		t.Error("positions of two binlog base names compared")
	}
}
