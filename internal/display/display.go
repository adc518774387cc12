// Package display shows a running flow's progress: live bars per table and a
// CDC line when attached to a terminal, and a log line every few seconds
// otherwise.
package display

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/mattn/go-isatty"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/ferrydb/ferry/engine"
)

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool { return isatty.IsTerminal(f.Fd()) }

// Bars renders live progress bars on a terminal. Log lines written through
// Writer appear above the bars.
type Bars struct {
	p      *mpb.Progress
	bars   map[string]*mpb.Bar
	cdc    *mpb.Bar
	mu     sync.Mutex
	rates  map[string]*rate
	status string
}

// NewBars starts a bar display on out.
func NewBars(ctx context.Context, out io.Writer) *Bars {
	return &Bars{
		p:     mpb.NewWithContext(ctx, mpb.WithOutput(out), mpb.WithWidth(32), mpb.WithRefreshRate(200*time.Millisecond)),
		bars:  map[string]*mpb.Bar{},
		rates: map[string]*rate{},
	}
}

// Writer prints above the bars.
func (b *Bars) Writer() io.Writer { return b.p }

// Update refreshes the bars from a snapshot.
func (b *Bars) Update(s engine.Snapshot) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, t := range s.Tables {
		bar := b.bars[t.Table]
		r := b.rates[t.Table]
		if bar == nil {
			name := t.Table
			if t.Destination != t.Table {
				name += " → " + t.Destination
			}
			r = &rate{}
			b.rates[t.Table] = r
			bar = b.p.AddBar(max(t.RowsEstimated, 1),
				mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-24s", truncate(name, 24)))),
				mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return r.text() })),
			)
			b.bars[t.Table] = bar
		}
		r.observe(t)
		if t.RowsCopied > t.RowsEstimated {
			bar.SetTotal(t.RowsCopied+t.RowsCopied/10, false)
		}
		bar.SetCurrent(t.RowsCopied)
		if t.Done && !bar.Completed() {
			bar.SetTotal(t.RowsCopied, true)
		}
	}
	if s.Phase == engine.PhaseCDC && b.cdc == nil {
		cdc := &cdcText{}
		b.rates["\x00cdc"] = &rate{cdc: cdc}
		b.cdc = b.p.New(0, mpb.SpinnerStyle(), mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-24s", "changes"))),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return cdc.text() })))
	}
	if r := b.rates["\x00cdc"]; r != nil {
		r.cdc.observe(s.CDC)
	}
}

// Close ends the display.
func (b *Bars) Close() {
	b.mu.Lock()
	for _, bar := range b.bars {
		if !bar.Completed() {
			bar.Abort(false)
		}
	}
	if b.cdc != nil {
		b.cdc.Abort(false)
	}
	b.mu.Unlock()
	b.p.Wait()
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// rate tracks a table's copy speed and ETA.
type rate struct {
	mu       sync.Mutex
	last     time.Time
	lastRows int64
	perSec   float64
	snap     engine.TableSnapshot
	cdc      *cdcText
}

func (r *rate) observe(t engine.TableSnapshot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if !r.last.IsZero() {
		if dt := now.Sub(r.last).Seconds(); dt >= 0.5 {
			inst := float64(t.RowsCopied-r.lastRows) / dt
			r.perSec = 0.7*r.perSec + 0.3*inst
			r.last, r.lastRows = now, t.RowsCopied
		}
	} else {
		r.last, r.lastRows = now, t.RowsCopied
	}
	r.snap = t
}

func (r *rate) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.snap
	s := fmt.Sprintf("%s/%s rows  %d/%d parts", humanize.Comma(t.RowsCopied), humanize.Comma(t.RowsEstimated), t.PartitionsDone, t.Partitions)
	if t.Done {
		return s + "  done"
	}
	if r.perSec > 0 {
		s += fmt.Sprintf("  %s rows/s", humanize.Comma(int64(r.perSec)))
		if left := t.RowsEstimated - t.RowsCopied; left > 0 {
			s += "  ETA " + (time.Duration(float64(left)/r.perSec) * time.Second).Round(time.Second).String()
		}
	}
	return s
}

type cdcText struct {
	mu       sync.Mutex
	s        engine.CDCSnapshot
	last     time.Time
	lastN    int64
	perSec   float64
	observed bool
}

func (c *cdcText) observe(s engine.CDCSnapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.observed {
		if dt := now.Sub(c.last).Seconds(); dt >= 0.5 {
			c.perSec = 0.7*c.perSec + 0.3*float64(s.Received-c.lastN)/dt
			c.last, c.lastN = now, s.Received
		}
	} else {
		c.last, c.lastN, c.observed = now, s.Received, true
	}
	c.s = s
}

func (c *cdcText) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cdcLine(c.s, c.perSec)
}

func cdcLine(s engine.CDCSnapshot, perSec float64) string {
	out := fmt.Sprintf("%s changes  %s/s  at %s", humanize.Comma(s.Received), humanize.Comma(int64(perSec)), s.Position)
	if s.Head != "" {
		out += " (until " + s.Head + ")"
	}
	if s.LagSeconds >= 0 {
		out += fmt.Sprintf("  lag %.1fs", s.LagSeconds)
	}
	return out
}

// LogLines logs a progress line every interval until ctx is done.
func LogLines(ctx context.Context, log *slog.Logger, interval time.Duration, snap func() engine.Snapshot) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastRows, lastChanges int64
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s := snap()
			dt := now.Sub(last).Seconds()
			switch s.Phase {
			case engine.PhaseCopy:
				var done, parts int64
				for _, t := range s.Tables {
					done += t.PartitionsDone
					parts += t.Partitions
				}
				log.Info("copying", "rows", s.RowsCopied, "rows_estimated", s.RowsEstimated,
					"rows_per_sec", int64(float64(s.RowsCopied-lastRows)/dt), "partitions_done", done, "partitions", parts)
			case engine.PhaseCDC:
				log.Info("streaming changes", "changes", s.CDC.Received, "changes_per_sec", int64(float64(s.CDC.Received-lastChanges)/dt),
					"position", s.CDC.Position, "lag_seconds", s.CDC.LagSeconds)
			case engine.PhaseCutover:
				if c := s.Cutover; c != nil {
					log.Info("cutting over", "step", c.Step, "position", s.CDC.Position, "to", c.Position, "changes", s.CDC.Received)
				}
			}
			if q := s.Query; q != nil {
				queryLine(log, s.Phase, q)
			}
			lastRows, lastChanges, last = s.RowsCopied, s.CDC.Received, now
		}
	}
}

// queryLine logs a query flow's runs: the one under way, or the last.
func queryLine(log *slog.Logger, phase engine.Phase, q *engine.QueryProgress) {
	args := []any{"phase", phase, "runs", q.Runs}
	if r := q.Current; r != nil {
		args = append(args, "run", r.Number, "rows", r.Rows)
	} else if r := q.Last; r != nil {
		args = append(args, "last_run", r.Number, "last_run_rows", r.Rows)
	}
	if !q.NextRun.IsZero() {
		args = append(args, "next_run", q.NextRun.UTC().Format(time.RFC3339))
	}
	log.Info("query runs", args...)
}
