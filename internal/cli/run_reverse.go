package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/scaleout"
)

// The way back in scale-out mode: ferry run DESTINATION SOURCE --reverse
// [--name NAME] runs the reverse flow NAME-reverse of the forward flow NAME
// (from SOURCE to DESTINATION, connection names), which ferry flow cutover
// NAME --reverse recorded. Its first step on a worker reads that record at
// DESTINATION and checks SOURCE was not written since the cutover.

// reverseRunConfig is the config of ferry run --reverse.
func (f *flowFlags) reverseRunConfig(cmd *cobra.Command, args []string, src, dst string, restart bool) (*flow.Config, error) {
	switch {
	case len(args) != 2:
		return nil, usageError{errors.New("run --reverse needs DESTINATION and SOURCE: the forward flow's destination and source connection names")}
	case src != "" || dst != "":
		return nil, usageError{errors.New("run --reverse takes the forward flow's connections as arguments (DESTINATION SOURCE), not --source and --destination")}
	case restart:
		return nil, errs.BadConfig("--reverse cannot --restart: the reverse flow's start is the cutover's, and starting over would lose it",
			"leave --restart out; ferry flow cancel NAME-reverse ends the reverse flow")
	}
	cfg, err := f.config(cmd, args[0], args[1])
	if err != nil {
		return nil, err
	}
	switch cfg.Mode {
	case flow.ModeAuto, flow.ModeCDC:
	default:
		return nil, errs.BadConfig(fmt.Sprintf("--reverse streams changes only, not --mode %s", cfg.Mode), "leave --mode out")
	}
	if len(cfg.Rename) > 0 {
		return nil, errs.BadConfig("--reverse takes no --rename", "leave --rename out")
	}
	if cfg.Transforms() {
		return nil, errs.BadConfig("--reverse takes no transforms (--exclude, --rename-column, --mask, --filter, --compute)", "leave them out")
	}
	forward := cfg.Name
	if forward == "" {
		forward = hashedRunFlowName(args[1], args[0], nil, nil)
	}
	cfg.Name = scaleout.ReverseName(forward)
	cfg.Mode = flow.ModeCDC
	cfg.Reverse = true
	return cfg, nil
}

// prepareReverseRun checks, where Temporal still has the forward flow,
// that it was cut over with --reverse between these connections, and
// takes its --tables when none are given (a running reverse flow's first).
// A forward flow Temporal no longer keeps is left to the worker's check of
// the record at the new database.
func prepareReverseRun(ctx context.Context, c client.Client, cfg *flow.Config, taskQueue string) error {
	forward := cfg.Name[:len(cfg.Name)-len("-reverse")]
	if len(cfg.Tables) == 0 {
		if st, err := scaleout.Progress(ctx, c, cfg.Name, taskQueue); err == nil {
			cfg.Tables = st.Options.Tables
		}
	}
	st, err := scaleout.Progress(ctx, c, forward, taskQueue)
	if errors.Is(err, scaleout.ErrNoFlow) {
		return nil
	}
	if err != nil {
		return err
	}
	rec := st.State.Reverse
	if rec == nil || rec.Start == "" {
		return errs.BadConfig(fmt.Sprintf("flow %q was not cut over with --reverse (%s, phase %s)", forward, st.Status, st.State.Phase),
			"a reverse flow starts at a cutover: ferry flow cutover "+forward+" --reverse, before the application is switched")
	}
	if rec.Source != cfg.Destination || rec.Destination != cfg.Source {
		return errs.BadConfig(fmt.Sprintf("flow %q was cut over from %s to %s, not from %s to %s", forward, rec.Source, rec.Destination, cfg.Destination, cfg.Source),
			"give ferry run --reverse the forward flow's destination first, then its source")
	}
	if len(cfg.Tables) == 0 {
		cfg.Tables = rec.Tables
	}
	return nil
}
