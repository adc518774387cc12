package errs

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
)

func TestBrokenConnection(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	cases := []struct {
		err  error
		want bool
	}{
		{dial, true},
		{fmt.Errorf("write rows: %w", io.ErrUnexpectedEOF), true},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{net.ErrClosed, true},
		{io.EOF, true},
		{syscall.EPIPE, true},
		{errors.New("duplicate key value violates unique constraint"), false},
		{&ConfigError{Msg: "bad password"}, false},
	}
	for _, c := range cases {
		if got := BrokenConnection(c.err); got != c.want {
			t.Errorf("BrokenConnection(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
