package e2e

import (
	"crypto/tls"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/internal/testsupport/testpki"
)

// TestPostgresToKafkaSASLOverTLS: a flow to a Kafka cluster that takes
// TLS only (a private CA) and SCRAM logins runs with ssl-ca= and the
// user in the URL; with a wrong password ferry exits 2 at once, saying
// the login was refused, without showing the password.
func TestPostgresToKafkaSASLOverTLS(t *testing.T) {
	srv := pgtest.Shared(t)
	pki := testpki.Make(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{pki.Server}}),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "ferry", "right-pw-s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	broker := c.ListenAddrs()[0]
	src := srv.CreateDatabase(t, "evkauth")
	pgShop(t, srv, src, 100)
	dst := func(pw string) string {
		return fmt.Sprintf("kafka://ferry:%s@%s/?sasl=scram-sha-512&ssl-ca=%s&topic=auth.{schema}.{table}", pw, broker, pki.CA)
	}
	args := []string{"--name", "evkauth", "--state-dir", t.TempDir(), "--until", "caught-up", "--log-format", "json", "--progress", "none"}

	r := ferry(t, append([]string{"sync", srv.URL(src), dst("wrong-pw-s3cret")}, args...)...)
	if r.code != 2 {
		t.Fatalf("a wrong password: exit %d, want 2:\n%s", r.code, r)
	}
	if !strings.Contains(r.stderr, `refused the SASL SCRAM-SHA-512 login of user`) {
		t.Errorf("a wrong password: the error does not say the login was refused:\n%s", r)
	}
	t.Logf("a wrong password:\n%s", tail(r.stderr, 3))
	if strings.Contains(r.stderr+r.stdout, "wrong-pw-s3cret") {
		t.Errorf("the password is shown:\n%s", r)
	}

	r = mustFerry(t, append([]string{"sync", srv.URL(src), dst("right-pw-s3cret")}, args...)...)
	if r.logLine("flow finished") == nil {
		t.Fatalf("no final log line:\n%s", r)
	}
	if strings.Contains(r.stderr+r.stdout, "right-pw-s3cret") {
		t.Errorf("the password is shown:\n%s", r)
	}
}
