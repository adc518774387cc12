package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"

	"github.com/ferrydb/ferry/internal/dashboard"
	"github.com/ferrydb/ferry/scaleout"
)

// temporalFleet is the flows of a Temporal namespace, as ferry flow list
// and the fleet dashboard show them.
type temporalFleet struct {
	c         client.Client
	taskQueue string
	scrub     func(string) string

	mu sync.Mutex
	// ended keeps the summaries of ended runs (by run ID): an ended flow
	// does not change, so its status is read once.
	ended map[string]scaleout.FlowSummary
}

var _ dashboard.Fleet = (*temporalFleet)(nil)

func newTemporalFleet(c client.Client, taskQueue string, scrub func(string) string) *temporalFleet {
	return &temporalFleet{c: c, taskQueue: taskQueue, scrub: scrub, ended: map[string]scaleout.FlowSummary{}}
}

// summaryConcurrency bounds the status reads of one listing.
const summaryConcurrency = 8

// Flows lists the flows (one list call) and reads the status of each
// running one, at most summaryConcurrency at once; an ended run's summary
// is read once and kept. A flow whose status cannot be read is listed
// with health unknown and why.
func (f *temporalFleet) Flows(ctx context.Context) ([]scaleout.FlowSummary, error) {
	flows, err := scaleout.Flows(ctx, f.c)
	if err != nil {
		return nil, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(summaryConcurrency)
	for i := range flows {
		fs := &flows[i]
		f.mu.Lock()
		done, ok := f.ended[fs.RunID]
		f.mu.Unlock()
		if ok {
			*fs = done
			continue
		}
		g.Go(func() error {
			sctx, cancel := context.WithTimeout(gctx, 5*time.Second)
			defer cancel()
			st, err := scaleout.Progress(sctx, f.c, fs.Flow, f.taskQueue)
			if err != nil {
				fs.Health, fs.Error, fs.Workers = "unknown", f.scrub(err.Error()), []string{}
				return nil
			}
			fs.Summarize(st, dashboard.Percent(st.Snapshot()))
			fs.Error = f.scrub(fs.Error)
			if !st.Running() && st.RunID == fs.RunID {
				f.mu.Lock()
				f.ended[fs.RunID] = *fs
				f.mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return flows, nil
}

// Status is one flow's whole status.
func (f *temporalFleet) Status(ctx context.Context, name string) (*scaleout.Status, error) {
	st, err := scaleout.Progress(ctx, f.c, name, f.taskQueue)
	if err != nil {
		return nil, err
	}
	st.Failure = f.scrub(st.Failure)
	return st, nil
}

// Control runs one of ferry flow's actions. Its error keeps the cause
// (a flow not found, a refusal) under a scrubbed message.
func (f *temporalFleet) Control(ctx context.Context, name, action string) (string, error) {
	msg, _, err := controlFlow(ctx, f.c, name, action)
	if err != nil {
		return "", scrubbedError{msg: f.scrub(err.Error()), err: err}
	}
	return msg, nil
}

type scrubbedError struct {
	msg string
	err error
}

func (e scrubbedError) Error() string { return e.msg }
func (e scrubbedError) Unwrap() error { return e.err }

// printFlows shows ferry flow list's table.
func printFlows(w io.Writer, flows []scaleout.FlowSummary) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FLOW\tSTATUS\tPHASE\tPROGRESS\tROWS\tLAG\tHEALTH\tWORKERS\tSTARTED\tCLOSED")
	for _, f := range flows {
		phase := orDash(f.Phase)
		if f.Paused && f.Phase != scaleout.PhasePaused {
			phase += " (paused)"
		}
		progress := "-"
		if f.Percent != nil {
			progress = fmt.Sprintf("%.1f%%", *f.Percent)
		}
		lag := "-"
		if f.LagSeconds != nil {
			lag = fmt.Sprintf("%.1fs", *f.LagSeconds)
		}
		health := orDash(f.Health)
		if f.Error != "" {
			health += ": " + ellipsis(f.Error, 60)
		}
		closed := "-"
		if !f.Closed.IsZero() {
			closed = f.Closed.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Flow, f.Status, phase, progress, humanize.Comma(f.RowsCopied), lag,
			health, orDash(strings.Join(f.Workers, ",")), f.Started.Local().Format(time.DateTime), closed)
	}
	tw.Flush() //nolint:errcheck // writing to stdout
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ellipsis shortens s to n runes.
func ellipsis(s string, n int) string {
	r := []rune(strings.Join(strings.Fields(s), " "))
	if len(r) <= n {
		return string(r)
	}
	return string(r[:n-1]) + "…"
}
