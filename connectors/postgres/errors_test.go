package postgres

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestLostConnection: errors of a server that went away are outages the
// engine retries; errors about the data or the statement are not.
func TestLostConnection(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"admin shutdown", &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}, true},
		{"crash shutdown", &pgconn.PgError{Code: "57P02"}, true},
		{"starting up", &pgconn.PgError{Code: "57P03", Message: "the database system is starting up"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"unexpected EOF", fmt.Errorf("apply changes: %w", io.ErrUnexpectedEOF), true},
		{"reset", fmt.Errorf("write: %w", syscall.ECONNRESET), true},
		{"refused", refused, true},
		{"conn closed", fmt.Errorf("x: %w", pgconn.ErrConnClosed), true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"value too long", &pgconn.PgError{Code: "22001"}, false},
		{"undefined column", &pgconn.PgError{Code: "42703"}, false},
		{"plain error", errors.New("upsert row has 3 values for 4 columns"), false},
	}
	for _, c := range cases {
		if got := lostConnection(c.err); got != c.want {
			t.Errorf("%s: lostConnection(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
