package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/internal/display"
	"github.com/ferrydb/ferry/state"
)

// flowFlags are the flags that define a flow, shared by sync, plan and verify.
type flowFlags struct {
	file, name, mode, tables, until, stateDir string
	rename                                    []string
	parallel, writers, batchRows, applyBatch  int
	partitionRows                             int64
	applyLinger                               time.Duration
}

func (f *flowFlags) register(fs *pflag.FlagSet, full bool) {
	fs.StringVarP(&f.file, "file", "f", "", "YAML flow file (command-line flags override it)")
	fs.StringVar(&f.tables, "tables", "", "tables to take, comma-separated globs; !pattern excludes (shop.*,!shop.tmp_*)")
	fs.StringArrayVar(&f.rename, "rename", nil, "rename a table or schema at the destination: shop.orders=archive.orders or shop.*=archive.* (repeatable)")
	fs.IntVar(&f.parallel, "parallel", 0, "partitions copied at once (default 4)")
	fs.Int64Var(&f.partitionRows, "partition-rows", 0, "target rows per partition (default 250000)")
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
	fs.DurationVar(&f.applyLinger, "apply-linger", 0, "how long CDC waits to fill a batch (default 50ms)")
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
	set("parallel", func() { cfg.Parallel = f.parallel })
	set("writers", func() { cfg.Writers = f.writers })
	set("batch-rows", func() { cfg.BatchRows = f.batchRows })
	set("partition-rows", func() { cfg.PartitionRows = f.partitionRows })
	set("apply-batch", func() { cfg.ApplyBatch = f.applyBatch })
	set("apply-linger", func() { cfg.ApplyLinger = f.applyLinger })
	set("until", func() { cfg.Until = f.until })
	set("state-dir", func() { cfg.StateDir = f.stateDir })
	for _, n := range []string{"parallel", "writers", "batch-rows", "partition-rows", "apply-batch"} {
		if fs.Changed(n) {
			if v, _ := fs.GetInt(n); v < 0 {
				return nil, usageError{fmt.Errorf("--%s must be positive", n)}
			}
		}
	}
	if cfg.StateDir == "" {
		cfg.StateDir = state.DefaultDir()
	}
	return cfg, nil
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
	var restart bool
	var progress string
	cmd := &cobra.Command{
		Use:   "sync [SOURCE DESTINATION]",
		Short: "Copy a source into a destination, then stream its changes",
		Long: `sync runs a flow in this process: it plans the source's tables into
partitions, copies them in parallel, then applies the source's changes from the
moment the copy started (with --mode full, the default when both sides can).

Progress is checkpointed; running the same command again after a crash resumes
where it stopped. Ctrl-C stops gracefully: the batches in flight are written and
checkpointed, and ferry exits 0.`,
		Example: `  # copy a generated dataset into SQLite, then check it
  ferry sync 'fake://?tables=3&rows=100000' sqlite:///tmp/demo.db --mode snapshot
  ferry verify 'fake://?tables=3&rows=100000' sqlite:///tmp/demo.db

  # copy, then stream changes until caught up with the source
  ferry sync 'fake://?rows=10000&changes=5000' sqlite:///tmp/demo.db --until caught-up

  # some tables only, renamed, from a flow file
  ferry sync -f flow.yaml --tables 'shop.*,!shop.tmp_*' --rename shop.orders=archive.orders`,
		Args: cobra.RangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				return usageError{errors.New("sync needs both SOURCE and DESTINATION (or a flow file with -f)")}
			}
			var src, dst string
			if len(args) == 2 {
				src, dst = args[0], args[1]
			}
			cfg, err := ff.config(cmd, src, dst)
			if err != nil {
				return err
			}
			return runSync(cmd.Context(), g, cfg, restart, progress)
		},
	}
	ff.register(cmd.Flags(), true)
	cmd.Flags().BoolVar(&restart, "restart", false, "discard the flow's saved state and start over")
	cmd.Flags().StringVar(&progress, "progress", "auto", "progress display: auto (bars on a terminal, log lines otherwise), bars, log or none")
	return cmd
}

func runSync(ctx context.Context, g *globals, cfg *flow.Config, restart bool, progress string) error {
	g.addSecrets(cfg.Source, cfg.Destination)
	if ctx == nil {
		ctx = context.Background()
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	switch progress {
	case "auto", "bars", "log", "none":
	default:
		return usageError{fmt.Errorf("--progress %q: use auto, bars, log or none", progress)}
	}
	useBars := progress == "bars" || (progress == "auto" && display.IsTerminal(os.Stderr))
	var bars *display.Bars
	logOut := g.stderr
	if useBars {
		bars = display.NewBars(ctx, g.stderr)
		defer bars.Close()
		logOut = bars.Writer()
	}
	log, err := g.logger(logOut)
	if err != nil {
		return err
	}
	src, err := connector.Open(ctx, cfg.Source)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	defer closeLogged(log, "source", src)
	dst, err := connector.Open(ctx, cfg.Destination)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	defer closeLogged(log, "destination", dst)

	// Refuse an impossible pair before any state exists.
	if _, err := engine.Negotiate(cfg.Mode, src, dst, connector.Redact(cfg.Source), connector.Redact(cfg.Destination)); err != nil {
		return err
	}
	name := cfg.FlowName()
	store, err := state.Open(ctx, cfg.StateDir, name)
	if err != nil {
		if errors.Is(err, state.ErrLocked) {
			return &connector.ConfigError{Msg: err.Error(), Fix: "wait for it to finish or stop it; use --name to run another flow"}
		}
		return err
	}
	defer closeLogged(log, "state", store)
	eng, err := engine.New(*cfg, src, dst, store, log)
	if err != nil {
		return err
	}
	if restart {
		log.Info("discarding saved state (--restart)")
		if err := eng.Drop(ctx); err != nil {
			return fmt.Errorf("restart: %w", err)
		}
	}
	log.Info("flow starting", "flow", name, "source", connector.Redact(cfg.Source), "destination", connector.Redact(cfg.Destination), "mode", eng.Mode(), "state", store.Path())
	stop, abort, release := signals(ctx, log)
	defer release()
	if err := eng.Prepare(abort); err != nil {
		// A flow that never got a plan leaves no state behind.
		if plan, merr := store.Meta(ctx, "plan"); merr == nil && plan == "" {
			if rerr := store.Remove(); rerr != nil {
				log.Warn("could not remove the empty state", "error", rerr)
			}
		}
		return err
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
	runErr := eng.Run(abort, stop)
	endShow()
	<-showDone
	s := eng.Progress().Snapshot()
	if runErr != nil {
		log.Error("flow failed", "error", runErr, "rows_copied", s.RowsCopied, "changes_applied", s.CDC.Received)
		return runErr
	}
	log.Info("flow finished", "flow", name, "phase", s.Phase, "rows_copied", s.RowsCopied,
		"size", humanize.Bytes(uint64(max(s.BytesCopied, 0))), "changes", s.CDC.Received, "position", s.CDC.Position,
		"rows_written", s.RowsWritten, "resumed_partitions", s.ResumedPartitions, "skipped_partitions", s.SkippedPartitions, "elapsed", time.Duration(s.Elapsed*float64(time.Second)).Round(time.Millisecond))
	return nil
}

func closeLogged(log *slog.Logger, what string, c interface{ Close() error }) {
	if err := c.Close(); err != nil {
		log.Warn("close failed", "what", what, "error", err)
	}
}
