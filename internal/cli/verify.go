package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/verify"
)

// diffResult is returned when verify found differences: exit code 1.
type diffResult struct{ tables int }

func (d diffResult) Error() string {
	return fmt.Sprintf("%d table(s) differ between source and destination", d.tables)
}

func newVerifyCmd(g *globals) *cobra.Command {
	var ff flowFlags
	var maxDiffs int
	var asJSON bool
	var on onlineFlags
	var noPushdown bool
	cmd := &cobra.Command{
		Use:   "verify SOURCE DESTINATION",
		Short: "Compare source and destination row by row; exit 1 if they differ",
		Long: `verify compares every selected table of the source with its copy at the
destination. Rows are spread over buckets by a hash of their primary key (a
table without one is compared as a multiset of whole rows); each bucket keeps a
row count and an order-independent hash of its rows, so the comparison does not
depend on either database's ordering or collation. For a bucket that differs,
verify reads it again on both sides and lists the keys that are missing, extra
or different (at most --max-diffs per table).

When both sides are the same engine (PostgreSQL, MariaDB or MySQL) and a
table's columns have the same types on both, each database hashes its own
rows (pushdown): only the bucket sums, and for a differing bucket its keys
and row hashes, cross the network. Any other pair, MySQL to PostgreSQL
included, reads the rows through ferry (--no-pushdown forces it).

Values are compared in the source's types: a destination that stores a UUID or a
timestamp as text still compares equal when the value is the same.

With --online, verify runs while ferry sync streams changes into the
destination: a key that differs is read again on both sides once the flow has
applied everything the source had committed when the difference was seen, up
to --rechecks times. A key that still differs while its source row stayed the
same is a difference; one whose source row changed at every re-check is
pending (listed, counted apart, not a failure). --online finds the flow by the
same SOURCE DESTINATION (or --name) as ferry sync, through the checkpoints the
destination keeps (PostgreSQL, MySQL).

Exit code 0 when every table is equal, 1 when any differs, 2 for a usage error.`,
		Example: `  ferry verify 'fake://?tables=3&rows=100000' sqlite:///tmp/demo.db
  ferry verify sqlite:///src.db sqlite:///dst.db --tables 'orders,customers' --rename orders=orders_copy
  ferry verify sqlite:///src.db 'file:///tmp/export?format=jsonl' --json
  ferry verify @src @dst --connections-file /etc/ferry/connections.yaml
  ferry verify --online 'postgres://ferry@old-db/shop' 'postgres://ferry@new-db/shop'   # while ferry sync runs
  ferry verify 'postgres://ferry@old-db/shop?password_file=/run/secrets/pg' 'mysql://ferry@new-db/shop?password_file=/run/secrets/mysql'`,
		Args: cobra.RangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := ff.checkedPairConfig(cmd, g, args)
			if err != nil {
				return err
			}
			log, err := g.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			results, err := verifyFlow(cmd, cfg, verifyRun{maxDiffs: maxDiffs, online: on, noPushdown: noPushdown, log: log})
			if err != nil {
				return err
			}
			return printVerified(cmd.OutOrStdout(), results, asJSON)
		},
	}
	ff.register(cmd.Flags(), false)
	ff.registerConnections(cmd.Flags())
	cmd.Flags().IntVar(&maxDiffs, "max-diffs", 20, "keys listed per differing table")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the results as JSON")
	cmd.Flags().BoolVar(&noPushdown, "no-pushdown", false, "read every row through ferry even where both databases can hash their rows themselves")
	cmd.Flags().BoolVar(&on.enabled, "online", false, "verify while ferry sync applies changes: re-check differing keys once the flow passed the source's position")
	cmd.Flags().IntVar(&on.rechecks, "rechecks", 3, "with --online: how many times a differing key is read again before it counts")
	cmd.Flags().StringVar(&ff.name, "name", "", "with --online: the flow's name, as given to ferry sync --name (default: derived from source, destination and tables)")
	return cmd
}

// printVerified prints verify's results, for a person or as JSON, and
// returns a diffResult (exit 1) when a table differs.
func printVerified(out io.Writer, results []*verify.Result, asJSON bool) error {
	differ := countDiffering(results)
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"equal": differ == 0, "tables": results}); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			fmt.Fprintln(out, describe(r))
		}
	}
	if differ > 0 {
		return diffResult{tables: differ}
	}
	if !asJSON {
		fmt.Fprintf(out, "all %d table(s) equal\n", len(results))
	}
	return nil
}

// verifyFlow compares every selected table of a flow's source with its
// destination table (ferry verify, ferry cutover --verify).
func verifyFlow(cmd *cobra.Command, cfg *flow.Config, run verifyRun) ([]*verify.Result, error) {
	cfg.Defaults()
	ctx := cmd.Context()
	sc, err := connector.Open(ctx, cfg.Source)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	defer sc.Close()
	dc, err := connector.Open(ctx, cfg.Destination)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	defer dc.Close()
	s := connector.Discover(sc).Source
	if s == nil {
		return nil, errs.BadConfig(fmt.Sprintf("%s cannot be read", errs.Redact(cfg.Source)), "verify reads both sides")
	}
	d := connector.Discover(dc).Source
	if d == nil {
		return nil, errs.BadConfig(fmt.Sprintf("%s cannot be read back", errs.Redact(cfg.Destination)), "verify reads both sides; this destination keeps nothing to compare")
	}
	tables, err := selectTables(cmd, s, cfg)
	if err != nil {
		return nil, err
	}
	renames, err := flow.ParseRenames(cfg.Rename)
	if err != nil {
		return nil, usageError{err}
	}
	dsts, err := renames.Map(tables)
	if err != nil {
		return nil, err
	}
	var pairs []verify.Pair
	for i, t := range tables {
		pairs = append(pairs, verify.Pair{Source: t, Destination: dsts[i].Namespace})
	}
	xf, err := engine.Transforms(*cfg)
	if err != nil {
		return nil, err
	}
	opts := verify.Options{Parallel: cfg.Parallel, MaxDiffs: run.maxDiffs, PartitionRows: cfg.PartitionRows, NoPushdown: run.noPushdown, Transforms: xf}
	if run.online.enabled {
		if opts.Online, err = onlineFlow(ctx, sc, dc, cfg, run.log); err != nil {
			return nil, err
		}
		opts.Rechecks = run.online.rechecks
	}
	return verify.Tables(ctx, s, d, pairs, opts)
}

func describe(r *verify.Result) string {
	name := r.Table
	if r.Destination != r.Table {
		name += " → " + r.Destination
	}
	if r.Problem != "" {
		return fmt.Sprintf("%s: DIFFERENT: %s", name, r.Problem)
	}
	if r.Equal() {
		line := fmt.Sprintf("%s: equal (%s rows, %d buckets)", name, humanize.Comma(r.SourceRows), r.Buckets)
		return line + describePending(r)
	}
	if r.Online {
		var b strings.Builder
		fmt.Fprintf(&b, "%s: DIFFERENT: %d key(s) still differ after %d re-check(s) while the flow applied changes", name, r.DifferentKeys, r.Rechecks)
		listDiffs(&b, r.Diffs)
		if r.MoreDiffs {
			b.WriteString("\n    ... more keys differ (raise --max-diffs to see them)")
		}
		return b.String() + describePending(r)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: DIFFERENT: source %s rows, destination %s rows, %d of %d buckets differ",
		name, humanize.Comma(r.SourceRows), humanize.Comma(r.DestinationRows), r.DifferentBuckets, r.Buckets)
	listDiffs(&b, r.Diffs)
	if r.MoreDiffs {
		b.WriteString("\n    ... more keys differ (raise --max-diffs to see them)")
	}
	return b.String()
}

func listDiffs(b *strings.Builder, diffs []verify.Diff) {
	for _, d := range diffs {
		fmt.Fprintf(b, "\n    %-9s %s", d.Kind, d.Key)
		if len(d.Columns) > 0 {
			fmt.Fprintf(b, " (columns: %s)", strings.Join(d.Columns, ", "))
		}
	}
}

// describePending lists the keys an online verification could not judge.
func describePending(r *verify.Result) string {
	if r.PendingKeys == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n  %d key(s) pending: their source rows changed at every re-check; verify again later", r.PendingKeys)
	listDiffs(&b, r.Pending)
	return b.String()
}
