package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/internal/dashboard"
	"github.com/ferrydb/ferry/internal/display"
	"github.com/ferrydb/ferry/internal/telemetry"
	"github.com/ferrydb/ferry/state"
)

// flowFlags are the flags that define a flow, shared by sync, plan and verify.
type flowFlags struct {
	file, name, mode, tables, until, stateDir string
	ddl, applyMode, maxRate                   string
	maxReplicaLag                             time.Duration
	replicaLagQuery                           string
	rename                                    []string
	// The transforms (flow.Config's Exclude ... MaskSalt).
	exclude, renameColumns, mask, filter, compute []string
	maskSalt                                      string
	parallel, writers, batchRows, applyBatch      int
	partitionRows                                 int64
	applyLinger, retryTimeout, syncSequences      time.Duration
	// named: the command resolves a SOURCE or DESTINATION written @NAME
	// from the connections (registerConnections).
	named       bool
	connFile    string
	connections []string
	// query replication (sync_query.go), registered by sync only.
	query queryFlags
}

// registerConnections lets the command take its source and destination by
// name (@src), resolved as a worker resolves them, so no password is on
// its command line.
func (f *flowFlags) registerConnections(fs *pflag.FlagSet) {
	f.named = true
	fs.StringVar(&f.connFile, "connections-file", "", "YAML file of name: URL connections, for @NAME arguments (default $"+connector.ConnectionsFileEnv+")")
	fs.StringArrayVar(&f.connections, "connection", nil, "a named connection NAME=URL for @NAME arguments (repeatable; FERRY_CONNECTION_<NAME>=URL keeps it off the command line)")
}

// resolveConnections replaces a source or destination written @NAME by
// the URL its connection names. The flow's name and identity come from
// that URL without its password, so @src and the URL it stands for run
// the same flow.
func (f *flowFlags) resolveConnections(cfg *flow.Config) error {
	if !f.named || !strings.HasPrefix(cfg.Source, "@") && !strings.HasPrefix(cfg.Destination, "@") {
		return nil
	}
	file := f.connFile
	if file == "" {
		file = os.Getenv(connector.ConnectionsFileEnv)
	}
	conns, err := connector.LoadConnections(file, os.Environ(), f.connections)
	if err != nil {
		return err
	}
	for _, side := range []struct {
		url  *string
		role string
	}{{&cfg.Source, "source"}, {&cfg.Destination, "destination"}} {
		if name, ok := strings.CutPrefix(*side.url, "@"); ok {
			if *side.url, err = conns.Resolve(name, side.role); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *flowFlags) register(fs *pflag.FlagSet, full bool) {
	fs.StringVarP(&f.file, "file", "f", "", "YAML flow file (command-line flags override it)")
	fs.StringVar(&f.tables, "tables", "", "tables to take, comma-separated globs; !pattern excludes (shop.*,!shop.tmp_*)")
	fs.StringArrayVar(&f.rename, "rename", nil, "rename a table or schema at the destination: shop.orders=archive.orders or shop.*=archive.* (repeatable)")
	fs.StringArrayVar(&f.exclude, "exclude", nil, "leave a column out at the destination: TABLE.COLUMN, TABLE a glob (repeatable)")
	fs.StringArrayVar(&f.renameColumns, "rename-column", nil, "rename a column at the destination: TABLE.COLUMN=NEW (repeatable)")
	fs.StringArrayVar(&f.mask, "mask", nil, "mask a column's values: TABLE.COLUMN=redact, =hash (salted by --mask-salt) or =lastN, keeping the last N characters (repeatable)")
	fs.StringArrayVar(&f.filter, "filter", nil, "copy and replicate only the rows a CEL expression keeps: 'TABLE: EXPRESSION' (repeatable)")
	fs.StringArrayVar(&f.compute, "compute", nil, "add a column computed by a CEL expression over the row: 'TABLE.COLUMN = EXPRESSION' (repeatable)")
	fs.StringVar(&f.maskSalt, "mask-salt", "", "the secret salting --mask ...=hash: its NAME, resolved from FERRY_SECRET_<NAME> in the environment of every process running the flow")
	fs.IntVar(&f.parallel, "parallel", 0, "partitions copied at once (default 4)")
	fs.Int64Var(&f.partitionRows, "partition-rows", 0, "rows per partition for every table (default: 250000, grown for tables of more than 250 million rows)")
	fs.IntVar(&f.batchRows, "batch-rows", 0, "rows per batch read and written (default 5000)")
	if !full {
		return
	}
	fs.StringVar(&f.name, "name", "", "flow name, the key of its saved state (default: derived from source, destination and tables)")
	fs.StringVar(&f.mode, "mode", "", "full (copy then CDC), snapshot (copy only) or cdc (changes only); default full when both sides can")
	fs.StringVar(&f.until, "until", "", "caught-up: stop once the destination has caught up with the source's position when CDC started")
	fs.StringVar(&f.stateDir, "state-dir", "", "where flow state is kept (default $XDG_STATE_HOME/ferry or ~/.local/state/ferry)")
	fs.IntVar(&f.writers, "writers", 0, "parallel CDC appliers (default: --parallel)")
	fs.IntVar(&f.applyBatch, "apply-batch", 0, "max changes per CDC apply batch (default 10000)")
	fs.DurationVar(&f.applyLinger, "apply-linger", 0, "how long CDC waits to fill a batch while the writers are busy (default 50ms)")
	fs.StringVar(&f.applyMode, "apply-mode", "", "parallel (changes applied across keys by --writers writers, the default) or transactional (one writer; each destination transaction holds whole source transactions, so readers never see half of one)")
	fs.StringVar(&f.maxRate, "max-rate", "", "cap the copy's reads across all lanes: rows per second (5000) or bytes per second (10MB/s, 512KiB/s); default no limit")
	fs.DurationVar(&f.maxReplicaLag, "max-replica-lag", 0, "pause the copy's and incremental snapshots' reads while the source's own replicas lag more than this, e.g. 30s (default 0: never)")
	fs.StringVar(&f.replicaLagQuery, "replica-lag-query", "", "query run on the source returning its replicas' lag in seconds (PostgreSQL default: the largest replay_lag in pg_stat_replication; required for MySQL/MariaDB)")
	fs.DurationVar(&f.retryTimeout, "retry-timeout", 0, "how long an unavailable source or destination is retried before the flow fails (default 5m)")
	fs.StringVar(&f.ddl, "ddl", "", "when the source changes a table's schema or truncates it during CDC: apply (follow it, the default) or stop (stop the flow there)")
	fs.DurationVar(&f.syncSequences, "sync-sequences", 0, "during CDC, copy the source's sequences to the destination this often, e.g. 1m (default 0: never; a cutover sets them)")
}

// pairConfig is config for the commands that take SOURCE DESTINATION
// arguments (or a flow file naming them): sync, verify, drop.
func (f *flowFlags) pairConfig(cmd *cobra.Command, args []string) (*flow.Config, error) {
	var src, dst string
	switch len(args) {
	case 1:
		return nil, usageError{fmt.Errorf("%s needs both SOURCE and DESTINATION (or a flow file with -f)", cmd.Name())}
	case 2:
		src, dst = args[0], args[1]
	}
	cfg, err := f.config(cmd, src, dst)
	if err != nil {
		return nil, err
	}
	if err := resolveFlowName(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// resolveFlowName fixes the name of a flow named by its source and
// destination, for every command that names one (sync, cutover, snapshot,
// drop, verify): --name, else the state an earlier ferry kept under an
// older derived name (which hashed --tables in, or was made from URLs
// redacted as before, flow.Config.EarlierFlowNames), else the derived
// name.
// The older name is kept, not migrated: the flow's replication slot is
// named after it.
func resolveFlowName(cfg *flow.Config) error {
	if cfg.Name != "" {
		return nil
	}
	names := cfg.EarlierFlowNames()
	cfg.Name = cfg.FlowName()
	for _, earlier := range names {
		have, err := state.Exists(cfg.StateDir, earlier)
		if err != nil {
			return err
		}
		if have {
			cfg.Name = earlier
			return nil
		}
	}
	return nil
}

// checkedPairConfig is pairConfig with the flow's secrets known to the
// scrubber and the config validated.
func (f *flowFlags) checkedPairConfig(cmd *cobra.Command, g *globals, args []string) (*flow.Config, error) {
	cfg, err := f.pairConfig(cmd, args)
	if err != nil {
		return nil, err
	}
	g.addSecrets(cfg.Source, cfg.Destination)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// config merges the flow file, the arguments and the flags.
func (f *flowFlags) config(cmd *cobra.Command, src, dst string) (*flow.Config, error) {
	cfg := &flow.Config{}
	if f.file != "" {
		c, err := flow.LoadFile(f.file)
		if err != nil {
			return nil, usageError{err}
		}
		cfg = c
	}
	if src != "" {
		cfg.Source = src
	}
	if dst != "" {
		cfg.Destination = dst
	}
	if err := f.resolveConnections(cfg); err != nil {
		return nil, err
	}
	if err := f.apply(cmd, cfg); err != nil {
		return nil, err
	}
	if cfg.StateDir == "" {
		cfg.StateDir = state.DefaultDir()
	}
	return cfg, nil
}

// apply sets the flow flags given on the command line over cfg (a flow
// file's, or each flow of a fleet file).
func (f *flowFlags) apply(cmd *cobra.Command, cfg *flow.Config) error {
	fs := cmd.Flags()
	set := func(name string, apply func()) {
		if fs.Changed(name) {
			apply()
		}
	}
	set("name", func() { cfg.Name = f.name })
	set("mode", func() { cfg.Mode = flow.Mode(f.mode) })
	set("tables", func() {
		pf, err := flow.ParseFilter(f.tables)
		if err == nil && pf.Empty() {
			cfg.Tables = nil
			return
		}
		cfg.Tables = splitList(f.tables)
	})
	set("rename", func() { cfg.Rename = f.rename })
	set("exclude", func() { cfg.Exclude = f.exclude })
	set("rename-column", func() { cfg.RenameColumns = f.renameColumns })
	set("mask", func() { cfg.Mask = f.mask })
	set("filter", func() { cfg.Filter = f.filter })
	set("compute", func() { cfg.Compute = f.compute })
	set("mask-salt", func() { cfg.MaskSalt = f.maskSalt })
	set("parallel", func() { cfg.Parallel = f.parallel })
	set("writers", func() { cfg.Writers = f.writers })
	set("batch-rows", func() { cfg.BatchRows = f.batchRows })
	set("partition-rows", func() { cfg.PartitionRows = f.partitionRows })
	cfg.FixedPartitionRows = cfg.PartitionRows > 0 // given: no adaptive size
	set("apply-batch", func() { cfg.ApplyBatch = f.applyBatch })
	set("apply-linger", func() { cfg.ApplyLinger = f.applyLinger })
	set("retry-timeout", func() { cfg.RetryTimeout = f.retryTimeout })
	set("sync-sequences", func() { cfg.SyncSequences = f.syncSequences })
	set("ddl", func() { cfg.DDL = f.ddl })
	set("apply-mode", func() { cfg.ApplyMode = f.applyMode })
	set("max-rate", func() { cfg.MaxRate = f.maxRate })
	set("max-replica-lag", func() { cfg.MaxReplicaLag = f.maxReplicaLag })
	set("replica-lag-query", func() { cfg.ReplicaLagQuery = f.replicaLagQuery })
	set("until", func() { cfg.Until = f.until })
	set("state-dir", func() { cfg.StateDir = f.stateDir })
	if err := f.query.apply(fs, cfg); err != nil {
		return err
	}
	if err := refuseQueries(cmd, cfg); err != nil {
		return err
	}
	return refuseNonPositive(fs, "parallel", "writers", "batch-rows", "partition-rows", "apply-batch", "apply-linger", "retry-timeout", "max-replica-lag")
}

// refuseNonPositive refuses a 0 or a negative value given to one of the
// named int, int64 or duration flags: 0 would silently mean the default (as
// a flow file's 0, an unset key, does).
func refuseNonPositive(fs *pflag.FlagSet, names ...string) error {
	for _, n := range names {
		f := fs.Lookup(n)
		if f == nil || !f.Changed {
			continue
		}
		bad := false
		switch f.Value.Type() {
		case "int":
			v, _ := fs.GetInt(n)
			bad = v <= 0
		case "int64":
			v, _ := fs.GetInt64(n)
			bad = v <= 0
		case "duration":
			v, _ := fs.GetDuration(n)
			bad = v <= 0
		}
		if bad {
			return usageError{fmt.Errorf("--%s must be positive, not %s; leave it out for the default", n, f.Value.String())}
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	cur := ""
	for _, r := range s {
		if r == ',' {
			out = append(out, cur)
			cur = ""
			continue
		}
		cur += string(r)
	}
	return append(out, cur)
}

func newSyncCmd(g *globals) *cobra.Command {
	var ff flowFlags
	var restart, reverse bool
	var progress string
	var verifyEvery time.Duration
	var ui uiFlags
	cmd := &cobra.Command{
		Use:   "sync [SOURCE DESTINATION]",
		Short: "Copy a source into a destination, then stream its changes",
		Long: `sync runs a flow in this process: it plans the source's tables into
partitions, copies them in parallel, then applies the source's changes from the
moment the copy started (with --mode full, the default when both sides can).

Progress is checkpointed; running the same command again after a crash resumes
where it stopped. Ctrl-C stops gracefully: the batches in flight are written and
checkpointed, and ferry exits 0; while the plan is still being made, it cancels
the plan and ferry exits 0 having copied nothing.

With --query, sync keeps queries' results in sync instead of tables: each run
reads the rows past the last --watermark reached, upserts them by --key (or
appends them), and exits, or runs again every --every (docs/query-replication.md).`,
		Example: `  # copy a generated dataset into SQLite, then check it
  ferry sync 'fake://?tables=3&rows=100000' sqlite:///tmp/demo.db --mode snapshot
  ferry verify 'fake://?tables=3&rows=100000' sqlite:///tmp/demo.db

  # copy, then stream changes until caught up with the source
  ferry sync 'fake://?rows=10000&changes=5000' sqlite:///tmp/demo.db --until caught-up

  # PostgreSQL to PostgreSQL, connections by name (no password on the command line)
  export FERRY_CONNECTION_SRC='postgres://ferry:secret@old-db/shop?sslmode=require'
  export FERRY_CONNECTION_DST='postgres://ferry:secret@new-db/shop?sslmode=require'
  ferry sync @src @dst --health-addr 127.0.0.1:9090

  # MySQL to PostgreSQL, passwords read from files (a mounted secret)
  ferry sync 'mysql://ferry@mysql-db:3306/shop?password_file=/run/secrets/mysql' \
    'postgres://ferry@pg-db/shop?password_file=/run/secrets/pg'

  # some tables only, renamed, from a flow file
  ferry sync -f flow.yaml --tables 'shop.*,!shop.tmp_*' --rename shop.orders=archive.orders

  # watch it live on http://127.0.0.1:8080/ (with Prometheus metrics on /metrics)
  ferry sync 'fake://?rows=1000000&changes_per_sec=500' sqlite:///tmp/demo.db --ui 127.0.0.1:8080

  # keep a query's result in sync by its watermark, every minute
  ferry sync postgres://src/shop postgres://dst/reports \
    --query reports.order_totals='SELECT o.id, c.name, o.total, o.updated_at FROM orders o JOIN customers c ON c.id = o.customer_id' \
    --watermark updated_at --key id --every 1m

  # serve the dashboard to other machines: a token is then required
  FERRY_UI_TOKEN=$(openssl rand -hex 16) ferry sync SRC DST --ui 0.0.0.0:8080`,
		Args: cobra.RangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var cfg *flow.Config
			var back *state.ReverseStart
			var err error
			if reverse {
				cfg, back, err = ff.reverseConfig(cmd, args, restart)
			} else if cfg, err = ff.pairConfig(cmd, args); err == nil {
				err = refuseUnstartedReverse(cfg)
			}
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("ui-token") && ui.addr == "" {
				return usageError{errors.New("--ui-token needs --ui ADDR")}
			}
			ui.tokenFromEnv()
			if verifyEvery < 0 {
				return usageError{fmt.Errorf("--verify %s: give a positive interval such as 30s or 5m", verifyEvery)}
			}
			if len(cfg.Queries) > 0 {
				return runQuerySync(cmd.Context(), g, cfg, queryRun{restart: restart, reverse: reverse, progress: progress, verify: verifyEvery, ui: ui})
			}
			return runSync(cmd.Context(), g, cfg, syncRun{restart: restart, progress: progress, reverse: back, verifyEvery: verifyEvery}, ui)
		},
	}
	ff.register(cmd.Flags(), true)
	ff.registerConnections(cmd.Flags())
	ff.query.register(cmd.Flags())
	cmd.Flags().BoolVar(&restart, "restart", false, "start the flow over: discard its saved state, checkpoints and replication slot, and empty its destination tables")
	cmd.Flags().BoolVar(&reverse, "reverse", false, "run the way back of a flow cut over with ferry cutover --reverse: ferry sync DESTINATION SOURCE --reverse streams the changes made at the new database back to the old one (--name names the forward flow; the reverse flow is NAME-reverse)")
	cmd.Flags().StringVar(&progress, "progress", "auto", "progress display: auto (bars on a terminal, log lines otherwise), bars, log or none")
	cmd.Flags().DurationVar(&verifyEvery, "verify", 0, "during CDC, verify one table every INTERVAL (e.g. 1m), in turn, re-checking differences once the flow passed them; results on the dashboard and in metrics")
	ui.register(cmd.Flags())
	ui.registerHealth(cmd.Flags())
	return cmd
}

func runSync(ctx context.Context, g *globals, cfg *flow.Config, run syncRun, ui uiFlags) error {
	progress := run.progress
	g.addSecrets(cfg.Source, cfg.Destination)
	if ui.token != "" {
		g.scrubber.AddSecret(ui.token)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := checkProgress(progress); err != nil {
		return err
	}
	out, err := openOutput(ctx, g, ui, progress, true)
	if err != nil {
		return err
	}
	defer out.close()
	log := out.log
	mon, err := startMonitor(ctx, g, cfg, out.ln, ui, log)
	if err != nil {
		return err
	}
	if mon.dash != nil {
		log = slog.New(mon.dash.LogHandler(log.Handler()))
	}
	slog.SetDefault(log)
	runErr, stopped := syncFlow(ctx, g, cfg, run, out.bars, log, mon)
	mon.finish(ctx, runErr, stopped)
	return runErr
}

// syncRun is how syncFlow runs a flow.
type syncRun struct {
	restart  bool
	progress string
	// cutover, when set, is the time of the cutover ferry cutover runs in
	// this process: the flow must exist, and runs until its cutover.
	cutover time.Time
	// reverse, when set, is the start of the reverse flow this run is
	// (ferry sync --reverse): its first start checks the old database.
	reverse *state.ReverseStart
	// verifyEvery, when set, verifies a table this often during CDC
	// (--verify).
	verifyEvery time.Duration
}

// syncFlow runs the flow. stopped reports a graceful stop (first signal).
// A cutover requested while it runs (ferry cutover) ends it once done; its
// report goes beside the flow's state for ferry cutover to print.
func syncFlow(ctx context.Context, g *globals, cfg *flow.Config, run syncRun, bars *display.Bars, log *slog.Logger, mon *monitor) (err error, stopped bool) {
	restart, progress := run.restart, run.progress
	src, err := connector.Open(ctx, cfg.Source)
	if err != nil {
		return fmt.Errorf("source: %w", err), false
	}
	defer closeLogged(log, "source", src)
	dst, err := connector.Open(ctx, cfg.Destination)
	if err != nil {
		return fmt.Errorf("destination: %w", err), false
	}
	defer closeLogged(log, "destination", dst)

	// Refuse an impossible pair before any state exists.
	if _, err := engine.Negotiate(cfg.Mode, src, dst, errs.Redact(cfg.Source), errs.Redact(cfg.Destination)); err != nil {
		return err, false
	}
	defer shareCores(log, src, dst)()
	name := cfg.FlowName()
	if run.cutover.IsZero() {
		// A request nobody ran (its ferry cutover gave up) is not this
		// run's: ferry cutover asks again if it still waits.
		if err := state.ClearCutover(cfg.StateDir, name); err != nil {
			return err, false
		}
	}
	store, err := state.Open(ctx, cfg.StateDir, name)
	if err != nil {
		// ferry cutover hands its request to the process that runs the flow.
		if errors.Is(err, state.ErrLocked) && run.cutover.IsZero() {
			return &errs.ConfigError{Msg: err.Error(), Fix: "wait for it to finish or stop it; use --name to run another flow"}, false
		}
		return err, false
	}
	defer closeLogged(log, "state", store)
	answered := run.cutover.IsZero() // nothing to answer
	if !answered {
		if err := prepareCutoverHere(ctx, g, cfg, store, run.cutover); err != nil {
			return err, false
		}
		// A second ferry cutover waits for this run's answer: a failure or a
		// stop before the cutover ran answers it too.
		defer func() {
			if answered {
				return
			}
			failure := err
			if failure == nil {
				failure = errors.New("the flow was stopped before the cutover started; run ferry cutover again")
			}
			if aerr := answerCutover(g, cfg.StateDir, name, run.cutover, nil, failure); aerr != nil {
				log.Warn("cannot answer the cutover request", "error", aerr)
			}
		}()
	}
	if run.reverse != nil {
		if plan, err := store.Meta(ctx, "plan"); err != nil {
			return err, false
		} else if plan == "" {
			if err := checkForwardSource(ctx, cfg, *run.reverse, log); err != nil {
				// Refused before its plan, the reverse flow leaves no state.
				if rerr := store.Remove(); rerr != nil {
					log.Warn("could not remove the empty state", "error", rerr)
				}
				return err, false
			}
		}
	}
	eng, err := engine.New(*cfg, src, dst, store, log)
	if err != nil {
		return err, false
	}
	if restart {
		log.Info("discarding saved state (--restart)")
		if err := eng.Drop(ctx); err != nil {
			return fmt.Errorf("restart: %w", err), false
		}
		eng.StartOver()
	}
	if err := mon.attach(ctx, eng, store.Path(), log); err != nil {
		return err, false
	}
	log.Info("flow starting", "flow", name, "source", errs.Redact(cfg.Source), "destination", errs.Redact(cfg.Destination), "mode", eng.Mode(), "state", store.Path())
	stop, abort, planned, release := signals(ctx, log)
	defer release()
	endPlan := mon.span("ferry.plan")
	// Nothing is in flight while the plan is made (which can wait long: a
	// PostgreSQL slot waits for the server's open transactions), so the
	// first signal cancels it; the source releases what it had created.
	err = eng.Prepare(stop)
	planned()
	endPlan(err)
	if err != nil {
		// A flow that never got a plan leaves no state behind.
		plan, merr := store.Meta(ctx, "plan")
		if merr == nil && plan == "" {
			if rerr := store.Remove(); rerr != nil {
				log.Warn("could not remove the empty state", "error", rerr)
			}
		}
		switch {
		case stop.Err() != nil && merr == nil && plan == "":
			log.Info("flow stopped before the copy: the plan was cancelled, nothing was copied", "flow", name)
			return nil, true
		case stop.Err() != nil:
			log.Info("flow stopped before it started; run the same command again to resume it", "flow", name)
			return nil, true
		}
		return err, false
	}
	if stop.Err() != nil {
		log.Info("flow stopped before it started; run the same command again to resume it", "flow", name)
		return nil, true
	}
	mon.ready()
	watchCtx, endWatch := context.WithCancel(ctx)
	cut := watchCutover(watchCtx, g, cfg.StateDir, name, eng, log)
	if eng.Mode() != flow.ModeSnapshot {
		go watchSnapshots(watchCtx, cfg.StateDir, name, eng, log)
	}
	if !run.cutover.IsZero() {
		if err := eng.RequestCutover(ctx, run.cutover); err != nil {
			cut.wait(endWatch)
			return err, false // answered by the deferred answer
		}
	}
	showCtx, endShow := context.WithCancel(ctx)
	showDone := make(chan struct{})
	go func() {
		defer close(showDone)
		switch {
		case bars != nil:
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				bars.Update(eng.Progress().Snapshot())
				select {
				case <-showCtx.Done():
					bars.Update(eng.Progress().Snapshot())
					return
				case <-t.C:
				}
			}
		case progress != "none":
			display.LogLines(showCtx, log, 5*time.Second, eng.Progress().Snapshot)
		}
	}()
	verifyCtx, endVerify := context.WithCancel(ctx)
	verifyDone := make(chan struct{})
	go func() {
		defer close(verifyDone)
		if run.verifyEvery <= 0 {
			return
		}
		if err := eng.VerifyWhileStreaming(verifyCtx, run.verifyEvery); err != nil {
			log.Warn("no background verification", "error", err)
		}
	}()
	runErr := eng.Run(abort, stop)
	endVerify()
	<-verifyDone
	endShow()
	<-showDone
	at := cut.wait(endWatch)
	if !run.cutover.IsZero() {
		at = run.cutover // asked of the engine before the watcher could
	}
	if !at.IsZero() {
		if _, done := eng.CutoverReport(); !done && runErr == nil && stop.Err() == nil {
			// The request was taken as the flow ended by itself (its copy
			// done, or caught up): run it on to the cutover.
			runErr = eng.Run(abort, stop)
		}
		answered = true
		if err := answerRunCutover(g, cfg.StateDir, name, at, eng, runErr, stop.Err() != nil); err != nil && runErr == nil {
			runErr = err
		}
	}
	s := eng.Progress().Snapshot()
	if runErr != nil {
		log.Error("flow failed", "error", runErr, "rows_copied", s.RowsCopied, "changes_applied", s.CDC.Received)
		return runErr, false
	}
	log.Info("flow finished", "flow", name, "phase", s.Phase, "rows_copied", s.RowsCopied,
		"size", humanize.Bytes(uint64(max(s.BytesCopied, 0))), "changes", s.CDC.Received, "position", s.CDC.Position,
		"rows_written", s.RowsWritten, "resumed_partitions", s.ResumedPartitions, "skipped_partitions", s.SkippedPartitions, "elapsed", time.Duration(s.Elapsed*float64(time.Second)).Round(time.Millisecond))
	return nil, stop.Err() != nil
}

// monitor is what watches a flow from outside it: the dashboard and the
// telemetry (metrics, traces, debug logs). Its zero parts cost nothing.
type monitor struct {
	g      *globals
	cfg    *flow.Config
	dash   *dashboard.Server
	url    string
	tel    *telemetry.Telemetry
	tf     *telemetry.Flow
	linger time.Duration
	log    *slog.Logger
	// running is /readyz's answer on --health-addr: the flow has its plan
	// and runs.
	running    atomic.Bool
	stopHealth func(context.Context)
}

// startMonitor starts the telemetry the environment asks for and, with
// --ui, serves the dashboard on ln.
func startMonitor(ctx context.Context, g *globals, cfg *flow.Config, ln net.Listener, ui uiFlags, log *slog.Logger) (*monitor, error) {
	m := &monitor{g: g, cfg: cfg, linger: ui.linger, log: log, stopHealth: func(context.Context) {}}
	var health net.Listener
	if ui.health != "" {
		var err error
		if health, err = net.Listen("tcp", ui.health); err != nil {
			return nil, usageError{fmt.Errorf("--health-addr %s: %w", ui.health, err)}
		}
	}
	var err error
	if m.tel, err = telemetry.Setup(ctx, telemetry.Options{Prometheus: ln != nil || health != nil, Version: Version, Log: log}); err != nil {
		if health != nil {
			health.Close() //nolint:errcheck // failing anyway
		}
		return nil, err
	}
	if health != nil {
		m.stopHealth = serveHealth(health, &m.running, m.tel, "not ready: the flow is not running (still planning, or ended)", log)
		log.Info("health and metrics listening", "address", health.Addr().String())
	}
	if m.tel.OTLPMetrics || m.tel.OTLPTraces {
		log.Info("exporting telemetry over OTLP", "metrics", m.tel.OTLPMetrics, "traces", m.tel.OTLPTraces)
	}
	if ln == nil {
		return m, nil
	}
	m.dash, m.url = serveDashboard(ln, dashboard.Info{Flow: cfg.FlowName(), Source: cfg.Source, Destination: cfg.Destination,
		Coordinator: "local", Version: Version}, ui, m.tel.Handler(), log)
	return m, nil
}

// attach starts watching the engine.
func (m *monitor) attach(ctx context.Context, eng *engine.Engine, statePath string, log *slog.Logger) error {
	var obs []engine.Observer
	if m.tel.Enabled() {
		var err error
		m.tf, err = m.tel.Flow(ctx, telemetry.FlowInfo{Name: eng.Name(), Mode: string(eng.Mode()), Coordinator: "local", Scrub: m.g.scrub},
			eng.Progress().Snapshot)
		if err != nil {
			return fmt.Errorf("telemetry: %w", err)
		}
		obs = append(obs, m.tf)
	}
	obs = append(obs, telemetry.LogObserver(log.With("flow", eng.Name())))
	eng.SetObserver(engine.Observers(obs...))
	if m.dash != nil {
		m.dash.SetStatePath(statePath)
		m.dash.Attach(eng.Progress().Snapshot)
	}
	return nil
}

func (m *monitor) span(name string) func(error) {
	if m.tf == nil {
		return func(error) {}
	}
	return m.tf.Span(name)
}

func (m *monitor) ready() {
	m.running.Store(true)
	if m.dash != nil {
		m.dash.SetReady()
	}
}

// finish shows the end of the flow, keeps the dashboard up for --ui-linger
// (a signal ends the wait), then stops serving and flushes telemetry.
func (m *monitor) finish(ctx context.Context, err error, stopped bool) {
	m.running.Store(false)
	if m.tf != nil {
		m.tf.End(err)
	}
	if m.dash != nil {
		m.dash.Finish(err, stopped)
		if m.linger > 0 {
			m.log.Info("flow ended; the dashboard stays up", "url", m.url, "for", m.linger)
			wait, cancel := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			select {
			case <-wait.Done():
			case <-time.After(m.linger):
			}
			cancel()
		}
		closeDash(ctx, m.dash, m.log)
	}
	m.stopHealth(ctx)
	if serr := m.tel.Shutdown(context.WithoutCancel(ctx)); serr != nil {
		m.log.Warn("telemetry flush failed", "error", serr)
	}
}

func closeLogged(log *slog.Logger, what string, c interface{ Close() error }) {
	if err := c.Close(); err != nil {
		log.Warn("close failed", "what", what, "error", err)
	}
}
