package connector

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ferrydb/ferry/model"
)

// This file is the one place that decides, for every SchemaChanger
// destination, what a source's schema change means column by column and
// which type changes keep every value (docs/decisions/2026-12-06-schema-
// changes-at-the-destination.md). A destination turns the steps into its
// own DDL; it never decides the rules again.

// AlterOp is one kind of step of an AlterPlan.
type AlterOp uint8

const (
	// AlterDrop drops Old (its values go with it).
	AlterDrop AlterOp = iota + 1
	// AlterRename renames Old to Column.Name, keeping its values.
	AlterRename
	// AlterAdd adds Column; when Filled, the rows already there get Fill.
	AlterAdd
	// AlterRetype changes Old's type or nullability to Column's (Column.Name
	// is its name after the change's renames). Widening says every value
	// of Old's type is a value of Column's; otherwise the destination
	// refuses with RetypeRefusal, unless its column already has the new
	// type (changed by hand, or by an earlier run).
	AlterRetype
)

// AlterStep is one column's part of a schema change.
type AlterStep struct {
	Op       AlterOp
	Column   model.Column // the column in the new definition
	Old      model.Column // the column in the definition before
	Fill     any          // AlterAdd: the value the existing rows get
	Filled   bool
	Widening bool // AlterRetype: no value can be lost
}

// AlterPlan is what following one schema change takes at a destination
// whose table has the columns it was given, in the order to apply them:
// drops, renames, adds, then retypes. Steps a previous run applied already
// are not in it, so applying a change twice is harmless.
type AlterPlan struct {
	Table model.Namespace
	Steps []AlterStep
	// Added are every column the change adds, whether this run adds them
	// or an earlier one did (a destination that applies a change in several
	// statements tidies up after an interrupted run with them).
	Added []AlterStep
}

// CurrentName is the name st's column has at the destination before the
// plan runs: its old name while a rename of it is among the steps.
func (p *AlterPlan) CurrentName(st AlterStep) string {
	for _, r := range p.Steps {
		if r.Op == AlterRename && r.Column.Name == st.Column.Name {
			return r.Old.Name
		}
	}
	return st.Column.Name
}

// PlanAlter works out what following ch takes at a destination table that
// was from (in the flow's memory) and has the columns present now (its
// catalog), names compared after fold (the destination's own case rule:
// strings.ToLower for MySQL and SQLite, nil for exact). present, not from,
// decides what is done already: a flow resumed before its checkpoint hands
// the same change again with from still the old definition.
func PlanAlter(from *model.Table, ch model.SchemaChange, present []string, fold func(string) string) (*AlterPlan, error) {
	if from == nil || ch.Table == nil {
		return nil, fmt.Errorf("alter table: missing table definition")
	}
	if fold == nil {
		fold = func(s string) string { return s }
	}
	to := ch.Table
	ns := to.Namespace
	oldByName := map[string]model.Column{}
	for _, c := range from.Columns {
		oldByName[fold(c.Name)] = c
	}
	has := map[string]bool{}
	for _, n := range present {
		has[fold(n)] = true
	}
	renamedFrom := map[string]string{} // folded old name -> new name
	for nw, old := range ch.Renamed {
		if to.ColumnIndex(nw) < 0 {
			return nil, fmt.Errorf("table %s: the source renamed column %s to %s, which the new definition does not have", ns, old, nw)
		}
		if _, ok := oldByName[fold(old)]; !ok {
			return nil, fmt.Errorf("table %s: the source renamed column %s to %s, but the table had no column %s", ns, old, nw, old)
		}
		renamedFrom[fold(old)] = nw
	}
	// counterpart is the column of from that each column of to was.
	counterpart := func(c model.Column) (model.Column, bool) {
		if old, ok := ch.Renamed[c.Name]; ok {
			return oldByName[fold(old)], true
		}
		if _, renamed := renamedFrom[fold(c.Name)]; renamed {
			return model.Column{}, false // a new column with a renamed one's old name
		}
		old, ok := oldByName[fold(c.Name)]
		return old, ok
	}
	kept := map[string]bool{} // folded old names that live on in to
	for _, c := range to.Columns {
		if old, ok := counterpart(c); ok {
			kept[fold(old.Name)] = true
		}
	}
	// A key change is no column change: the engine refuses it before a
	// destination sees it, and so does this, for any other caller.
	oldKey := make([]string, len(from.PrimaryKey))
	for i, k := range from.PrimaryKey {
		oldKey[i] = fold(k)
		if nw, ok := renamedFrom[fold(k)]; ok {
			oldKey[i] = fold(nw)
		}
	}
	newKey := make([]string, len(to.PrimaryKey))
	for i, k := range to.PrimaryKey {
		newKey[i] = fold(k)
	}
	if !slices.Equal(oldKey, newKey) {
		return nil, fmt.Errorf("table %s: the source's primary key changed from (%s) to (%s), which ferry cannot follow; run the flow again with --restart", ns, strings.Join(from.PrimaryKey, ", "), strings.Join(to.PrimaryKey, ", "))
	}
	plan := &AlterPlan{Table: ns}
	var drops, renames, adds, retypes []AlterStep
	dropped := map[string]bool{}
	for _, old := range from.Columns {
		if kept[fold(old.Name)] {
			continue
		}
		dropped[fold(old.Name)] = true
		// A dropped column whose name a renamed column takes is dropped
		// only while the table has the old shape (decided below).
		if slices.ContainsFunc(to.Columns, func(c model.Column) bool { return fold(c.Name) == fold(old.Name) }) {
			continue
		}
		if has[fold(old.Name)] {
			drops = append(drops, AlterStep{Op: AlterDrop, Old: old})
		}
	}
	// Renames, in a stable order. A rename is done when its old name is
	// gone and its new name there.
	names := make([]string, 0, len(ch.Renamed))
	for nw := range ch.Renamed {
		names = append(names, nw)
	}
	slices.Sort(names)
	after := map[string]bool{} // folded names that have their new column
	for _, nw := range names {
		old := oldByName[fold(ch.Renamed[nw])]
		col := to.Columns[to.ColumnIndex(nw)]
		hasOld, hasNew := has[fold(old.Name)], has[fold(nw)]
		switch {
		case fold(old.Name) == fold(nw):
			// A change of case only, where the destination folds names.
		case hasOld && !hasNew:
			renames = append(renames, AlterStep{Op: AlterRename, Column: col, Old: old})
		case !hasOld && hasNew:
			after[fold(nw)] = true
		case hasOld && hasNew && dropped[fold(nw)] && !reAdded(to, ch, fold, old.Name):
			// The column that had the name goes; this one takes its name.
			drops = append(drops, AlterStep{Op: AlterDrop, Old: oldByName[fold(nw)]})
			renames = append(renames, AlterStep{Op: AlterRename, Column: col, Old: old})
		case hasOld && hasNew && !dropped[fold(nw)] && reAdded(to, ch, fold, old.Name):
			after[fold(nw)] = true // renamed, and its old name taken by a new column since
		case hasOld && hasNew:
			return nil, fmt.Errorf("table %s: the source renamed column %s to %s, and the destination table has both names, so ferry cannot tell whether the rename was applied; make the destination table's columns match the source's by hand and run the flow again", ns, old.Name, nw)
		default:
			// Neither name: a later change, applied before the flow
			// stopped, renamed or dropped it again; that change follows.
		}
	}
	renamedAway := map[string]bool{}
	for _, r := range renames {
		renamedAway[fold(r.Old.Name)] = true
	}
	for _, c := range to.Columns {
		old, ok := counterpart(c)
		if !ok {
			st := AlterStep{Op: AlterAdd, Column: c}
			st.Fill, st.Filled = ch.Filled[c.Name]
			if st.Filled && st.Fill == nil {
				st.Filled = false
			}
			plan.Added = append(plan.Added, st)
			// Present and not about to be renamed or dropped away: an
			// earlier run added it.
			if has[fold(c.Name)] && !renamedAway[fold(c.Name)] && !dropsName(drops, fold, c.Name) {
				continue
			}
			adds = append(adds, st)
			continue
		}
		if sameType(old.Type, c.Type) && old.Nullable == c.Nullable {
			continue
		}
		if !has[fold(c.Name)] && !slices.ContainsFunc(renames, func(r AlterStep) bool { return r.Column.Name == c.Name }) {
			continue // gone already, by a later change (see the renames)
		}
		retypes = append(retypes, AlterStep{Op: AlterRetype, Column: c, Old: old, Widening: Widens(old.Type, c.Type)})
	}
	plan.Steps = slices.Concat(drops, renames, adds, retypes)
	return plan, nil
}

// reAdded reports whether to has a new column (neither kept nor renamed)
// named name.
func reAdded(to *model.Table, ch model.SchemaChange, fold func(string) string, name string) bool {
	for _, c := range to.Columns {
		if fold(c.Name) != fold(name) {
			continue
		}
		_, renamed := ch.Renamed[c.Name]
		return !renamed
	}
	return false
}

func dropsName(drops []AlterStep, fold func(string) string, name string) bool {
	return slices.ContainsFunc(drops, func(d AlterStep) bool { return fold(d.Old.Name) == fold(name) })
}

func sameType(a, b model.Type) bool {
	return TypeName(a) == TypeName(b) && strings.Join(a.EnumValues, "\x00") == strings.Join(b.EnumValues, "\x00")
}

// TypeName is a type as a message shows it: the source's own spelling when
// known, else the canonical one with its length.
func TypeName(t model.Type) string {
	if t.Native != "" {
		return t.Native
	}
	if (t.Kind == model.KindText || t.Kind == model.KindBytes) && t.Length > 0 {
		return t.String() + "(" + strconv.Itoa(t.Length) + ")"
	}
	return t.String()
}

// intDigits is the most decimal digits an integer kind's values have.
var intDigits = map[model.Kind]int{model.KindInt16: 5, model.KindInt32: 10, model.KindInt64: 19}

// Widens reports whether every value of type from is a value of type to,
// unchanged, so a destination may change a column's type and keep its
// values. The rule table (docs/decisions/2026-12-06-schema-changes-at-the-
// destination.md):
//
//	from                 to                                   widening when
//	int16                int32, int64                         always
//	int32                int64                                always
//	int16, int32, int64  decimal(p,s)                         p-s holds the integer's digits, or p unconstrained
//	float32              float64                              always
//	decimal(p,s)         decimal(p',s')                       s' >= s and p'-s' >= p-s, or p' unconstrained
//	text(n) / bytes(n)   the same kind, length m              m >= n, or m unbounded
//	text (any native)    text unbounded, not another type's text form
//	enum                 text                                 the label is the text
//	enum                 enum with the same labels first      labels added at the end
//	anything             itself (same native spelling)
//
// Everything else (a narrowing, another kind, text to a number) could
// lose or change values and is refused.
func Widens(from, to model.Type) bool {
	if sameType(from, to) {
		return true
	}
	switch {
	case from.Kind.IsInteger() && to.Kind.IsInteger():
		return intDigits[to.Kind] >= intDigits[from.Kind]
	case from.Kind.IsInteger() && to.Kind == model.KindDecimal:
		return to.Precision == 0 || to.Precision-to.Scale >= intDigits[from.Kind]
	case from.Kind == model.KindFloat32 && to.Kind == model.KindFloat64:
		return true
	case from.Kind == model.KindDecimal && to.Kind == model.KindDecimal:
		if to.Precision == 0 {
			return true
		}
		return from.Precision > 0 && to.Scale >= from.Scale && to.Precision-to.Scale >= from.Precision-from.Scale
	case from.Kind == model.KindText && to.Kind == model.KindText, from.Kind == model.KindBytes && to.Kind == model.KindBytes:
		if to.TextForm || from.TextForm && to.Length > 0 {
			return false // another type's text form: its input may refuse values
		}
		return to.Length == 0 || from.Length > 0 && to.Length >= from.Length
	case from.Kind == model.KindEnum && to.Kind == model.KindText:
		return to.Length == 0 && !to.TextForm
	case from.Kind == model.KindEnum && to.Kind == model.KindEnum:
		return len(from.EnumValues) > 0 && len(to.EnumValues) >= len(from.EnumValues) &&
			slices.Equal(from.EnumValues, to.EnumValues[:len(from.EnumValues)])
	}
	return false
}

// RetypeRefusal is the error a destination returns for a type change that
// could lose values (st.Widening false) and that its column does not have
// already; dstType is the column's type there after the change, which the
// user can give it by hand.
func RetypeRefusal(ns model.Namespace, st AlterStep, dstType string) error {
	return fmt.Errorf("table %s, column %s: the source changed its type from %s to %s, which could lose or change values at the destination, so ferry stopped with the table unchanged; "+
		"change the destination column by hand (to %s) and run the flow again, and it goes on from here; or run with --ddl stop to stop at every schema change",
		ns, st.Column.Name, TypeName(st.Old.Type), TypeName(st.Column.Type), dstType)
}

// NotNullRefusal is the error for a NOT NULL column the source added
// without a value for the existing rows while the destination table holds
// rows (which could only happen if the tables differ).
func NotNullRefusal(ns model.Namespace, col string) error {
	return fmt.Errorf("table %s, column %s: the source added it NOT NULL without a default, but the destination table holds rows, which would have no value for it; "+
		"add the column at the destination by hand with the values those rows should have and run the flow again", ns, col)
}
