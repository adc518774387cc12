// Package cli is ferry's command line: it parses flags, opens connectors
// from the registry, and hands a flow to the engine. It holds no flow logic.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/internal/gctune"
)

// Exit codes.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// Version is set at build time with -ldflags "-X github.com/ferrydb/ferry/internal/cli.Version=...".
var Version = "dev"

type globals struct {
	logFormat, logLevel string
	// cpuProfile is --cpuprofile's file; stopProfile ends the profile.
	cpuProfile  string
	stopProfile func()
	stderr      io.Writer
	stdout      io.Writer
	// scrubber removes every secret ferry was given from what it prints,
	// logs, shows on the dashboard or records in telemetry.
	scrubber *errs.Scrubber
}

// usageError marks an error in how ferry was called.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// Main runs ferry with args and returns the exit code.
func Main(args []string) int { return run(args, os.Stdout, os.Stderr) }

// run runs ferry with args, printing on stdout and stderr.
func run(args []string, stdout, stderr io.Writer) int {
	g := &globals{stderr: stderr, stdout: stdout, scrubber: errs.NewScrubber()}
	// Every argument may be a connection string (or --flag=URL, NAME=URL):
	// their secrets are known before anything can fail, even parsing flags.
	for _, a := range args {
		g.addSecrets(a)
		if _, v, ok := strings.Cut(a, "="); ok {
			g.addSecrets(v)
		}
	}
	root := newRoot(g)
	root.SetArgs(args)
	err := root.Execute()
	if g.stopProfile != nil {
		g.stopProfile()
	}
	if err == nil {
		return ExitOK
	}
	msg := g.scrub(err.Error())
	fmt.Fprintln(g.stderr, "ferry: "+msg)
	var ue usageError
	var dr diffResult
	switch {
	case errors.As(err, &dr):
		return ExitFailed
	case errors.As(err, &ue), errs.IsConfigError(err), isCobraUsage(err):
		return ExitUsage
	}
	return ExitFailed
}

// isCobraUsage recognises cobra's own errors (flags, arguments, commands) by
// how they begin; a ferry error that merely contains such words (a hint
// saying a server "accepts TCP connections") is not one.
func isCobraUsage(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown flag", "unknown shorthand", "unknown command", "accepts ", "requires at least", "invalid argument", "flag needs an argument", "required flag"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "ferry",
		Short: "Copy a database into another and keep it in sync",
		Long: `ferry moves a database's data into another database and keeps it in sync:
a parallel initial copy, then change data capture from the exact point the copy
started, so nothing is lost and the destination can take over at cutover.`,
		Example: `  # try it on generated data
  ferry sync 'fake://?tables=3&rows=100000' sqlite:///tmp/demo.db --mode snapshot
  ferry verify 'fake://?tables=3&rows=100000' sqlite:///tmp/demo.db
  ferry plan 'fake://?tables=3&rows=1000000'

  # PostgreSQL to PostgreSQL, the password from a file
  ferry sync 'postgres://ferry@old-db/shop?password_file=/run/secrets/old-db' 'postgres://ferry@new-db/shop?password_file=/run/secrets/new-db'

  # MySQL to PostgreSQL, the connections named in the environment
  export FERRY_CONNECTION_SRC='mysql://ferry:secret@mysql-db:3306/shop'
  export FERRY_CONNECTION_DST='postgres://ferry:secret@pg-db/shop?sslmode=require'
  ferry sync @src @dst`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	// --cpuprofile is for finding where ferry's time goes (bench/, go tool
	// pprof); hidden from the help, listed in docs/cli.md.
	root.PersistentFlags().StringVar(&g.cpuProfile, "cpuprofile", "", "write a CPU profile of the command to this file (go tool pprof)")
	_ = root.PersistentFlags().MarkHidden("cpuprofile")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		gctune.Start() // the collector's pace, from the live heap (internal/gctune)
		return g.startProfile()
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newSyncCmd(g), newPlanCmd(g), newVerifyCmd(g), newVersionCmd(g), newConnectorsCmd(g), newDropCmd(g), newCutoverCmd(g), newSnapshotCmd(g))
	root.AddCommand(newWorkerCmd(g), newRunCmd(g), newFlowCmd(g), newDashboardCmd(g))
	return root
}

// startProfile starts the CPU profile --cpuprofile asks for.
func (g *globals) startProfile() error {
	if g.cpuProfile == "" {
		return nil
	}
	f, err := os.Create(g.cpuProfile)
	if err != nil {
		return usageError{fmt.Errorf("--cpuprofile: %w", err)}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	g.stopProfile = func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(g.stderr, "ferry: --cpuprofile %s: %v\n", g.cpuProfile, err)
		}
	}
	return nil
}

// logger builds the slog logger; secrets are scrubbed from every string.
// The commands also make it slog's default, so what connectors log (they
// log through the default logger: they know no flow) has the same format,
// level and scrubbing.
func (g *globals) logger(out io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q: use debug, info, warn or error", g.logLevel)}
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Value.Kind() == slog.KindString {
			a.Value = slog.StringValue(g.scrub(a.Value.String()))
		}
		if a.Value.Kind() == slog.KindAny {
			if err, ok := a.Value.Any().(error); ok {
				a.Value = slog.StringValue(g.scrub(err.Error()))
			}
		}
		return a
	}}
	switch g.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(out, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(out, opts)), nil
	}
	return nil, usageError{fmt.Errorf("--log-format %q: use text or json", g.logFormat)}
}

// addSecrets remembers the secrets of connection strings so nothing ferry
// prints shows them.
func (g *globals) addSecrets(conns ...string) { g.scrubber.AddConn(conns...) }

func (g *globals) scrub(s string) string { return g.scrubber.Scrub(s) }

// signals returns a context cancelled by the first SIGINT or SIGTERM (a
// graceful stop) and one cancelled by the second (abort). Until planned is
// called nothing is in flight, so the first signal is said to cancel the
// plan: the caller plans under stop.
func signals(parent context.Context, log *slog.Logger) (stop, abort context.Context, planned, release func()) {
	abort, cancelAbort := context.WithCancel(parent)
	stop, cancelStop := context.WithCancel(abort)
	var isPlanned atomic.Bool
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		n := 0
		for {
			select {
			case sig := <-ch:
				n++
				if n == 1 && !isPlanned.Load() {
					log.Info("signal received: cancelling the plan; nothing has been copied yet", "signal", sig.String())
					cancelStop()
				} else if n == 1 {
					log.Info("signal received: finishing the current batches and checkpointing; signal again to abort", "signal", sig.String())
					cancelStop()
				} else {
					log.Warn("second signal: aborting", "signal", sig.String())
					cancelAbort()
				}
			case <-done:
				return
			}
		}
	}()
	return stop, abort, func() { isPlanned.Store(true) }, func() {
		signal.Stop(ch)
		close(done)
		cancelStop()
		cancelAbort()
	}
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print ferry's version",
		Example: "  ferry version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "ferry "+Version)
			return nil
		},
	}
}

func newConnectorsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "connectors",
		Short:   "List the connectors and what each can do",
		Example: "  ferry connectors",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprint(cmd.OutOrStdout(), CapabilityTable())
			return nil
		},
	}
}

// CapabilityTable renders the registered connectors and every ability
// connector.Discover finds in them as Markdown: one table of the
// connectors, one row per ability with a column per connector. The
// README's table is checked against it.
func CapabilityTable() string {
	regs := connector.Registered()
	var b strings.Builder
	b.WriteString("| connector | example URL | what it is |\n| --- | --- | --- |\n")
	for _, r := range regs {
		fmt.Fprintf(&b, "| %s | `%s` | %s |\n", r.Scheme, r.Example, r.Summary)
	}
	b.WriteString("\n| ability |")
	abilities := make([][]connector.Ability, len(regs))
	for i, r := range regs {
		fmt.Fprintf(&b, " %s |", r.Scheme)
		abilities[i] = connector.Discover(r.Prototype).Abilities.List()
	}
	b.WriteString("\n| --- |" + strings.Repeat(" --- |", len(regs)) + "\n")
	for row, a := range (connector.Abilities{}).List() {
		fmt.Fprintf(&b, "| %s |", a.Doc)
		for i := range regs {
			fmt.Fprintf(&b, " %s |", yesNo(abilities[i][row].Has))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
