package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/model"
)

// StepSchema is the cutover step that builds the constraints the copy and
// the stream ran without (unique, foreign keys, checks).
const StepSchema = "schema"

// schemaSteps is the schema step, when the source can read constraints
// and the destination build them, then the objects step (objects.go).
func (e *Engine) schemaSteps() []finishStep {
	if e.src.ConstraintReader == nil || e.dst.ConstraintBuilder == nil {
		return e.objectSteps()
	}
	return append([]finishStep{{StepSchema, e.BuildConstraints}}, e.objectSteps()...)
}

// BuildConstraints reads the source's constraints of the flow's tables as
// they are now and has the destination build them, named for the
// destination (--rename). A constraint whose definition cannot be mapped
// to the destination's names, or that has no portable form for a
// destination of another engine (Constraint.Unportable), is not built but
// listed in the log and the returned detail, with what to do.
func (e *Engine) BuildConstraints(ctx context.Context) (string, error) {
	if e.src.ConstraintReader == nil || e.dst.ConstraintBuilder == nil {
		return "", nil
	}
	if e.tables == nil {
		return "", errNoPlan
	}
	names := e.sourceNames()
	var cons []model.Constraint
	err := e.onSource(ctx, "read constraints", func(ctx context.Context) (err error) {
		cons, err = e.src.ConstraintReader.Constraints(ctx, names)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("read the source's constraints: %w", err)
	}
	cons, skipped := e.destinationConstraints(cons)
	for _, s := range skipped {
		e.log.Warn("cutover: constraint not built; create it at the destination yourself", "constraint", s)
	}
	var built, present int
	var unbuilt []string
	err = e.onDestination(ctx, "build constraints", func(ctx context.Context) error {
		done, err := e.dst.ConstraintBuilder.BuildConstraints(ctx, cons)
		built, present, unbuilt = done.Built, done.Present, done.Skipped
		return err
	})
	if err != nil {
		return "", err
	}
	for _, s := range unbuilt {
		e.log.Warn("cutover: constraint not built; create it at the destination yourself", "constraint", s)
	}
	skipped = append(skipped, unbuilt...)
	detail := fmt.Sprintf("%d constraint(s) built, %d already there", built, present)
	if len(skipped) > 0 {
		detail += fmt.Sprintf("; %d not built (create them at the destination yourself): %s", len(skipped), strings.Join(skipped, "; "))
	}
	return detail, nil
}

// destinationConstraints names the source's constraints at the
// destination: each on its table's destination table, a foreign key
// referring to where its referenced table goes. A definition that names
// a renamed schema elsewhere (a function in a check or an index
// expression) cannot be mapped: it is returned in skipped, as is a
// foreign key to a table outside the flow under a rename.
func (e *Engine) destinationConstraints(cons []model.Constraint) (out []model.Constraint, skipped []string) {
	for _, k := range cons {
		tr := e.byNS[k.Table]
		if tr == nil {
			continue
		}
		src := k.Table
		k.Table = tr.dst.Namespace
		if tr.xf != nil || (k.Kind == model.ConstraintForeignKey && e.byNS[k.RefTable] != nil && e.byNS[k.RefTable].xf != nil) {
			skipped = append(skipped, fmt.Sprintf("%s.%s is on a table the flow transforms (--exclude, --rename-column, --mask, --filter, --compute): its columns or rows differ at the destination; create it there as it applies to them", src, k.Name))
			continue
		}
		if k.Unportable != "" {
			skipped = append(skipped, fmt.Sprintf("%s.%s has no form the destination's engine reads (the source's definition: %s); write it in the destination's SQL and run it there", src, k.Name, k.Unportable))
			continue
		}
		if k.Kind == model.ConstraintForeignKey {
			if ref := e.byNS[k.RefTable]; ref != nil {
				k.RefTable = ref.dst.Namespace
			} else if to := e.renames.Apply(k.RefTable); to != k.RefTable {
				skipped = append(skipped, fmt.Sprintf("%s.%s refers to %s, which is not in the flow", src, k.Name, k.RefTable))
				continue
			}
		}
		if e.renames.Apply(src).Schema != src.Schema && mentionsSchema(k, src.Schema) {
			skipped = append(skipped, fmt.Sprintf("%s.%s names schema %s in its definition, renamed at the destination: %s", src, k.Name, src.Schema, k.Definition+k.Index))
			continue
		}
		out = append(out, k)
	}
	return out, skipped
}

// mentionsSchema tells whether a definition names something of schema
// besides the referenced table (which is mapped).
func mentionsSchema(k model.Constraint, schema string) bool {
	text := k.Index + " " + k.Predicate + " " + k.Check + " " + strings.Join(k.Keys, " ")
	if k.Kind != model.ConstraintForeignKey {
		text += " " + k.Definition
	}
	return strings.Contains(text, schema+".") || strings.Contains(text, `"`+schema+`".`)
}

// sourceNames are the source names of the flow's tables, in plan order.
func (e *Engine) sourceNames() []model.Namespace {
	names := make([]model.Namespace, len(e.tables))
	for i, t := range e.tables {
		names[i] = t.src.Namespace
	}
	return names
}
