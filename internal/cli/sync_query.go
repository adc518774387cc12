package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/state"
)

// queryFlags are ferry sync's query replication flags
// (docs/query-replication.md).
type queryFlags struct {
	queries, watermarks, keys []string
	every                     time.Duration
	lookback                  string
}

func (q *queryFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&q.queries, "query", nil, "replicate a query's result instead of tables: NAME='SELECT ...', NAME the destination table (repeatable)")
	fs.StringArrayVar(&q.watermarks, "watermark", nil, "the query's column read past on each run: [NAME=]COLUMN, a timestamp, date or increasing integer (NAME= with several queries)")
	fs.StringArrayVar(&q.keys, "key", nil, "columns identifying a row of the query, for upserts: [NAME=]COL1,COL2 (without it rows are appended)")
	fs.DurationVar(&q.every, "every", 0, "run the queries again this often, e.g. 1m (default: once, then exit)")
	fs.StringVar(&q.lookback, "lookback", "", "re-read this margin below the last watermark on each run: a duration (10m) or, for an integer watermark, a number (500); needs --key")
}

// apply sets the query flags given into cfg (over the flow file's).
func (q *queryFlags) apply(fs *pflag.FlagSet, cfg *flow.Config) error {
	if fs.Lookup("query") == nil {
		return nil
	}
	if fs.Changed("every") {
		if q.every <= 0 {
			return usageError{fmt.Errorf("--every must be positive, not %s; leave it out to run once", q.every)}
		}
		cfg.Every = q.every
	}
	if fs.Changed("lookback") {
		cfg.Lookback = q.lookback
	}
	var queries []string
	if fs.Changed("query") {
		queries = q.queries
	}
	return cfg.ApplyQueryFlags(queries, q.watermarks, q.keys)
}

// refuseQueries refuses a flow file with queries in a command that would
// take it for a flow of tables: query flows run with ferry sync and ferry
// run (and are dropped with ferry drop) only, so far.
func refuseQueries(cmd *cobra.Command, cfg *flow.Config) error {
	if len(cfg.Queries) == 0 || cmd.Name() == "sync" || cmd.Name() == "drop" || cmd.Name() == "run" {
		return nil
	}
	return errs.BadConfig(fmt.Sprintf("the flow has queries, and ferry %s does not run query replication yet", cmd.Name()),
		"run it with ferry sync (single process) or ferry run (scale-out); see docs/query-replication.md")
}

// queryRun is what ferry sync was asked besides a query flow's config,
// for what a query flow refuses.
type queryRun struct {
	restart, reverse bool
	progress         string
	verify           time.Duration
	ui               uiFlags
}

// runQuerySync runs a query replication flow (ferry sync --query): its
// runs log one line each; without --every it runs once and exits.
func runQuerySync(ctx context.Context, g *globals, cfg *flow.Config, run queryRun) error {
	g.addSecrets(cfg.Source, cfg.Destination)
	if ctx == nil {
		ctx = context.Background()
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	for _, r := range []struct {
		set  bool
		what string
	}{
		{run.reverse, "--reverse"}, {run.verify > 0, "--verify"},
	} {
		if r.set {
			return errs.BadConfig(r.what+" with --query: not for query replication yet", "leave it out")
		}
	}
	if err := checkProgress(run.progress); err != nil {
		return err
	}
	if run.ui.token != "" {
		g.scrubber.AddSecret(run.ui.token)
	}
	out, err := openOutput(ctx, g, run.ui, run.progress, false)
	if err != nil {
		return err
	}
	defer out.close()
	log := out.log
	// The dashboard shows the runs (engine.QueryFlow.Snapshot); health
	// answers ready while the flow runs.
	mon, err := startMonitor(ctx, g, cfg, out.ln, run.ui, log)
	if err != nil {
		return err
	}
	err = querySync(ctx, cfg, run, log, mon)
	mon.finish(ctx, err, false)
	return err
}

// querySync runs the query flow for runQuerySync, attached to the
// dashboard when there is one.
func querySync(ctx context.Context, cfg *flow.Config, run queryRun, log *slog.Logger, mon *monitor) error {
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
	defer shareCores(log, src, dst)()
	name := cfg.FlowName()
	store, err := state.Open(ctx, cfg.StateDir, name)
	if err != nil {
		if errors.Is(err, state.ErrLocked) {
			return &errs.ConfigError{Msg: err.Error(), Fix: "wait for it to finish or stop it; use --name to run another flow"}
		}
		return err
	}
	defer closeLogged(log, "state", store)
	qf, err := engine.NewQueryFlow(*cfg, src, dst, store, log)
	if err != nil {
		return err
	}
	if mon.dash != nil {
		mon.dash.SetStatePath(store.Path())
		mon.dash.Attach(qf.Snapshot)
	}
	log.Info("flow starting", "flow", name, "source", errs.Redact(cfg.Source), "destination", errs.Redact(cfg.Destination),
		"mode", "query", "queries", len(cfg.Queries), "every", cfg.Every, "state", store.Path())
	stop, abort, planned, release := signals(ctx, log)
	defer release()
	err = qf.Prepare(stop)
	planned()
	if err != nil {
		if stop.Err() != nil {
			log.Info("flow stopped before it started", "flow", name)
			return nil
		}
		return err
	}
	if run.restart {
		if err := qf.StartOver(ctx); err != nil {
			return err
		}
	}
	mon.ready()
	if err := qf.Run(abort, stop); err != nil {
		return err
	}
	log.Info("flow finished", "flow", name, "stopped", stop.Err() != nil)
	return nil
}
