package mysql

import (
	"strings"
	"testing"

	"github.com/ferrydb/ferry/errs"
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

// TestGTIDPositions: positions with GTIDs order by GTID, whichever server's
// file and offset they carry (a flow resumed on a promoted replica), and
// positions of flows checkpointed before GTIDs stay readable.
func TestGTIDPositions(t *testing.T) {
	const uuid = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	cases := []struct {
		a, b string
		want int
	}{
		// MariaDB: the same domain, another server's file names.
		{"binlog.000007:900@0-1-42", "binlog.000001:300@0-1-43", -1},
		{"binlog.000001:300@0-2-44", "binlog.000007:900@0-1-43", 1},
		{"binlog.000001:300@0-1-42", "binlog.000009:4@0-1-42", 0},
		// More domains: the one holding every domain of the other is later.
		{"binlog.000001:4@0-1-5,1-1-3", "binlog.000001:4@0-1-5", 1},
		// An empty position (no transaction yet) precedes any other.
		{"binlog.000001:4@", "binlog.000001:900@0-1-1", -1},
		// One without a GTID: file and offset.
		{"binlog.000001:325", "binlog.000001:326@0-1-1", -1},
		// MySQL GTID sets.
		{"binlog.000001:4@" + uuid + ":1-5", "binlog.000002:4@" + uuid + ":1-7", -1},
		{"binlog.000003:4@" + uuid + ":1-7", "binlog.000002:4@" + uuid + ":1-7", 0},
	}
	c := &Conn{}
	for _, x := range cases {
		got, err := c.ComparePositions(model.Position(x.a), model.Position(x.b))
		if err != nil || got != x.want {
			t.Errorf("compare(%s, %s) = %d, %v; want %d", x.a, x.b, got, err, x.want)
		}
	}
	// Diverged histories have no order.
	if _, err := c.ComparePositions("binlog.000001:4@0-1-5", "binlog.000001:4@1-1-5"); err == nil {
		t.Error("positions in two different domains ordered")
	}
	if _, err := c.ComparePositions(model.Position("b.000001:4@"+uuid+":1-5"), model.Position("b.000001:4@"+uuid+":3-9")); err == nil {
		t.Error("MySQL GTID sets neither of which contains the other ordered")
	}
	for _, bad := range []string{"binlog.000001:4@x-y", "binlog.000001:4@0-1", "binlog.000001:4@nouuid:1-x"} {
		if _, err := parsePosition(model.Position(bad)); err == nil {
			t.Errorf("parsePosition(%q) accepted", bad)
		}
	}
	// The text form survives a round trip, canonical (domains sorted).
	p, err := parsePosition("binlog.000001:4@1-1-3,0-1-5")
	if err != nil || p.String() != "binlog.000001:4@0-1-5,1-1-3" {
		t.Errorf("round trip: %v, %v", p, err)
	}
	// A transaction's GTID moves the position.
	for _, x := range []struct{ pos, next, want string }{
		{"0-1-5", "0-1-6", "0-1-6"},
		{"0-1-5", "0-2-6", "0-2-6"}, // the promoted replica writes in the same domain
		{"0-1-5", "1-1-1", "0-1-5,1-1-1"},
		{"", "0-1-1", "0-1-1"},
		{uuid + ":1-5", uuid + ":6", uuid + ":1-6"},
		{"", uuid + ":1", uuid + ":1"},
	} {
		got, err := addGTID(x.pos, x.next)
		if err != nil || got != x.want {
			t.Errorf("addGTID(%q, %q) = %q, %v; want %q", x.pos, x.next, got, err, x.want)
		}
	}
}

// TestServerVersions: MariaDB 10.5+ and MySQL 8.0+ are accepted; older
// servers are refused (exit 2) naming their version and the supported ones.
func TestServerVersions(t *testing.T) {
	c := &Conn{host: "db:3306"}
	for _, ok := range []serverInfo{{version: "10.11.6-MariaDB-0+deb12u1-log", mariadb: true}, {version: "10.5.0-MariaDB", mariadb: true}, {version: "8.0.36"}, {version: "8.4.0"}, {version: "9.1.0"}} {
		if err := c.checkVersion(ok); err != nil {
			t.Errorf("%s refused: %v", ok.version, err)
		}
	}
	for _, old := range []serverInfo{{version: "10.4.32-MariaDB", mariadb: true}, {version: "5.7.44-log"}} {
		err := c.checkVersion(old)
		if !errs.IsConfigError(err) || !strings.Contains(err.Error(), old.version+" is not supported") || !strings.Contains(err.Error(), "MariaDB 10.5 and later and MySQL 8.0 and later") {
			t.Errorf("%s: %v", old.version, err)
		}
	}
}
