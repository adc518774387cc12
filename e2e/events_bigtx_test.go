package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/faultpoint"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// TestPostgresToNATSKilledInsideHugeTransaction: a source transaction too
// big for one batch comes in parts that share a position. Killed after the
// first part was sent and before its checkpoint, the resumed flow reads
// the whole transaction again and numbers its changes the same way, so
// the stream drops the part sent twice: a consumer sees each of the
// transaction's rows once.
func TestPostgresToNATSKilledInsideHugeTransaction(t *testing.T) {
	srv := pgtest.Shared(t)
	ns := startNATS(t)
	src := srv.CreateDatabase(t, "evbig")
	pgShop(t, srv, src, 200)
	args := []string{"sync", srv.URL(src), ns.ClientURL() + "/?stream=big&subject=big", "--name", "evbig", "--state-dir", t.TempDir(),
		"--log-format", "json", "--progress", "none"}
	bg := startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("ferry did not reach CDC:\n%s", bg.stderr.String())
	}
	if code := bg.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("ferry exited %d:\n%s", code, bg.stderr.String())
	}
	const big = 25000 // more than a source batch holds (10,000 changes)
	srv.Exec(t, src, `INSERT INTO lines SELECT g, 5, 'big', 1 FROM generate_series(1, 25000) g`)

	bg = startFerryHeld(t, args...)
	if !bg.waitFor(t, faultpoint.Message, 90*time.Second) {
		t.Fatalf("ferry never held after sending events:\n%s", bg.stderr.String())
	}
	bg.kill(t)
	r := mustFerry(t, append(args, "--until", "caught-up")...)
	if !strings.Contains(r.stderr, "dropped as duplicates by their ID") {
		t.Errorf("the resumed flow sent nothing again:\n%s", r.stderr)
	}

	msgs := readNATS(t, ns.ClientURL(), "big")
	uniqueIDs(t, msgs)
	n := 0
	for _, m := range msgs {
		if strings.Contains(string(m.Value), `"sku":"big"`) && strings.Contains(string(m.Value), `"op":"c"`) {
			n++
		}
	}
	if n != big {
		t.Errorf("the consumer read %d inserts of the huge transaction, want %d", n, big)
	}
	st := rebuild(t, msgs)
	sameState(t, "lines", st["big.public.lines"], sourceRows(t, srv, src, linesQuery))
}
