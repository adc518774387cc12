package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
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
	// budget bounds the statuses one listing reads (0: every flow's that
	// may have changed); the other flows keep the summary read last, and
	// the stalest are read first, so a fleet of any size costs Temporal
	// and the workers a bounded number of queries per listing.
	budget int

	mu sync.Mutex
	// known is the last summary read of each run (by run ID); an ended
	// run does not change, so its status is read once.
	known map[string]knownFlow
}

type knownFlow struct {
	summary scaleout.FlowSummary
	ended   bool
}

var _ dashboard.Fleet = (*temporalFleet)(nil)

func newTemporalFleet(c client.Client, taskQueue string, scrub func(string) string, budget int) *temporalFleet {
	return &temporalFleet{c: c, taskQueue: taskQueue, scrub: scrub, budget: budget, known: map[string]knownFlow{}}
}

// summaryConcurrency bounds the status reads of one listing in flight.
const summaryConcurrency = 8

// Flows lists the flows (one list call) and reads the summary of those
// that may have changed (at most budget, the stalest first, at most
// summaryConcurrency at once); the others keep their last one. A flow
// whose status cannot be read is listed with health unknown and why.
func (f *temporalFleet) Flows(ctx context.Context) ([]scaleout.FlowSummary, error) {
	flows, err := scaleout.Flows(ctx, f.c)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	var stale []int
	listed := map[string]bool{}
	for i := range flows {
		fs := &flows[i]
		listed[fs.RunID] = true
		k, ok := f.known[fs.RunID]
		switch {
		case ok && k.ended:
			*fs = k.summary
			continue
		case ok:
			// The list's status and times are newer than the summary's.
			status, closed := fs.Status, fs.Closed
			*fs = k.summary
			fs.Status, fs.Closed = status, closed
		default:
			fs.Health, fs.Error, fs.Workers = "unknown", "status not read yet", []string{}
		}
		stale = append(stale, i)
	}
	for run := range f.known {
		if !listed[run] {
			delete(f.known, run)
		}
	}
	f.mu.Unlock()
	// Ended runs first (read once), then the least recently read.
	sort.SliceStable(stale, func(a, b int) bool {
		fa, fb := flows[stale[a]], flows[stale[b]]
		if ea, eb := fa.Status != "Running", fb.Status != "Running"; ea != eb {
			return ea
		}
		return fa.Checked.Before(fb.Checked)
	})
	if f.budget > 0 && len(stale) > f.budget {
		stale = stale[:f.budget]
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(summaryConcurrency)
	for _, i := range stale {
		fs := &flows[i]
		g.Go(func() error {
			sctx, cancel := context.WithTimeout(gctx, 5*time.Second)
			defer cancel()
			st, err := scaleout.Summary(sctx, f.c, fs.Flow, f.taskQueue)
			if err != nil {
				fs.Health, fs.Error, fs.Workers = "unknown", f.scrub(err.Error()), []string{}
				return nil
			}
			if st.RunID != fs.RunID {
				return nil // a new run started since the list: the next listing has it
			}
			fs.Summarize(st, dashboard.Percent(st.Snapshot()))
			fs.Error = f.scrub(fs.Error)
			f.mu.Lock()
			f.known[fs.RunID] = knownFlow{summary: *fs, ended: !st.Running()}
			f.mu.Unlock()
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
