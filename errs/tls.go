package errs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
)

// TLSProblem says why a TLS connection to a database failed, so each
// connector can name the URL parameter that fixes it. It is decided here,
// once, from the errors Go's TLS stack returns (the drivers wrap them).
type TLSProblem int

const (
	// NoTLSProblem: the error is not a TLS failure.
	NoTLSProblem TLSProblem = iota
	// UnknownCA: the server's certificate is not signed by a CA ferry
	// trusts (the CA file given, or the system's).
	UnknownCA
	// WrongHost: the server's certificate is for other names than the
	// host ferry connected to.
	WrongHost
	// BadServerCert: the server's certificate is expired, not yet valid,
	// or not usable for a server.
	BadServerCert
	// ClientCertRequired: the server wants a client certificate and got
	// none.
	ClientCertRequired
	// ClientCertRefused: the server refused the client certificate (not
	// signed by a CA it trusts, or expired).
	ClientCertRefused
	// NotTLS: the server did not answer with TLS.
	NotTLS
)

// DiagnoseTLS tells which TLS problem err is, NoTLSProblem for another
// error. A refusal of the client's certificate reaches the client as a TLS
// alert, which Go reports only as text ("remote error: tls: ..."), hence
// the string tests.
func DiagnoseTLS(err error) TLSProblem {
	if err == nil {
		return NoTLSProblem
	}
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var cv *tls.CertificateVerificationError
	var rh tls.RecordHeaderError
	switch {
	case errors.As(err, &ua):
		return UnknownCA
	case errors.As(err, &he):
		return WrongHost
	case errors.As(err, &ci):
		return BadServerCert
	case errors.As(err, &cv):
		return BadServerCert
	case errors.As(err, &rh):
		return NotTLS
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "remote error: tls: certificate required"):
		return ClientCertRequired
	case strings.Contains(msg, "remote error: tls: unknown certificate authority"),
		strings.Contains(msg, "remote error: tls: bad certificate"),
		strings.Contains(msg, "remote error: tls: certificate expired"),
		strings.Contains(msg, "remote error: tls: unsupported certificate"),
		strings.Contains(msg, "remote error: tls: unknown certificate"),
		strings.Contains(msg, "remote error: tls: certificate revoked"):
		return ClientCertRefused
	case strings.Contains(msg, "x509: certificate signed by unknown authority"):
		return UnknownCA
	case strings.Contains(msg, "x509: certificate is valid for"), strings.Contains(msg, "x509: cannot validate certificate for"):
		return WrongHost
	}
	return NoTLSProblem
}
