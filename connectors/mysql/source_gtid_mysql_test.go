package mysql

import (
	"testing"

	"github.com/ferrydb/ferry/model"
)

// MySQL's Executed_Gtid_Set as SHOW MASTER STATUS prints it (a line break
// after each comma) reads into the canonical set; an empty one (gtid_mode
// OFF, or nothing executed yet) is no GTID, and garbage is an error.
func TestMySQLExecutedSet(t *testing.T) {
	const a, b = "3e11fa47-71ca-11e1-9e33-c80aa9429562", "a7d1c5e8-2b1f-11ee-8c3e-0242ac120002"
	set, ok, err := mysqlExecutedSet(b + ":1-3,\n" + a + ":1-5:7-9")
	if err != nil || !ok {
		t.Fatalf("a two-server set: %v, %v", ok, err)
	}
	if want := a + ":1-5:7-9," + b + ":1-3"; set != want {
		t.Errorf("canonical set %q, want %q (sorted by server)", set, want)
	}
	if _, ok, err := mysqlExecutedSet(" \n"); ok || err != nil {
		t.Errorf("an empty set: %v, %v; want no GTID", ok, err)
	}
	if _, _, err := mysqlExecutedSet("not-a-set:x"); err == nil {
		t.Error("garbage parsed as a set")
	}
}

// A MySQL position with a set survives its text form, orders by its set
// (the position whose set holds the other's is later, on any server), and
// diverged sets are an error.
func TestMySQLGTIDPositions(t *testing.T) {
	const u = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	p, err := parsePosition(model.Position("binlog.000042:1234@" + u + ":1-10"))
	if err != nil || !p.hasGTID || p.gtid != u+":1-10" || p.file != "binlog.000042" || p.pos != 1234 {
		t.Fatalf("parse: %+v, %v", p, err)
	}
	if back, _ := parsePosition(p.position()); back != p {
		t.Errorf("round trip: %+v, want %+v", back, p)
	}
	// Later by GTID although its file is earlier: a promoted replica's.
	q, _ := parsePosition(model.Position("mysql-bin.000003:4@" + u + ":1-12"))
	if n, err := p.compare(q); err != nil || n != -1 {
		t.Errorf("compare: %d, %v; want -1", n, err)
	}
	r, _ := parsePosition(model.Position("binlog.000042:999@" + u + ":1-9:11"))
	if _, err := p.compare(r); err == nil {
		t.Error("diverged sets compared without an error")
	}
	next, err := addGTID(p.gtid, u+":11")
	if err != nil || next != u+":1-11" {
		t.Errorf("after transaction :11: %q, %v", next, err)
	}
}

// When a stream starts by GTID: MariaDB only off the server its file and
// offset belong to; MySQL with gtid_mode ON whenever the position has a
// set; never without one, nor on MySQL without gtid_mode.
func TestStreamByGTIDDecision(t *testing.T) {
	const u = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	mysqlSet := binlogPos{file: "b.1", pos: 4, gtid: u + ":1-5", hasGTID: true}
	maria := binlogPos{file: "b.1", pos: 4, gtid: "0-1-5", hasGTID: true}
	none := binlogPos{file: "b.1", pos: 4}
	here := func() bool { return true }
	elsewhere := func() bool { return false }
	cases := []struct {
		name              string
		mariadb, gtidMode bool
		p                 binlogPos
		same              func() bool
		want              bool
	}{
		{"mysql gtid on", false, true, mysqlSet, here, true},
		{"mysql gtid off", false, false, mysqlSet, here, false},
		{"mysql no set", false, true, none, here, false},
		{"mariadb same server", true, false, maria, here, false},
		{"mariadb other server", true, false, maria, elsewhere, true},
		{"mariadb no gtid", true, false, none, elsewhere, false},
	}
	for _, tc := range cases {
		if got := streamByGTID(tc.mariadb, tc.gtidMode, tc.p, tc.same); got != tc.want {
			t.Errorf("%s: by GTID %v, want %v", tc.name, got, tc.want)
		}
	}
}
