package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// planObjects is what ferry plan says of the functions, views,
// materialized views and triggers a cutover would create.
type planObjects struct {
	// Created counts them by kind; Issues are those the destination would
	// not create as the source has them (a role, a language it lacks).
	Created map[model.ObjectKind]int `json:"created,omitempty"`
	Issues  []connector.ObjectIssue  `json:"not_as_source,omitempty"`
	// WithTables counts the functions the tables' definitions call,
	// which a destination of the same engine creates with the tables,
	// before the copy (model.Table.Functions); Created leaves them out.
	WithTables map[model.ObjectKind]int `json:"with_tables,omitempty"`
}

// checkObjects reads the source's objects of tables' schemas and asks the
// destination what it would lack for them; nil when either side cannot.
func checkObjects(ctx context.Context, src connector.Capabilities, dstURL string, tables []*model.Table) (*planObjects, error) {
	if src.ObjectReader == nil {
		return nil, nil
	}
	dc, err := connector.Open(ctx, dstURL)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	defer dc.Close()
	ob := connector.Discover(dc).ObjectBuilder
	if ob == nil {
		return nil, nil
	}
	names := make([]model.Namespace, len(tables))
	for i, t := range tables {
		names[i] = t.Namespace
	}
	objs, err := src.ObjectReader.Objects(ctx, names)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	issues, err := ob.CheckObjects(ctx, objs)
	if err != nil {
		return nil, fmt.Errorf("destination %s: %w", errs.Redact(dstURL), err)
	}
	withTables := map[string]bool{}
	for _, t := range tables {
		for _, f := range t.Functions {
			withTables[f.ID] = true
		}
	}
	out := &planObjects{Created: map[model.ObjectKind]int{}, WithTables: map[model.ObjectKind]int{}, Issues: issues}
	for _, o := range objs {
		if withTables[o.ID] {
			out.WithTables[o.Kind]++
		} else {
			out.Created[o.Kind]++
		}
	}
	return out, nil
}

// objectCounts is "2 function(s), 1 view(s)" of the kinds counted.
func objectCounts(n map[model.ObjectKind]int) string {
	var parts []string
	for _, k := range []model.ObjectKind{model.ObjectFunction, model.ObjectProcedure, model.ObjectView, model.ObjectMaterializedView, model.ObjectTrigger, model.ObjectAggregate} {
		if n[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s(s)", n[k], k))
		}
	}
	return strings.Join(parts, ", ")
}

// printObjects prints what the cutover would create, and the warnings.
func printObjects(w io.Writer, p *planObjects) {
	if p == nil {
		return
	}
	if s := objectCounts(p.WithTables); s != "" {
		fmt.Fprintf(w, "\nwith the tables, before the copy: %s their definitions call, created at the destination (those it lacks)\n", s)
	}
	if s := objectCounts(p.Created); s != "" {
		fmt.Fprintf(w, "\nat cutover: %s created at the destination (those it lacks)\n", s)
	}
	if len(p.Issues) > 0 {
		fmt.Fprintln(w, "\nwarning: these are not created as the source has them at cutover:")
		for _, is := range p.Issues {
			fmt.Fprintf(w, "  %s\n", is)
		}
	}
}
