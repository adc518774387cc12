package kafka

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/internal/testsupport/testpki"
	"github.com/ferrydb/ferry/model"
)

// secureCluster is a kfake cluster taking TLS only (certificates of pki,
// client certificates checked when clientCerts) and SASL logins of one
// superuser per mechanism: user "ferry", password "pw-MECH-s3cret".
func secureCluster(t *testing.T, pki *testpki.PKI, clientCerts bool) string {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{pki.Server}}
	if clientCerts {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, pki.CAPool
	}
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.TLS(cfg), kfake.EnableSASL()}
	for _, m := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		opts = append(opts, kfake.Superuser(m, "ferry", "pw-"+m+"-s3cret"))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// openURL opens a kafka URL as ferry does (connector.Open: password_file=
// is read there).
func openURL(t *testing.T, raw string) *Conn {
	t.Helper()
	c, err := connector.Open(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*Conn)
}

var authTable = &model.Table{
	Namespace:  model.Namespace{Schema: "public", Table: "users"},
	Columns:    []model.Column{{Name: "id", Type: model.Type{Kind: model.KindInt64}}, {Name: "v", Type: model.Type{Kind: model.KindText}, Nullable: true}},
	PrimaryKey: []string{"id"},
}

// writeAndReadBack writes two rows with a checkpoint through c, then
// reads the checkpoint back through a new connection to the same URL
// (which fences c's producer, as a resumed ferry does) and the rows as a
// consumer with the same TLS and SASL would.
func writeAndReadBack(t *testing.T, c *Conn, raw string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.CreateTables(ctx, []*model.Table{authTable}); err != nil {
		t.Fatal(err)
	}
	w, err := c.OpenWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := &model.RowBatch{Table: authTable, Rows: []model.Row{{int64(1), "a"}, {int64(2), "b"}}, Checkpoint: &model.Checkpoint{Flow: "auth", Key: "copy/p1", Value: "done"}}
	if err := w.WriteRows(ctx, b); err != nil {
		t.Fatal(err)
	}
	again := openURL(t, raw)
	cps, err := again.LoadCheckpoints(ctx, "auth")
	if err != nil {
		t.Fatal(err)
	}
	if cps["copy/p1"] != "done" {
		t.Fatalf("checkpoints read back: %v, want copy/p1=done", cps)
	}
	rows := readBack(t, c.opts.Brokers, "ferry.public.users", c.base...)
	if fmt.Sprint(rows) != "[[1 a] [2 b]]" {
		t.Fatalf("rows read back: %v", rows)
	}
}

// TestSASLOverTLS: each SASL mechanism, over TLS verified against a
// private CA (ssl-ca=), writes records and a checkpoint that read back.
// The password comes from the URL, and from password_file=.
func TestSASLOverTLS(t *testing.T) {
	pki := testpki.Make(t)
	for _, mech := range []string{"plain", "scram-sha-256", "scram-sha-512"} {
		t.Run(mech, func(t *testing.T) {
			broker := secureCluster(t, pki, false)
			pw := "pw-" + strings.ToUpper(mech) + "-s3cret"
			raw := fmt.Sprintf("kafka://ferry:%s@%s/?sasl=%s&ssl-ca=%s", pw, broker, mech, pki.CA)
			writeAndReadBack(t, openURL(t, raw), raw)
		})
	}
	t.Run("password_file", func(t *testing.T) {
		broker := secureCluster(t, pki, false)
		f := filepath.Join(t.TempDir(), "pw")
		if err := os.WriteFile(f, []byte("pw-SCRAM-SHA-512-s3cret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		raw := fmt.Sprintf("kafka://ferry@%s/?sasl=scram-sha-512&tls=true&ssl-ca=%s&password_file=%s", broker, pki.CA, f)
		writeAndReadBack(t, openURL(t, raw), raw)
	})
}

// TestClientCertificate: a broker that checks client certificates takes
// ssl-cert= and ssl-key=, and refuses a connection without them, or with
// a certificate of another CA, with what to change.
func TestClientCertificate(t *testing.T) {
	pki := testpki.Make(t)
	broker := secureCluster(t, pki, true)
	raw := fmt.Sprintf("kafka://ferry:pw-PLAIN-s3cret@%s/?ssl-ca=%s&ssl-cert=%s&ssl-key=%s", broker, pki.CA, pki.ClientCert, pki.ClientKey)
	writeAndReadBack(t, openURL(t, raw), raw)

	err := connectErr(t, fmt.Sprintf("kafka://ferry:pw-PLAIN-s3cret@%s/?ssl-ca=%s", broker, pki.CA))
	if !strings.Contains(err.Error(), "requires a client certificate") || !strings.Contains(err.Error(), "ssl-cert=") {
		t.Fatalf("without a client certificate: %v", err)
	}
	err = connectErr(t, fmt.Sprintf("kafka://ferry:pw-PLAIN-s3cret@%s/?ssl-ca=%s&ssl-cert=%s&ssl-key=%s", broker, pki.CA, pki.StrangerCert, pki.StrangerKey))
	if !strings.Contains(err.Error(), "refused the client certificate in ssl-cert="+pki.StrangerCert) {
		t.Fatalf("a certificate of another CA: %v", err)
	}
}

// connectErr is the error of a first write through raw, which must be a
// configuration error (exit 2) that comes within seconds, and shows no
// password.
func connectErr(t *testing.T, raw string) error {
	t.Helper()
	c := openURL(t, raw)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	_, err := c.LoadCheckpoints(ctx, "auth")
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("the error took %v", took)
	}
	if err == nil {
		t.Fatal("no error")
	}
	if !errs.IsConfigError(err) || errs.IsUnavailable(err) {
		t.Errorf("not a configuration error (exit 2), or retried as an outage: %v", err)
	}
	if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "wrong-pw") {
		t.Errorf("the error shows the password: %v", err)
	}
	return err
}

// TestWrongPassword: a wrong password, for each mechanism, stops at once
// with a configuration error naming the refused login and what to check.
func TestWrongPassword(t *testing.T) {
	pki := testpki.Make(t)
	broker := secureCluster(t, pki, false)
	for _, mech := range []string{"plain", "scram-sha-256", "scram-sha-512"} {
		t.Run(mech, func(t *testing.T) {
			err := connectErr(t, fmt.Sprintf("kafka://ferry:wrong-pw@%s/?sasl=%s&ssl-ca=%s", broker, mech, pki.CA))
			want := fmt.Sprintf(`refused the SASL %s login of user "ferry"`, strings.ToUpper(mech))
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "check the user and password") {
				t.Fatalf("got %v, want it to say %s", err, want)
			}
		})
	}
}

// TestUnknownCA: a broker whose certificate the CA given (or the
// system's, with tls=true alone) did not sign is refused at once, naming
// the CA and ssl-ca=; so is one reached by a name its certificate lacks,
// and a TLS listener reached without TLS.
func TestUnknownCA(t *testing.T) {
	pki := testpki.Make(t)
	broker := secureCluster(t, pki, false)
	for name, q := range map[string]string{"other CA": "ssl-ca=" + pki.OtherCA, "system CAs": "tls=true"} {
		t.Run(name, func(t *testing.T) {
			err := connectErr(t, fmt.Sprintf("kafka://ferry:pw-PLAIN-s3cret@%s/?%s", broker, q))
			if !strings.Contains(err.Error(), "is not signed by") || !strings.Contains(err.Error(), "ssl-ca=") {
				t.Fatalf("got %v", err)
			}
		})
	}
	t.Run("wrong host name", func(t *testing.T) {
		// The certificate holds 127.0.0.1 and db.ferry.test, not localhost.
		_, port, _ := strings.Cut(broker, ":")
		err := connectErr(t, fmt.Sprintf("kafka://ferry:pw-PLAIN-s3cret@localhost:%s/?ssl-ca=%s", port, pki.CA))
		if !strings.Contains(err.Error(), "not valid for its host name") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("no TLS", func(t *testing.T) {
		err := connectErr(t, fmt.Sprintf("kafka://ferry:pw-PLAIN-s3cret@%s/", broker))
		if !strings.Contains(err.Error(), "closed the connection") || !strings.Contains(err.Error(), "tls=true") {
			t.Fatalf("got %v", err)
		}
	})
}
