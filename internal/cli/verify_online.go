package cli

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/verify"
)

// verifyRun is how one verification runs: ferry verify's flags, or
// ferry cutover --verify's.
type verifyRun struct {
	maxDiffs   int
	online     onlineFlags
	noPushdown bool
	log        *slog.Logger
}

type onlineFlags struct {
	enabled  bool
	rechecks int
}

// onlineFlow is the running flow ferry verify --online waits for: the
// source's head, and the position the flow applied as the destination's
// checkpoints say (the lowest of its writers', where CDC would resume).
func onlineFlow(ctx context.Context, src, dst connector.Connector, cfg *flow.Config, log *slog.Logger) (verify.Flow, error) {
	cs := connector.Discover(src).ChangeSource
	if cs == nil {
		return nil, errs.BadConfig(fmt.Sprintf("%s has no change data capture", errs.Redact(cfg.Source)), "--online verifies a flow that streams changes; verify without --online once writes stopped")
	}
	keeper := connector.Discover(dst).CheckpointKeeper
	if keeper == nil {
		return nil, errs.BadConfig(fmt.Sprintf("%s keeps no checkpoints, so verify cannot tell how far the flow applied", errs.Redact(cfg.Destination)),
			"run the verification inside the flow: ferry sync --verify INTERVAL")
	}
	name := cfg.FlowName()
	applied := func(ctx context.Context) (model.Position, error) {
		cps, err := keeper.LoadCheckpoints(ctx, name)
		if err != nil {
			return "", fmt.Errorf("load the checkpoints of flow %s: %w", name, err)
		}
		lowest, err := engine.AppliedPosition(cs, cps)
		if err != nil {
			return "", fmt.Errorf("flow %s: %w", name, err)
		}
		return lowest, nil
	}
	if pos, err := applied(ctx); err != nil {
		return nil, err
	} else if pos == "" {
		return nil, errs.BadConfig(fmt.Sprintf("flow %s has applied no changes at %s yet", name, errs.Redact(cfg.Destination)),
			"run --online while ferry sync streams changes (after its copy), with the same SOURCE DESTINATION or --name")
	}
	return &verify.PolledFlow{Source: cs, Applied: applied, Waiting: func(table string, keys int, pos model.Position) {
		log.Info("verify: re-checking differing keys once the flow applied the source's position", "flow", name, "table", table, "keys", keys, "position", string(pos))
	}}, nil
}
