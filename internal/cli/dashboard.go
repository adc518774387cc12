package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferrydb/ferry/internal/dashboard"
)

func newDashboardCmd(g *globals) *cobra.Command {
	var tf temporalFlags
	var ui uiFlags
	cmd := &cobra.Command{
		Use:   "dashboard --ui HOST:PORT --temporal HOST:PORT",
		Short: "Serve a live web dashboard of every flow on Temporal (scale-out mode)",
		Long: `dashboard serves the fleet view: every flow of the Temporal namespace with its
phase, copy progress, rows, CDC lag, health and workers, refreshed every two
seconds, and each flow's own page (the dashboard ferry run --ui serves, fed
from the flow's status in Temporal while the page is open).

With a token (--ui-token or $FERRY_UI_TOKEN) every request must carry it, and
the fleet view has buttons that pause, resume, cut over and cancel a flow, as
ferry flow pause|resume|cutover|cancel do (cutover and cancel ask first).
Without a token the dashboard is read-only: no buttons, and the actions' API
answers 403; it then serves only on a loopback address.

It runs until interrupted (Ctrl-C); it never changes a flow by itself.`,
		Example: `  ferry dashboard --ui 127.0.0.1:8080 --temporal 127.0.0.1:7233
  FERRY_UI_TOKEN=$(openssl rand -hex 16) ferry dashboard --ui 0.0.0.0:8080 --temporal temporal:7233
  # open http://HOST:8080/?token=THE_TOKEN`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ui.tokenFromEnv()
			if ui.addr == "" {
				return usageError{fmt.Errorf("dashboard needs --ui HOST:PORT, such as 127.0.0.1:8080")}
			}
			return runDashboard(cmd.Context(), g, tf, ui)
		},
	}
	tf.register(cmd.Flags())
	cmd.Flags().StringVar(&ui.addr, "ui", "", "serve the fleet dashboard on HOST:PORT (such as 127.0.0.1:8080; port 0 picks a free one)")
	cmd.Flags().StringVar(&ui.token, "ui-token", "", "token every request must carry, which also allows the actions (default $"+dashboard.TokenEnv+"); required to bind beyond loopback")
	return cmd
}

// fleetBudget is how many flows' statuses one listing of the fleet view
// reads (every 2s): a fleet of any size costs at most 8 status reads a
// second; beyond 16 running flows, a summary is up to a few seconds older.
const fleetBudget = 16

func runDashboard(ctx context.Context, g *globals, tf temporalFlags, ui uiFlags) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if ui.token != "" {
		g.scrubber.AddSecret(ui.token)
	}
	if err := dashboard.CheckBind(ui.addr, ui.token); err != nil {
		return usageError{err}
	}
	log, err := g.logger(g.stderr)
	if err != nil {
		return err
	}
	c, err := tf.dial(ctx, g, log, "", nil)
	if err != nil {
		return err
	}
	defer c.Close()
	ln, err := net.Listen("tcp", ui.addr)
	if err != nil {
		return usageError{fmt.Errorf("--ui %s: %w", ui.addr, err)}
	}
	fleet := dashboard.NewFleet(dashboard.FleetOptions{Fleet: newTemporalFleet(c, tf.taskQueue, g.scrub, fleetBudget), Token: ui.token,
		Version: Version, Namespace: tf.namespace, Log: log})
	fleet.Serve(ln)
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	log.Info("dashboard listening", "url", "http://"+net.JoinHostPort(host, port)+"/", "address", ln.Addr().String(),
		"token", ui.token != "", "control", ui.token != "", "temporal", tf.address, "namespace", tf.namespace)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	select {
	case <-sigs:
	case <-ctx.Done():
	}
	log.Info("dashboard stopping")
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if err := fleet.Close(cctx); err != nil {
		log.Warn("dashboard shutdown", "error", err)
	}
	return nil
}
