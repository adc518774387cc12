package transform

import (
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// Table is the rules bound to one source table: the destination's shape and
// how a source row becomes a destination row.
type Table struct {
	src, out *model.Table
	// cols says where each output column's value comes from.
	cols    []outColumn
	filters []*program
	env     *celEnv // nil when the table has no expression
	masker  *masker
	// keyIdx are the source positions of the primary key's columns, and
	// keyMasks their masks (hash or none): a change's Key is transformed
	// by these alone.
	keyIdx    []int
	keyMasks  []mask
	keyMasked bool
	// fullRow: no primary key, and a change's Key is the whole old row.
	fullRow  bool
	describe []string
}

// outColumn is one output column: a source column, masked or not, or a
// computed one (prog set, src -1).
type outColumn struct {
	src  int
	name string     // a computed column's
	typ  model.Type // the source column's type, which a mask reads
	mask mask
	prog *program
}

// columnPlan is what the rules do to one source column.
type columnPlan struct {
	excludedBy string
	renameTo   string
	renamedBy  string
	mask       mask
	maskedBy   string
}

// For binds the rules to the source table t: nil, nil when no rule applies
// to it (none matches it, or those that do name columns it lacks). It checks every rule against t's columns and compiles t's
// expressions, once: keep the *Table for the table's life (call For again
// after a schema change).
func (r *Rules) For(t *model.Table) (*Table, error) {
	if r.Empty() {
		return nil, nil
	}
	ns := t.Namespace
	matched := false
	plans := make([]columnPlan, len(t.Columns))
	for _, c := range r.excludes {
		if !matchTable(c.table, ns) {
			continue
		}
		if i := t.ColumnIndex(c.column); i >= 0 {
			plans[i].excludedBy, matched = c.rule, true
		}
	}
	for _, c := range r.renames {
		if !matchTable(c.table, ns) {
			continue
		}
		i := t.ColumnIndex(c.column)
		if i < 0 {
			continue // a glob's other tables may have it
		}
		matched = true
		if p := &plans[i]; p.renamedBy != "" && p.renameTo != c.to {
			return nil, errs.BadConfig(fmt.Sprintf("table %s: %s and %s give column %s two names", ns, p.renamedBy, c.rule, c.column), "keep one rename per column")
		}
		plans[i].renameTo, plans[i].renamedBy = c.to, c.rule
	}
	for _, c := range r.masks {
		if !matchTable(c.table, ns) {
			continue
		}
		i := t.ColumnIndex(c.column)
		if i < 0 {
			continue // a glob's other tables may have it
		}
		matched = true
		if p := &plans[i]; p.maskedBy != "" && p.mask != c.mask {
			return nil, errs.BadConfig(fmt.Sprintf("table %s: %s and %s mask column %s two ways", ns, p.maskedBy, c.rule, c.column), "keep one mask per column")
		}
		plans[i].mask, plans[i].maskedBy = c.mask, c.rule
	}
	var filters []exprRule
	for _, f := range r.filters {
		if matchTable(f.table, ns) {
			filters = append(filters, f)
		}
	}
	var computes []computeRule
	for _, c := range r.computes {
		if matchTable(c.table, ns) {
			computes = append(computes, c)
		}
	}
	if !matched && len(filters) == 0 && len(computes) == 0 {
		return nil, nil
	}

	for i, p := range plans {
		name := t.Columns[i].Name
		if p.excludedBy != "" && p.renamedBy != "" {
			return nil, errs.BadConfig(fmt.Sprintf("table %s: %s excludes column %s, which %s renames", ns, p.excludedBy, name, p.renamedBy), "keep either the exclude or the rename")
		}
		if p.excludedBy != "" && p.maskedBy != "" {
			return nil, errs.BadConfig(fmt.Sprintf("table %s: %s excludes column %s, which %s masks", ns, p.excludedBy, name, p.maskedBy), "keep either the exclude or the mask")
		}
	}
	for _, k := range t.PrimaryKey {
		i := t.ColumnIndex(k)
		if i < 0 {
			return nil, fmt.Errorf("table %s: primary key column %q is not a column", ns, k)
		}
		p := plans[i]
		if p.excludedBy != "" {
			return nil, errs.BadConfig(fmt.Sprintf("table %s: %s excludes the primary key column %s: the change stream finds rows by their key", ns, p.excludedBy, k), "keep the key column; mask it with hash to hide its values")
		}
		if p.maskedBy != "" && p.mask.kind != maskHash {
			return nil, errs.BadConfig(fmt.Sprintf("table %s: %s masks the primary key column %s with %s, which can give distinct keys one value and merge their rows", ns, p.maskedBy, k, p.mask), "mask a key column with hash, which keeps keys distinct")
		}
	}

	t = t.Clone() // the caller's table may change after For; ours may not
	x := &Table{src: t, masker: newMasker(r.salt), fullRow: len(t.PrimaryKey) == 0 && t.FullRowIdentity}
	names := map[string]string{} // output name -> source column, for clashes
	for i, p := range plans {
		c := t.Columns[i]
		if p.excludedBy != "" {
			x.describe = append(x.describe, c.Name+": excluded")
			continue
		}
		name := c.Name
		var what []string
		if p.renamedBy != "" {
			name = p.renameTo
			what = append(what, "renamed to "+name)
		}
		if p.maskedBy != "" {
			what = append(what, "masked ("+p.mask.String()+")")
		}
		if prev, dup := names[name]; dup {
			return nil, errs.BadConfig(fmt.Sprintf("table %s: columns %s and %s would both be called %s", ns, prev, c.Name, name), "rename one of them to a name of its own")
		}
		names[name] = c.Name
		x.cols = append(x.cols, outColumn{src: i, typ: c.Type, mask: p.mask})
		if len(what) > 0 {
			x.describe = append(x.describe, c.Name+": "+strings.Join(what, ", "))
		}
	}

	if len(filters)+len(computes) > 0 {
		env, err := newCelEnv(t)
		if err != nil {
			return nil, err
		}
		x.env = env
	}
	for _, c := range computes {
		if prev, dup := names[c.column]; dup {
			what := "column " + prev
			if prev == "" {
				what = "another computed column"
			}
			return nil, errs.BadConfig(fmt.Sprintf("table %s: %s adds column %s, the name %s has at the destination", ns, c.rule, c.column, what), "give the computed column a name of its own")
		}
		names[c.column] = ""
		p, err := x.env.compile("computed column "+c.column, c.expr, false)
		if err != nil {
			return nil, err
		}
		if err := refuseUnchangedReads(t, p); err != nil {
			return nil, err
		}
		x.cols = append(x.cols, outColumn{src: -1, name: c.column, prog: p})
		x.describe = append(x.describe, fmt.Sprintf("%s: computed (%s) = %s", c.column, p.kind, c.expr))
	}
	for _, f := range filters {
		p, err := x.env.compile("filter", f.expr, true)
		if err != nil {
			return nil, err
		}
		if err := refuseUnchangedReads(t, p); err != nil {
			return nil, err
		}
		x.filters = append(x.filters, p)
		x.describe = append(x.describe, "filter: "+f.expr)
	}
	if len(x.filters) > 0 {
		var unchanged []string
		for _, c := range t.Columns {
			if c.SentUnchanged {
				unchanged = append(unchanged, c.Name)
			}
		}
		if len(unchanged) > 0 {
			return nil, errs.BadConfig(fmt.Sprintf("table %s: a filter needs every column of an update, and the source's change stream may send %s as unchanged (a value stored out of line the update left alone): an update moving a row into the filter would insert it without that value", ns, strings.Join(unchanged, ", ")),
				fmt.Sprintf("run ALTER TABLE %s REPLICA IDENTITY FULL at the source, so updates carry every column", ns))
		}
	}

	x.keyIdx = t.KeyIndexes()
	x.keyMasks = make([]mask, len(x.keyIdx))
	for j, i := range x.keyIdx {
		x.keyMasks[j] = plans[i].mask
		if plans[i].mask.kind != maskNone {
			x.keyMasked = true
		}
	}
	x.out = output(t, plans, x.cols)
	return x, nil
}

// refuseUnchangedReads refuses an expression reading a column the change
// stream may send as unchanged: it would have no value to read.
func refuseUnchangedReads(t *model.Table, p *program) error {
	for _, name := range p.reads {
		if c := t.Columns[t.ColumnIndex(name)]; c.SentUnchanged {
			return errs.BadConfig(fmt.Sprintf("table %s: %s %q reads column %s, which the source's change stream may send as unchanged (a value stored out of line an update left alone) instead of its value", t.Namespace, p.what, p.expr, name),
				fmt.Sprintf("run ALTER TABLE %s REPLICA IDENTITY FULL at the source, so updates carry every column", t.Namespace))
		}
	}
	return nil
}

// Output is the destination's shape of the table (in the source table's
// Namespace): shared, not to be modified.
func (x *Table) Output() *model.Table { return x.out }

// Describe says what the rules do to the table, one line per transform,
// for `ferry plan`.
func (x *Table) Describe() []string { return x.describe }

// HasFilter reports whether rows of the table may be left out.
func (x *Table) HasFilter() bool { return len(x.filters) > 0 }

// DestinationColumn is the name source column name has at the
// destination, false when the table's rules leave it out.
func (x *Table) DestinationColumn(name string) (string, bool) {
	for i, c := range x.cols {
		if c.src >= 0 && x.src.Columns[c.src].Name == name {
			return x.out.Columns[i].Name, true
		}
	}
	return "", false
}
