package errs_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/internal/testsupport/testpki"
)

// DiagnoseTLS on the errors of real handshakes with a server that requires
// a client certificate: each problem is told apart, and errors that are not
// about TLS are not taken for one.
func TestDiagnoseTLS(t *testing.T) {
	pki := testpki.Make(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pki.Server},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.CAPool})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if c.(*tls.Conn).Handshake() == nil {
					c.Write([]byte("ok")) //nolint:errcheck // the client reads it or not
				}
			}()
		}
	}()
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	go func() {
		for {
			c, err := plain.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.0 400 not tls\r\n\r\n")) //nolint:errcheck // a server that is not TLS
			c.Close()
		}
	}()
	client, err := tls.LoadX509KeyPair(pki.ClientCert, pki.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := tls.LoadX509KeyPair(pki.StrangerCert, pki.StrangerKey)
	if err != nil {
		t.Fatal(err)
	}
	other, err := testpki.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dial := func(addr string, cfg *tls.Config) error {
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		// TLS 1.3: the server's verdict on the client's certificate comes
		// with the first read.
		_, err = io.ReadAll(c)
		return err
	}
	addr := ln.Addr().String()
	cases := []struct {
		name string
		err  error
		want errs.TLSProblem
	}{
		{"good", dial(addr, &tls.Config{RootCAs: pki.CAPool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{client}}), errs.NoTLSProblem},
		{"unknown CA", dial(addr, &tls.Config{RootCAs: other.CAPool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{client}}), errs.UnknownCA},
		{"wrong host", dial(addr, &tls.Config{RootCAs: pki.CAPool, ServerName: "localhost", Certificates: []tls.Certificate{client}}), errs.WrongHost},
		{"no client certificate", dial(addr, &tls.Config{RootCAs: pki.CAPool, ServerName: "127.0.0.1"}), errs.ClientCertRequired},
		// Go's client withholds a certificate of a CA the server does not
		// list; OpenSSL servers (MariaDB) answer it with "unknown CA".
		{"a stranger's certificate", dial(addr, &tls.Config{RootCAs: pki.CAPool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{stranger}}), errs.ClientCertRequired},
		{"a refused certificate", errors.New("invalid connection: remote error: tls: unknown certificate authority"), errs.ClientCertRefused},
		{"not TLS", dial(plain.Addr().String(), &tls.Config{RootCAs: pki.CAPool, ServerName: "127.0.0.1"}), errs.NotTLS},
		{"refused", dial("127.0.0.1:1", &tls.Config{}), errs.NoTLSProblem},
	}
	for _, c := range cases {
		if got := errs.DiagnoseTLS(c.err); got != c.want {
			t.Errorf("%s: DiagnoseTLS(%v) = %d, want %d", c.name, c.err, got, c.want)
		}
	}
}
