package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/scaleout"
	"github.com/ferrydb/ferry/state"
	"github.com/ferrydb/ferry/verify"
)

func newFlowCmd(g *globals) *cobra.Command {
	var tf temporalFlags
	cmd := &cobra.Command{
		Use:   "flow",
		Short: "List, inspect and control flows running on Temporal (scale-out mode)",
		Example: `  ferry flow list --temporal 127.0.0.1:7233
  ferry flow status shop --temporal 127.0.0.1:7233
  ferry flow pause shop && ferry flow resume shop
  ferry flow cutover shop --verify   # drain to the source's position now, finish, verify; the flow ends
  ferry flow verify shop    # compare every table on a worker
  ferry flow cancel shop    # stop now and release the replication slot`,
	}
	tf.register(cmd.PersistentFlags())
	withClient := func(cmd *cobra.Command, fn func(ctx context.Context, c clientConn) error) error {
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		c, err := tf.dial(ctx, g, logNothing(), "", nil)
		if err != nil {
			return err
		}
		defer c.Close()
		return fn(ctx, clientConn{c: c, tf: tf})
	}
	var asJSON bool
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the flows, newest first, with phase, progress, lag, health and workers",
		Example: "  ferry flow list --temporal 127.0.0.1:7233",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClient(cmd, func(ctx context.Context, c clientConn) error {
				flows, err := newTemporalFleet(c.c, c.tf.taskQueue, g.scrub, 0).Flows(ctx)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(g.stdout, flows)
				}
				printFlows(g.stdout, flows)
				return nil
			})
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	var statusJSON bool
	status := &cobra.Command{
		Use:     "status NAME",
		Short:   "Show a flow's progress: tables, partitions, workers, change data capture",
		Example: "  ferry flow status shop --temporal 127.0.0.1:7233\n  ferry flow status shop --json | jq .state.cdc",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, func(ctx context.Context, c clientConn) error {
				st, err := scaleout.Progress(ctx, c.c, args[0], c.tf.taskQueue)
				if err != nil {
					return notFoundIsConfig(err)
				}
				if statusJSON {
					return writeJSON(g.stdout, st)
				}
				printStatus(g.stdout, st)
				return nil
			})
		},
	}
	status.Flags().BoolVar(&statusJSON, "json", false, "print the whole status as JSON")
	cmd.AddCommand(list, status, newFlowCutoverCmd(g, withClient), newFlowVerifyCmd(g, withClient), newFlowSnapshotCmd(g, withClient))
	for _, s := range []struct{ signal, short string }{
		{actionPause, "Pause a flow: no new partition starts; change data capture checkpoints and waits"},
		{actionResume, "Resume a paused flow"},
		{actionCancel, "Cancel a flow: running tasks stop, its replication slot and checkpoints are released"},
	} {
		cmd.AddCommand(&cobra.Command{
			Use:     s.signal + " NAME",
			Short:   s.short,
			Example: fmt.Sprintf("  ferry flow %s shop --temporal 127.0.0.1:7233", s.signal),
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return withClient(cmd, func(ctx context.Context, c clientConn) error {
					msg, _, err := controlFlow(ctx, c.c, args[0], s.signal)
					if err != nil {
						return err
					}
					fmt.Fprintln(g.stdout, msg)
					return nil
				})
			},
		})
	}
	return cmd
}

func newFlowCutoverCmd(g *globals, withClient func(*cobra.Command, func(context.Context, clientConn) error) error) *cobra.Command {
	var verifyAll, reverse bool
	var maxDiffs int
	cmd := &cobra.Command{
		Use:   "cutover NAME",
		Short: "Cut a flow over: drain to the source's position now, run the finishing steps, end the flow",
		Long: `Cut a flow over, as ferry cutover does for a flow ferry sync runs: the source's
position at this moment is read, change data capture applies every change up to it
and stops, the finishing steps run (the destination's sequences set to the source's
values, the schema finished), the flow's replication slot is released and the flow
ends. Stop the application's writes first: changes the source takes after the
request are not carried. The command waits for the flow's end and prints the
report; ferry run, attached to the flow, prints it too and exits 0. With --verify,
a worker then compares every table as ferry flow verify does.

A flow whose copy has not finished is refused (exit 2, with the copy's progress); a
second request is harmless. A flow without change data capture (--mode snapshot)
ends after its copy; its cutover, asked for then, runs the finishing steps alone
on a worker.

With --reverse it prepares the way back, as ferry cutover --reverse does: a
worker checks first that the destination can be a change source (exit 2
before anything is drained), the flow keeps its replication slot at the
source, and after the finishing steps the reverse flow's start is created at
the destination and recorded there (and in the flow's state); the report
prints the command that runs the reverse flow (ferry run DESTINATION SOURCE
--reverse --name NAME). Exit codes: 0 when the cutover is done (and --verify
found every table equal), 1 when it failed or --verify found a difference, 2 when
refused.`,
		Example: "  ferry flow cutover shop --temporal 127.0.0.1:7233\n  ferry flow cutover shop --verify\n  ferry flow cutover shop --reverse   # then: ferry run dst src --reverse --name shop",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			return withClient(cmd, func(ctx context.Context, c clientConn) error {
				// report verifies when asked, prints the report and says
				// whether a table differs.
				report := func(cut *engine.CutoverReport, back *state.ReverseStart) error {
					var verified []*verify.Result
					if verifyAll {
						began := time.Now()
						var err error
						if verified, err = scaleout.VerifyFlow(ctx, c.c, name, maxDiffs); err != nil {
							return fmt.Errorf("cutover done, but verify failed: %w", err)
						}
						cut.Steps = append(cut.Steps, engine.CutoverStep{Name: stepVerify, Seconds: time.Since(began).Seconds(), Detail: verifiedDetail(verified)})
					}
					printCutover(g.stdout, name, cut, verified)
					if back != nil {
						printScaleOutReverse(g.stdout, c.tf, *back)
					}
					if differ := countDiffering(verified); differ > 0 {
						return diffResult{tables: differ}
					}
					return nil
				}
				var ans scaleout.CutoverAnswer
				var err error
				if reverse {
					ans, err = scaleout.RequestCutover(ctx, c.c, name, scaleout.CutoverRequest{Reverse: true})
				} else {
					var a *scaleout.CutoverAnswer
					if _, a, err = controlFlow(ctx, c.c, name, actionCutover); a != nil {
						ans = *a
					}
				}
				if errors.Is(err, scaleout.ErrNoFlow) && reverse {
					return errs.BadConfig(fmt.Sprintf("flow %q is not running: --reverse needs a flow that streams changes", name),
						"ferry flow status "+name+" shows how it ended")
				}
				if errors.Is(err, scaleout.ErrNoFlow) {
					// An ended flow: one without change data capture (--mode
					// snapshot) cuts over with its finishing steps alone.
					cut, err := scaleout.FinishEnded(ctx, c.c, name)
					if err != nil {
						return notFoundIsConfig(err)
					}
					return report(cut, nil)
				}
				if err != nil {
					return notFoundIsConfig(err)
				}
				if ans.Undrained {
					fmt.Fprintln(g.stdout, cutoverMessage(name, ans))
					return nil
				}
				fmt.Fprintf(g.stdout, "%s; waiting for its end\n", cutoverMessage(name, ans))
				var st scaleout.FlowState
				if err := c.c.GetWorkflow(ctx, name, "").Get(ctx, &st); err != nil {
					return flowOutcome(name, err)
				}
				if st.Cut == nil || !st.Cut.Done {
					return fmt.Errorf("flow %s ended (%s) without finishing its cutover", name, st.Phase)
				}
				if reverse && (st.Reverse == nil || st.Reverse.Start == "") {
					return fmt.Errorf("flow %s cut over, but the way back was not recorded", name)
				}
				var back *state.ReverseStart
				if reverse {
					back = st.Reverse
				}
				return report(st.Cut, back)
			})
		},
	}
	cmd.Flags().BoolVar(&verifyAll, "verify", false, "verify every table after the cutover, as ferry flow verify does; exit 1 on a difference")
	cmd.Flags().IntVar(&maxDiffs, "max-diffs", 20, "keys listed per differing table with --verify")
	cmd.Flags().BoolVar(&reverse, "reverse", false, "prepare the way back: keep the source's slot and record the destination's position at the cutover, for ferry run DESTINATION SOURCE --reverse")
	return cmd
}

func newFlowSnapshotCmd(g *globals, withClient func(*cobra.Command, func(context.Context, clientConn) error) error) *cobra.Command {
	return &cobra.Command{
		Use:   "snapshot NAME TABLE...",
		Short: "Copy tables of a running flow again while its changes keep streaming",
		Long: `Copy tables of a running flow again, as ferry snapshot does for a flow ferry sync
runs: an incremental snapshot, read in chunks and merged with the change
stream, so the destination table ends equal to the source's while the flow keeps
streaming. A worker records the request with the flow's checkpoints at its
destination; the worker running the flow's change data capture finds it within a
few seconds and copies the tables (the dashboard shows each table's progress, and a
cutover waits for them). A table the flow does not take, one without a primary key,
or a flow that is not streaming is refused (exit 2).`,
		Example: "  ferry flow snapshot shop public.orders --temporal 127.0.0.1:7233",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			var tables []model.Namespace
			for _, a := range args[1:] {
				ns, err := model.ParseNamespace(a)
				if err != nil {
					return usageError{fmt.Errorf("table %q: %w", a, err)}
				}
				tables = append(tables, ns)
			}
			return withClient(cmd, func(ctx context.Context, c clientConn) error {
				if err := scaleout.RequestSnapshot(ctx, c.c, name, tables); err != nil {
					return notFoundIsConfig(err)
				}
				fmt.Fprintf(g.stdout, "flow %s: copying %s again while changes stream; ferry flow status and the dashboard show the progress\n", name, strings.Join(args[1:], ", "))
				return nil
			})
		},
	}
}

func newFlowVerifyCmd(g *globals, withClient func(*cobra.Command, func(context.Context, clientConn) error) error) *cobra.Command {
	var maxDiffs int
	var asJSON bool
	var on onlineFlags
	cmd := &cobra.Command{
		Use:   "verify NAME",
		Short: "Compare a flow's source and destination row by row on a worker; exit 1 if they differ",
		Long: `Compare every table of a scale-out flow, running or ended, with its destination
table, as ferry verify does (row counts, bucket hashes, then the keys that differ).
The comparison runs on a worker polling the flow's task queue, since only workers
hold the connections' credentials; this command waits for it and prints the result.
Each table is one activity; a large table both databases hash themselves
(pushdown) is split into ranges of its buckets, one activity each, so that
several workers share it (at most the flow's --parallel activities at once).

While changes still stream, rows changed since they were read may show as
different: verify a flow that is cut over, or whose source is quiet, or use
--online. With --online, a key that differs is read again once the flow has
applied everything the source had committed when the difference was seen (the
flow's applied position is in the checkpoints its destination keeps), up to
--rechecks times; the activity waits for that, heartbeating. A key that still
differs while its source row stayed the same is a difference; one whose source
row changed at every re-check is pending (listed, not a failure).

Exit code 0 when every table is equal, 1 when any differs or the comparison
failed, 2 for a usage error (--online on a flow that does not stream).`,
		Example: "  ferry flow verify shop --temporal 127.0.0.1:7233\n  ferry flow verify shop --json\n  ferry flow verify shop --online   # while the flow streams changes",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, func(ctx context.Context, c clientConn) error {
				rechecks := 0
				if on.enabled {
					if on.rechecks < 1 {
						return usageError{fmt.Errorf("--rechecks %d: give at least 1", on.rechecks)}
					}
					rechecks = on.rechecks
				}
				res, err := scaleout.VerifyFlowOnline(ctx, c.c, args[0], maxDiffs, rechecks)
				if err != nil {
					return notFoundIsConfig(err)
				}
				return printVerified(g.stdout, res, asJSON)
			})
		},
	}
	cmd.Flags().IntVar(&maxDiffs, "max-diffs", 20, "keys listed per differing table")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the results as JSON")
	cmd.Flags().BoolVar(&on.enabled, "online", false, "verify while the flow streams: re-check differing keys once the flow passed the source's position")
	cmd.Flags().IntVar(&on.rechecks, "rechecks", 3, "with --online: how many times a differing key is read again before it counts")
	return cmd
}

type clientConn struct {
	c  client.Client
	tf temporalFlags
}

func notFoundIsConfig(err error) error {
	if errors.Is(err, scaleout.ErrNoFlow) {
		return errs.BadConfig(err.Error(), "ferry flow list shows the flows")
	}
	return err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printStatus shows a flow's status for a person.
func printStatus(w io.Writer, st *scaleout.Status) {
	if st.Query != nil {
		printQueryStatus(w, st)
		return
	}
	s := st.Snapshot()
	fmt.Fprintf(w, "flow %s: %s, phase %s", st.Flow, st.Status, st.State.Phase)
	if st.State.Paused {
		fmt.Fprint(w, " (paused)")
	}
	fmt.Fprintf(w, "\n%s -> %s, mode %s, elapsed %s\n", st.Options.Source, st.Options.Destination, st.State.Mode,
		time.Duration(s.Elapsed*float64(time.Second)).Round(time.Second))
	if st.Failure != "" {
		fmt.Fprintf(w, "error: %s\n", st.Failure)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nTABLE\tROWS\tESTIMATED\tPARTITIONS\tRUNNING\tDONE")
	for _, t := range s.Tables {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d\t%v\n", t.Table, humanize.Comma(t.RowsCopied), humanize.Comma(t.RowsEstimated),
			t.PartitionsDone, t.Partitions, t.PartitionsRunning, t.Done)
	}
	tw.Flush() //nolint:errcheck // writing to stdout
	var running []string
	for _, p := range st.State.Parts {
		if p.State == scaleout.PartRunning {
			running = append(running, fmt.Sprintf("  %s: %s rows (attempt %d, resumed at %s) on %s", p.ID, humanize.Comma(p.Rows), max(p.Attempts, 1), humanize.Comma(p.ResumedRows), p.Worker))
		}
	}
	if len(running) > 0 {
		fmt.Fprintf(w, "\nrunning partitions:\n%s\n", strings.Join(running, "\n"))
	}
	if len(st.Waiting) > 0 {
		fmt.Fprintf(w, "waiting for a worker: %s\n", strings.Join(st.Waiting, ", "))
	}
	var snaps []string
	for _, t := range s.Tables {
		if r := t.Resnapshot; r != nil {
			state := "so far"
			if r.Done {
				state = "done"
			}
			snaps = append(snaps, fmt.Sprintf("  %s: %s rows copied, %s", t.Table, humanize.Comma(r.Rows), state))
		}
	}
	if len(snaps) > 0 {
		fmt.Fprintf(w, "\nincremental snapshots (copied while changes stream):\n%s\n", strings.Join(snaps, "\n"))
	}
	if st.State.Phase == scaleout.PhaseCDC || st.State.CDC.Activities > 0 {
		lag := "unknown"
		if s.CDC.LagSeconds >= 0 {
			lag = fmt.Sprintf("%.1fs", s.CDC.LagSeconds)
		}
		fmt.Fprintf(w, "\nchange data capture: position %s, %s changes received, %s applied, lag %s\n",
			st.State.CDC.Position, humanize.Comma(st.State.CDC.Received), humanize.Comma(st.State.CDC.Applied), lag)
	}
	if c := st.State.Cut; c != nil {
		step := "done"
		if !c.Done {
			step = "running step " + c.Step
		}
		fmt.Fprintf(w, "\ncutover (requested %s): %s; position %s\n", c.Requested.UTC().Format(time.RFC3339), step, orUnknown(string(c.Position)))
		for _, s := range c.Steps {
			fmt.Fprintf(w, "  %-10s %.1fs  %s\n", s.Name, s.Seconds, s.Detail)
		}
	}
	if r := st.State.Reverse; r != nil && r.Start != "" {
		fmt.Fprintf(w, "\nway back: flow %s starts at %s at the destination (recorded there); run it with ferry run %s %s --reverse --name %s\n",
			r.Reverse, r.Start, r.Destination, r.Source, r.Forward)
	}
	if r := st.State.ReverseOf; r != nil {
		fmt.Fprintf(w, "\nway back of flow %s: streams from %s; the old database had no change to the flow's tables after the cutover (%s)\n", r.Forward, r.Start, r.ForwardEnd)
	}
	fmt.Fprintln(w, "\nworkers:")
	if len(st.Workers) == 0 {
		fmt.Fprintln(w, "  none polling")
	}
	for _, wk := range st.Workers {
		doing := "idle"
		if len(wk.Activities) > 0 {
			doing = strings.Join(wk.Activities, ", ")
		}
		fmt.Fprintf(w, "  %s: %s\n", wk.Identity, doing)
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "not read yet"
	}
	return s
}
