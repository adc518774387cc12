package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/ferrydb/ferry/errs"
)

// How ferry reaches the brokers: tls= and the files MySQL's connector
// names alike (ssl-ca, ssl-cert, ssl-key), and SASL with the URL's user
// and password (or password_file=, which connector.Open reads).

// tlsConfig is the TLS configuration of every client of the connection:
// nil without TLS. ssl-ca, ssl-cert and ssl-key imply tls=true.
func (o Options) tlsConfig() (*tls.Config, error) {
	files := o.CA != "" || o.Cert != "" || o.Key != ""
	if o.TLSSet && !o.TLS && files {
		return nil, errs.BadConfig("kafka URL: tls=false with ssl-ca, ssl-cert or ssl-key", "drop tls=false: the files imply tls=true")
	}
	if !o.TLS && !files {
		return nil, nil
	}
	if (o.Cert == "") != (o.Key == "") {
		return nil, errs.BadConfig("kafka URL: a client certificate needs its key and a key its certificate", "give both ssl-cert=/path/client.pem and ssl-key=/path/client-key.pem (or neither)")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.Cert != "" {
		pair, err := tls.LoadX509KeyPair(o.Cert, o.Key)
		if err != nil {
			// The error names the files, never what is in them.
			return nil, &errs.ConfigError{Msg: fmt.Sprintf("kafka URL: client certificate ssl-cert=%s, ssl-key=%s", o.Cert, o.Key), Err: err,
				Fix: "ssl-cert= names a PEM certificate and ssl-key= its PEM private key (not encrypted), each readable by ferry"}
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if o.CA != "" {
		pem, err := os.ReadFile(o.CA)
		if err != nil {
			return nil, &errs.ConfigError{Msg: "kafka URL: ssl-ca=" + o.CA, Err: err, Fix: "ssl-ca= names a PEM file of CA certificates readable by ferry"}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errs.BadConfig(fmt.Sprintf("kafka URL: ssl-ca=%s holds no PEM certificate", o.CA), "ssl-ca= names a PEM file of CA certificates (-----BEGIN CERTIFICATE-----)")
		}
		cfg.RootCAs = pool
	}
	// The server name is each broker's host (kgo sets it per broker).
	return cfg, nil
}

// clientOpts are the options every client of the connection starts from:
// the brokers, TLS, SASL and bounded dials.
func (o Options) clientOpts() ([]kgo.Opt, error) {
	base := []kgo.Opt{kgo.SeedBrokers(o.Brokers...), kgo.ClientID("ferry"), kgo.DialTimeout(dialTimeout)}
	cfg, err := o.tlsConfig()
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		base = append(base, kgo.DialTLSConfig(cfg))
	}
	switch o.SASL {
	case "plain":
		base = append(base, kgo.SASL(plain.Auth{User: o.user, Pass: o.password}.AsMechanism()))
	case "scram-sha-256":
		base = append(base, kgo.SASL(scram.Auth{User: o.user, Pass: o.password}.AsSha256Mechanism()))
	case "scram-sha-512":
		base = append(base, kgo.SASL(scram.Auth{User: o.user, Pass: o.password}.AsSha512Mechanism()))
	}
	return base, nil
}

// dialTimeout bounds a connection to a broker (TCP, TLS and SASL);
// connectTimeout the first contact with the cluster (connect). Variables
// so tests can lower them.
var (
	dialTimeout    = 10 * time.Second
	connectTimeout = 30 * time.Second
)

// connect makes the first contact with the cluster, once, before any
// client of the connection is used: a broker that refuses the login or
// whose certificate does not verify stops the flow here with what to fix
// (exit 2), instead of the producer retrying it as an outage.
func (c *Conn) connect(ctx context.Context) error {
	if c.connected {
		return nil
	}
	var saslRead saslReadHook
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, c.base...), kgo.WithHooks(&saslRead))...)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		return c.connectError(err, saslRead.failed.Load())
	}
	c.connected = true
	return nil
}

// saslReadHook notes a response to a SASL request that could not be read:
// a broker that refuses a login may close the connection instead of
// answering (kfake does; Kafka answers SASL_AUTHENTICATION_FAILED).
type saslReadHook struct{ failed atomic.Bool }

func (h *saslReadHook) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	const saslHandshake, saslAuthenticate = 17, 36
	if err != nil && (key == saslHandshake || key == saslAuthenticate) {
		h.failed.Store(true)
	}
}

// connectError explains a failed first contact with the parameter that
// fixes it; an unreachable cluster stays an outage.
func (c *Conn) connectError(err error, saslClosed bool) error {
	o := c.opts
	where := strings.Join(o.Brokers, ",")
	mech := strings.ToUpper(o.SASL)
	switch p := errs.DiagnoseTLS(err); p {
	case errs.UnknownCA:
		ca := "the system's CAs (no ssl-ca= in the URL)"
		if o.CA != "" {
			ca = "the CA in ssl-ca=" + o.CA
		}
		return &errs.ConfigError{Msg: fmt.Sprintf("kafka: the certificate of the broker at %s is not signed by %s", where, ca), Err: err,
			Fix: "give the CA that signed the brokers' certificates in ssl-ca=/path/ca.pem"}
	case errs.WrongHost:
		return &errs.ConfigError{Msg: fmt.Sprintf("kafka: the certificate of the broker at %s is not valid for its host name", where), Err: err,
			Fix: "connect by a name the certificate holds (the error lists them)"}
	case errs.BadServerCert:
		return &errs.ConfigError{Msg: fmt.Sprintf("kafka: the certificate of the broker at %s is not valid", where), Err: err,
			Fix: "renew the broker's certificate (the error says what is wrong with it)"}
	case errs.ClientCertRequired:
		if o.Cert == "" {
			return &errs.ConfigError{Msg: fmt.Sprintf("kafka: the broker at %s requires a client certificate and the URL gives none", where), Err: err,
				Fix: "add ssl-cert=/path/client.pem&ssl-key=/path/client-key.pem, a certificate signed by a CA the broker trusts"}
		}
		fallthrough // a certificate of a CA the broker does not list is not sent
	case errs.ClientCertRefused:
		return &errs.ConfigError{Msg: fmt.Sprintf("kafka: the broker at %s refused the client certificate in ssl-cert=%s", where, o.Cert), Err: err,
			Fix: "give a client certificate (ssl-cert=, ssl-key=) signed by a CA the broker trusts, and not expired"}
	}
	var first *kgo.ErrFirstReadEOF
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed) || (o.SASL != "" && saslClosed):
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			err = fmt.Errorf("it closed the connection at the login: %w", err)
		}
		return &errs.ConfigError{Msg: fmt.Sprintf("kafka: the broker at %s refused the SASL %s login of user %q", where, mech, o.user), Err: err,
			Fix: "check the user and password in the URL (kafka://user:password@host:9092/?sasl=..., or password_file=) and that sasl= names a mechanism the broker has this user for"}
	case errors.Is(err, kerr.UnsupportedSaslMechanism) || errors.Is(err, kerr.IllegalSaslState):
		return &errs.ConfigError{Msg: fmt.Sprintf("kafka: the broker at %s does not take SASL %s", where, mech), Err: err,
			Fix: "use sasl=plain, scram-sha-256 or scram-sha-512 as the broker's sasl.enabled.mechanisms has it"}
	case errors.As(err, &first):
		// kgo's message says what is likely missing (TLS or SASL).
		return &errs.ConfigError{Msg: fmt.Sprintf("kafka: the broker at %s closed the connection at once", where), Err: err,
			Fix: "add tls=true (and ssl-ca=) or the user, password and sasl= the broker's listener requires"}
	}
	return errs.Unavailable(fmt.Errorf("kafka: cannot reach the brokers at %s: %w", where, err))
}
