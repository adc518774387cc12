package postgres

import (
	"crypto/tls"
	"crypto/x509"
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

// A certificate problem met while the stream reconnects is not an outage:
// retrying would fail the same way until reconnect_timeout.
func TestTLSFailureIsNotRetried(t *testing.T) {
	for name, err := range map[string]error{
		"unknown CA":       fmt.Errorf("failed to connect: %w", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}),
		"wrong host":       fmt.Errorf("failed to connect: %w", &tls.CertificateVerificationError{Err: x509.HostnameError{Host: "localhost"}}),
		"no client cert":   &pgconn.PgError{Severity: "FATAL", Code: "28000", Message: "connection requires a valid client certificate"},
		"refused cert":     errors.New("failed to receive message: remote error: tls: unknown certificate authority"),
		"cert auth failed": &pgconn.PgError{Severity: "FATAL", Code: "28000", Message: `certificate authentication failed for user "app"`},
	} {
		if retryable(err, false) {
			t.Errorf("%s: retried", name)
		}
	}
	if !retryable(fmt.Errorf("x: %w", io.ErrUnexpectedEOF), false) {
		t.Error("a broken connection is no longer retried")
	}
}
