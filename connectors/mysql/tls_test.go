package mysql

import (
	"crypto/tls"
	"net/url"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/internal/testsupport/testpki"
)

// The URL's TLS parameters: the files imply verified TLS, the host name is
// checked by tls=true only, and contradictions are usage errors naming the
// parameter.
func TestTLSParameters(t *testing.T) {
	pki := testpki.Make(t)
	q := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return "mysql://u:p@db.example:3306/shop?" + v.Encode()
	}
	cases := []struct {
		name, url  string
		serverName string // "" and insecure for modes that skip the name
		insecure   bool
		certs      int
		refused    string
	}{
		{name: "ssl-ca alone verifies name and chain", url: q("ssl-ca", pki.CA), serverName: "db.example"},
		{name: "option-file spelling", url: q("ssl_ca", pki.CA, "ssl_cert", pki.ClientCert, "ssl_key", pki.ClientKey), serverName: "db.example", certs: 1},
		{name: "verify-ca", url: q("tls", "verify-ca", "ssl-ca", pki.CA), insecure: true},
		{name: "skip-verify with a client certificate", url: q("tls", "skip-verify", "ssl-cert", pki.ClientCert, "ssl-key", pki.ClientKey), insecure: true, certs: 1},
		{name: "tls=false with a CA", url: q("tls", "false", "ssl-ca", pki.CA), refused: "tls=false with ssl-ca"},
		{name: "preferred with a certificate", url: q("tls", "preferred", "ssl-cert", pki.ClientCert, "ssl-key", pki.ClientKey), refused: "tls=preferred"},
		{name: "skip-verify with a CA", url: q("tls", "skip-verify", "ssl-ca", pki.CA), refused: "the CA would not be used"},
		{name: "a certificate without its key", url: q("ssl-cert", pki.ClientCert), refused: "ssl-key="},
		{name: "a CA that is not PEM", url: q("ssl-ca", pki.ClientKey), refused: "holds no PEM certificate"},
		{name: "a key that does not match", url: q("ssl-cert", pki.ClientCert, "ssl-key", pki.StrangerKey), refused: "ssl-key=" + pki.StrangerKey},
		{name: "an unknown mode", url: q("tls", "required"), refused: "verify-ca"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, err := url.Parse(c.url)
			if err != nil {
				t.Fatal(err)
			}
			conn, err := parseURL(u)
			if c.refused != "" {
				if !errs.IsConfigError(err) || !strings.Contains(err.Error(), c.refused) {
					t.Fatalf("want a usage error mentioning %q, got %v", c.refused, err)
				}
				if strings.Contains(err.Error(), "PRIVATE KEY") {
					t.Fatalf("the error shows a key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for what, cfg := range map[string]*tls.Config{"pool": conn.driverConfig().TLS, "binlog": conn.tlsConfig()} {
				if cfg == nil {
					t.Fatalf("%s: no TLS", what)
				}
				if cfg.ServerName != c.serverName || cfg.InsecureSkipVerify != c.insecure || len(cfg.Certificates) != c.certs {
					t.Errorf("%s: ServerName %q, InsecureSkipVerify %v, %d certificates; want %q, %v, %d", what, cfg.ServerName, cfg.InsecureSkipVerify, len(cfg.Certificates), c.serverName, c.insecure, c.certs)
				}
				if c.insecure && c.url == q("tls", "verify-ca", "ssl-ca", pki.CA) && cfg.VerifyConnection == nil {
					t.Errorf("%s: verify-ca does not verify the chain", what)
				}
			}
		})
	}
}
