package conformance

import (
	"fmt"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// checkLag: after changes at the source, T0 is behind the head by a
// positive number of bytes, and the head is about 0 behind itself.
func checkLag(t *testing.T, h SourceHarness, cs connector.ChangeSource, lm connector.LagMeter, ns model.Namespace) {
	if h.Exec == nil {
		t.Skip("the harness cannot make changes at the source (no Exec)")
	}
	tbl := findTable(t, cs, ns)
	p := planCDC(t, cs, tbl)
	// Every row changes: far more log than a server writes in the
	// background meanwhile, so "about 0" can be told from "behind".
	h.Exec(t, fmt.Sprintf("UPDATE %s.%s SET v = 'lag'", ns.Schema, ns.Table))
	lag := func(pos model.Position) int64 {
		t.Helper()
		n, err := lm.LagBytes(ctxFor(t), pos)
		if err != nil {
			t.Fatalf("LagBytes(%q): %v", pos, err)
		}
		if n < 0 {
			t.Fatalf("LagBytes(%q) = %d, a negative lag", pos, n)
		}
		return n
	}
	behind := lag(p.T0)
	if behind == 0 {
		t.Fatalf("after an update of %d rows, T0 %q is 0 bytes behind the head", sourceRows, p.T0)
	}
	head, err := cs.HeadPosition(ctxFor(t))
	if err != nil {
		t.Fatalf("HeadPosition: %v", err)
	}
	if atHead := lag(head); atHead >= behind/2 {
		t.Fatalf("the head %q is %d bytes behind itself, T0 %q %d: want about 0", head, atHead, p.T0, behind)
	}
	t.Logf("T0 %q is %d bytes behind the head %q", p.T0, behind, head)
}
