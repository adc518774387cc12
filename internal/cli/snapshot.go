package cli

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/state"
)

// snapshotWait is how long ferry snapshot waits for the running flow to
// take its request.
var snapshotWait = 30 * time.Second

func newSnapshotCmd(g *globals) *cobra.Command {
	var ff flowFlags
	cmd := &cobra.Command{
		Use:   "snapshot [SOURCE DESTINATION] TABLE...",
		Short: "Copy tables of a running flow again while its changes keep streaming",
		Long: `snapshot copies tables of a flow started with ferry sync again, while the flow
keeps applying changes: an incremental snapshot. Each table is read in chunks of
--batch-rows rows, with no lock and no long transaction, and each
chunk is merged with the change stream (a change of a row wins over the row read),
so the destination table ends equal to the source's. Use it when a destination
table was damaged (rows deleted or changed behind the flow's back).

Rows the destination has and the source does not are not removed: delete them
first (or empty the table) if the destination gained rows of its own.

If a ferry sync runs the flow, snapshot hands it the request (through a file
beside the flow's state) and exits once it was taken; the sync shows each table's
progress (the dashboard too), and a cutover waits for the copies to finish. If none
runs, the request waits for the next ferry sync of the flow. The progress is kept
with the flow's checkpoints: a flow stopped or killed mid-table goes on from the
last chunk applied. Name the flow as ferry sync did.

Exit code 0 when the request was taken or left for the next run, 2 when it was
refused (a table the flow does not take, a table without a primary key).`,
		Example: `  # while 'ferry sync SRC DST' runs
  ferry snapshot 'postgres://ferry@old/shop' 'postgres://ferry@new/shop' public.orders public.items

  # a flow named at sync time
  ferry snapshot -f flow.yaml public.orders`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var pair []string
			if strings.Contains(args[0], "://") || strings.HasPrefix(args[0], "@") {
				if len(args) < 3 {
					return usageError{fmt.Errorf("snapshot needs SOURCE, DESTINATION and at least one TABLE")}
				}
				pair, args = args[:2], args[2:]
			}
			cfg, err := ff.checkedPairConfig(cmd, g, pair)
			if err != nil {
				return err
			}
			for _, a := range args {
				if _, err := model.ParseNamespace(a); err != nil {
					return usageError{fmt.Errorf("table %q: %w", a, err)}
				}
			}
			return runSnapshot(cmd, g, cfg.StateDir, cfg.FlowName(), args)
		},
	}
	ff.register(cmd.Flags(), true)
	ff.registerConnections(cmd.Flags())
	return cmd
}

func runSnapshot(cmd *cobra.Command, g *globals, dir, name string, tables []string) error {
	ctx := cmd.Context()
	log, err := g.logger(g.stderr)
	if err != nil {
		return err
	}
	if ok, err := state.Exists(dir, name); err != nil {
		return err
	} else if !ok {
		return errs.BadConfig(fmt.Sprintf("flow %q does not exist: it has no state in %s", name, dir),
			"start it with ferry sync and the same source, destination and options (or the same --name and --state-dir); its first copy takes every table")
	}
	req, err := state.RequestSnapshot(dir, name, tables)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	deadline := time.Now().Add(snapshotWait)
	for {
		taken, refusal, err := state.SnapshotAnswer(req)
		if err != nil {
			return err
		}
		if taken {
			if refusal != "" {
				return &errs.ConfigError{Msg: fmt.Sprintf("flow %q refused the snapshot: %s", name, refusal)}
			}
			fmt.Fprintf(out, "flow %s: copying %s again while changes stream; its ferry sync and dashboard show the progress\n", name, strings.Join(tables, ", "))
			return nil
		}
		running, err := state.Running(dir, name)
		if err != nil {
			return err
		}
		if !running || time.Now().After(deadline) {
			fmt.Fprintf(out, "flow %s: no ferry sync has taken the request yet; it copies %s again when it runs (the request waits in %s)\n", name, strings.Join(tables, ", "), req.Path)
			log.Debug("snapshot request left", "path", req.Path)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(cutoverPoll):
		}
	}
}

// watchSnapshots hands the engine the flow's snapshot requests (ferry
// snapshot) until ctx ends, answering each.
func watchSnapshots(ctx context.Context, dir, name string, eng *engine.Engine, log *slog.Logger) {
	t := time.NewTicker(cutoverPoll)
	defer t.Stop()
	warned := false
	for {
		reqs, err := state.PendingSnapshots(dir, name)
		if err != nil && !warned {
			log.Warn("cannot read the snapshot requests", "error", err)
			warned = true
		}
		for _, r := range reqs {
			var tables []model.Namespace
			var rerr error
			for _, s := range r.Tables {
				ns, err := model.ParseNamespace(s)
				if err != nil {
					rerr = fmt.Errorf("table %q: %w", s, err)
					break
				}
				tables = append(tables, ns)
			}
			if rerr == nil {
				rerr = eng.RequestSnapshot(ctx, tables)
			}
			if ctx.Err() != nil {
				return
			}
			if rerr != nil {
				log.Warn("snapshot refused", "tables", strings.Join(r.Tables, ", "), "error", rerr)
			}
			if err := state.AnswerSnapshot(r, rerr); err != nil {
				log.Warn("cannot answer the snapshot request", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
