package errs

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// ConfigError is a usage or configuration problem: a bad URL, an impossible
// pair of connectors, a filter that matches nothing. ferry exits with code 2
// for it, before anything is written.
type ConfigError struct {
	Msg string
	// Fix tells the user what to do, when known.
	Fix string
	Err error
}

func (e *ConfigError) Error() string {
	s := e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if e.Fix != "" {
		s += " (" + e.Fix + ")"
	}
	return s
}

func (e *ConfigError) Unwrap() error { return e.Err }

// IsConfigError reports whether err is, or wraps, a ConfigError.
func IsConfigError(err error) bool {
	var ce *ConfigError
	return errors.As(err, &ce)
}

// BadConfig is the ConfigError saying what is wrong (msg) and how to fix
// it (fix).
func BadConfig(msg, fix string) error { return &ConfigError{Msg: msg, Fix: fix} }

// UnavailableError marks an error as the database being out of reach: the
// connection was lost or refused (a restart, a network cut, a server
// shutting down). The same call may succeed later on a new connection, so
// the engine retries it with backoff instead of failing the flow. Connectors
// wrap such errors with Unavailable; a ConfigError may wrap one too (an
// unreachable server at start-up is a configuration problem, the same
// server gone during CDC is an outage).
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string { return e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// Unavailable marks err as an outage (nil stays nil).
func Unavailable(err error) error {
	if err == nil || IsUnavailable(err) {
		return err
	}
	return &UnavailableError{Err: err}
}

// IsUnavailable reports whether err is, or wraps, an UnavailableError.
func IsUnavailable(err error) bool {
	var ue *UnavailableError
	return errors.As(err, &ue)
}

// BrokenConnection reports an error a driver returns when the network
// connection under it failed or was refused: a network error, an
// unexpected end of the stream, a connection reset, refused or closed.
// Connectors add their driver's own signs of a lost server to it.
func BrokenConnection(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}
