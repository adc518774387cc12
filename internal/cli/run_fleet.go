package cli

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/scaleout"
)

// fleetFile reports whether -f names a fleet file (flows:).
func (f *flowFlags) fleetFile() (bool, error) {
	if f.file == "" {
		return false, nil
	}
	ok, err := flow.IsFleetFile(f.file)
	if err != nil {
		return false, usageError{err}
	}
	return ok, nil
}

// runFleet starts every flow of a fleet file on the workers (ferry run -f
// FLEET): each is checked first, so a mistake in any starts none; the
// flow flags given on the command line apply to every flow. It returns
// once all run: a fleet is watched with ferry flow list and ferry
// dashboard, not attached to.
func runFleet(cmd *cobra.Command, g *globals, tf temporalFlags, ff *flowFlags, set scaleout.Settings, restart, named bool) error {
	if named {
		return usageError{errors.New("a fleet file names each flow's source and destination: give no --source, --destination, --reverse or arguments with it")}
	}
	if cmd.Flags().Changed("name") {
		return usageError{errors.New("a fleet file names its flows: give no --name with it")}
	}
	flows, err := flow.LoadFleet(ff.file)
	if err != nil {
		return usageError{err}
	}
	for _, cfg := range flows {
		if err := ff.apply(cmd, cfg); err != nil {
			return err
		}
		cfg.StateDir = ""
		if cfg.Source == "" || cfg.Destination == "" {
			return usageError{fmt.Errorf("flow %s needs a source and a destination (connection names)", cfg.Name)}
		}
		if err := checkRunConfig(cfg); err != nil {
			return fmt.Errorf("flow %s: %w", cfg.Name, err)
		}
	}
	ctx := cmd.Context()
	log := slog.Default()
	c, err := tf.dial(ctx, g, log, "", nil)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, cfg := range flows {
		run, attached, err := scaleout.Start(ctx, c, scaleout.FlowInput{Options: *cfg, Settings: set}, scaleout.StartOptions{TaskQueue: tf.taskQueue, Restart: restart, Log: log})
		if err != nil {
			return fmt.Errorf("flow %s: %w", cfg.Name, err)
		}
		how := "started"
		if attached {
			how = "already running"
		}
		fmt.Fprintf(g.stdout, "flow %s %s (run %s)\n", cfg.Name, how, run.GetRunID())
	}
	fmt.Fprintf(g.stdout, "watch them: ferry flow list --temporal %s\n", tf.address)
	return nil
}
