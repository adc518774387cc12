package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

func newPlanCmd(g *globals) *cobra.Command {
	var ff flowFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "plan SOURCE [DESTINATION]",
		Short: "Show the tables, estimates and partitions a flow would copy, without copying",
		Long: `plan discovers the source's tables, applies --tables and --rename, and prints
each table's estimated rows and size and the partitions ferry would copy in
parallel. For a source with change data capture it prints the source's current
position, which would be T0 for a flow started now. Given a DESTINATION, it
also asks the destination whether it can hold the tables (refusing them as
ferry sync would) and lists the columns whose source type it has no
counterpart for (PostgreSQL's hstore or citext into SQLite or MySQL, which
become text). It writes nothing and creates no replication slot.`,
		Example: `  ferry plan 'fake://?tables=3&rows=1000000'
  ferry plan sqlite:///data/shop.db --tables 'orders*' --partition-rows 50000
  ferry plan postgres://app@db/shop sqlite:///tmp/shop.db
  ferry plan sqlite:///data/shop.db --json
  ferry plan "host=db.internal user=app password='s3 cr/t' dbname=shop"`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			g.addSecrets(args...)
			dstURL := "null://"
			if len(args) == 2 {
				dstURL = args[1]
			}
			cfg, err := ff.config(cmd, args[0], dstURL)
			if err != nil {
				return err
			}
			g.addSecrets(cfg.Source, cfg.Destination)
			if err := cfg.Validate(); err != nil {
				return err
			}
			cfg.Defaults()
			ctx := cmd.Context()
			c, err := connector.Open(ctx, cfg.Source)
			if err != nil {
				return fmt.Errorf("source: %w", err)
			}
			defer c.Close()
			can := connector.Discover(c)
			src := can.Source
			if src == nil {
				return errs.BadConfig(fmt.Sprintf("%s cannot be a source", errs.Redact(cfg.Source)), "plan a source connector")
			}
			tables, err := selectTables(cmd, src, cfg)
			if err != nil {
				return err
			}
			renames, err := flow.ParseRenames(cfg.Rename)
			if err != nil {
				return usageError{err}
			}
			shaped, transforms, err := planTransforms(*cfg, tables)
			if err != nil {
				return err
			}
			dstTables, err := renames.Map(shaped)
			if err != nil {
				return err
			}
			var conv []connector.Conversion
			var objects *planObjects
			if len(args) == 2 {
				if conv, err = checkDestination(cmd, cfg.Destination, dstTables); err != nil {
					return err
				}
				if objects, err = checkObjects(ctx, can, cfg.Destination, tables); err != nil {
					return err
				}
			}
			plan, err := src.Plan(ctx, tables, connector.PlanOptions{PartitionRows: cfg.PartitionRows, BatchRows: cfg.BatchRows, TableRows: engine.PartitionSizes(*cfg, tables)})
			if err != nil {
				return fmt.Errorf("plan: %w", err)
			}
			var head model.Position
			if cs := can.ChangeSource; cs != nil {
				if head, err = cs.HeadPosition(ctx); err != nil {
					return fmt.Errorf("read the source's position: %w", err)
				}
			}
			if asJSON {
				plan.T0 = head
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					*model.Plan
					Conversions []connector.Conversion `json:"conversions,omitempty"`
					Objects     *planObjects           `json:"objects,omitempty"`
					Transforms  map[string][]string    `json:"transforms,omitempty"`
				}{plan, conv, objects, transforms})
			}
			if err := printPlan(cmd, plan, head, conv); err != nil {
				return err
			}
			printTransforms(cmd.OutOrStdout(), transforms)
			printObjects(cmd.OutOrStdout(), objects)
			return nil
		},
	}
	ff.register(cmd.Flags(), false)
	ff.registerConnections(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	return cmd
}

// planTransforms is each table in the shape the flow's transforms give it
// at the destination, and what they do, by table, for plan's output.
func planTransforms(cfg flow.Config, tables []*model.Table) ([]*model.Table, map[string][]string, error) {
	rules, err := engine.Transforms(cfg)
	if err != nil || rules.Empty() {
		return tables, nil, err
	}
	if err := rules.CheckUnused(tables); err != nil {
		return nil, nil, err
	}
	shaped := make([]*model.Table, len(tables))
	what := map[string][]string{}
	for i, t := range tables {
		shaped[i] = t
		x, err := rules.For(t)
		if err != nil {
			return nil, nil, err
		}
		if x != nil {
			shaped[i] = x.Output()
			what[t.Namespace.String()] = x.Describe()
		}
	}
	return shaped, what, nil
}

// printTransforms lists what the transforms do to each table.
func printTransforms(w io.Writer, transforms map[string][]string) {
	if len(transforms) == 0 {
		return
	}
	fmt.Fprintln(w, "\ntransforms (on the copy and the change stream alike):")
	names := make([]string, 0, len(transforms))
	for n := range transforms {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, line := range transforms[n] {
			fmt.Fprintf(w, "  %s: %s\n", n, line)
		}
	}
}

// checkDestination asks the destination whether it can hold the tables, as
// a flow would before creating them, without writing anything.
func checkDestination(cmd *cobra.Command, url string, tables []*model.Table) ([]connector.Conversion, error) {
	dc, err := connector.Open(cmd.Context(), url)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	defer dc.Close()
	can := connector.Discover(dc)
	if can.Destination == nil {
		return nil, connector.NotDestination(errs.Redact(url))
	}
	tc := can.TableChecker
	if tc == nil {
		return nil, nil
	}
	conv, err := tc.CheckTables(cmd.Context(), tables)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	return conv, nil
}

// selectTables discovers the source's tables and applies --tables; a
// --rename naming a table the source does not have is refused, as in a flow.
func selectTables(cmd *cobra.Command, src connector.Source, cfg *flow.Config) ([]*model.Table, error) {
	all, err := src.Tables(cmd.Context())
	if err != nil {
		return nil, fmt.Errorf("discover source tables: %w", err)
	}
	f, err := flow.NewFilter(cfg.Tables)
	if err != nil {
		return nil, usageError{err}
	}
	renames, err := flow.ParseRenames(cfg.Rename)
	if err != nil {
		return nil, usageError{err}
	}
	var out []*model.Table
	var names []string
	var namespaces []model.Namespace
	for _, t := range all {
		names = append(names, t.Namespace.String())
		namespaces = append(namespaces, t.Namespace)
		if f.Match(t.Namespace) {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, errs.BadConfig(fmt.Sprintf("--tables %q matches no table", f.String()), fmt.Sprintf("the source has %d tables: %v", len(names), names))
	}
	if err := renames.CheckUnused(namespaces); err != nil {
		return nil, err
	}
	return out, nil
}

func printPlan(cmd *cobra.Command, plan *model.Plan, head model.Position, conv []connector.Conversion) error {
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TABLE\tCOLUMNS\tPRIMARY KEY\tEST. ROWS\tEST. SIZE\tPARTITIONS")
	parts := map[model.Namespace]int{}
	for _, p := range plan.Partitions {
		parts[p.Table]++
	}
	var rows, bytes int64
	for _, t := range plan.Tables {
		pk := "(none)"
		if len(t.PrimaryKey) > 0 {
			pk = fmt.Sprint(t.PrimaryKey)
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%d\n", t.Namespace, len(t.Columns), pk, humanize.Comma(t.EstimatedRows), humanize.Bytes(uint64(max(t.EstimatedBytes, 0))), parts[t.Namespace])
		rows += t.EstimatedRows
		bytes += t.EstimatedBytes
	}
	fmt.Fprintf(w, "total\t\t\t%s\t%s\t%d\n", humanize.Comma(rows), humanize.Bytes(uint64(max(bytes, 0))), len(plan.Partitions))
	if err := w.Flush(); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if head != "" {
		fmt.Fprintf(out, "\nchange data capture: yes; T0 for a flow started now: %s\n", head)
	} else {
		fmt.Fprintln(out, "\nchange data capture: no (snapshot only)")
	}
	var unstreamable []string
	for _, t := range plan.Tables {
		if t.NoChangeStream != "" {
			unstreamable = append(unstreamable, fmt.Sprintf("  %s: %s", t.Namespace, t.NoChangeStream))
		}
	}
	if head != "" && len(unstreamable) > 0 {
		fmt.Fprintln(out, "\nwarning: ferry sync leaves these tables out of a flow with change data capture (copy them with --mode snapshot):")
		fmt.Fprintln(out, strings.Join(unstreamable, "\n"))
	}
	if len(conv) > 0 {
		fmt.Fprintln(out, "\nwarning: these columns and definitions are not created as the source has them (a type the destination lacks holds the source type's text form; a definition only the source's engine reads is listed with its source SQL):")
		for _, c := range conv {
			fmt.Fprintf(out, "  %s\n", c)
		}
	}
	return nil
}
