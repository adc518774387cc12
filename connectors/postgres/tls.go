package postgres

import (
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/ferrydb/ferry/errs"
)

// tlsParams are the URL's TLS settings, kept only to say which one to fix
// when a connection fails: pgx reads them itself (the pool and the
// replication connection share its one parsed configuration, so both
// verify the server and present the client certificate alike).
type tlsParams struct {
	mode, rootCert, cert string
}

// tlsParamsOf reads the TLS settings of a URL, with libpq's environment
// variables (which pgx honours too) where the URL has none.
func tlsParamsOf(q url.Values) tlsParams {
	get := func(name, env string) string {
		if v := q.Get(name); v != "" {
			return v
		}
		return os.Getenv(env)
	}
	p := tlsParams{mode: get("sslmode", "PGSSLMODE"), rootCert: get("sslrootcert", "PGSSLROOTCERT"), cert: get("sslcert", "PGSSLCERT")}
	if p.mode == "" {
		p.mode = "prefer"
	}
	return p
}

// tlsError explains a failed TLS connection with the parameter that fixes
// it. The driver's own error (the certificate's names, the verifier's
// reason) stays attached; no key or password is in it.
func (c *Conn) tlsError(p errs.TLSProblem, what string, err error) error {
	at := fmt.Sprintf("%s:%d", c.cfg.ConnConfig.Host, c.cfg.ConnConfig.Port)
	t := c.tls
	ca := "the system's CAs (no sslrootcert= in the URL)"
	if t.rootCert != "" {
		ca = "the CA in sslrootcert=" + t.rootCert
	}
	var msg, fix string
	switch p {
	case errs.UnknownCA:
		msg = fmt.Sprintf("%s: the certificate of PostgreSQL at %s is not signed by %s", what, at, ca)
		fix = "give the CA that signed the server's certificate in sslrootcert=/path/ca.pem (for a managed service, its CA bundle)"
	case errs.WrongHost:
		msg = fmt.Sprintf("%s: the certificate of PostgreSQL at %s is not valid for the host name %q (sslmode=%s checks it)", what, at, c.cfg.ConnConfig.Host, t.mode)
		fix = "connect by a name the certificate holds (the error lists them), or use sslmode=verify-ca to check the CA only"
	case errs.BadServerCert:
		msg = fmt.Sprintf("%s: the certificate of PostgreSQL at %s is not valid", what, at)
		fix = "renew the server's certificate (the error says what is wrong with it)"
	case errs.ClientCertRequired:
		return c.clientCertError(what, err)
	case errs.ClientCertRefused:
		msg = fmt.Sprintf("%s: PostgreSQL at %s refused the client certificate in sslcert=%s", what, at, t.cert)
		fix = "give a client certificate (sslcert=, sslkey=) signed by a CA in the server's ssl_ca_file, and not expired"
	case errs.NotTLS:
		msg = fmt.Sprintf("%s: PostgreSQL at %s did not answer with TLS", what, at)
		fix = "check the port, and that the server has ssl = on"
	}
	return &errs.ConfigError{Msg: msg, Fix: fix, Err: err}
}

// clientCertError is the server's refusal of a connection without a valid
// client certificate (pg_hba.conf's cert method or clientcert=).
func (c *Conn) clientCertError(what string, err error) error {
	at := fmt.Sprintf("%s:%d", c.cfg.ConnConfig.Host, c.cfg.ConnConfig.Port)
	if c.tls.cert == "" {
		return &errs.ConfigError{Msg: fmt.Sprintf("%s: PostgreSQL at %s requires a client certificate and the URL gives none", what, at),
			Fix: "add sslcert=/path/client.pem&sslkey=/path/client-key.pem (a certificate signed by a CA in the server's ssl_ca_file) and sslmode=verify-full", Err: err}
	}
	return &errs.ConfigError{Msg: fmt.Sprintf("%s: PostgreSQL at %s did not accept the client certificate in sslcert=%s", what, at, c.tls.cert),
		Fix: "give a certificate signed by a CA in the server's ssl_ca_file (with clientcert=verify-full or the cert method, its common name must be the user name)", Err: err}
}

// clientCertRefusal reports a server error refusing a connection for want
// of a valid client certificate.
func clientCertRefusal(err error) bool {
	if sqlState(err) != "28000" {
		return false
	}
	m := err.Error()
	return strings.Contains(m, "client certificate") || strings.Contains(m, "certificate authentication failed")
}

// tlsFileProblem reports pgx refusing the URL's TLS files (a missing or
// unreadable CA, certificate or key; a certificate without its key).
func tlsFileProblem(err error) bool {
	m := err.Error()
	for _, s := range []string{"CA file", "CA to cert pool", "sslkey", "sslcert", "unable to read cert", "unable to load cert", "decrypt key", "sslpassword"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}
