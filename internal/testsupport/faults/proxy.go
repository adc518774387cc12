// Package faults injects the failures a flow must survive, for tests: a TCP
// proxy between ferry and a database (toxiproxy's Go packages, run in this
// process) that cuts, resets and slows connections, and readers of a
// process's memory so a test can report ferry's peak. Database restarts live
// with the instances (testsupport/pgtest, testsupport/mysqltest); the
// scenarios themselves are in e2e/chaos_test.go.
package faults

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

var (
	serverOnce sync.Once
	server     *toxiproxy.ApiServer
)

// api is the toxiproxy server the proxies hang off. Its HTTP API is never
// started: tests drive the proxies directly.
func api() *toxiproxy.ApiServer {
	serverOnce.Do(func() {
		server = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	})
	return server
}

// Proxy forwards a local port to a database. Connections made through Addr
// reach Upstream until the test cuts or slows them.
type Proxy struct {
	// Addr is the proxy's listening address, host:port on 127.0.0.1.
	Addr     string
	Upstream string

	mu  sync.Mutex
	p   *toxiproxy.Proxy
	cut bool
}

// NewProxy starts a proxy to upstream (host:port) on a free local port and
// stops it when the test ends.
func NewProxy(t testing.TB, name, upstream string) *Proxy {
	t.Helper()
	p := toxiproxy.NewProxy(api(), name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("faults: start proxy %s to %s: %v", name, upstream, err)
	}
	px := &Proxy{Addr: p.Listen, Upstream: upstream, p: p}
	t.Cleanup(px.close)
	return px
}

func (px *Proxy) close() {
	px.p.Toxics.ResetToxics(context.Background())
	px.p.Stop()
}

// Port is the proxy's listening port.
func (px *Proxy) Port() int {
	_, port, _ := net.SplitHostPort(px.Addr)
	n, _ := strconv.Atoi(port)
	return n
}

// Rewrite returns rawURL with its host:port (the upstream's) replaced by the
// proxy's, so a client connects through the proxy.
func (px *Proxy) Rewrite(rawURL string) string {
	if !strings.Contains(rawURL, px.Upstream) {
		panic(fmt.Sprintf("faults: %q does not name the upstream %s", rawURL, px.Upstream))
	}
	return strings.Replace(rawURL, px.Upstream, px.Addr, 1)
}

// Cut closes every connection through the proxy and refuses new ones, as
// when a network link or a firewall drops: clients see resets and refused
// connections until Restore.
func (px *Proxy) Cut(t testing.TB) {
	t.Helper()
	px.mu.Lock()
	defer px.mu.Unlock()
	if px.cut {
		return
	}
	px.p.Stop()
	px.cut = true
}

// Restore accepts connections again, on the same port.
func (px *Proxy) Restore(t testing.TB) {
	t.Helper()
	px.mu.Lock()
	defer px.mu.Unlock()
	if !px.cut {
		return
	}
	// The port was just released; another process could take it in between,
	// which would fail the test loudly rather than silently.
	if err := px.p.Start(); err != nil {
		t.Fatalf("faults: reopen proxy on %s: %v", px.Addr, err)
	}
	px.cut = false
}

// Latency delays everything the database sends back by ms milliseconds (±
// jitter), so every round trip takes at least that long.
func (px *Proxy) Latency(t testing.TB, ms, jitter int) {
	t.Helper()
	px.toxic(t, fmt.Sprintf(`{"name":"latency","type":"latency","stream":"downstream","attributes":{"latency":%d,"jitter":%d}}`, ms, jitter))
}

// Bandwidth limits one direction of every connection to kbps kilobytes a
// second: "upstream" is what the client sends (rows written to a
// destination), "downstream" what the database sends back.
func (px *Proxy) Bandwidth(t testing.TB, kbps int, stream string) {
	t.Helper()
	px.toxic(t, fmt.Sprintf(`{"name":"bandwidth_%s","type":"bandwidth","stream":%q,"attributes":{"rate":%d}}`, stream, stream, kbps))
}

// ResetPeer resets (TCP RST) every connection that sends data through the
// proxy from now on, after timeoutMS, until Clear.
func (px *Proxy) ResetPeer(t testing.TB, timeoutMS int) {
	t.Helper()
	px.toxic(t, fmt.Sprintf(`{"name":"reset","type":"reset_peer","stream":"upstream","attributes":{"timeout":%d}}`, timeoutMS))
}

// Clear removes every toxic (latency, bandwidth, resets).
func (px *Proxy) Clear() {
	px.p.Toxics.ResetToxics(context.Background())
}

func (px *Proxy) toxic(t testing.TB, spec string) {
	t.Helper()
	if _, err := px.p.Toxics.AddToxicJson(strings.NewReader(spec)); err != nil {
		t.Fatalf("faults: add toxic %s: %v", spec, err)
	}
}
