package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// TestPostgresToNATSSnapshotWhileStreaming: ferry snapshot of one table of
// a running PostgreSQL to NATS flow, under writes, sends the table's rows
// again as read events of an incremental snapshot (source.snapshot
// "incremental"), of that table only. A consumer that starts reading
// where the request was made rebuilds the table as the source has it from
// those events and the changes after them (the DBLog guarantee: each row
// is a read event or a change after its chunk's recording began), and
// one that reads the whole stream rebuilds every table.
func TestPostgresToNATSSnapshotWhileStreaming(t *testing.T) {
	srv := pgtest.Shared(t)
	ns := startNATS(t)
	src := srv.CreateDatabase(t, "evsnap")
	pgShop(t, srv, src, 3000)
	dir := t.TempDir()
	dst := ns.ClientURL() + "/?stream=snap&subject=snap"
	args := []string{"sync", srv.URL(src), dst, "--name", "evsnap", "--state-dir", dir,
		"--batch-rows", "250", "--log-format", "json", "--progress", "none"}
	bg := startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("ferry did not reach CDC:\n%s", bg.stderr.String())
	}
	w := startPGWriter(t, srv.URL(src), 3001)
	time.Sleep(500 * time.Millisecond) // changes before the request, too

	before := natsMessages(t, ns.ClientURL(), "snap")
	r := mustFerry(t, "snapshot", srv.URL(src), dst, "public.orders", "--name", "evsnap", "--state-dir", dir)
	if !strings.Contains(r.stdout, "copying public.orders again") {
		t.Fatalf("ferry snapshot: %s", r)
	}
	if !bg.waitFor(t, "incremental snapshot done", 120*time.Second) {
		t.Fatalf("the snapshot did not finish:\n%s", tail(bg.stderr.String(), 30))
	}
	time.Sleep(500 * time.Millisecond) // changes after the snapshot
	w.halt(t)
	if code := bg.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("ferry exited %d after SIGTERM (the stream stopped?):\n%s", code, bg.stderr.String())
	}
	mustFerry(t, append(args, "--until", "caught-up")...)

	msgs := readNATS(t, ns.ClientURL(), "snap")
	uniqueIDs(t, msgs)
	reads := map[string]int{}
	for _, m := range msgs[before:] {
		if m.Value == nil {
			continue
		}
		var ev struct {
			Op     string         `json:"op"`
			Source map[string]any `json:"source"`
		}
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Op == "r" {
			reads[m.Subject+"/"+fmt.Sprint(ev.Source["snapshot"])]++
		}
	}
	t.Logf("%d messages, %d after the request; read events after it: %v; writer made %d changes", len(msgs), len(msgs)-before, reads, w.ops.Load())
	// Rows the writer changed while their chunk was read are sent as
	// those changes instead.
	if n := reads["snap.public.orders/incremental"]; n < 2000 {
		t.Errorf("%d read events of orders after ferry snapshot, want most of its 3000 rows", n)
	}
	if len(reads) != 1 {
		t.Errorf("read events after ferry snapshot: %v, want incremental ones of orders only", reads)
	}

	// Without note: an update leaves a TOASTed note out of its event
	// (Debezium's placeholder), which a consumer starting late cannot fill.
	// Deletes of keys it never saw are no error to it.
	const ordersNoNote = `SELECT '{"id":' || id || '}', json_build_object('id', id, 'customer', customer, 'amount', amount::text, 'tags', tags)::text FROM orders`
	late := rebuildOverlapping(t, msgs[before:])
	sameState(t, "orders from the request on", late["snap.public.orders"], sourceRows(t, srv, src, ordersNoNote))

	st := rebuild(t, msgs)
	sameState(t, "orders", st["snap.public.orders"], sourceRows(t, srv, src, ordersQuery))
	sameState(t, "lines", st["snap.public.lines"], sourceRows(t, srv, src, linesQuery))
}

// natsMessages is how many messages a stream holds.
func natsMessages(t *testing.T, url, stream string) int {
	t.Helper()
	nc, err := natsgo.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return int(info.State.Msgs)
}
