package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// StepObjects is the cutover step that creates the functions, procedures,
// views, materialized views and triggers of the flow's schemas, after the
// constraints: a materialized view then holds the copied rows, and a
// trigger never fires for a row the flow applied.
const StepObjects = "objects"

// objectSteps is the objects step, when the source can read objects and
// the destination create them.
func (e *Engine) objectSteps() []finishStep {
	if e.src.ObjectReader == nil || e.dst.ObjectBuilder == nil {
		return nil
	}
	return []finishStep{{StepObjects, e.BuildObjects}}
}

// BuildObjects reads the source's functions, views, materialized views and
// triggers of the flow's schemas as they are now and has the destination
// create those it lacks. What cannot be created as the source has it (a
// definition naming a renamed schema or table, a missing role, language
// or table) is listed in the log and the returned detail with what to do.
func (e *Engine) BuildObjects(ctx context.Context) (string, error) {
	if e.src.ObjectReader == nil || e.dst.ObjectBuilder == nil {
		return "", nil
	}
	if e.tables == nil {
		return "", errNoPlan
	}
	names := e.sourceNames()
	var objs []model.Object
	err := e.onSource(ctx, "read functions, views and triggers", func(ctx context.Context) (err error) {
		objs, err = e.src.ObjectReader.Objects(ctx, names)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("read the source's functions, views and triggers: %w", err)
	}
	objs, issues := e.destinationObjects(objs)
	var done connector.ObjectsBuilt
	err = e.onDestination(ctx, "create functions, views and triggers", func(ctx context.Context) (err error) {
		done, err = e.dst.ObjectBuilder.BuildObjects(ctx, objs)
		return err
	})
	if err != nil {
		return "", err
	}
	issues = append(issues, done.Issues...)
	for _, is := range issues {
		e.log.Warn("cutover: object not created as the source has it; run the fix at the destination", "object", is.Object,
			"created", is.Created, "problem", is.Problem, "fix", is.Fix)
	}
	return objectsDetail(done, issues), nil
}

// objectsDetail says what the step created, per kind, and lists what it
// did not create as the source has it.
func objectsDetail(done connector.ObjectsBuilt, issues []connector.ObjectIssue) string {
	var parts []string
	for _, k := range []model.ObjectKind{model.ObjectFunction, model.ObjectProcedure, model.ObjectView, model.ObjectMaterializedView, model.ObjectTrigger} {
		parts = append(parts, fmt.Sprintf("%d %s(s)", done.Created[k], k))
	}
	detail := strings.Join(parts, ", ") + fmt.Sprintf(" created, %d already there", done.Present)
	if len(issues) > 0 {
		list := make([]string, len(issues))
		for i, is := range issues {
			list[i] = is.String()
		}
		detail += fmt.Sprintf("; %d not as the source's: %s", len(issues), strings.Join(list, "; "))
	}
	return detail
}

// destinationObjects leaves out, under --rename, the objects whose
// definitions name a renamed schema or table: ferry does not rewrite SQL
// text, so it cannot create them right. They are returned as issues with
// their definition, for the user to create with the names changed.
func (e *Engine) destinationObjects(objs []model.Object) ([]model.Object, []connector.ObjectIssue) {
	renamedSchemas := map[string]bool{}
	renamedTables := map[model.Namespace]model.Namespace{}
	transformed := map[model.Namespace]bool{}
	for _, t := range e.tables {
		if t.xf != nil {
			transformed[t.src.Namespace] = true
		}
		if t.src.Namespace != t.dst.Namespace {
			renamedTables[t.src.Namespace] = t.dst.Namespace
		}
		if t.src.Namespace.Schema != t.dst.Namespace.Schema {
			renamedSchemas[t.src.Namespace.Schema] = true
		}
	}
	if len(renamedTables) == 0 && len(transformed) == 0 {
		return objs, nil
	}
	// The functions a table's definition calls were created with it, in
	// their source schema, as the table's types are: the destination
	// finds them there.
	withTables := map[string]bool{}
	for _, t := range e.tables {
		for _, f := range t.src.Functions {
			withTables[f.ID] = true
		}
	}
	var schemas []string
	for s := range renamedSchemas {
		schemas = append(schemas, s)
	}
	sort.Strings(schemas)
	var out []model.Object
	var issues []connector.ObjectIssue
	for _, o := range objs {
		why := ""
		for _, s := range schemas {
			if o.Schema == s || strings.Contains(o.Create, s+".") || strings.Contains(o.Create, `"`+s+`".`) {
				why = "it names schema " + s + ", renamed at the destination"
				break
			}
		}
		for _, t := range append([]model.Namespace{o.Table}, o.Tables...) {
			if to, ok := renamedTables[t]; ok && why == "" {
				why = "it uses table " + t.String() + ", renamed " + to.String() + " at the destination"
			}
			if transformed[t] && why == "" {
				why = "it uses table " + t.String() + ", whose columns or rows the flow transforms"
			}
		}
		// A function's body names tables the catalog does not record.
		for _, t := range e.tables {
			if from, to := t.src.Namespace, t.dst.Namespace; why == "" && from != to && strings.Contains(o.Create, from.String()) {
				why = "it names table " + from.String() + ", renamed " + to.String() + " at the destination"
			}
		}
		if why == "" || withTables[o.ID] {
			out = append(out, o)
			continue
		}
		issues = append(issues, connector.ObjectIssue{Object: o.String(), Problem: why + " (ferry does not rewrite definitions)",
			Fix: "create it at the destination with the destination's names: " + strings.Join(strings.Fields(o.Create), " ")})
	}
	return out, issues
}

// warnObjects warns, when the flow starts, of each object the cutover will
// not create as the source has it for want of a role or a language at the
// destination, so the user can create them before the day. It only warns:
// the cutover checks again.
func (e *Engine) warnObjects(ctx context.Context) {
	if e.src.ObjectReader == nil || e.dst.ObjectBuilder == nil {
		return
	}
	names := e.sourceNames()
	objs, err := e.src.ObjectReader.Objects(ctx, names)
	if err != nil {
		e.log.Warn("could not read the source's functions, views and triggers to check them; the cutover reads them again", "error", err)
		return
	}
	objs, _ = e.destinationObjects(objs)
	issues, err := e.dst.ObjectBuilder.CheckObjects(ctx, objs)
	if err != nil {
		e.log.Warn("could not check the destination for the source's functions, views and triggers; the cutover checks again", "error", err)
		return
	}
	for _, is := range issues {
		e.log.Warn("at cutover this object will not be created as the source's; run the fix at the destination before", "object", is.Object,
			"created", is.Created, "problem", is.Problem, "fix", is.Fix)
	}
}
