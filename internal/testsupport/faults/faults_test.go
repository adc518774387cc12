package faults

import (
	"bufio"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// echoServer answers each line it reads with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c) //nolint:errcheck // ends with the connection
			}()
		}
	}()
	return l.Addr().String()
}

func roundTrip(addr, msg string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // a test connection
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

// TestProxyCutsRestoresAndSlows: a proxy forwards, a cut refuses new
// connections and breaks open ones, a restore accepts again on the same
// port, and latency delays the answers by at least the latency.
func TestProxyCutsRestoresAndSlows(t *testing.T) {
	up := echoServer(t)
	px := NewProxy(t, "echo", up)
	if got, err := roundTrip(px.Addr, "hello"); err != nil || got != "hello\n" {
		t.Fatalf("through the proxy: %q, %v", got, err)
	}
	if px.Rewrite("postgres://u@"+up+"/db") != "postgres://u@"+px.Addr+"/db" {
		t.Fatalf("Rewrite: %s", px.Rewrite("postgres://u@"+up+"/db"))
	}

	open, err := net.Dial("tcp", px.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	px.Cut(t)
	if _, err := roundTrip(px.Addr, "refused"); err == nil {
		t.Fatal("a cut proxy accepted a connection")
	}
	open.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // a test connection
	if _, err := open.Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection open across the cut still works")
	}
	px.Restore(t)
	if got, err := roundTrip(px.Addr, "again"); err != nil || got != "again\n" {
		t.Fatalf("after the restore: %q, %v", got, err)
	}

	px.Latency(t, 200, 0)
	start := time.Now()
	if got, err := roundTrip(px.Addr, "slow"); err != nil || got != "slow\n" {
		t.Fatalf("with latency: %q, %v", got, err)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Fatalf("a round trip took %s through 200 ms of latency", took)
	}
	px.Clear()
}

func TestMemoryOfThisProcess(t *testing.T) {
	rss, peak, err := Memory(os.Getpid())
	if err != nil || rss <= 0 || peak < rss {
		t.Fatalf("rss %d, peak %d, %v", rss, peak, err)
	}
	w := WatchMemory(os.Getpid(), 10*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	w.Stop()
	if w.Peak() < rss/2 || len(w.RSS()) == 0 {
		t.Fatalf("watch: peak %d, %d samples", w.Peak(), len(w.RSS()))
	}
	if _, _, err := Memory(1 << 30); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("a missing process: %v", err)
	}
}
