// Package testpki makes the certificates TLS tests need, as PEM files: a CA,
// a server certificate it signed, a client certificate it signed, and a
// second, unrelated CA with a client certificate of its own, so a test can
// show what a wrong CA or a stranger's certificate does. The keys are
// ECDSA P-256 in PKCS #8, which Go, PostgreSQL and MariaDB all read.
//
// pgtest and mysqltest start servers with these files (their TLS option),
// and the e2e tests give them to ferry in URLs.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// DefaultHosts are the names the server certificate of Shared is valid for:
// the loopback address the test servers listen on and a name no resolver
// knows. "localhost" is left out on purpose, so a test can connect by a
// name the certificate does not have.
var DefaultHosts = []string{"127.0.0.1", "db.ferry.test"}

// PKI is a set of certificates and keys written as PEM files in Dir.
type PKI struct {
	Dir string
	// CA is the file of the CA that signed the server and client
	// certificates; CAPool holds it.
	CA     string
	CAPool *x509.CertPool
	// ServerCert and ServerKey are the server's files, valid for Hosts;
	// Server is the same pair loaded.
	ServerCert, ServerKey string
	Server                tls.Certificate
	Hosts                 []string
	// ClientCert and ClientKey are a client certificate the CA signed.
	ClientCert, ClientKey string
	// OtherCA signed nothing the servers use; StrangerCert and StrangerKey
	// are a client certificate it signed.
	OtherCA                   string
	StrangerCert, StrangerKey string
}

// Make writes a PKI whose server certificate is valid for hosts (IP
// addresses or DNS names; DefaultHosts when none) into a directory removed
// when the test ends.
func Make(t testing.TB, hosts ...string) *PKI {
	t.Helper()
	p, err := New(t.TempDir(), hosts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var shared struct {
	once sync.Once
	pki  *PKI
	err  error
}

// Shared is the process's PKI for DefaultHosts, made on first use in a
// temporary directory RemoveShared removes.
func Shared() (*PKI, error) {
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "testpki-")
		if err != nil {
			shared.err = err
			return
		}
		// Servers run as another user (postgres) read the CA from here.
		if err := os.Chmod(dir, 0o755); err != nil {
			shared.err = err
			return
		}
		shared.pki, shared.err = New(dir)
	})
	return shared.pki, shared.err
}

// RemoveShared removes the files of Shared, if it was made.
func RemoveShared() {
	if shared.pki != nil {
		os.RemoveAll(shared.pki.Dir) //nolint:errcheck // best effort at exit
	}
}

// New writes a PKI into dir.
func New(dir string, hosts ...string) (*PKI, error) {
	if len(hosts) == 0 {
		hosts = DefaultHosts
	}
	g := &gen{dir: dir}
	p := &PKI{Dir: dir, Hosts: hosts}
	ca, caKey := g.issue("ca", caTemplate("ferry test CA"), nil, nil)
	p.CA = g.file("ca.pem")
	p.CAPool = x509.NewCertPool()
	if ca != nil {
		p.CAPool.AddCert(ca)
	}

	srv := &x509.Certificate{Subject: pkix.Name{CommonName: hosts[0]},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			srv.IPAddresses = append(srv.IPAddresses, ip)
		} else {
			srv.DNSNames = append(srv.DNSNames, h)
		}
	}
	g.issue("server", srv, ca, caKey)
	p.ServerCert, p.ServerKey = g.file("server.pem"), g.file("server-key.pem")

	g.issue("client", clientTemplate("ferry"), ca, caKey)
	p.ClientCert, p.ClientKey = g.file("client.pem"), g.file("client-key.pem")

	other, otherKey := g.issue("other-ca", caTemplate("another CA"), nil, nil)
	p.OtherCA = g.file("other-ca.pem")
	g.issue("stranger", clientTemplate("stranger"), other, otherKey)
	p.StrangerCert, p.StrangerKey = g.file("stranger.pem"), g.file("stranger-key.pem")
	if g.err != nil {
		return nil, fmt.Errorf("testpki: %w", g.err)
	}
	var err error
	if p.Server, err = tls.LoadX509KeyPair(p.ServerCert, p.ServerKey); err != nil {
		return nil, fmt.Errorf("testpki: %w", err)
	}
	return p, nil
}

func caTemplate(name string) *x509.Certificate {
	return &x509.Certificate{Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign}
}

func clientTemplate(name string) *x509.Certificate {
	return &x509.Certificate{Subject: pkix.Name{CommonName: name},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
}

// gen issues certificates, keeping the first error.
type gen struct {
	dir    string
	serial int64
	err    error
}

func (g *gen) file(name string) string { return filepath.Join(g.dir, name) }

// issue makes a key and a certificate from tmpl signed by parent (self-signed
// when nil), writes name.pem and, for all but CAs, name-key.pem.
func (g *gen) issue(name string, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	if g.err != nil {
		return nil, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		g.err = err
		return nil, nil
	}
	g.serial++
	tmpl.SerialNumber = big.NewInt(g.serial)
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(7*24*time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		g.err = err
		return nil, nil
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		g.err = err
		return nil, nil
	}
	g.write(name+".pem", "CERTIFICATE", der, 0o644)
	if !tmpl.IsCA {
		k, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			g.err = err
			return nil, nil
		}
		g.write(name+"-key.pem", "PRIVATE KEY", k, 0o600)
	}
	return cert, key
}

func (g *gen) write(name, typ string, der []byte, mode os.FileMode) {
	if g.err == nil {
		g.err = os.WriteFile(g.file(name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
	}
}

// CopyTo copies the server's certificate, key and the CA into dir (as
// server.pem, server-key.pem, ca.pem) owned by uid:gid, so a server running
// as that user may read them: PostgreSQL refuses a key file another user
// owns. It returns the three paths.
func (p *PKI) CopyTo(dir string, uid, gid int) (cert, key, ca string, err error) {
	for _, f := range []struct{ from, to *string }{{&p.ServerCert, &cert}, {&p.ServerKey, &key}, {&p.CA, &ca}} {
		b, err := os.ReadFile(*f.from)
		if err != nil {
			return "", "", "", err
		}
		*f.to = filepath.Join(dir, filepath.Base(*f.from))
		if err := os.WriteFile(*f.to, b, 0o600); err != nil {
			return "", "", "", err
		}
		if os.Geteuid() == 0 {
			if err := os.Chown(*f.to, uid, gid); err != nil {
				return "", "", "", err
			}
		}
	}
	return cert, key, ca, nil
}
