package postgres

import (
	"bufio"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// readPacer is a replication connection's reader that, while the stream
// is far behind the server (a backlog), waits a moment before a read when
// the last one found little: the walsender then has more on the socket by
// the time ferry reads.
//
// A walsender decoding a backlog sends each change as its own message as
// soon as it has decoded it. When ferry takes them faster than that, every
// read finds one or two messages: a drain of 384,000 changes measured
// 1.4 s of ferry's CPU in read calls and 0.75 s in the poller's waits
// (bench/pg-mixed.sh, PROFILE=1), CPU the walsender needed on a machine
// of two cores, and the drain took 8.5-10 s instead of 6.
// A stream that follows the server closely reads the first of its changes
// the moment they come. While a burst trickles in (transactions that
// waited for a flush of the source's WAL, and a read that found little
// came right after the previous one), it waits liveWait before the next
// read: the walsender sends a burst of live transactions (each flush of
// the source's WAL) a change a packet, and a reader taking each packet as
// it lands woke once a change and took the walsender's core from it,
// which then sent the rest more slowly (bench/pg-cdc.sh, session 21:
// ferry's walsender sent ~100-byte packets at ~2,400 a second while the
// native subscriber's sent the same burst in 2 KB ones). Transactions
// sent as they commit (synchronous_commit = on, a production server's
// default) come one or a few at a time and are read at once.
type readPacer struct {
	r io.Reader
	// on: the last WAL data came more than paceLag after its
	// transaction's commit (both by the server's clock). Set by the
	// session's loop, read by whichever goroutine reads the connection.
	on atomic.Bool
	// burst: the last WAL data came more than burstAge after its
	// transaction's commit: it waited for a flush of the source's WAL
	// (synchronous_commit = off), which sends many transactions at once.
	// Set and read like on.
	burst atomic.Bool
	// small: the last read returned less than paceBytes. Reads are not
	// concurrent (one reader at a time, pgconn's background reader or
	// the session's).
	small bool
	// last is when the last read returned.
	last time.Time
	// waits counts the reads that waited as a backlog's, liveWaits those
	// that waited for a live stream's trickle.
	waits, liveWaits atomic.Int64
	// buf is the buffer the driver reads the connection through.
	buf *bufio.Reader
	// rcvBuf is the socket receive buffer asked for (nearRcvBuf), 0 when
	// the system's was kept.
	rcvBuf int
}

// pacerStarted, when set (tests), is told of each session's pacer.
var pacerStarted func(*readPacer)

const (
	// paceLag is how far behind its commit a change is sent when the
	// stream counts as draining a backlog.
	paceLag = time.Second
	// paceBytes is the least a read should find; paceWait the wait
	// before a read after one that found less (about 10 KB of changes
	// at a walsender's decoding speed here).
	paceBytes = 16 << 10
	paceWait  = time.Millisecond
	// liveGap is how soon after the previous read a small one counts as
	// part of a trickle; liveWait the wait before the next read then.
	// Measured (bench/pg-cdc.sh, alternating, 1,000 transactions a
	// second flushed every 200 ms): p99 lag 1.10x the subscriber's
	// without (median of 19 runs), 1.04x with a 1 ms wait (16 runs), a
	// burst's earliest change applied 7.0 -> 5.8 ms after the
	// subscriber's; 0.2 and 0.5 ms did less. burstAge is how long
	// after its commit a transaction is sent when it waited for a flush
	// (the source's wal_writer_delay is 200 ms by default; a synchronous
	// commit is sent within a millisecond or two here, a disk's flush
	// later): only those wait. Without that gate a source committing
	// synchronously, a transaction at a time, waited up to liveWait
	// whenever the previous read was under liveGap ago (LOADSYNC=1 at 300
	// a second, session 22, three runs each: p50 lag 1.5-1.6 -> 0.9 ms
	// with the gate, p99 3.8-4.1 -> 2.6-3.1 ms; the bursts' p99 ratio
	// 1.046 -> 1.039, medians of eight runs).
	liveGap  = 2 * time.Millisecond
	liveWait = time.Millisecond
	burstAge = 20 * time.Millisecond
	// nearRTT is the round trip under which the server counts as on
	// this machine or next to it; nearRcvBuf is the receive buffer a
	// replication connection to such a server asks for.
	nearRTT    = 250 * time.Microsecond
	nearRcvBuf = 32 << 10
)

func (p *readPacer) Read(b []byte) (int, error) {
	if p.small {
		switch {
		case p.on.Load():
			p.waits.Add(1)
			time.Sleep(paceWait)
		case p.burst.Load() && time.Since(p.last) < liveGap:
			p.liveWaits.Add(1)
			time.Sleep(liveWait)
		}
	}
	n, err := p.r.Read(b)
	p.small = n < paceBytes
	p.last = time.Now()

	return n, err
}

// frontend is bufferedFrontend reading through the pacer.
func (p *readPacer) frontend(r io.Reader, w io.Writer) *pgproto3.Frontend {
	p.r = r
	p.rcvBuf = shrinkNear(w)
	p.buf = bufio.NewReaderSize(p, readBufferBytes)
	return pgproto3.NewFrontend(p.buf, w)
}

// buffered is how much the driver has read from the connection and not
// taken yet (the driver may hold more in its own chunk).
func (p *readPacer) buffered() int {
	if p == nil || p.buf == nil {
		return 0
	}
	return p.buf.Buffered()
}

// follow sets the pace from a WAL data message sent at sent of a
// transaction committed at commit (zero: not known yet).
func (p *readPacer) follow(sent, commit time.Time) {
	if p == nil {
		return
	}
	known := !commit.IsZero() && !sent.IsZero()
	p.on.Store(known && sent.Sub(commit) > paceLag)
	p.burst.Store(known && sent.Sub(commit) > burstAge)
}

// shrinkNear gives the replication connection w a small receive buffer
// (nearRcvBuf) when the server is close by (a round trip under nearRTT:
// the same machine or the next rack) and returns its size, 0 when it
// kept the system's.
//
// A walsender writes each change to its socket as it decodes it. When
// ferry keeps the socket's receive window wide open, every write leaves
// at once as its own packet, the sender's kernel paying for both ends of
// the loopback: on a machine ferry shares with its source, the
// walsender's CPU was 1.5 times the native subscriber's walsender's for
// the same backlog, most of it in the TCP stack (perf). With a small
// buffer the window fills, the walsender's writes queue in its send
// buffer and leave together, and ferry reads them in fewer, larger reads:
// that walsender's CPU 2.0-2.4 s -> 1.8-1.85 s, the source's lower in
// five of six drains; pg-mixed's drain time moved both ways
// (bench/results.md, session 18). A small window only limits a distant server (a window per
// round trip), which is why it is kept for a near one: 32 KB (the kernel
// doubles it) per 250 us is over 100 MB/s, more than a walsender sends.
func shrinkNear(w io.Writer) int {
	c, ok := w.(net.Conn)
	for ok {
		u, wraps := c.(interface{ NetConn() net.Conn }) // TLS
		if !wraps {
			break
		}
		c = u.NetConn()
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return 0 // a Unix socket: no window to fill
	}
	if rtt, ok := connRTT(tc); !ok || rtt >= nearRTT {
		return 0
	}
	if tc.SetReadBuffer(nearRcvBuf) != nil {
		return 0
	}
	return nearRcvBuf
}
