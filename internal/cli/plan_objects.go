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
	out := &planObjects{Created: map[model.ObjectKind]int{}, Issues: issues}
	for _, o := range objs {
		out.Created[o.Kind]++
	}
	return out, nil
}

// printObjects prints what the cutover would create, and the warnings.
func printObjects(w io.Writer, p *planObjects) {
	if p == nil || len(p.Created) == 0 {
		return
	}
	var parts []string
	for _, k := range []model.ObjectKind{model.ObjectFunction, model.ObjectProcedure, model.ObjectView, model.ObjectMaterializedView, model.ObjectTrigger, model.ObjectAggregate} {
		if n := p.Created[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s(s)", n, k))
		}
	}
	fmt.Fprintf(w, "\nat cutover: %s created at the destination (those it lacks)\n", strings.Join(parts, ", "))
	if len(p.Issues) > 0 {
		fmt.Fprintln(w, "\nwarning: these are not created as the source has them at cutover:")
		for _, is := range p.Issues {
			fmt.Fprintf(w, "  %s\n", is)
		}
	}
}
