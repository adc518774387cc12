package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/scaleout"
	"github.com/ferrydb/ferry/state"
)

// The way back after a cutover (docs/cutover.md#the-way-back): ferry
// cutover --reverse records the destination's position at the cutover
// (state.ReverseStart), and ferry sync DESTINATION SOURCE --reverse runs
// the reverse flow from it, changes only, named <forward>-reverse.

// reverseName is the name of the reverse flow of forward flow.
func reverseName(forward string) string { return forward + "-reverse" }

// checkReverseCutover refuses, before anything is drained, a cutover
// --reverse whose destination cannot be the source of the way back.
func checkReverseCutover(ctx context.Context, cfg *flow.Config) error {
	if len(cfg.Rename) > 0 {
		return errs.BadConfig("--reverse does not support a flow with --rename: the reverse flow would need the renames inverted",
			"cut over without --reverse")
	}
	if cfg.Transforms() {
		return errs.BadConfig("--reverse does not support a flow with transforms (--exclude, --rename-column, --mask, --filter, --compute): the way back would write masked or partial rows into the old database",
			"cut over without --reverse")
	}
	name := cfg.FlowName()
	if ok, err := state.Exists(cfg.StateDir, reverseName(name)); err != nil {
		return err
	} else if ok {
		return errs.BadConfig(fmt.Sprintf("reverse flow %q of flow %q already exists in %s: its start was recorded by an earlier cutover", reverseName(name), name, cfg.StateDir),
			fmt.Sprintf("drop it first (ferry drop DESTINATION SOURCE --name %s), or cut over without --reverse", reverseName(name)))
	}
	dst, err := connector.Open(ctx, cfg.Destination)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	defer dst.Close() //nolint:errcheck // read only
	rs := connector.Discover(dst).ReverseStarter
	if rs == nil {
		return errs.BadConfig(fmt.Sprintf("destination %s cannot be the source of a reverse flow (no change data capture)", errs.Redact(cfg.Destination)),
			"cut over without --reverse")
	}
	if err := rs.CheckReverse(ctx); err != nil {
		return fmt.Errorf("--reverse needs the destination to be a change source: %w", err)
	}
	return nil
}

// startReverse records, once the cutover is done and before the
// application is switched, the destination's position for the reverse
// flow: everything ferry applied there is before it.
func startReverse(ctx context.Context, cfg *flow.Config, cut *engine.CutoverReport, log *slog.Logger) (state.ReverseStart, error) {
	name := cfg.FlowName()
	rec := state.ReverseStart{Forward: name, Reverse: reverseName(name), Source: errs.Redact(cfg.Source),
		Destination: errs.Redact(cfg.Destination), Tables: cfg.Tables, At: cut.Requested, ForwardEnd: cut.Position}
	if cut.Position == "" {
		return rec, errs.BadConfig(fmt.Sprintf("flow %q has no change data capture (--mode snapshot): ferry could not tell whether the source is written after the cutover", name),
			"use --reverse with a flow that streams changes")
	}
	dst, err := connector.Open(ctx, cfg.Destination)
	if err != nil {
		return rec, fmt.Errorf("destination: %w", err)
	}
	defer closeLogged(log, "destination", dst)
	caps := connector.Discover(dst)
	tables, err := engine.SelectTables(ctx, caps.Source, cfg.Tables)
	if err != nil {
		return rec, fmt.Errorf("destination: %w", err)
	}
	var names []model.Namespace
	for _, t := range tables {
		names = append(names, t.Namespace)
	}
	if rec.Start, err = caps.ReverseStarter.StartReverse(ctx, rec.Reverse, names); err != nil {
		return rec, fmt.Errorf("record the reverse flow's start at the destination: %w", err)
	}
	if err := state.WriteReverse(cfg.StateDir, rec); err != nil {
		return rec, err
	}
	log.Info("reverse flow's start recorded at the destination", "flow", rec.Reverse, "position", rec.Start, "tables", len(names))
	return rec, nil
}

// reverseConfig is the config of ferry sync DESTINATION SOURCE --reverse:
// the reverse flow of the forward flow from SOURCE to DESTINATION (--name
// names the forward flow), which was cut over with --reverse.
func (f *flowFlags) reverseConfig(cmd *cobra.Command, args []string, restart bool) (*flow.Config, *state.ReverseStart, error) {
	if len(args) == 1 {
		return nil, nil, usageError{fmt.Errorf("%s --reverse needs both DESTINATION and SOURCE of the forward flow", cmd.Name())}
	}
	if restart {
		return nil, nil, errs.BadConfig("--reverse cannot --restart: the reverse flow's start is the cutover's, and starting over would lose it",
			"leave --restart out; ferry drop DESTINATION SOURCE --name NAME-reverse ends the reverse flow")
	}
	var src, dst string
	if len(args) == 2 {
		src, dst = args[0], args[1]
	}
	cfg, err := f.config(cmd, src, dst)
	if err != nil {
		return nil, nil, err
	}
	fwd := *cfg
	fwd.Source, fwd.Destination = cfg.Destination, cfg.Source
	if err := resolveFlowName(&fwd); err != nil {
		return nil, nil, err
	}
	rec, ok, err := state.ReadReverse(cfg.StateDir, fwd.Name)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, errs.BadConfig(fmt.Sprintf("flow %q was not cut over with --reverse: no reverse start is recorded in %s", fwd.Name, cfg.StateDir),
			"a reverse flow starts at a cutover: run ferry cutover SOURCE DESTINATION --reverse before the application is switched (or give the forward flow's --name and --state-dir)")
	}
	if rec.Source != errs.Redact(fwd.Source) || rec.Destination != errs.Redact(fwd.Destination) {
		return nil, nil, errs.BadConfig(fmt.Sprintf("flow %q was cut over from %s to %s, not from %s to %s", fwd.Name, rec.Source, rec.Destination, errs.Redact(fwd.Source), errs.Redact(fwd.Destination)),
			"give ferry sync --reverse the forward flow's destination first, then its source")
	}
	switch cfg.Mode {
	case flow.ModeAuto, flow.ModeCDC:
	default:
		return nil, nil, errs.BadConfig(fmt.Sprintf("--reverse streams changes only, not --mode %s", cfg.Mode), "leave --mode out")
	}
	if len(cfg.Rename) > 0 {
		return nil, nil, errs.BadConfig("--reverse takes no --rename", "leave --rename out")
	}
	if cfg.Transforms() {
		return nil, nil, errs.BadConfig("--reverse takes no transforms (--exclude, --rename-column, --mask, --filter, --compute)", "leave them out")
	}
	rev := *cfg
	rev.Name = rec.Reverse
	rev.Mode = flow.ModeCDC
	rev.Reverse = true
	if len(rev.Tables) == 0 {
		rev.Tables = rec.Tables
	}
	return &rev, &rec, nil
}

// checkForwardSource runs once, at the reverse flow's first start: it reads
// the forward source's changes after the position the cutover drained to
// (PostgreSQL: from the kept forward slot) up to now, and refuses the
// reverse flow when someone changed a selected table there. Once it passed
// it is recorded, and the forward flow's resources at the old database
// (its slot, which would keep WAL forever) are dropped.
func checkForwardSource(ctx context.Context, cfg *flow.Config, rec state.ReverseStart, log *slog.Logger) error {
	if rec.Checked {
		return nil
	}
	old, err := connector.Open(ctx, cfg.Destination)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	defer closeLogged(log, "destination", old)
	caps := connector.Discover(old)
	if caps.ChangeSource == nil {
		return errs.BadConfig(fmt.Sprintf("%s has no change data capture: ferry cannot tell whether it was written after the cutover", errs.Redact(cfg.Destination)), "")
	}
	tables, err := engine.SelectTables(ctx, caps.Source, rec.Tables)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	changed, err := engine.ChangesSince(ctx, caps, tables, rec.ForwardEnd, rec.Forward)
	if err != nil {
		return fmt.Errorf("read the changes at %s after the cutover: %w", errs.Redact(cfg.Destination), err)
	}
	if len(changed) > 0 {
		var what []string
		for ns, n := range changed {
			what = append(what, fmt.Sprintf("%s (%d change(s))", ns, n))
		}
		sort.Strings(what)
		return errs.BadConfig(fmt.Sprintf("%s was written after the cutover (position %s): %s; the reverse flow would mix the new database's changes with these",
			errs.Redact(cfg.Destination), rec.ForwardEnd, strings.Join(what, ", ")),
			"find and stop what still writes there and bring those rows in line by hand (ferry verify DESTINATION SOURCE lists the keys that differ); to record a new start, ferry drop DESTINATION SOURCE --name "+rec.Reverse+", then ferry cutover SOURCE DESTINATION --name "+rec.Forward+" --reverse again")
	}
	rec.Checked = true
	if err := state.WriteReverse(cfg.StateDir, rec); err != nil {
		return err
	}
	log.Info("no change to the flow's tables at the old database since the cutover", "position", rec.ForwardEnd, "tables", len(tables))
	if d := caps.FlowDropper; d != nil {
		if err := d.DropFlow(ctx, rec.Forward); err != nil {
			log.Warn("could not release the forward flow's replication slot at the old database; drop it (ferry drop SOURCE DESTINATION --name "+rec.Forward+")", "error", err)
		} else {
			log.Info("released the forward flow's replication slot and publication at the old database: the reverse flow checked it and needs it no more", "flow", rec.Forward)
		}
	}
	return nil
}

// printReverseStart adds the way back to a cutover report.
func printReverseStart(out io.Writer, cfg *flow.Config, rec state.ReverseStart) {
	fmt.Fprintf(out, "  reverse    %s at the destination: flow %q starts there (everything ferry applied is before it)\n", rec.Start, rec.Reverse)
	fmt.Fprintf(out, "             the source keeps this flow's replication slot until the reverse flow has checked that nothing was written there since %s\n", rec.ForwardEnd)
	cmd := fmt.Sprintf("ferry sync %s %s --name %s --reverse", shellQuote(rec.Destination), shellQuote(rec.Source), rec.Forward)
	if cfg.StateDir != state.DefaultDir() {
		cmd += " --state-dir " + shellQuote(cfg.StateDir)
	}
	fmt.Fprintf(out, "  way back   %s\n", cmd)
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./-_", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// refuseUnstartedReverse refuses ferry sync of a reverse flow named without
// --reverse before its first start: as an ordinary flow it would make a new
// slot in place of the one the cutover recorded, and lose the changes
// written since.
func refuseUnstartedReverse(cfg *flow.Config) error {
	forward, ok := strings.CutSuffix(cfg.FlowName(), "-reverse")
	if !ok {
		return nil
	}
	rec, ok, err := state.ReadReverse(cfg.StateDir, forward)
	if err != nil || !ok || rec.Reverse != cfg.FlowName() {
		return err
	}
	if started, err := state.Exists(cfg.StateDir, rec.Reverse); err != nil || started {
		return err
	}
	return errs.BadConfig(fmt.Sprintf("flow %q is the way back of flow %q, recorded by its cutover, and has not started", rec.Reverse, forward),
		fmt.Sprintf("start it with ferry sync DESTINATION SOURCE --name %s --reverse", forward))
}

// printScaleOutReverse adds the way back to a scale-out cutover report.
func printScaleOutReverse(out io.Writer, tf temporalFlags, rec state.ReverseStart) {
	fmt.Fprintf(out, "  reverse    %s at the destination: flow %q starts there (everything ferry applied is before it); recorded at the destination, under the reverse flow's name\n", rec.Start, rec.Reverse)
	fmt.Fprintf(out, "             the source keeps this flow's replication slot until the reverse flow has checked that nothing was written there since %s\n", rec.ForwardEnd)
	cmd := fmt.Sprintf("ferry run %s %s --reverse --name %s --temporal %s", shellQuote(rec.Destination), shellQuote(rec.Source), rec.Forward, shellQuote(tf.address))
	if tf.taskQueue != scaleout.DefaultTaskQueue {
		cmd += " --task-queue " + shellQuote(tf.taskQueue)
	}
	fmt.Fprintf(out, "  way back   %s\n", cmd)
}
