package cputune_test

import (
	"context"
	"net"
	"os"
	"runtime"
	"testing"

	"github.com/ferrydb/ferry/internal/cputune"
)

func TestOnThisMachine(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, c := range []struct {
		addr net.Addr
		want bool
	}{
		{ln.Addr(), true},
		{&net.TCPAddr{IP: net.ParseIP("::1"), Port: 5432}, true},
		{&net.UnixAddr{Name: "/run/postgresql/.s.PGSQL.5432", Net: "unix"}, true},
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.10"), Port: 5432}, false}, // TEST-NET-1: nobody's
		{nil, false},
	} {
		if got := cputune.OnThisMachine(c.addr); got != c.want {
			t.Errorf("OnThisMachine(%v) = %v, want %v", c.addr, got, c.want)
		}
	}
	// One of this machine's own addresses, not a loopback one, when it has one.
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() {
			if !cputune.OnThisMachine(&net.TCPAddr{IP: n.IP, Port: 3306}) {
				t.Errorf("this machine's own address %v is taken as elsewhere", n.IP)
			}
			break
		}
	}
}

func TestHostOnThisMachine(t *testing.T) {
	ctx := context.Background()
	for host, want := range map[string]bool{
		"localhost": true, "127.0.0.1": true, "::1": true, "": true,
		"192.0.2.10": false, "db.invalid": false, // .invalid never resolves
	} {
		if got := cputune.HostOnThisMachine(ctx, host); got != want {
			t.Errorf("HostOnThisMachine(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestShareWithServer(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one core: nothing to share")
	}
	t.Setenv("GOMAXPROCS", "") // set: the user's choice, left alone
	if n, restore := cputune.ShareWithServer(); n != 0 {
		restore()
		t.Fatalf("GOMAXPROCS in the environment: ShareWithServer set %d threads", n)
	}

	// Unset (t.Setenv restores it after the test).
	t.Setenv("GOMAXPROCS", "x")
	unsetenv(t, "GOMAXPROCS")
	before := runtime.GOMAXPROCS(0)
	n, restore := cputune.ShareWithServer()
	if want := max(1, runtime.NumCPU()/2); n != want || runtime.GOMAXPROCS(0) != want {
		restore()
		t.Fatalf("ShareWithServer set %d (GOMAXPROCS now %d), want %d", n, runtime.GOMAXPROCS(0), want)
	}
	restore()
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Fatalf("after restore GOMAXPROCS = %d, want %d", got, before)
	}
}

func unsetenv(t *testing.T, k string) {
	t.Helper()
	if err := os.Unsetenv(k); err != nil {
		t.Fatal(err)
	}
}
