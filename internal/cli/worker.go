package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/internal/telemetry"
	"github.com/ferrydb/ferry/scaleout"
)

func newWorkerCmd(g *globals) *cobra.Command {
	var tf temporalFlags
	var connections []string
	var connFile, healthAddr, identity string
	var concurrency int
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run flows' tasks for Temporal (scale-out mode)",
		Long: `worker polls a Temporal task queue and runs the flows' tasks (plan, partition
copies, change data capture) with the same engine as ferry sync. Workers are
stateless and interchangeable: start as many as you like, on any machines.

Connections are named here, never in the flow: ferry run --source src names
a connection that every worker resolves from its own configuration, so no
credential enters Temporal. Sources of connections, lowest precedence first:
--connections-file (YAML, name: URL, such as a mounted Secret), the
environment (FERRY_CONNECTION_<NAME>=URL) and --connection NAME=URL.

SIGTERM or Ctrl-C stops polling; running partitions checkpoint their cursor
and end within --grace, and another worker resumes them from it.`,
		Example: `  # a development server, then a worker with two connections
  scripts/temporal-dev &
  ferry worker --temporal 127.0.0.1:7233 \
    --connection src=postgres://ferry:secret@db1/shop --connection dst=postgres://ferry:secret@db2/shop

  # connections from the environment and a mounted secret, health on :9090
  FERRY_CONNECTION_SRC=postgres://... TEMPORAL_ADDRESS=temporal:7233 \
    ferry worker --connections-file /etc/ferry/connections.yaml --health-addr 0.0.0.0:9090`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if connFile == "" {
				connFile = os.Getenv(connector.ConnectionsFileEnv)
			}
			if concurrency <= 0 {
				return usageError{errors.New("--concurrency must be positive")}
			}
			return runWorker(cmd.Context(), g, tf, connections, connFile, healthAddr, identity, concurrency, grace)
		},
	}
	tf.register(cmd.Flags())
	cmd.Flags().StringArrayVar(&connections, "connection", nil, "a named connection NAME=URL (repeatable)")
	cmd.Flags().StringVar(&connFile, "connections-file", "", "YAML file of name: URL connections (default $FERRY_CONNECTIONS_FILE)")
	cmd.Flags().IntVar(&concurrency, "concurrency", 4, "tasks (partition copies, CDC) this worker runs at once")
	cmd.Flags().StringVar(&healthAddr, "health-addr", "", "serve /healthz, /readyz and Prometheus /metrics on HOST:PORT (such as 127.0.0.1:9090)")
	cmd.Flags().StringVar(&identity, "identity", "", "this worker's name in Temporal and the dashboard (default HOST:PID)")
	cmd.Flags().DurationVar(&grace, "grace", 30*time.Second, "on SIGTERM, how long running tasks get to checkpoint and end")
	return cmd
}

func runWorker(ctx context.Context, g *globals, tf temporalFlags, connFlags []string, connFile, healthAddr, identity string, concurrency int, grace time.Duration) error {
	if ctx == nil {
		ctx = context.Background()
	}
	log, err := g.logger(g.stderr)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	conns, err := connector.LoadConnections(connFile, os.Environ(), connFlags)
	if err != nil {
		return err
	}
	g.scrubber.AddSecret(conns.Secrets()...)
	if err := refuseWorkerConnections(conns); err != nil {
		return err
	}
	if identity == "" {
		host, _ := os.Hostname()
		identity = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	var ln net.Listener
	if healthAddr != "" {
		if ln, err = net.Listen("tcp", healthAddr); err != nil {
			return usageError{fmt.Errorf("--health-addr %s: %w", healthAddr, err)}
		}
		defer ln.Close() //nolint:errcheck // the server's shutdown closes it
	}
	tel, err := telemetry.Setup(ctx, telemetry.Options{Prometheus: ln != nil, Version: Version, Log: log})
	if err != nil {
		return err
	}
	defer func() {
		if err := tel.Shutdown(context.WithoutCancel(ctx)); err != nil {
			log.Warn("telemetry flush failed", "error", err)
		}
	}()
	c, err := tf.dial(ctx, g, log, identity, scaleout.MetricsHandler(tel.Meter("temporal-sdk")))
	if err != nil {
		return err
	}
	defer c.Close()

	var ready atomic.Bool
	if ln != nil {
		stop := serveHealth(ln, &ready, tel, "not ready: not polling Temporal", log)
		defer stop(ctx)
	}
	held, err := holdOneWriterConnections(ctx, conns, c, tf.taskQueue, identity)
	defer func() {
		for _, h := range held {
			if err := h.Close(); err != nil {
				log.Warn("closing a held connection failed", "error", err)
			}
		}
	}()
	if err != nil {
		return err
	}
	acts := &scaleout.Activities{Connections: conns, Client: c, Identity: identity, Log: log, Observe: flowMetrics(ctx, tel, g.scrub, log)}
	w := worker.New(c, tf.taskQueue, worker.Options{
		Identity:                           identity,
		MaxConcurrentActivityExecutionSize: concurrency,
		WorkerStopTimeout:                  grace,
		// Cursors reach Temporal within a second, so a retried partition
		// redoes at most about a second of work.
		MaxHeartbeatThrottleInterval: time.Second,
	})
	scaleout.Register(w, acts)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker on task queue %s: %w", tf.taskQueue, err)
	}
	ready.Store(true)
	if ln != nil {
		healthAddr = ln.Addr().String()
	}
	log.Info("worker polling", "temporal", tf.address, "namespace", tf.namespace, "task_queue", tf.taskQueue,
		"identity", identity, "concurrency", concurrency, "connections", strings.Join(conns.Names(), ","), "health", healthAddr)

	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	var seen string // the other pollers last warned about
	for {
		select {
		case s := <-sig:
			log.Info("stopping: no new tasks; running ones checkpoint and end", "signal", s.String(), "grace", grace)
			ready.Store(false)
			go func() {
				<-sig
				log.Warn("second signal: exiting now")
				os.Exit(ExitFailed)
			}()
			w.Stop()
			log.Info("worker stopped")
			return nil
		case <-t.C:
			hctx, cancel := context.WithTimeout(ctx, 4*time.Second)
			_, err := c.CheckHealth(hctx, &client.CheckHealthRequest{})
			cancel()
			if ok := err == nil; ok != ready.Load() {
				ready.Store(ok)
				if ok {
					log.Info("Temporal reachable again")
				} else {
					log.Warn("Temporal unreachable", "error", err)
				}
			}
			if len(held) > 0 {
				seen = warnOtherPollers(ctx, c, tf.taskQueue, identity, seen, log)
			}
		case <-ctx.Done():
			w.Stop()
			return nil
		}
	}
}

// logNothing is a logger for commands that print their own output.
func logNothing() *slog.Logger { return slog.New(slog.DiscardHandler) }

// flowMetrics gives each flow the worker runs pieces of its instruments,
// made once per flow: rows and bytes read and written per table, batch
// latencies, changes applied and errors, on the worker's /metrics and over
// OTLP. The progress gauges are the runner's, which sees the whole flow.
func flowMetrics(ctx context.Context, tel *telemetry.Telemetry, scrub func(string) string, log *slog.Logger) func(string) engine.Observer {
	var mu sync.Mutex
	flows := map[string]*telemetry.Flow{}
	return func(name string) engine.Observer {
		mu.Lock()
		defer mu.Unlock()
		if f, ok := flows[name]; ok {
			return f
		}
		f, err := tel.Flow(ctx, telemetry.FlowInfo{Name: name, Coordinator: "temporal", Scrub: scrub, Worker: true}, nil)
		if err != nil {
			log.Warn("no metrics for the flow", "flow", name, "error", err)
			return nil
		}
		flows[name] = f
		return f
	}
}

// pollerWindow is how recently another worker must have polled the task
// queue to count as running: a live worker polls again within a minute.
const pollerWindow = 90 * time.Second

// holdOneWriterConnections opens, for the worker's life, every connection
// whose destination one process writes at a time (a DuckDB file): the
// worker takes the file's lock before it polls, so a second worker on the
// same file cannot start, and the tasks of the flow that writes it run on
// this worker only if no other worker polls the task queue; another one
// would get tasks it cannot run. The caller closes what it returns.
func holdOneWriterConnections(ctx context.Context, conns *connector.Connections, c client.Client, taskQueue, identity string) ([]connector.Connector, error) {
	var held []connector.Connector
	for _, name := range conns.Names() {
		raw, err := conns.Resolve(name, "worker")
		if err != nil {
			return held, err
		}
		_, reg, err := connector.ParseURL(raw)
		if err != nil || !connector.Discover(reg.Prototype).Abilities.OneWriter {
			// A URL that does not parse fails where the flow opens it, as
			// before; this is about one-writer destinations only.
			continue
		}
		resp, err := c.DescribeTaskQueue(ctx, taskQueue, enumspb.TASK_QUEUE_TYPE_ACTIVITY)
		if err != nil {
			return held, fmt.Errorf("connection %q: list the workers polling task queue %s: %w", name, taskQueue, err)
		}
		var others []string
		for _, p := range resp.GetPollers() {
			if p.GetIdentity() != identity && time.Since(p.GetLastAccessTime().AsTime()) < pollerWindow {
				others = append(others, p.GetIdentity())
			}
		}
		if len(others) > 0 {
			return held, errs.BadConfig(fmt.Sprintf("connection %q is a %s destination, which one process writes at a time, and other workers poll task queue %s (%s): they would get its flow's tasks and could not write it", name, reg.Scheme, taskQueue, strings.Join(others, ", ")),
				"run one worker with this connection on a task queue of its own (ferry worker --task-queue NAME, and ferry run --task-queue NAME for the flow), or run the flow in one process with ferry sync")
		}
		cn, err := connector.Open(ctx, raw)
		if err != nil {
			return held, fmt.Errorf("connection %q: %w", name, err)
		}
		held = append(held, cn)
		if err := connector.Discover(cn).ProcessHolder.Hold(ctx); err != nil {
			return held, fmt.Errorf("connection %q: %w; one worker writes a %s destination", name, err, reg.Scheme)
		}
	}
	return held, nil
}

// warnOtherPollers logs an error when workers other than this one, which
// holds a one-writer destination, poll its task queue: they started after
// it, and the tasks of the flow into that destination they get will fail.
// It returns the pollers it warned about, so each new set is logged once.
func warnOtherPollers(ctx context.Context, c client.Client, taskQueue, identity, seen string, log *slog.Logger) string {
	qctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	resp, err := c.DescribeTaskQueue(qctx, taskQueue, enumspb.TASK_QUEUE_TYPE_ACTIVITY)
	if err != nil {
		return seen // Temporal unreachable: the health check says so
	}
	var others []string
	for _, p := range resp.GetPollers() {
		if p.GetIdentity() != identity && time.Since(p.GetLastAccessTime().AsTime()) < pollerWindow {
			others = append(others, p.GetIdentity())
		}
	}
	slices.Sort(others)
	now := strings.Join(others, ", ")
	if now != "" && now != seen {
		log.Error("other workers poll this worker's task queue",
			"task_queue", taskQueue, "others", now,
			"why", "this worker holds a destination one process writes (a DuckDB file): the tasks of its flow the others get will fail",
			"fix", "give the other workers another task queue")
	}
	return now
}

// refuseWorkerConnections refuses, before the worker polls, a connection
// no worker can serve: a kafka destination writes each batch and its
// checkpoint in one transaction under the flow's one transactional ID, so
// workers copying partitions side by side would fence each other.
func refuseWorkerConnections(conns *connector.Connections) error {
	for _, name := range conns.Names() {
		u, err := conns.Resolve(name, "worker")
		if err != nil {
			return err
		}
		if strings.HasPrefix(strings.ToLower(u), "kafka://") {
			return errs.BadConfig(fmt.Sprintf("connection %q is a kafka destination, which ferry worker cannot run: each flow writes to Kafka under one transactional ID, and workers copying partitions side by side would fence each other", name),
				"run the flow in one process with ferry sync SOURCE KAFKA_URL (scale-out works with a nats destination), and remove the connection from the worker")
		}
	}
	return nil
}
