package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/pflag"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/scaleout"
)

// temporalFlags say where Temporal is; each has an environment fallback.
type temporalFlags struct {
	address, namespace, taskQueue string
}

func (t *temporalFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&t.address, "temporal", "", "Temporal frontend HOST:PORT (default $TEMPORAL_ADDRESS)")
	fs.StringVar(&t.namespace, "namespace", "", "Temporal namespace (default $TEMPORAL_NAMESPACE, else default)")
	fs.StringVar(&t.taskQueue, "task-queue", "", "task queue the workers poll (default $FERRY_TASK_QUEUE, else ferry)")
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
		return connector.Configf("give --temporal HOST:PORT or set TEMPORAL_ADDRESS (a development server: scripts/temporal-dev)", "no Temporal address")
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
	opts := client.Options{HostPort: t.address, Namespace: t.namespace, Identity: identity, Logger: tlog.NewStructuredLogger(sdkLog), MetricsHandler: metrics}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.DialContext(dctx, opts)
	if err != nil {
		return nil, connector.Configf("check --temporal (or TEMPORAL_ADDRESS) and that the server runs; for development: scripts/temporal-dev",
			fmt.Sprintf("cannot reach Temporal at %s (namespace %s): %v", t.address, t.namespace, err))
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
