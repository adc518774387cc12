package postgres

import (
	"bufio"
	"io"
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
// A stream that follows the server closely is never paced: its changes
// are read the moment they come.
type readPacer struct {
	r io.Reader
	// on: the last WAL data came more than paceLag after its
	// transaction's commit (both by the server's clock). Set by the
	// session's loop, read by whichever goroutine reads the connection.
	on atomic.Bool
	// small: the last read returned less than paceBytes. Reads are not
	// concurrent (one reader at a time, pgconn's background reader or
	// the session's).
	small bool
	// waits counts the reads that waited.
	waits atomic.Int64
	// buf is the buffer the driver reads the connection through.
	buf *bufio.Reader
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
)

func (p *readPacer) Read(b []byte) (int, error) {
	if p.small && p.on.Load() {
		p.waits.Add(1)
		time.Sleep(paceWait)
	}
	n, err := p.r.Read(b)
	p.small = n < paceBytes

	return n, err
}

// frontend is bufferedFrontend reading through the pacer.
func (p *readPacer) frontend(r io.Reader, w io.Writer) *pgproto3.Frontend {
	p.r = r
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
	p.on.Store(!commit.IsZero() && !sent.IsZero() && sent.Sub(commit) > paceLag)
}
