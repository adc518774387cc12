package mysql

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/go-sql-driver/mysql"
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
		{"invalid connection", fmt.Errorf("table t, partition p: %w", mysql.ErrInvalidConn), true},
		{"bad connection", driver.ErrBadConn, true},
		{"refused", refused, true},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"server shutdown", &mysql.MySQLError{Number: 1053, Message: "Server shutdown in progress"}, true},
		{"connection killed", &mysql.MySQLError{Number: 1927, Message: "Connection was killed"}, true},
		{"duplicate key", &mysql.MySQLError{Number: 1062}, false},
		{"unknown column", &mysql.MySQLError{Number: 1054}, false},
		{"plain error", errors.New("TIME value 24:00:11 is outside 00:00:00-24:00:00"), false},
	}
	for _, c := range cases {
		if got := lostConnection(c.err); got != c.want {
			t.Errorf("%s: lostConnection(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
