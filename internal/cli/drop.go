package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/state"
)

func newDropCmd(g *globals) *cobra.Command {
	var ff flowFlags
	cmd := &cobra.Command{
		Use:   "drop [SOURCE DESTINATION]",
		Short: "Forget a flow: drop its replication slot, publication, checkpoints and saved state",
		Long: `drop releases what a flow keeps between runs: at the source its replication
slot and publication (when ferry created them; a PostgreSQL slot that nobody
reads keeps WAL on the server until it is dropped), at the destination the
flow's checkpoints, and its local state. The destination's tables and rows stay.

Name the flow as it was run: the same SOURCE, DESTINATION and selection, or
its --name. ferry warns at start about inactive ferry slots of other flows,
with the retained WAL; drop their flow with this command, or the slot itself
with SELECT pg_drop_replication_slot('ferry_...').`,
		Example: `  ferry drop postgres://u@src/shop postgres://u@dst/shop
  ferry drop postgres://u@src/shop postgres://u@dst/shop --name shop-move
  ferry drop @src @dst --connections-file /etc/ferry/connections.yaml
  ferry drop 'mysql://u@src:3306/shop?password_file=/run/secrets/mysql' @dst`,
		Args: cobra.RangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := ff.checkedPairConfig(cmd, g, args)
			if err != nil {
				return err
			}
			log, err := g.logger(g.stderr)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			sc, err := connector.Open(ctx, cfg.Source)
			if err != nil {
				return fmt.Errorf("source: %w", err)
			}
			defer closeLogged(log, "source", sc)
			dc, err := connector.Open(ctx, cfg.Destination)
			if err != nil {
				return fmt.Errorf("destination: %w", err)
			}
			defer closeLogged(log, "destination", dc)
			store, err := state.Open(ctx, cfg.StateDir, cfg.FlowName())
			if err != nil {
				if errors.Is(err, state.ErrLocked) {
					return &errs.ConfigError{Msg: err.Error(), Fix: "stop the ferry running the flow first"}
				}
				return err
			}
			defer closeLogged(log, "state", store)
			eng, err := engine.New(*cfg, sc, dc, store, log)
			if err != nil {
				return err
			}
			if err := eng.Drop(ctx); err != nil {
				return fmt.Errorf("drop flow %s: %w", eng.Name(), err)
			}
			log.Info("flow dropped", "flow", eng.Name())
			return nil
		},
	}
	ff.register(cmd.Flags(), true)
	ff.registerConnections(cmd.Flags())
	// Only what names the flow matters to drop. The rest stays accepted,
	// hidden, so the ferry sync command line that ran the flow works here.
	for _, name := range []string{"mode", "until", "parallel", "partition-rows", "batch-rows", "writers", "apply-batch", "apply-linger", "retry-timeout", "ddl", "sync-sequences", "apply-mode", "max-rate", "max-replica-lag", "replica-lag-query", "exclude", "rename-column", "mask", "mask-salt", "filter", "compute"} {
		cmd.Flags().MarkHidden(name) //nolint:errcheck // the flag exists
	}
	return cmd
}
