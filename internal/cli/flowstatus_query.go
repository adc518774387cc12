package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/ferrydb/ferry/scaleout"
)

// printQueryStatus shows a query flow's status for a person: its runs,
// the last run's rows, each query's mark, the run under way.
func printQueryStatus(w io.Writer, st *scaleout.Status) {
	q := st.Query
	fmt.Fprintf(w, "flow %s: %s, phase %s (query replication)", st.Flow, st.Status, q.Phase)
	if q.Paused {
		fmt.Fprint(w, " (paused)")
	}
	every := "once"
	if st.Options.Every > 0 {
		every = "every " + st.Options.Every.String()
	}
	fmt.Fprintf(w, "\n%s -> %s, %d queries, %s\n", st.Options.Source, st.Options.Destination, len(st.Options.Queries), every)
	if st.Failure != "" {
		fmt.Fprintf(w, "error: %s\n", st.Failure)
	}
	fmt.Fprintf(w, "runs: %d\n", q.Runs)
	if !q.NextRun.IsZero() && q.Phase == scaleout.PhaseWait {
		fmt.Fprintf(w, "next run: %s\n", q.NextRun.UTC().Format(time.RFC3339))
	}
	if r := q.Last; r != nil {
		fmt.Fprintf(w, "last run: #%d, %s rows, %s\n", r.Number, humanize.Comma(r.Rows), r.Ended.Sub(r.Started).Round(time.Millisecond))
		printQueryRun(w, r)
	}
	if r := q.Current; r != nil {
		fmt.Fprintf(w, "\nrun under way: #%d, %s rows so far, started %s\n", r.Number, humanize.Comma(r.Rows), r.Started.UTC().Format(time.RFC3339))
		printQueryRun(w, r)
	}
	if len(q.Marks) > 0 {
		fmt.Fprintln(w, "\nwatermarks:")
		tables := make([]string, 0, len(q.Marks))
		for t := range q.Marks {
			tables = append(tables, t)
		}
		sort.Strings(tables)
		for _, t := range tables {
			fmt.Fprintf(w, "  %s: %s\n", t, orNone(q.Marks[t]))
		}
	}
	if len(st.Waiting) > 0 {
		fmt.Fprintf(w, "waiting for a worker: %s\n", strings.Join(st.Waiting, ", "))
	}
	fmt.Fprintln(w, "\nworkers:")
	if len(st.Workers) == 0 {
		fmt.Fprintln(w, "  none polling")
	}
	for _, wk := range st.Workers {
		doing := "idle"
		if len(wk.Activities) > 0 {
			doing = strings.Join(wk.Activities, ", ")
		}
		fmt.Fprintf(w, "  %s: %s\n", wk.Identity, doing)
	}
}

func printQueryRun(w io.Writer, r *scaleout.QueryRunState) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TABLE\tROWS\tFROM\tTO\tRANGES\tRESUMED\tRETRIED")
	for _, t := range r.Tables {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d/%d\t%v\t%d\n", t.Table, humanize.Comma(t.Rows), orNone(t.From), orNone(t.To), t.RangesDone, t.Ranges, t.Resumed, t.RetriedRanges)
	}
	tw.Flush() //nolint:errcheck // writing to stdout
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
