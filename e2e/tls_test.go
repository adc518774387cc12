package e2e

import (
	"context"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/internal/testsupport/testpki"
)

// withQuery returns rawURL with its query parameters changed: a value of ""
// removes the parameter.
func withQuery(t *testing.T, rawURL string, set map[string]string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for k, v := range set {
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// withHost returns rawURL connecting to host instead (same port).
func withHost(t *testing.T, rawURL, host string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = host + ":" + u.Port()
	return u.String()
}

// refusedTLS runs a flow whose source URL has a TLS problem and checks it
// stops with exit 2 naming what to fix, without a key or password in what
// it prints.
func refusedTLS(t *testing.T, src, dst string, want ...string) {
	t.Helper()
	r := ferry(t, "sync", src, dst, "--state-dir", t.TempDir(), "--until", "caught-up", "--progress", "none")
	if r.code != 2 {
		t.Fatalf("want exit 2:\n%s", r)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("the message does not say %q:\n%s", w, r.stderr)
		}
	}
	for _, secret := range []string{"PRIVATE KEY", pgtest.Password, "tls-secret"} {
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Errorf("ferry printed %q:\n%s", secret, r)
		}
	}
}

// A PostgreSQL server that takes TCP connections only over TLS with a
// client certificate its CA signed (pg_hba.conf hostssl ...
// clientcert=verify-ca): a flow with sslmode=verify-full, the CA and the
// client certificate copies and follows changes, its replication
// connection carrying the same certificate; a wrong CA, a host name the
// server's certificate does not hold, no client certificate or one of
// another CA stop it with exit 2 and the parameter to fix.
func TestTLSPostgresVerifyFullWithClientCertificate(t *testing.T) {
	pki := testpki.Make(t)
	srv := pgtest.Start(t, pgtest.TLS(pki), pgtest.RequireClientCert())
	src, dst := srv.CreateDatabase(t, "tlssrc"), srv.CreateDatabase(t, "tlsdst")
	pgShop(t, srv, src, 3000)
	srcURL, dstURL := srv.URL(src), srv.URL(dst)
	if !strings.Contains(srcURL, "sslmode=verify-full") || !strings.Contains(srcURL, "sslcert=") {
		t.Fatalf("pgtest's URL does not ask for verified TLS with a client certificate: %s", srcURL)
	}

	bg := startFerry(t, "sync", srcURL, dstURL, "--name", "tlspg", "--state-dir", t.TempDir(), "--log-format", "json", "--progress", "none")
	if !bg.waitFor(t, "change data capture starting", 90*time.Second) {
		t.Fatalf("ferry did not reach CDC over TLS:\n%s", bg.stderr.String())
	}
	srv.Exec(t, src, `INSERT INTO orders (id, customer, amount, note) VALUES (900001, 1, 12.50, 'over tls')`)
	d := srv.Connect(t, dst)
	arrived := chaosWait(60*time.Second, func() bool {
		var n int
		return d.QueryRow(context.Background(), `SELECT count(*) FROM orders WHERE id = 900001 AND note = 'over tls'`).Scan(&n) == nil && n == 1
	})
	if !arrived {
		t.Fatalf("the change made during CDC did not arrive:\n%s", bg.stderr.String())
	}
	// Every connection of ferry's, the walsender of its slot included
	// (named after the slot, not "ferry"), is TLS with the client
	// certificate.
	var plain, walsenders int
	if err := srv.Connect(t, "postgres").QueryRow(context.Background(), `
		SELECT count(*) FILTER (WHERE NOT s.ssl OR s.client_dn IS NULL), count(*) FILTER (WHERE a.backend_type = 'walsender' AND s.ssl AND s.client_dn = '/CN=ferry')
		FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = 'ferry' OR a.backend_type = 'walsender'`).Scan(&plain, &walsenders); err != nil {
		t.Fatal(err)
	}
	if plain != 0 || walsenders != 1 {
		t.Errorf("ferry's connections: %d without TLS and a client certificate, %d walsenders with them (want 0 and 1)", plain, walsenders)
	}
	if code := bg.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("ferry exited %d after SIGTERM:\n%s", code, bg.stderr.String())
	}
	samePG(t, srv, src, dst)

	t.Run("a CA that did not sign the server", func(t *testing.T) {
		refusedTLS(t, withQuery(t, srcURL, map[string]string{"sslrootcert": pki.OtherCA}), dstURL,
			"is not signed by the CA in sslrootcert="+pki.OtherCA, "sslrootcert=/path/ca.pem")
	})
	t.Run("a host name the certificate does not hold", func(t *testing.T) {
		refusedTLS(t, withHost(t, srcURL, "localhost"), dstURL,
			`is not valid for the host name "localhost"`, "sslmode=verify-ca")
	})
	t.Run("no client certificate", func(t *testing.T) {
		refusedTLS(t, withQuery(t, srcURL, map[string]string{"sslcert": "", "sslkey": ""}), dstURL,
			"requires a client certificate and the URL gives none", "sslcert=")
	})
	t.Run("a client certificate of another CA", func(t *testing.T) {
		refusedTLS(t, withQuery(t, srcURL, map[string]string{"sslcert": pki.StrangerCert, "sslkey": pki.StrangerKey}), dstURL,
			"client certificate in sslcert="+pki.StrangerCert)
	})
	t.Run("a CA file that is missing", func(t *testing.T) {
		refusedTLS(t, withQuery(t, srcURL, map[string]string{"sslrootcert": pki.CA + ".missing"}), dstURL,
			"cannot use its TLS files", "sslrootcert=")
	})
	t.Run("without TLS", func(t *testing.T) {
		refusedTLS(t, withQuery(t, srcURL, map[string]string{"sslmode": "disable", "sslrootcert": "", "sslcert": "", "sslkey": ""}), dstURL,
			"only over TLS", "sslmode=verify-full")
	})
}

// A MariaDB user created REQUIRE X509: a MariaDB to MariaDB flow with the
// URL's ssl-ca, ssl-cert and ssl-key copies and follows the binlog (whose
// connection needs the certificate too); tls=verify-ca connects by a name
// the certificate lacks; a wrong CA, a wrong host name and a missing client
// certificate stop it with exit 2 and the parameter to fix.
func TestTLSMariaDBCustomCAAndClientCertificate(t *testing.T) {
	requireMariaDB(t)
	pki := testpki.Make(t)
	my := mysqltest.Start(t, mysqltest.TLS(pki))
	user := my.CreateUser(t, "tlsuser", "tls-secret", "ALL PRIVILEGES ON *.*")
	my.RequireX509(t, user)
	src, dst := mysqlDatabase(t, my, "tls_src"), mysqlDatabase(t, my, "tls_dst")
	createShop(t, my, src, 2000)
	srcURL, dstURL := my.UserURL(user, "tls-secret", src), my.UserURL(user, "tls-secret", dst)
	if !strings.Contains(srcURL, "ssl-ca=") || !strings.Contains(srcURL, "ssl-cert=") {
		t.Fatalf("mysqltest's URL has no TLS files: %s", srcURL)
	}

	bg := startFerry(t, "sync", srcURL, dstURL, "--name", "tlsmy", "--state-dir", t.TempDir(), "--log-format", "json", "--progress", "none")
	if !bg.waitFor(t, "change data capture starting", 90*time.Second) {
		t.Fatalf("ferry did not reach CDC over TLS:\n%s", bg.stderr.String())
	}
	my.Exec(t, "INSERT INTO `"+src+"`.orders (id, customer, amount) VALUES (900001, 'over tls', 12.50)")
	d := my.Connect(t, dst)
	arrived := chaosWait(60*time.Second, func() bool {
		var n int
		return d.QueryRow(`SELECT count(*) FROM orders WHERE id = 900001 AND customer = 'over tls'`).Scan(&n) == nil && n == 1
	})
	if !arrived {
		t.Fatalf("the change made during CDC did not arrive:\n%s", bg.stderr.String())
	}
	// The user may only connect with the client certificate (REQUIRE
	// X509), so its binlog dump proves the binlog connection carries it.
	var dumps int
	if err := my.Connect(t, "").QueryRow(`SELECT count(*) FROM information_schema.PROCESSLIST WHERE USER = ? AND COMMAND LIKE 'Binlog Dump%'`, user).Scan(&dumps); err != nil {
		t.Fatal(err)
	}
	if dumps != 1 {
		t.Errorf("%d binlog dumps for %s, want 1", dumps, user)
	}
	if code := bg.signal(t, syscall.SIGINT); code != 0 {
		t.Fatalf("ferry exited %d after SIGINT:\n%s", code, bg.stderr.String())
	}
	compareShops(t, my, src, dst)

	t.Run("verify-ca connects by a name the certificate lacks", func(t *testing.T) {
		v := mustFerry(t, "verify", withQuery(t, withHost(t, srcURL, "localhost"), map[string]string{"tls": "verify-ca"}), dstURL)
		if !strings.Contains(v.stdout, "all 2 table(s) equal") {
			t.Fatalf("verify: %s", v)
		}
	})
	t.Run("a CA that did not sign the server", func(t *testing.T) {
		refusedTLS(t, withQuery(t, srcURL, map[string]string{"ssl-ca": pki.OtherCA}), dstURL,
			"is not signed by the CA in ssl-ca="+pki.OtherCA, "ssl-ca=/path/ca.pem")
	})
	t.Run("a host name the certificate does not hold", func(t *testing.T) {
		refusedTLS(t, withHost(t, srcURL, "localhost"), dstURL, `is not valid for the host name "localhost"`, "tls=verify-ca")
	})
	t.Run("no client certificate", func(t *testing.T) {
		refusedTLS(t, withQuery(t, srcURL, map[string]string{"ssl-cert": "", "ssl-key": ""}), dstURL,
			"access denied for user", "REQUIRE X509", "ssl-cert=")
	})
	t.Run("a client certificate of another CA", func(t *testing.T) {
		refusedTLS(t, withQuery(t, srcURL, map[string]string{"ssl-cert": pki.StrangerCert, "ssl-key": pki.StrangerKey}), dstURL,
			"client certificate in ssl-cert="+pki.StrangerCert)
	})
	t.Run("a certificate without its key", func(t *testing.T) {
		refusedTLS(t, withQuery(t, srcURL, map[string]string{"ssl-key": ""}), dstURL, "needs its key", "ssl-key=")
	})
}
