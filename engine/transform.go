package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/transform"
)

// SecretEnvPrefix prefixes the environment variable holding a named
// secret (--mask-salt NAME: FERRY_SECRET_NAME), so a hash's salt is in no
// flow file, command line or workflow history: every process that runs
// the flow (ferry sync, each worker) resolves it.
const SecretEnvPrefix = "FERRY_SECRET_"

// transformSpec is the flow's transforms, the salt resolved.
func transformSpec(cfg flow.Config) (transform.Spec, error) {
	s := transform.Spec{Exclude: cfg.Exclude, Rename: cfg.RenameColumns, Mask: cfg.Mask, Filter: cfg.Filter, Compute: cfg.Compute}
	if cfg.MaskSalt != "" {
		env := SecretEnvPrefix + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(cfg.MaskSalt))
		salt, ok := os.LookupEnv(env)
		if !ok || salt == "" {
			return s, errs.BadConfig(fmt.Sprintf("--mask-salt %s: the secret is not set (%s)", cfg.MaskSalt, env),
				fmt.Sprintf("set %s=... in the environment of every process that runs the flow (ferry sync, each worker)", env))
		}
		s.Salt = salt
	}
	return s, nil
}

// Transforms are the flow's transforms, the salt resolved, for a command
// that compares a flow's tables without an engine (ferry verify).
func Transforms(cfg flow.Config) (*transform.Rules, error) {
	spec, err := transformSpec(cfg)
	if err != nil {
		return nil, err
	}
	return transform.Parse(spec)
}

// transformsPrint fingerprints the flow's transforms (the salt's too, so
// neither is in the state store): "" when it has none.
func (e *Engine) transformsPrint() string {
	spec, err := transformSpec(e.cfg)
	if err != nil || spec.Empty() {
		return ""
	}
	b, _ := json.Marshal(spec)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// sameTransforms refuses to resume a flow under other transforms than it
// started with: the rows at the destination have the old ones' shape.
func (e *Engine) sameTransforms(ctx context.Context) error {
	stored, err := e.store.Meta(ctx, "transforms")
	if err != nil {
		return err
	}
	if stored == e.transformsPrint() {
		return nil
	}
	return errs.BadConfig(fmt.Sprintf("flow %q was started with other transforms (--exclude, --rename-column, --mask, --mask-salt, --filter, --compute): the rows already at the destination have their shape", e.name),
		"run it with the transforms it was started with, or start it over with --restart (the destination tables are copied again)")
}

// destinations pairs each source table with its destination table: its
// transform's output (the transform nil when no rule matches the table),
// under the table renames.
func (e *Engine) destinations(tables []*model.Table) ([]*model.Table, []*transform.Table, error) {
	shaped := make([]*model.Table, len(tables))
	xfs := make([]*transform.Table, len(tables))
	for i, t := range tables {
		shaped[i] = t
		if e.xf.Empty() {
			continue
		}
		x, err := e.xf.For(t)
		if err != nil {
			return nil, nil, err
		}
		if x != nil {
			xfs[i], shaped[i] = x, x.Output()
		}
	}
	dsts, err := e.renames.Map(shaped)
	if err != nil {
		return nil, nil, err
	}
	return dsts, xfs, nil
}

// destination is destinations of one table.
func (e *Engine) destination(t *model.Table) (*model.Table, *transform.Table, error) {
	dsts, xfs, err := e.destinations([]*model.Table{t})
	if err != nil {
		return nil, nil, err
	}
	return dsts[0], xfs[0], nil
}

// reshape sets a table run's source table, and its destination table and
// transform from it.
func (e *Engine) reshape(tr *tableRun, src *model.Table) error {
	d, x, err := e.destination(src)
	if err != nil {
		return err
	}
	tr.src, tr.dst, tr.xf = src, d, x
	tr.keyIdx = d.KeyIndexes()
	return nil
}

// transformRows reshapes a batch of copied rows to the destination's
// shape, leaving out the rows the table's filter does not keep.
func (tr *tableRun) transformRows(rows []model.Row) ([]model.Row, error) {
	if tr.xf == nil {
		return rows, nil
	}
	out := rows[:0]
	for _, r := range rows {
		o, keep, err := tr.xf.Row(r)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", tr.src.Namespace, err)
		}
		if keep {
			out = append(out, o)
		}
	}
	return out, nil
}

// transformChange reshapes one change of the stream to the destination's
// shape; false when the table's filter drops it.
func (tr *tableRun) transformChange(c *model.Change) (bool, error) {
	if tr.xf == nil || c.Op == model.OpTruncate {
		return true, nil
	}
	o, keep, err := tr.xf.Change(*c)
	if err != nil {
		return false, fmt.Errorf("table %s: %w", tr.src.Namespace, err)
	}
	*c = o
	return keep, nil
}

// destinationChange is a source schema change of tr's table as the
// destination sees it: the new source table's destination table and
// transform, and the renamed columns and the values existing rows got
// (SchemaChange.Renamed, Filled) under the destination's column names.
// A column a transform leaves out is in neither.
func (e *Engine) destinationChange(tr *tableRun, ch model.SchemaChange) (*model.Table, *transform.Table, model.SchemaChange, error) {
	toDst, x, err := e.destination(ch.Table)
	if err != nil {
		return nil, nil, model.SchemaChange{}, fmt.Errorf("schema change on %s: %w", ch.Table.Namespace, err)
	}
	out := model.SchemaChange{Table: toDst, Recopy: ch.Recopy, Renamed: ch.Renamed, Filled: ch.Filled}
	if x == nil && tr.xf == nil {
		return toDst, x, out, nil
	}
	name := func(x *transform.Table, col string) (string, bool) {
		if x == nil {
			return col, true
		}
		return x.DestinationColumn(col)
	}
	if len(ch.Renamed) > 0 {
		out.Renamed = map[string]string{}
		for to, from := range ch.Renamed {
			n, ok1 := name(x, to)
			o, ok2 := name(tr.xf, from)
			if ok1 && ok2 && n != o {
				out.Renamed[n] = o
			}
		}
	}
	if len(ch.Filled) > 0 {
		out.Filled = map[string]any{}
		for col, v := range ch.Filled {
			if n, ok := name(x, col); ok {
				out.Filled[n] = v
			}
		}
	}
	return toDst, x, out, nil
}
