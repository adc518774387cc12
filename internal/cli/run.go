package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/internal/dashboard"
	"github.com/ferrydb/ferry/internal/display"
	"github.com/ferrydb/ferry/internal/telemetry"
	"github.com/ferrydb/ferry/scaleout"
	"github.com/ferrydb/ferry/transform"
)

func newRunCmd(g *globals) *cobra.Command {
	var tf temporalFlags
	var ff flowFlags
	var src, dst, progress string
	var detach, restart, reverse bool
	var ui uiFlags
	var set scaleout.Settings
	cmd := &cobra.Command{
		Use:   "run --source NAME --destination NAME",
		Short: "Start a flow on Temporal workers, or attach to it (scale-out mode)",
		Long: `run starts a flow's workflow on Temporal (its ID is the flow's name) and shows
its progress until it ends, or attaches to it if it already runs. The copy and
the change data capture run on the workers (ferry worker); run only watches,
so any number of runs may attach to one flow, and Ctrl-C detaches without
stopping the flow. Control it with ferry flow pause|resume|cutover|cancel.
Run again after a failure (same options), it resumes where the flow stopped;
--restart drops the slot and checkpoints an earlier flow left and starts over.
With --query (and --watermark, --key, --every, --lookback, or a flow file's
queries) the flow replicates queries' results as ferry sync --query does, as a
workflow of its own: each run's ranges are read and written by the workers, and
a durable timer waits for --every (docs/query-replication.md).
Run again with another --tables once the copy is over, the flow follows it:
added tables are created and copied while changes stream, dropped ones are
no longer followed (their destination tables stay).

--source and --destination name connections that every worker defines
(--connection src=postgres://...): no URL or credential is given here.

With --reverse, run DESTINATION SOURCE --reverse --name NAME runs the way back
of flow NAME, cut over with ferry flow cutover NAME --reverse: flow
NAME-reverse streams the changes made at DESTINATION back to SOURCE (connection
names, the forward flow's destination first), after a worker checked that
SOURCE was not written since the cutover.

Exit codes: 0 when the flow is done, 1 when it failed or was cancelled, 2 for
a usage or configuration error (Temporal unreachable, a connection unknown to
the workers, a running flow of that name with other options).`,
		Example: `  # copy, then stream changes until cutover
  ferry run --temporal 127.0.0.1:7233 --source src --destination dst --name shop

  # watch it in the browser; detach with Ctrl-C, attach again later
  ferry run --temporal 127.0.0.1:7233 --source src --destination dst --name shop --ui 127.0.0.1:8080
  ferry run --temporal 127.0.0.1:7233 --name shop

  # the way back after ferry flow cutover shop --reverse: the new side's
  # changes carried back to the old one (connections: destination, source)
  ferry run dst src --reverse --name shop --temporal 127.0.0.1:7233

  # a query's result every minute, its ranges spread over the workers
  ferry run --temporal 127.0.0.1:7233 --source src --destination dst --name totals \
    --query reports.order_totals='SELECT id, total, updated_at FROM orders' --watermark updated_at --key id --every 1m

  # start and return at once
  ferry run --temporal 127.0.0.1:7233 --source src --destination dst --tables 'shop.*' --detach`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if fleet, err := ff.fleetFile(); err != nil || fleet {
				if err != nil {
					return err
				}
				if err := refuseNonPositive(cmd.Flags(), "heartbeat-timeout", "cdc-chunk", "history-limit", "plan-chunk-kb"); err != nil {
					return err
				}
				return runFleet(cmd, g, tf, &ff, set, restart, reverse || src != "" || dst != "" || len(args) > 0)
			}
			var cfg *flow.Config
			var err error
			switch {
			case reverse:
				cfg, err = ff.reverseRunConfig(cmd, args, src, dst, restart)
			case len(args) > 0:
				err = usageError{errors.New("run takes no arguments (--source NAME --destination NAME), except with --reverse")}
			default:
				cfg, err = ff.config(cmd, src, dst)
			}
			if err != nil {
				return err
			}
			if reverse && len(cfg.Queries) > 0 {
				return errs.BadConfig("--reverse with --query: a query flow has no way back", "leave --reverse out")
			}
			if err := refuseNonPositive(cmd.Flags(), "heartbeat-timeout", "cdc-chunk", "history-limit", "plan-chunk-kb"); err != nil {
				return err
			}
			cfg.StateDir = ""
			if err := checkProgress(progress); err != nil {
				return err
			}
			ui.tokenFromEnv()
			return runRun(cmd.Context(), g, tf, cfg, set, restart, detach, progress, ui)
		},
	}
	tf.register(cmd.Flags())
	ff.register(cmd.Flags(), true)
	ff.query.register(cmd.Flags())
	cmd.Flags().MarkHidden("state-dir") //nolint:errcheck // the flag exists
	cmd.Flags().StringVar(&src, "source", "", "source connection name (defined on the workers)")
	cmd.Flags().StringVar(&dst, "destination", "", "destination connection name (defined on the workers)")
	cmd.Flags().BoolVar(&detach, "detach", false, "start (or find) the flow and return at once")
	cmd.Flags().BoolVar(&reverse, "reverse", false, "run the way back of a flow cut over with ferry flow cutover --reverse: ferry run DESTINATION SOURCE --reverse streams the changes made at the new database back to the old one (--name names the forward flow; the reverse flow is NAME-reverse)")
	cmd.Flags().BoolVar(&restart, "restart", false, "drop what an earlier flow of this name left (slot, checkpoints) and start over from a new plan")
	cmd.Flags().StringVar(&progress, "progress", "auto", "progress display: auto (bars on a terminal, log lines otherwise), bars, log or none")
	cmd.Flags().DurationVar(&set.HeartbeatTimeout, "heartbeat-timeout", 0, "how long a silent task keeps its partition before another worker takes it (default 6s)")
	cmd.Flags().DurationVar(&set.CDCChunk, "cdc-chunk", 0, "how long one CDC task runs before it returns its position and the next starts (default 10m)")
	cmd.Flags().IntVar(&set.HistoryLimit, "history-limit", 0, "workflow history events before it continues as new (default 8000)")
	cmd.Flags().IntVar(&set.PlanChunkKB, "plan-chunk-kb", 0, "size of one chunk of the plan in Temporal, in kB of partitions (default 128, at most 1024)")
	ui.register(cmd.Flags())
	return cmd
}

// runFlowName is the flow's name when --name is not given: the connection
// names, and a hash of the renames when there are some. The table
// selection is not part of it: a flow run again with another --tables is
// the same flow, which changes its tables.
func runFlowName(cfg *flow.Config) string {
	if cfg.Name != "" {
		return cfg.Name
	}
	return hashedRunFlowName(cfg.Source, cfg.Destination, nil, cfg.Rename)
}

// legacyRunFlowName is the name an older ferry derived, with the table
// selection hashed in; it equals runFlowName's without --tables.
func legacyRunFlowName(cfg *flow.Config) string {
	return hashedRunFlowName(cfg.Source, cfg.Destination, cfg.Tables, cfg.Rename)
}

func hashedRunFlowName(src, dst string, tables, renames []string) string {
	name := src + "-to-" + dst
	if len(tables) > 0 || len(renames) > 0 {
		h := sha256.Sum256([]byte(strings.Join(tables, ",") + "\x00" + strings.Join(renames, ",")))
		name += "-" + hex.EncodeToString(h[:])[:8]
	}
	return name
}

// resolveRunFlowName keeps a flow an older ferry started under the name
// that hashed --tables in reachable: when no workflow has the derived
// name but one has the older name, the flow is that one.
func resolveRunFlowName(ctx context.Context, c client.Client, cfg *flow.Config) error {
	legacy := legacyRunFlowName(cfg)
	if legacy == cfg.Name {
		return nil
	}
	exists := func(name string) (bool, error) {
		_, err := c.DescribeWorkflowExecution(ctx, name, "")
		var nf *serviceerror.NotFound
		switch {
		case errors.As(err, &nf):
			return false, nil
		case err != nil:
			return false, fmt.Errorf("describe flow %q: %w", name, err)
		}
		return true, nil
	}
	if have, err := exists(cfg.Name); err != nil || have {
		return err
	}
	have, err := exists(legacy)
	if err != nil {
		return err
	}
	if have {
		cfg.Name = legacy
	}
	return nil
}

func runRun(ctx context.Context, g *globals, tf temporalFlags, cfg *flow.Config, set scaleout.Settings, restart, detach bool, progress string, ui uiFlags) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if ui.token != "" {
		g.scrubber.AddSecret(ui.token)
	}
	attachOnly := cfg.Source == "" && cfg.Destination == ""
	switch {
	case attachOnly && cfg.Name == "":
		return usageError{errors.New("run needs --source NAME and --destination NAME (or --name NAME to attach to a running flow)")}
	case !attachOnly && (cfg.Source == "" || cfg.Destination == ""):
		return usageError{errors.New("run needs both --source NAME and --destination NAME")}
	}
	derived := cfg.Name == ""
	cfg.Name = runFlowName(cfg)
	if !attachOnly {
		if err := checkRunConfig(cfg); err != nil {
			return err
		}
	}
	out, err := openOutput(ctx, g, ui, progress, !detach)
	if err != nil {
		return err
	}
	defer out.close()
	log := out.log
	slog.SetDefault(log)
	c, err := tf.dial(ctx, g, log, "", nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if derived {
		if err := resolveRunFlowName(ctx, c, cfg); err != nil {
			return err
		}
	}
	if cfg.Reverse {
		if err := prepareReverseRun(ctx, c, cfg, tf.taskQueue); err != nil {
			return err
		}
	}
	in := scaleout.FlowInput{Options: *cfg, Settings: set}
	run, attached, err := scaleout.Start(ctx, c, in, scaleout.StartOptions{TaskQueue: tf.taskQueue, Restart: restart, Log: log})
	if err != nil {
		return err
	}
	if attached {
		log.Info("attached to the flow", "flow", cfg.Name, "run", run.GetRunID())
	} else {
		log.Info("flow started", "flow", cfg.Name, "source", cfg.Source, "destination", cfg.Destination, "run", run.GetRunID(),
			"temporal", tf.address, "task_queue", tf.taskQueue)
	}
	if detach {
		fmt.Fprintf(g.stdout, "flow %s running (run %s)\nwatch it: ferry run --temporal %s --name %s\n", cfg.Name, run.GetRunID(), tf.address, cfg.Name)
		return nil
	}
	w := &watcher{c: c, name: cfg.Name, address: tf.address, taskQueue: tf.taskQueue, log: log}
	return w.watch(ctx, g, run, out.bars, progress, out.ln, ui, cfg)
}

// checkRunConfig checks, before anything starts, what ferry run can of a
// flow whose connections only the workers resolve, and fills in its
// defaults.
func checkRunConfig(cfg *flow.Config) error {
	for _, n := range []string{cfg.Source, cfg.Destination} {
		if strings.Contains(n, "://") {
			return errs.BadConfig("--source and --destination take connection names, not URLs", "define the URL on the workers (--connection NAME=URL) and give its name here")
		}
	}
	probe := *cfg
	probe.Source, probe.Destination = "x://", "x://"
	if err := probe.Validate(); err != nil {
		return err
	}
	// The transforms' syntax, here; the salt is the workers' secret.
	spec := transform.Spec{Exclude: cfg.Exclude, Rename: cfg.RenameColumns, Mask: cfg.Mask, Filter: cfg.Filter, Compute: cfg.Compute}
	if cfg.MaskSalt != "" {
		spec.Salt = "resolved by each worker"
	}
	if _, err := transform.Parse(spec); err != nil {
		return err
	}
	cfg.Defaults()
	return nil
}

// watcher follows a flow: it polls its status and waits for its end.
type watcher struct {
	c         client.Client
	name      string
	address   string
	taskQueue string
	log       *slog.Logger

	mu   sync.Mutex
	last *scaleout.Status
	// downSince is when reading the flow's status from Temporal began to
	// fail (zero while it answers).
	downSince time.Time
}

func (w *watcher) snapshot() engine.Snapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last == nil {
		return engine.Snapshot{Flow: w.name, Phase: engine.PhasePlan}
	}
	return w.last.Snapshot()
}

func (w *watcher) poll(ctx context.Context) {
	// The client retries a Temporal that does not answer for as long as
	// the context lets it: a bound turns an outage into an error to report.
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	st, err := scaleout.Progress(pctx, w.c, w.name, w.taskQueue)
	cancel()
	if err != nil && ctx.Err() != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		// Temporal going away does not stop the flow: the workers go on
		// with what they run and report when it is back. Say so once, not
		// every second.
		if w.downSince.IsZero() {
			w.downSince = time.Now()
			w.log.Warn("Temporal does not answer; the flow's progress is unknown until it does (running tasks go on on the workers)",
				"flow", w.name, "temporal", w.address, "error", err)
		} else {
			w.log.Debug("progress unavailable", "error", err)
		}
		return
	}
	if !w.downSince.IsZero() {
		w.log.Info("Temporal answers again", "flow", w.name, "temporal", w.address, "unanswered_for", time.Since(w.downSince).Round(100*time.Millisecond).String())
		w.downSince = time.Time{}
	}
	w.last = st
}

func (w *watcher) watch(ctx context.Context, g *globals, run client.WorkflowRun, bars *display.Bars, progress string, ln net.Listener, ui uiFlags, cfg *flow.Config) error {
	var dash *dashboard.Server
	var tel *telemetry.Telemetry
	if ln != nil {
		var err error
		if tel, err = telemetry.Setup(ctx, telemetry.Options{Prometheus: true, Version: Version, Log: w.log}); err != nil {
			return err
		}
		defer tel.Shutdown(context.WithoutCancel(ctx)) //nolint:errcheck // exiting
		dash, _ = serveDashboard(ln, dashboard.Info{Flow: w.name, Source: cfg.Source, Destination: cfg.Destination, Coordinator: "temporal", Version: Version},
			ui, tel.Handler(), w.log)
		dash.Attach(w.snapshot)
		dash.SetReady()
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	w.poll(watchCtx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-watchCtx.Done():
				return
			case <-t.C:
				w.poll(watchCtx)
				if bars != nil {
					bars.Update(w.snapshot())
				}
			}
		}
	}()
	if bars == nil && progress != "none" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			display.LogLines(watchCtx, w.log, 5*time.Second, w.snapshot)
		}()
	}
	ended := make(chan error, 1)
	go func() { ended <- run.Get(watchCtx, nil) }()
	var runErr error
	select {
	case <-sigs:
		stopWatch()
		wg.Wait()
		w.log.Info("detached; the flow goes on", "flow", w.name, "attach", "ferry run --name "+w.name, "control", "ferry flow pause|resume|cutover|cancel "+w.name)
		if dash != nil {
			closeDash(ctx, dash, w.log)
		}
		return nil
	case runErr = <-ended:
	}
	w.poll(ctx)
	stopWatch()
	wg.Wait()
	if bars != nil {
		bars.Update(w.snapshot())
	}
	err := flowOutcome(w.name, runErr)
	s := w.snapshot()
	if err != nil {
		w.log.Error("flow failed", "flow", w.name, "error", err, "rows_copied", s.RowsCopied)
	} else {
		w.mu.Lock()
		var resumed int64
		var cut *engine.CutoverReport
		if w.last != nil {
			resumed = w.last.State.ResumedPartitions()
			cut = w.last.State.Cut
		}
		w.mu.Unlock()
		if cut != nil && cut.Done {
			printCutover(g.stdout, w.name, cut, nil)
		}
		w.log.Info("flow finished", "flow", w.name, "phase", s.Phase, "rows_copied", s.RowsCopied, "changes", s.CDC.Received,
			"position", s.CDC.Position, "resumed_partitions", resumed, "elapsed", time.Duration(s.Elapsed*float64(time.Second)).Round(time.Millisecond))
	}
	if dash != nil {
		dash.Finish(err, false)
		if ui.linger > 0 {
			select {
			case <-sigs:
			case <-time.After(ui.linger):
			}
		}
		closeDash(ctx, dash, w.log)
	}
	return err
}

// flowOutcome turns the workflow's end into ferry's error: nil when done,
// a ConfigError (exit 2) when a configuration error failed it.
func flowOutcome(name string, err error) error {
	if err == nil {
		return nil
	}
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		switch ae.Type() {
		case "ConfigError":
			return &errs.ConfigError{Msg: fmt.Sprintf("flow %s failed: %s", name, ae.Message())}
		default:
			return fmt.Errorf("flow %s failed: %s", name, ae.Message())
		}
	}
	var te *temporal.TerminatedError
	if errors.As(err, &te) {
		return fmt.Errorf("flow %s was terminated", name)
	}
	var ce *temporal.CanceledError
	if errors.As(err, &ce) {
		return fmt.Errorf("flow %s was cancelled", name)
	}
	return fmt.Errorf("flow %s: %w", name, err)
}
