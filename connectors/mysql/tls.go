package mysql

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/ferrydb/ferry/errs"
)

// tlsOptions are the URL's TLS settings: tls= (the mode) and the files a
// MySQL client takes as --ssl-ca, --ssl-cert and --ssl-key.
type tlsOptions struct {
	mode              string // "", "true", "verify-ca", "skip-verify", "preferred", "false"
	ca, cert, keyFile string
}

const tlsFix = "use tls=true (verify the server's certificate and name), verify-ca (the CA only), skip-verify, preferred or false; ssl-ca=/path/ca.pem for a CA of your own, ssl-cert= and ssl-key= for a client certificate"

// config builds the TLS configuration both the pool and the binlog
// connection use, so they verify the server and present the client
// certificate alike; nil for no TLS or for tls=preferred, which the driver
// handles by name (TLS when the server offers it, unverified) and the
// binlog connection does without.
func (o tlsOptions) config(host string) (*tls.Config, error) {
	files := o.ca != "" || o.cert != "" || o.keyFile != ""
	switch o.mode {
	case "false", "preferred":
		if files {
			return nil, errs.BadConfig(fmt.Sprintf("tls=%s with ssl-ca, ssl-cert or ssl-key", o.mode), "drop tls= (the files imply tls=true) or use tls=true or verify-ca with them")
		}
		return nil, nil
	case "":
		if !files {
			return nil, nil
		}
		o.mode = "true"
	}
	if o.mode == "skip-verify" && o.ca != "" {
		return nil, errs.BadConfig("tls=skip-verify with ssl-ca: the CA would not be used", "use tls=true or verify-ca to verify the server with ssl-ca, or drop ssl-ca")
	}
	if (o.cert == "") != (o.keyFile == "") {
		return nil, errs.BadConfig("a client certificate needs its key and a key its certificate", "give both ssl-cert=/path/client.pem and ssl-key=/path/client-key.pem (or neither)")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.cert != "" {
		pair, err := tls.LoadX509KeyPair(o.cert, o.keyFile)
		if err != nil {
			// The error names the files, never what is in them.
			return nil, &errs.ConfigError{Msg: fmt.Sprintf("client certificate ssl-cert=%s, ssl-key=%s", o.cert, o.keyFile), Err: err,
				Fix: "ssl-cert= names a PEM certificate and ssl-key= its PEM private key (not encrypted), each readable by ferry"}
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if o.ca != "" {
		pem, err := os.ReadFile(o.ca)
		if err != nil {
			return nil, &errs.ConfigError{Msg: "ssl-ca=" + o.ca, Err: err, Fix: "ssl-ca= names a PEM file of CA certificates readable by ferry"}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errs.BadConfig(fmt.Sprintf("ssl-ca=%s holds no PEM certificate", o.ca), "ssl-ca= names a PEM file of CA certificates (-----BEGIN CERTIFICATE-----)")
		}
		cfg.RootCAs = pool
	}
	switch o.mode {
	case "true":
		cfg.ServerName = host
	case "skip-verify":
		cfg.InsecureSkipVerify = true //nolint:gosec // the user asked for it
	case "verify-ca":
		// The chain, not the name: Go verifies both or neither, so the
		// chain is checked here (as libpq's verify-ca and MySQL's
		// --ssl-mode=VERIFY_CA do).
		cfg.InsecureSkipVerify = true //nolint:gosec // verified in VerifyConnection
		roots := cfg.RootCAs
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the server sent no certificate")
			}
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	}
	return cfg, nil
}

// tlsError explains a failed TLS connection with the URL parameter that
// fixes it, or returns nil when err is no TLS failure.
func (c *Conn) tlsError(err error) error {
	p := errs.DiagnoseTLS(err)
	if p == errs.NoTLSProblem && !errors.Is(err, mysql.ErrNoTLS) {
		return nil
	}
	err = c.scrubber.Err(err)
	host, _, _ := net.SplitHostPort(c.host)
	ca := "the system's CAs (no ssl-ca= in the URL)"
	if c.opts.tls.ca != "" {
		ca = "the CA in ssl-ca=" + c.opts.tls.ca
	}
	var msg, fix string
	switch p {
	case errs.UnknownCA:
		msg = fmt.Sprintf("the certificate of MySQL at %s is not signed by %s", c.host, ca)
		fix = "give the CA that signed the server's certificate in ssl-ca=/path/ca.pem (for a managed service, its CA bundle)"
	case errs.WrongHost:
		msg = fmt.Sprintf("the certificate of MySQL at %s is not valid for the host name %q", c.host, host)
		fix = "connect by a name the certificate holds (the error lists them), or use tls=verify-ca to check the CA only"
	case errs.BadServerCert:
		msg = fmt.Sprintf("the certificate of MySQL at %s is not valid", c.host)
		fix = "renew the server's certificate (the error says what is wrong with it)"
	case errs.ClientCertRequired:
		if c.opts.tls.cert == "" {
			msg = fmt.Sprintf("MySQL at %s requires a client certificate and the URL gives none", c.host)
			fix = "add ssl-cert=/path/client.pem&ssl-key=/path/client-key.pem, a certificate signed by the server's ssl_ca"
			break
		}
		fallthrough // a certificate of a CA the server does not list is not sent
	case errs.ClientCertRefused:
		msg = fmt.Sprintf("MySQL at %s refused the client certificate in ssl-cert=%s", c.host, c.opts.tls.cert)
		fix = "give a client certificate (ssl-cert=, ssl-key=) signed by a CA in the server's ssl_ca, and not expired"
	default:
		msg = fmt.Sprintf("MySQL at %s does not offer TLS", c.host)
		fix = "turn TLS on at the server (ssl_cert, ssl_key), or connect without tls=, ssl-ca=, ssl-cert= and ssl-key="
	}
	return &errs.ConfigError{Msg: msg, Fix: fix, Err: err}
}

// probeClientCert finds out whether the server refuses the client
// certificate when a connection with one broke during login. Under TLS 1.3
// the server judges the client's certificate after the client's handshake
// is done, so its alert may arrive after the client wrote its login packet
// into a closed socket: the driver then reports only "bad connection". One
// more connection limited to TLS 1.2, where the verdict comes inside the
// handshake, gets the alert itself. It carries nothing but the login, and
// its error (nil if it connects) only feeds the message.
func (c *Conn) probeClientCert(ctx context.Context) error {
	if c.tlsCfg == nil || len(c.tlsCfg.Certificates) == 0 {
		return nil
	}
	cfg := c.driverConfig()
	cfg.TLS.MaxVersion = tls.VersionTLS12
	cfg.Logger = newQuietLogger()
	connr, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := connr.Connect(ctx)
	if err != nil {
		return err
	}
	conn.Close()
	return nil
}

// accessDeniedFix is the advice for an access denied error: an account
// created REQUIRE X509 (or SSL) is refused like a wrong password when the
// client brings no certificate (or no TLS).
func (c *Conn) accessDeniedFix() string {
	fix := "check the user and password in the URL (mysql://user:password@host/db)"
	switch {
	case c.tlsCfg == nil && c.opts.tls.mode != "preferred":
		fix += "; an account created REQUIRE SSL or X509 also needs TLS: add ssl-ca=/path/ca.pem (and ssl-cert=, ssl-key= for X509)"
	case c.opts.tls.cert == "":
		fix += "; an account created REQUIRE X509 also needs a client certificate: add ssl-cert=/path/client.pem&ssl-key=/path/client-key.pem"
	}
	return fix
}
