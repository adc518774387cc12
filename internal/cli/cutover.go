package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/state"
	"github.com/ferrydb/ferry/verify"
)

// cutoverPoll is how often a running ferry sync looks for a cutover request,
// and how often ferry cutover looks for its answer.
var cutoverPoll = 500 * time.Millisecond

// stepVerify names ferry cutover --verify in the report.
const stepVerify = "verify"

func newCutoverCmd(g *globals) *cobra.Command {
	var ff flowFlags
	var verifyAll, reverse bool
	var maxDiffs int
	cmd := &cobra.Command{
		Use:   "cutover [SOURCE DESTINATION]",
		Short: "Finish a flow at the source's current position so the destination can take the traffic",
		Long: `cutover finishes a flow started with ferry sync: it takes the source's
position at this moment, applies every change up to it, runs the finishing
steps, optionally verifies every table (--verify), prints a report and exits 0.

Stop the application's writes to the source first: changes the source takes
after the request are not carried.

If a ferry sync runs the flow, cutover hands it the request (through a file
beside the flow's state, which the sync looks for every half second) and prints
its report; that ferry sync then exits 0. If none runs, cutover resumes the flow
itself. Name the flow as ferry sync did: the same source, destination and table
selection, or the same --name and --state-dir.

A flow whose copy has not finished is refused (exit 2, with the copy's progress).
A second cutover while one runs waits for the same one and prints the same
report. Exit code 0 when the cutover is done (and --verify found every table
equal), 1 when it failed or --verify found a difference, 2 for a usage error.

With --reverse it prepares the way back: it checks first that the
destination can be a change source (exit 2 before draining if not), then
records the destination's position at the cutover and prints the command
that runs the reverse flow (ferry sync DESTINATION SOURCE --reverse).

See docs/cutover.md for the runbook. Scale-out flows use ferry flow cutover.`,
		Example: `  # while 'ferry sync SRC DST' runs, after the application's writes stopped
  ferry cutover 'postgres://ferry@old/shop' 'postgres://ferry@new/shop' --verify

  # a flow named at sync time
  ferry cutover --name shop -f flow.yaml

  # keep a way back: the new database's changes can then flow back
  ferry cutover @old @new --name shop --reverse
  ferry sync @new @old --name shop --reverse`,
		Args: cobra.RangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := ff.checkedPairConfig(cmd, g, args)
			if err != nil {
				return err
			}
			return runCutover(cmd, g, cfg, verifyAll, reverse, maxDiffs)
		},
	}
	ff.register(cmd.Flags(), true)
	ff.registerConnections(cmd.Flags())
	// A cutover runs to its end, not --until anything.
	cmd.Flags().MarkHidden("until") //nolint:errcheck // the flag exists
	cmd.Flags().BoolVar(&verifyAll, "verify", false, "verify every table after the cutover, as ferry verify does; exit 1 on a difference")
	cmd.Flags().IntVar(&maxDiffs, "max-diffs", 20, "keys listed per differing table with --verify")
	cmd.Flags().BoolVar(&reverse, "reverse", false, "prepare the way back: record the destination's position at the cutover, for ferry sync DESTINATION SOURCE --reverse to carry the changes made there back to the source")
	return cmd
}

func runCutover(cmd *cobra.Command, g *globals, cfg *flow.Config, verifyAll, reverse bool, maxDiffs int) error {
	ctx := cmd.Context()
	log, err := g.logger(g.stderr)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	name := cfg.FlowName()
	if ok, err := state.Exists(cfg.StateDir, name); err != nil {
		return err
	} else if !ok {
		return errs.BadConfig(fmt.Sprintf("flow %q does not exist: it has no state in %s", name, cfg.StateDir),
			"start it with ferry sync and the same source, destination and options (or the same --name and --state-dir), and cut over once its copy is done")
	}
	if reverse {
		if err := checkReverseCutover(ctx, cfg); err != nil {
			return err
		}
	}
	at := time.Now()
	for {
		running, err := state.Running(cfg.StateDir, name)
		if err != nil {
			return err
		}
		if !running {
			err := cutoverHere(ctx, g, cfg, at, log)
			if err == nil {
				break
			}
			if !errors.Is(err, state.ErrLocked) {
				return err
			}
		}
		// A ferry sync runs the flow (or took it first): it cuts over.
		if at, err = state.RequestCutover(cfg.StateDir, name, at); err != nil {
			return err
		}
		log.Info("a ferry sync runs the flow: handed it the cutover request; waiting for its report", "flow", name, "requested", at)
		answered, err := awaitCutover(ctx, cfg.StateDir, name, &at, log)
		if err != nil {
			return err
		}
		if answered {
			break
		}
		log.Info("the ferry sync ended without cutting over; cutting over here", "flow", name)
	}
	out, err := readCutover(cfg.StateDir, name, at)
	if err != nil {
		return err
	}
	if out == nil {
		return fmt.Errorf("flow %q: the cutover left no report in %s; run ferry cutover again", name, state.CutoverReportPath(cfg.StateDir, name))
	}
	if err := out.err(); err != nil {
		return err
	}
	var back *state.ReverseStart
	if reverse {
		rec, err := startReverse(ctx, cfg, out.Report, log)
		if err != nil {
			return fmt.Errorf("cutover done, but the way back was not prepared (run ferry cutover --reverse again before switching the application): %w", err)
		}
		back = &rec
	}
	var verified []*verify.Result
	if verifyAll {
		began := time.Now()
		vcfg := *cfg
		if verified, err = verifyFlow(cmd, &vcfg, verifyRun{maxDiffs: maxDiffs}); err != nil {
			return fmt.Errorf("cutover done, but verify failed: %w", err)
		}
		out.Report.Steps = append(out.Report.Steps, engine.CutoverStep{Name: stepVerify, Seconds: time.Since(began).Seconds(), Detail: verifiedDetail(verified)})
	}
	printCutover(cmd.OutOrStdout(), name, out.Report, verified)
	if back != nil {
		printReverseStart(cmd.OutOrStdout(), cfg, *back)
	}
	if differ := countDiffering(verified); differ > 0 {
		return diffResult{tables: differ}
	}
	return nil
}

// cutoverHere runs the flow in this process to its cutover at time at. It
// returns an error wrapping state.ErrLocked when another process runs it.
func cutoverHere(ctx context.Context, g *globals, cfg *flow.Config, at time.Time, log *slog.Logger) error {
	mon, err := startMonitor(ctx, g, cfg, nil, uiFlags{}, log)
	if err != nil {
		return err
	}
	runErr, stopped := syncFlow(ctx, g, cfg, syncRun{progress: "log", cutover: at}, nil, log, mon)
	mon.finish(ctx, runErr, stopped)
	if runErr == nil && stopped {
		return fmt.Errorf("flow %q: stopped before the cutover finished; run ferry cutover again", cfg.FlowName())
	}
	return runErr
}

// awaitCutover waits for the report of the request at *at from the process
// running the flow. It returns false when that process ended without
// answering, so the flow can be cut over here. A request that vanished
// unanswered (the sync was restarted, which drops requests nobody ran) is
// made again, and *at becomes its time.
func awaitCutover(ctx context.Context, dir, name string, at *time.Time, log *slog.Logger) (bool, error) {
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(cutoverPoll):
		}
		// The process answers before it removes the request, so look at
		// the request first.
		_, pending, err := state.PendingCutover(dir, name)
		if err != nil {
			return false, err
		}
		if out, err := readCutover(dir, name, *at); err != nil || out != nil {
			return out != nil, err
		}
		running, err := state.Running(dir, name)
		if err != nil {
			return false, err
		}
		if !running {
			return false, nil
		}
		if !pending {
			if *at, err = state.RequestCutover(dir, name, time.Now()); err != nil {
				return false, err
			}
			log.Info("the cutover request was dropped by a restarted ferry sync; asked again", "flow", name, "requested", *at)
		}
	}
}

// cutoverOutcome is how the process that ran a cutover request answers it,
// in the report file beside the flow's state.
type cutoverOutcome struct {
	Requested time.Time             `json:"requested"`
	Report    *engine.CutoverReport `json:"report,omitempty"`
	// Error is why there was no cutover, scrubbed; Refused marks a refusal
	// (exit 2), with Fix saying what to do.
	Error   string `json:"error,omitempty"`
	Fix     string `json:"fix,omitempty"`
	Refused bool   `json:"refused,omitempty"`
}

func (o *cutoverOutcome) err() error {
	switch {
	case o.Error == "":
		return nil
	case o.Refused:
		return errs.BadConfig(o.Error, o.Fix)
	}
	return errors.New(o.Error)
}

// answerCutover writes the outcome of the request at time at and removes
// the request: the report is there before the request is gone.
func answerCutover(g *globals, dir, name string, at time.Time, report *engine.CutoverReport, failure error) error {
	out := cutoverOutcome{Requested: at, Report: report}
	var ce *errs.ConfigError
	switch {
	case failure == nil:
	case errors.As(failure, &ce):
		msg := ce.Msg
		if ce.Err != nil {
			msg += ": " + ce.Err.Error()
		}
		out.Error, out.Fix, out.Refused = g.scrub(msg), g.scrub(ce.Fix), true
	default:
		out.Error = g.scrub(failure.Error())
	}
	b, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("cutover report: %w", err)
	}
	if err := state.WriteCutoverReport(dir, name, b); err != nil {
		return err
	}
	return state.ClearCutover(dir, name)
}

// prepareCutoverHere checks, holding the flow's lock, that ferry cutover
// can run the flow to its cutover here, and makes the request that a second
// ferry cutover waits for. The flow keeps the mode it was started in unless
// --mode says otherwise (which Prepare refuses when it differs).
func prepareCutoverHere(ctx context.Context, g *globals, cfg *flow.Config, store *state.Store, at time.Time) error {
	name := cfg.FlowName()
	if err := state.ClearCutover(cfg.StateDir, name); err != nil {
		return err
	}
	if _, err := state.RequestCutover(cfg.StateDir, name, at); err != nil {
		return err
	}
	plan, err := store.Meta(ctx, "plan")
	if err != nil {
		return err
	}
	if plan == "" {
		err := errs.BadConfig(fmt.Sprintf("flow %q has not started its copy: it has no plan yet", name),
			"run ferry sync to copy it, and cut over once its copy is done")
		if aerr := answerCutover(g, cfg.StateDir, name, at, nil, err); aerr != nil {
			return errors.Join(err, aerr)
		}
		return err
	}
	if cfg.Mode == flow.ModeAuto {
		mode, err := store.Meta(ctx, "mode")
		if err != nil {
			return err
		}
		cfg.Mode = flow.Mode(mode)
	}
	return nil
}

// answerRunCutover answers the cutover request at time at once the flow's
// Run returned.
func answerRunCutover(g *globals, dir, name string, at time.Time, eng *engine.Engine, runErr error, stopped bool) error {
	report, ok := eng.CutoverReport()
	switch {
	case runErr != nil:
		return answerCutover(g, dir, name, at, nil, fmt.Errorf("the flow failed during the cutover: %w", runErr))
	case !ok && stopped:
		return answerCutover(g, dir, name, at, nil, errors.New("the flow was stopped before the cutover finished; run ferry cutover again"))
	case !ok:
		return answerCutover(g, dir, name, at, nil, errors.New("the flow ended before the cutover finished; run ferry cutover again"))
	}
	return answerCutover(g, dir, name, at, &report, nil)
}

// readCutover reads the answer to a request made at time at or later; nil
// when there is none yet.
func readCutover(dir, name string, at time.Time) (*cutoverOutcome, error) {
	b, ok, err := state.CutoverReport(dir, name)
	if err != nil || !ok {
		return nil, err
	}
	var out cutoverOutcome
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("cutover report %s: %w", state.CutoverReportPath(dir, name), err)
	}
	if out.Requested.Before(at) {
		return nil, nil // an earlier cutover's
	}
	if out.Error == "" && out.Report == nil {
		return nil, fmt.Errorf("cutover report %s holds neither a report nor an error", state.CutoverReportPath(dir, name))
	}
	return &out, nil
}

// cutoverWatch is a running ferry sync's side of the request: it looks for
// a request every cutoverPoll and hands it to the engine. A refused request
// (the copy is not done) is answered at once and the flow goes on.
type cutoverWatch struct {
	g         *globals
	dir, name string
	eng       *engine.Engine
	log       *slog.Logger

	done     chan struct{}
	accepted time.Time // set before done is closed
}

func watchCutover(ctx context.Context, g *globals, dir, name string, eng *engine.Engine, log *slog.Logger) *cutoverWatch {
	w := &cutoverWatch{g: g, dir: dir, name: name, eng: eng, log: log, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		w.accepted = w.watch(ctx)
	}()
	return w
}

func (w *cutoverWatch) watch(ctx context.Context) time.Time {
	t := time.NewTicker(cutoverPoll)
	defer t.Stop()
	warned := false
	for {
		at, ok, err := state.PendingCutover(w.dir, w.name)
		switch {
		case err != nil && !warned:
			w.log.Warn("cannot read the cutover request", "error", err)
			warned = true
		case ok:
			err := w.eng.RequestCutover(ctx, at)
			if err == nil {
				w.log.Info("cutover requested", "requested", at)
				return at
			}
			if ctx.Err() != nil {
				return time.Time{}
			}
			w.log.Warn("cutover refused", "error", err)
			if aerr := answerCutover(w.g, w.dir, w.name, at, nil, err); aerr != nil {
				w.log.Warn("cannot answer the cutover request", "error", aerr)
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}
		case <-t.C:
		}
	}
}

// wait stops watching and returns the request the engine accepted, zero
// when none.
func (w *cutoverWatch) wait(stop func()) time.Time {
	stop()
	<-w.done
	return w.accepted
}

func verifiedDetail(results []*verify.Result) string {
	if differ := countDiffering(results); differ > 0 {
		return fmt.Sprintf("%d of %d table(s) differ", differ, len(results))
	}
	return fmt.Sprintf("all %d table(s) equal", len(results))
}

func countDiffering(results []*verify.Result) int {
	n := 0
	for _, r := range results {
		if !r.Equal() {
			n++
		}
	}
	return n
}

// printCutover prints the report of a cutover, and what differs when
// --verify found a difference.
func printCutover(out io.Writer, name string, r *engine.CutoverReport, verified []*verify.Result) {
	fmt.Fprintf(out, "cutover of flow %q done\n", name)
	fmt.Fprintf(out, "  requested  %s\n", r.Requested.UTC().Format(time.RFC3339))
	if r.Position != "" {
		fmt.Fprintf(out, "  position   %s (the source's position at the request; every change up to it is applied)\n", r.Position)
		behind := fmt.Sprintf("%s change(s) drained", humanize.Comma(r.Changes))
		if r.LagBytes != nil {
			behind = fmt.Sprintf("%s of the source's log, %s", humanize.Bytes(uint64(max(*r.LagBytes, 0))), behind)
		}
		fmt.Fprintf(out, "  behind     %s\n", behind)
	} else {
		fmt.Fprintf(out, "  position   none: the flow has no change data capture, nothing to drain\n")
	}
	var names []string
	for _, s := range r.Steps {
		names = append(names, s.Name)
		line := fmt.Sprintf("  %-10s %.1fs", s.Name, s.Seconds)
		if s.Detail != "" {
			line += "  " + s.Detail
		}
		fmt.Fprintln(out, line)
	}
	if len(names) == 0 {
		names = append(names, "none")
	}
	fmt.Fprintf(out, "  steps run  %s\n", strings.Join(names, ", "))
	for _, v := range verified {
		if !v.Equal() {
			fmt.Fprintln(out, describe(v))
		}
	}
}
