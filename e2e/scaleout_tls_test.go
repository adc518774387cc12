package e2e

import (
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ferrydb/ferry/internal/testsupport/testpki"
)

// mtlsFront terminates mutual TLS in front of a plain Temporal frontend, as
// a TLS-enabled Temporal server (or Temporal Cloud) would: a client without
// a certificate signed by the CA gets no connection.
func mtlsFront(t *testing.T, pki *testpki.PKI, backend string) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{pki.Server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.CAPool,
		NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				b, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer b.Close()
				done := make(chan struct{}, 2)
				go func() { io.Copy(b, c); done <- struct{}{} }() //nolint:errcheck // ends with either side
				go func() { io.Copy(c, b); done <- struct{}{} }() //nolint:errcheck // ends with either side
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}

// A Temporal frontend that requires mutual TLS: a worker and a runner with
// the client certificate and the CA run a flow to the end; without TLS, with
// the wrong CA or with a certificate of another CA they are refused with
// exit 2 and a hint; a certificate without its key is a usage error.
func TestScaleOutOverMutualTLS(t *testing.T) {
	ts := startTemporal(t)
	pki := testpki.Make(t)
	front := mtlsFront(t, pki, ts.addr)
	dir := t.TempDir()
	dst := filepath.Join(dir, "dst.db")
	tlsArgs := []string{"--temporal", front, "--temporal-tls-ca", pki.CA, "--temporal-tls-cert", pki.ClientCert, "--temporal-tls-key", pki.ClientKey}

	w := ts.worker(t, "src=fake://?tables=2&rows=3000", "dst=sqlite://"+dst, "--temporal="+front,
		"--temporal-tls-ca="+pki.CA, "--temporal-tls-cert="+pki.ClientCert, "--temporal-tls-key="+pki.ClientKey)
	defer w.signal(t, os.Interrupt)

	r := mustFerry(t, append([]string{"run", "--source", "src", "--destination", "dst", "--name", "tls", "--mode", "snapshot", "--progress", "none"}, tlsArgs...)...)
	n := 0
	if err := openSQLite(t, dst).QueryRow(`SELECT (SELECT count(*) FROM t1) + (SELECT count(*) FROM t2)`).Scan(&n); err != nil || n != 6000 {
		t.Fatalf("over mutual TLS the destination has %d rows (%v), want 6000:\n%s\nworker:\n%s", n, err, r, w.stderr.String())
	}

	// ferry run --restart starts the flow over into emptied tables: a row
	// that is not at the source does not survive it.
	t.Run("restart empties the destination", func(t *testing.T) {
		rw := openSQLiteRW(t, dst)
		if _, err := rw.Exec(`CREATE TEMP TABLE x AS SELECT * FROM t1 WHERE id = (SELECT min(id) FROM t1);
			UPDATE x SET id = -1; INSERT INTO t1 SELECT * FROM x`); err != nil {
			t.Fatal(err)
		}
		rw.Close()
		r := mustFerry(t, append([]string{"run", "--source", "src", "--destination", "dst", "--name", "tls", "--mode", "snapshot", "--progress", "none", "--restart"}, tlsArgs...)...)
		var stray, n int
		db := openSQLite(t, dst)
		if err := db.QueryRow(`SELECT count(*) FROM t1 WHERE id = -1`).Scan(&stray); err != nil || stray != 0 {
			t.Errorf("after ferry run --restart the stray row is still there (%d, %v):\n%s", stray, err, r)
		}
		if err := db.QueryRow(`SELECT (SELECT count(*) FROM t1) + (SELECT count(*) FROM t2)`).Scan(&n); err != nil || n != 6000 {
			t.Errorf("after ferry run --restart the destination has %d rows (%v), want 6000", n, err)
		}
	})

	refused := []struct {
		name string
		args []string
		want string
	}{
		{"plain TCP", []string{"--temporal", front}, "--temporal-tls"},
		{"no client certificate", []string{"--temporal", front, "--temporal-tls-ca", pki.CA}, "--temporal-tls-cert"},
		{"a CA that did not sign the server", []string{"--temporal", front, "--temporal-tls-ca", pki.OtherCA, "--temporal-tls-cert", pki.ClientCert, "--temporal-tls-key", pki.ClientKey}, "--temporal-tls-ca"},
		{"a client certificate of another CA", []string{"--temporal", front, "--temporal-tls-ca", pki.CA, "--temporal-tls-cert", pki.StrangerCert, "--temporal-tls-key", pki.StrangerKey}, "cannot reach Temporal"},
		{"a certificate without its key", []string{"--temporal", front, "--temporal-tls-cert", pki.ClientCert}, "--temporal-tls-key"},
		{"a CA file that is not PEM", []string{"--temporal", front, "--temporal-tls-ca", pki.ClientKey + ".missing"}, "Temporal CA"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			r := ferry(t, append([]string{"flow", "list"}, c.args...)...)
			if r.code != 2 || !strings.Contains(r.stderr, c.want) {
				t.Errorf("want exit 2 mentioning %q:\n%s", c.want, r)
			}
		})
	}
}
