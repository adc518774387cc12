package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connector/conformance"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

func startServer(t testing.TB) *natsserver.Server {
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

func open(t testing.TB, s *natsserver.Server, query string) *Conn {
	t.Helper()
	u, err := url.Parse(s.ClientURL() + "/?" + query)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// readBack rebuilds a table from its subject's read events, as a
// consumer would.
func readBack(t *testing.T, s *natsserver.Server, subject string, tbl model.Namespace) [][]string {
	t.Helper()
	nc, err := natsgo.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	st, err := js.Stream(ctx, "conf")
	if err != nil {
		t.Fatal(err)
	}
	subj := subject + "." + tbl.Schema + "." + tbl.Table
	rows := map[string][]string{}
	var order []string
	for seq := uint64(1); ; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			break
		}
		if m.Subject != subj {
			continue
		}
		var ev struct {
			After map[string]any `json:"after"`
		}
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		k := m.Header.Get(KeyHeader)
		if _, ok := rows[k]; !ok {
			order = append(order, k)
		}
		rows[k] = []string{fmt.Sprint(ev.After["id"]), fmt.Sprint(ev.After["v"])}
	}
	out := make([][]string, 0, len(order))
	for _, k := range order {
		out = append(out, rows[k])
	}
	return out
}

// TestConformance runs the destination suite against a real embedded
// NATS server: rows written twice are one row to a consumer (the same
// message IDs), and a checkpoint is stored only with its batch.
func TestConformance(t *testing.T) {
	s := startServer(t)
	conformance.Destination(t, conformance.DestinationHarness{
		Schema:   "public",
		Open:     func(t *testing.T) connector.Destination { return open(t, s, "stream=conf&subject=conf") },
		ReadBack: func(t *testing.T, ns model.Namespace) [][]string { return readBack(t, s, "conf", ns) },
	})
}

func TestBadURL(t *testing.T) {
	for _, q := range []string{"duplicate_window=soon", "replicas=9", "color=blue"} {
		u, _ := url.Parse("nats://127.0.0.1:4222/?" + q)
		if _, err := Open(context.Background(), u); err == nil {
			t.Errorf("%s: no error", q)
		}
	}
}

// TestShortDuplicateWindowRefused: an existing stream that forgets
// message IDs sooner than duplicate_window would let a resumed flow
// deliver changes twice: refused as a configuration error, saying how to
// fix it.
func TestShortDuplicateWindowRefused(t *testing.T) {
	s := startServer(t)
	nc, err := natsgo.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "short", Subjects: []string{"short.>"}, Duplicates: time.Minute}); err != nil {
		t.Fatal(err)
	}
	c := open(t, s, "stream=short&subject=short")
	defer c.Close()
	err = c.CreateTables(context.Background(), nil)
	var ce *errs.ConfigError
	if !errors.As(err, &ce) || !strings.Contains(ce.Fix, "--dupe-window") {
		t.Fatalf("a stream with a 1m duplicate window: got %v, want a configuration error with the fix", err)
	}
	// Lowering duplicate_window to the stream's accepts it.
	c2 := open(t, s, "stream=short&subject=short&duplicate_window=1m")
	defer c2.Close()
	if err := c2.CreateTables(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}
