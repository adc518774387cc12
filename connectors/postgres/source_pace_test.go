package postgres

import (
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The pacer waits before a read only after one that found less than
// paceBytes: as a backlog's while the stream is behind; while it follows
// the server, only when the changes came in a burst (flushed together,
// long after their commits) and that read came right after the one
// before it (they trickle in), never after a pause (a burst's first
// change is read the moment it comes) and never for transactions sent as
// they commit (a synchronously committing source).
func TestReadPacerWaitsOnlyAfterASmallRead(t *testing.T) {
	r, w := io.Pipe()
	p := &readPacer{r: r}
	sizes := []int{100, 100, 100, 100, 100, paceBytes, 100, 100, 100, 100}
	go func() {
		for _, n := range sizes {
			w.Write(make([]byte, n)) //nolint:errcheck // the reader takes it all
		}
		w.Close()
	}()
	buf := make([]byte, 2*paceBytes)
	const trickle, pause = false, true
	type stream int
	const (
		asCommitted stream = iota // each transaction sent as it commits
		inBursts                  // sent at a flush, burstAge and more after its commit
		behind                    // a backlog: paceLag and more after
	)
	commit := time.Now()
	read := func(st stream, after bool, wantWaits, wantLive int64) {
		t.Helper()
		sent := commit.Add(time.Millisecond)
		switch st {
		case inBursts:
			sent = commit.Add(burstAge + time.Millisecond)
		case behind:
			sent = commit.Add(paceLag + time.Millisecond)
		}
		p.follow(sent, commit)
		if after == pause {
			p.last = time.Now().Add(-time.Hour)
		} else {
			p.last = time.Now()
		}
		if _, err := p.Read(buf); err != nil {
			t.Fatal(err)
		}
		if got, live := p.waits.Load(), p.liveWaits.Load(); got != wantWaits || live != wantLive {
			t.Fatalf("waits %d and live waits %d, want %d and %d", got, live, wantWaits, wantLive)
		}
	}
	read(inBursts, pause, 0, 0)      // the first read: nothing before it
	read(inBursts, trickle, 0, 1)    // a burst's changes trickling in
	read(inBursts, pause, 0, 1)      // after a pause: at once
	read(asCommitted, trickle, 0, 1) // sent as they commit: at once
	read(behind, trickle, 1, 1)      // behind, after a small read
	read(behind, pause, 2, 1)        // (a backlog's wait, pause or not) reads paceBytes
	read(behind, trickle, 2, 1)      // after a read that found enough: at once
	read(inBursts, trickle, 2, 2)
	read(inBursts, trickle, 2, 3)
	p.follow(time.Time{}, commit) // not known: no wait
	p.last = time.Now()
	if _, err := p.Read(buf); err != nil {
		t.Fatal(err)
	}
	if got, live := p.waits.Load(), p.liveWaits.Load(); got != 2 || live != 3 {
		t.Fatalf("waits %d and live waits %d after WAL data without a send time, want 2 and 3", got, live)
	}
}

// A replication connection to a server on this machine gets a small
// receive buffer (the walsender's writes then leave together); a Unix
// socket keeps its own.
func TestNearServerGetsASmallReceiveBuffer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			io.Copy(io.Discard, c) //nolint:errcheck // until the client closes
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := rcvBuf(t, c); got == 2*nearRcvBuf {
		t.Fatalf("a new connection's receive buffer is already %d bytes: the test cannot tell", got)
	}
	p := &readPacer{}
	p.frontend(c, c)
	if p.rcvBuf != nearRcvBuf {
		t.Errorf("a loopback connection kept the system's receive buffer (rcvBuf %d)", p.rcvBuf)
	}
	// Linux doubles what it is asked for (its bookkeeping).
	if got := rcvBuf(t, c); got != 2*nearRcvBuf {
		t.Errorf("the socket's receive buffer is %d bytes, want %d", got, 2*nearRcvBuf)
	}

	sock := filepath.Join(t.TempDir(), "s")
	uln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer uln.Close()
	uc, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	p = &readPacer{}
	p.frontend(uc, uc)
	if p.rcvBuf != 0 {
		t.Errorf("a Unix socket was given a receive buffer of %d", p.rcvBuf)
	}
}

func rcvBuf(t *testing.T, c net.Conn) int {
	t.Helper()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if cerr := raw.Control(func(fd uintptr) { n, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) }); cerr != nil || err != nil {
		t.Fatal(cerr, err)
	}
	return n
}
