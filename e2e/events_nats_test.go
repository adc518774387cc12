package e2e

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrydb/ferry/internal/faultpoint"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// startNATS runs a real NATS server with JetStream in the test process.
func startNATS(t *testing.T) *natsserver.Server {
	t.Helper()
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// readNATS reads every message of a stream, in order, with its ID.
func readNATS(t *testing.T, url, stream string) []busMsg {
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
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []busMsg
	for uint64(len(out)) < info.State.Msgs {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			out = append(out, busMsg{ID: m.Headers().Get("Nats-Msg-Id"), Subject: m.Subject(), Key: []byte(m.Headers().Get("Ferry-Key")), Value: m.Data()})
		}
		if n == 0 {
			t.Fatalf("read %d of the stream's %d messages, then nothing", len(out), info.State.Msgs)
		}
	}
	return out
}

// TestPostgresToNATSKilledAndResumed copies PostgreSQL to NATS JetStream
// under writes, kills ferry (SIGKILL) after a batch of events was stored
// and before its checkpoint, resumes, and checks what a consumer reading
// the stream sees: every change once (the resent ones dropped by their
// message ID), and the state rebuilt from the events equal to the source.
func TestPostgresToNATSKilledAndResumed(t *testing.T) {
	srv := pgtest.Shared(t)
	ns := startNATS(t)
	src := srv.CreateDatabase(t, "evnats")
	pgShop(t, srv, src, 3000)
	dir := t.TempDir()
	dst := ns.ClientURL() + "/?stream=shop&subject=shop"
	args := []string{"sync", srv.URL(src), dst, "--name", "evnats", "--state-dir", dir, "--parallel", "2",
		"--partition-rows", "1000", "--batch-rows", "250", "--log-format", "json", "--progress", "none"}
	w := startPGWriter(t, srv.URL(src), 3001)

	// Run 1 holds once the first batch of changes is in the stream and
	// its checkpoint is not: killed there, run 2 sends it again.
	bg := startFerryHeld(t, args...)
	if !bg.waitFor(t, faultpoint.Message, 90*time.Second) {
		t.Fatalf("ferry never held after sending events:\n%s", bg.stderr.String())
	}
	if !bg.kill(t) {
		t.Fatalf("ferry ended before the kill:\n%s", bg.stderr.String())
	}

	// Run 2 resumes under writes: it sends the held batch again, which
	// the stream drops by message ID; then it stops.
	bg = startFerry(t, args...)
	if !bg.waitFor(t, "nats: messages sent again were dropped as duplicates by their ID", 60*time.Second) {
		t.Fatalf("run 2 sent nothing again after the kill (which came after the events and before their checkpoint):\n%s", bg.stderr.String())
	}
	n0 := w.ops.Load()
	deadline := time.Now().Add(60 * time.Second)
	for w.ops.Load() < n0+200 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	w.halt(t)
	if code := bg.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("run 2 exited %d after SIGTERM:\n%s", code, bg.stderr.String())
	}
	r := mustFerry(t, append(args, "--until", "caught-up")...)
	if r.logLine("flow finished") == nil {
		t.Fatalf("no final log line:\n%s", r)
	}

	msgs := readNATS(t, ns.ClientURL(), "shop")
	uniqueIDs(t, msgs)
	st := rebuild(t, msgs)
	var ops = map[string]int{}
	for _, m := range msgs {
		for _, op := range []string{`"op":"r"`, `"op":"c"`, `"op":"u"`, `"op":"d"`} {
			if strings.Contains(string(m.Value), op) {
				ops[op]++
			}
		}
	}
	t.Logf("%d messages: %v; writer made %d changes", len(msgs), ops, w.ops.Load())
	for _, op := range []string{`"op":"r"`, `"op":"c"`, `"op":"u"`, `"op":"d"`} {
		if ops[op] == 0 {
			t.Errorf("no event with %s in the stream", op)
		}
	}
	checkSources(t, msgs, "postgresql", src, map[string]bool{"lsn": true, "txId": true})
	sameState(t, "orders", st["shop.public.orders"], sourceRows(t, srv, src, ordersQuery))
	sameState(t, "lines", st["shop.public.lines"], sourceRows(t, srv, src, linesQuery))
}
