package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/pflag"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/scaleout"
)

// temporalFlags say where Temporal is and how to authenticate; each has an
// environment fallback, named as the Temporal CLI names it.
type temporalFlags struct {
	address, namespace, taskQueue string
	tls                           bool
	tlsCert, tlsKey, tlsCA        string
	tlsServerName, apiKey         string
}

func (t *temporalFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&t.address, "temporal", "", "Temporal frontend HOST:PORT (default $TEMPORAL_ADDRESS)")
	fs.StringVar(&t.namespace, "namespace", "", "Temporal namespace (default $TEMPORAL_NAMESPACE, else default)")
	fs.StringVar(&t.taskQueue, "task-queue", "", "task queue the workers poll (default $FERRY_TASK_QUEUE, else ferry)")
	fs.BoolVar(&t.tls, "temporal-tls", false, "connect to Temporal over TLS (default $TEMPORAL_TLS; implied by a certificate, a CA or an API key)")
	fs.StringVar(&t.tlsCert, "temporal-tls-cert", "", "client certificate (PEM) for mutual TLS (default $TEMPORAL_TLS_CLIENT_CERT_PATH)")
	fs.StringVar(&t.tlsKey, "temporal-tls-key", "", "client certificate's private key (PEM) (default $TEMPORAL_TLS_CLIENT_KEY_PATH)")
	fs.StringVar(&t.tlsCA, "temporal-tls-ca", "", "CA certificates (PEM) to verify the server with instead of the system's (default $TEMPORAL_TLS_SERVER_CA_CERT_PATH)")
	fs.StringVar(&t.tlsServerName, "temporal-tls-server-name", "", "server name to verify the server's certificate against (default $TEMPORAL_TLS_SERVER_NAME, else the host)")
	fs.StringVar(&t.apiKey, "temporal-api-key", "", "API key (Temporal Cloud); prefer $TEMPORAL_API_KEY, which keeps it out of ps")
}

// tlsConfig builds the TLS settings the flags and environment ask for, or
// nil for a plain connection.
func (t *temporalFlags) tlsConfig() (*tls.Config, error) {
	env := func(v *string, name string) {
		if *v == "" {
			*v = os.Getenv(name)
		}
	}
	env(&t.tlsCert, "TEMPORAL_TLS_CLIENT_CERT_PATH")
	env(&t.tlsKey, "TEMPORAL_TLS_CLIENT_KEY_PATH")
	env(&t.tlsCA, "TEMPORAL_TLS_SERVER_CA_CERT_PATH")
	env(&t.tlsServerName, "TEMPORAL_TLS_SERVER_NAME")
	env(&t.apiKey, "TEMPORAL_API_KEY")
	if v := os.Getenv("TEMPORAL_TLS"); !t.tls && (v == "1" || v == "true") {
		t.tls = true
	}
	if !t.tls && t.tlsCert == "" && t.tlsKey == "" && t.tlsCA == "" && t.tlsServerName == "" && t.apiKey == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.tlsServerName}
	if (t.tlsCert == "") != (t.tlsKey == "") {
		return nil, errs.BadConfig("a Temporal client certificate needs its key and a key its certificate", "give both --temporal-tls-cert and --temporal-tls-key (or neither)")
	}
	if t.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(t.tlsCert, t.tlsKey)
		if err != nil {
			return nil, errs.BadConfig(fmt.Sprintf("Temporal client certificate %s / key %s: %v", t.tlsCert, t.tlsKey, err), "--temporal-tls-cert and --temporal-tls-key must be a PEM certificate and its PEM private key")
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if t.tlsCA != "" {
		pem, err := os.ReadFile(t.tlsCA)
		if err != nil {
			return nil, errs.BadConfig(fmt.Sprintf("Temporal CA: %v", err), "--temporal-tls-ca names a PEM file of CA certificates")
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errs.BadConfig(fmt.Sprintf("Temporal CA %s holds no PEM certificate", t.tlsCA), "--temporal-tls-ca names a PEM file of CA certificates")
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

func (t *temporalFlags) resolve() error {
	if t.address == "" {
		t.address = os.Getenv("TEMPORAL_ADDRESS")
	}
	if t.namespace == "" {
		t.namespace = os.Getenv("TEMPORAL_NAMESPACE")
	}
	if t.namespace == "" {
		t.namespace = scaleout.DefaultNamespace
	}
	if t.taskQueue == "" {
		t.taskQueue = os.Getenv("FERRY_TASK_QUEUE")
	}
	if t.taskQueue == "" {
		t.taskQueue = scaleout.DefaultTaskQueue
	}
	if t.address == "" {
		return errs.BadConfig("no Temporal address", "give --temporal HOST:PORT or set TEMPORAL_ADDRESS (a development server: scripts/temporal-dev)")
	}
	return nil
}

// dial connects to Temporal, failing within a few seconds when it is not
// there. The SDK logs through log at warn level and above unless debug.
func (t *temporalFlags) dial(ctx context.Context, g *globals, log *slog.Logger, identity string, metrics client.MetricsHandler) (client.Client, error) {
	if err := t.resolve(); err != nil {
		return nil, err
	}
	sdkLog := log
	if g.logLevel != "debug" {
		sdkLog = slog.New(levelAtLeast{Handler: log.Handler(), min: slog.LevelWarn})
	}
	tlsCfg, err := t.tlsConfig()
	if err != nil {
		return nil, err
	}
	if t.apiKey != "" {
		g.scrubber.AddSecret(t.apiKey)
	}
	opts := client.Options{HostPort: t.address, Namespace: t.namespace, Identity: identity, Logger: tlog.NewStructuredLogger(sdkLog), MetricsHandler: metrics,
		ConnectionOptions: client.ConnectionOptions{TLS: tlsCfg}}
	if t.apiKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(t.apiKey)
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.DialContext(dctx, opts)
	if err != nil {
		fix := "check --temporal (or TEMPORAL_ADDRESS) and that the server runs; for development: scripts/temporal-dev"
		if tlsCfg == nil {
			fix += "; a server that requires TLS needs --temporal-tls (and --temporal-tls-cert/--temporal-tls-key for mutual TLS, or --temporal-api-key)"
		} else {
			fix += "; with TLS, check the CA (--temporal-tls-ca), the server name (--temporal-tls-server-name) and, when the server requires mutual TLS, the client certificate and key (--temporal-tls-cert, --temporal-tls-key)"
		}
		return nil, errs.BadConfig(g.scrub(fmt.Sprintf("cannot reach Temporal at %s (namespace %s, %s): %v", t.address, t.namespace, t.transport(tlsCfg), err)), fix)
	}
	return c, nil
}

// levelAtLeast drops records below min.
type levelAtLeast struct {
	slog.Handler
	min slog.Level
}

func (l levelAtLeast) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= l.min && l.Handler.Enabled(ctx, lv)
}

func (l levelAtLeast) WithAttrs(a []slog.Attr) slog.Handler {
	return levelAtLeast{Handler: l.Handler.WithAttrs(a), min: l.min}
}

func (l levelAtLeast) WithGroup(n string) slog.Handler {
	return levelAtLeast{Handler: l.Handler.WithGroup(n), min: l.min}
}

// transport says how ferry connected, for error messages.
func (t *temporalFlags) transport(cfg *tls.Config) string {
	switch {
	case cfg == nil:
		return "plain TCP"
	case len(cfg.Certificates) > 0:
		return "mutual TLS"
	case t.apiKey != "":
		return "TLS with an API key"
	}
	return "TLS"
}
