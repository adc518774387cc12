package postgres

import (
	"io"
	"testing"
)

// The pacer waits before a read only while the stream is behind and the
// last read found less than paceBytes.
func TestReadPacerWaitsOnlyBehindAfterASmallRead(t *testing.T) {
	r, w := io.Pipe()
	p := &readPacer{r: r}
	sizes := []int{100, 100, 100, 100, paceBytes, 100, 100}
	go func() {
		for _, n := range sizes {
			w.Write(make([]byte, n)) //nolint:errcheck // the reader takes it all
		}
		w.Close()
	}()
	buf := make([]byte, 2*paceBytes)
	read := func(on bool, wantWaits int64) {
		t.Helper()
		p.on.Store(on)
		if _, err := p.Read(buf); err != nil {
			t.Fatal(err)
		}
		if got := p.waits.Load(); got != wantWaits {
			t.Fatalf("waits %d, want %d", got, wantWaits)
		}
	}
	read(false, 0) // following the server: never
	read(false, 0)
	read(true, 1) // behind, after a small read
	read(true, 2)
	read(true, 3) // reads paceBytes
	read(true, 3) // after a read that found enough: at once
	read(false, 3)
}
