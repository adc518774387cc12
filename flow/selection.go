// Package flow holds what defines a flow before it runs: which tables it
// takes, what they are called at the destination, its settings from the
// command line or a YAML flow file, and its name.
package flow

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// Filter selects tables by glob patterns. A pattern with a dot matches
// "schema.table"; one without matches the table name in any schema. A pattern
// starting with "!" excludes. With no include pattern every table is included.
type Filter struct {
	include, exclude []string
}

// ParseFilter parses a comma-separated list such as "shop.*,!shop.tmp_*".
func ParseFilter(spec string) (*Filter, error) {
	var parts []string
	for _, p := range strings.Split(spec, ",") {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	return NewFilter(parts)
}

// NewFilter builds a filter from a list of patterns.
func NewFilter(patterns []string) (*Filter, error) {
	f := &Filter{}
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = strings.TrimSpace(p[1:])
		}
		if p == "" {
			return nil, fmt.Errorf("empty table pattern")
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("table pattern %q: %w", p, err)
		}
		if neg {
			f.exclude = append(f.exclude, p)
		} else {
			f.include = append(f.include, p)
		}
	}
	return f, nil
}

// Empty reports whether the filter selects everything.
func (f *Filter) Empty() bool { return f == nil || len(f.include)+len(f.exclude) == 0 }

// String renders the filter in ParseFilter's syntax.
func (f *Filter) String() string {
	if f == nil {
		return ""
	}
	parts := append([]string{}, f.include...)
	for _, e := range f.exclude {
		parts = append(parts, "!"+e)
	}
	return strings.Join(parts, ",")
}

// Match reports whether the filter selects ns.
func (f *Filter) Match(ns model.Namespace) bool {
	if f == nil {
		return true
	}
	in := len(f.include) == 0
	for _, p := range f.include {
		if matchOne(p, ns) {
			in = true
			break
		}
	}
	if !in {
		return false
	}
	for _, p := range f.exclude {
		if matchOne(p, ns) {
			return false
		}
	}
	return true
}

func matchOne(pattern string, ns model.Namespace) bool {
	if !strings.Contains(pattern, ".") {
		ok, _ := path.Match(pattern, ns.Table) // pattern validated in NewFilter
		return ok
	}
	ok, _ := path.Match(pattern, ns.String())
	return ok
}

// Renames maps source namespaces to destination namespaces. A rule is either
// exact ("shop.orders=archive.orders") or moves a whole schema
// ("shop.*=archive.*"). An exact rule may leave out the schema: "orders=old"
// names the table orders in whichever schema the flow's tables hold it, as
// --tables does (Resolve binds it), and a target without a schema stays in
// the source table's schema.
type Renames struct {
	exact   map[model.Namespace]model.Namespace
	schemas map[string]string
	// unqualified holds the rules whose source names no schema, by table
	// name, until Resolve binds them to a table.
	unqualified map[string]string
	// ruleOf is the rule as given for each exact source name, for errors.
	ruleOf map[model.Namespace]string
	rules  []string
}

// ParseRenames parses rules of the form FROM=TO.
func ParseRenames(rules []string) (*Renames, error) {
	r := &Renames{exact: map[model.Namespace]model.Namespace{}, schemas: map[string]string{},
		unqualified: map[string]string{}, ruleOf: map[model.Namespace]string{}}
	for _, rule := range rules {
		for _, one := range strings.Split(rule, ",") {
			one = strings.TrimSpace(one)
			if one == "" {
				continue
			}
			from, to, ok := strings.Cut(one, "=")
			if !ok {
				return nil, fmt.Errorf("rename %q: expected FROM=TO, for example shop.orders=archive.orders", one)
			}
			from, to = strings.TrimSpace(from), strings.TrimSpace(to)
			if fs, ok := strings.CutSuffix(from, ".*"); ok {
				ts, ok := strings.CutSuffix(to, ".*")
				if !ok || fs == "" || ts == "" || strings.ContainsAny(fs+ts, "*?[") {
					return nil, fmt.Errorf("rename %q: a schema rename looks like shop.*=archive.*", one)
				}
				r.schemas[fs] = ts
			} else {
				if strings.ContainsAny(from+to, "*?[") {
					return nil, fmt.Errorf("rename %q: only whole schemas (shop.*=archive.*) may use a wildcard", one)
				}
				f, err := model.ParseNamespace(from)
				if err != nil {
					return nil, fmt.Errorf("rename %q: %w", one, err)
				}
				t, err := model.ParseNamespace(to)
				if err != nil {
					return nil, fmt.Errorf("rename %q: %w", one, err)
				}
				if _, dup := r.exact[f]; dup {
					return nil, fmt.Errorf("rename %q: %s is renamed twice", one, f)
				}
				if f.Schema == "" {
					r.unqualified[f.Table] = one
				}
				if t.Schema == "" {
					t.Schema = f.Schema // empty for an unqualified source: Resolve fills it
				}
				r.exact[f] = t
				r.ruleOf[f] = one
			}
			r.rules = append(r.rules, one)
		}
	}
	return r, nil
}

// Rules returns the rules as given, for display and for the flow's identity.
func (r *Renames) Rules() []string {
	if r == nil {
		return nil
	}
	return r.rules
}

// Resolve binds the rules whose source names no schema to the one table
// among tables (the flow's tables) with that name, the way --tables matches
// a pattern without a dot; the target takes that table's schema unless the
// rule gives one. A name held by tables in two schemas is an error listing
// them. A name no table has stays unbound (Unused reports it).
func (r *Renames) Resolve(tables []model.Namespace) (*Renames, error) {
	if r == nil || len(r.unqualified) == 0 {
		return r, nil
	}
	out := &Renames{exact: map[model.Namespace]model.Namespace{}, schemas: r.schemas,
		ruleOf: map[model.Namespace]string{}, rules: r.rules}
	for from, to := range r.exact {
		if from.Schema != "" {
			out.exact[from], out.ruleOf[from] = to, r.ruleOf[from]
		}
	}
	byName := map[string][]model.Namespace{}
	for _, ns := range tables {
		if _, ok := r.unqualified[ns.Table]; ok {
			byName[ns.Table] = append(byName[ns.Table], ns)
		}
	}
	names := make([]string, 0, len(r.unqualified))
	for name := range r.unqualified {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		rule := r.unqualified[name]
		found := byName[name]
		switch {
		case len(found) == 0:
			continue
		case len(found) > 1:
			have := make([]string, len(found))
			for i, ns := range found {
				have[i] = ns.String()
			}
			sort.Strings(have)
			_, to, _ := strings.Cut(rule, "=")
			return nil, errs.BadConfig(fmt.Sprintf("--rename %s: table %s is in more than one schema: %s", rule, name, strings.Join(have, ", ")), fmt.Sprintf("name the schema, for example --rename %s=%s", have[0], strings.TrimSpace(to)))
		}
		from := found[0]
		to := r.exact[model.Namespace{Table: name}]
		if to.Schema == "" {
			to.Schema = from.Schema
		}
		if prev, dup := out.ruleOf[from]; dup {
			return nil, errs.BadConfig(fmt.Sprintf("--rename %s and --rename %s both rename %s", prev, rule, from), "keep one rule per table")
		}
		out.exact[from], out.ruleOf[from] = to, rule
	}
	return out, nil
}

// Apply maps a source namespace to its destination namespace. A rule
// without a schema applies to a table in a schema only once Resolve has
// bound it.
func (r *Renames) Apply(ns model.Namespace) model.Namespace {
	if r == nil {
		return ns
	}
	if to, ok := r.exact[ns]; ok {
		return to
	}
	if s, ok := r.schemas[ns.Schema]; ok {
		return model.Namespace{Schema: s, Table: ns.Table}
	}
	return ns
}

// Map resolves the rules against tables (the flow's tables) and returns
// each table's destination table: a copy with the destination namespace.
// Two tables written to one destination name is an error.
func (r *Renames) Map(tables []*model.Table) ([]*model.Table, error) {
	names := make([]model.Namespace, len(tables))
	for i, t := range tables {
		names[i] = t.Namespace
	}
	rr, err := r.Resolve(names)
	if err != nil {
		return nil, err
	}
	out := make([]*model.Table, len(tables))
	seen := map[model.Namespace]model.Namespace{}
	for i, t := range tables {
		d := t.Clone()
		d.Namespace = rr.Apply(t.Namespace)
		if prev, dup := seen[d.Namespace]; dup {
			return nil, errs.BadConfig(fmt.Sprintf("tables %s and %s would both be written to %s", prev, t.Namespace, d.Namespace), "use --rename so each table has its own destination name")
		}
		seen[d.Namespace] = t.Namespace
		out[i] = d
	}
	return out, nil
}

// Unused returns the exact rename rules that name a table not in tables
// (all the source's tables), so a typo is an error rather than a silent
// no-op. A rule without a schema is used when any schema has the table.
func (r *Renames) Unused(tables []model.Namespace) []string {
	if r == nil {
		return nil
	}
	seen := map[model.Namespace]bool{}
	named := map[string]bool{}
	for _, t := range tables {
		seen[t] = true
		named[t.Table] = true
	}
	var out []string
	for from := range r.exact {
		if from.Schema == "" { // a rule without a schema
			if !named[from.Table] {
				out = append(out, from.Table)
			}
			continue
		}
		if !seen[from] {
			out = append(out, from.String())
		}
	}
	sort.Strings(out)
	return out
}

// CheckUnused refuses rules naming a table the source does not have (all
// holds every source table, selected or not).
func (r *Renames) CheckUnused(all []model.Namespace) error {
	if unused := r.Unused(all); len(unused) > 0 {
		return errs.BadConfig(fmt.Sprintf("--rename names tables the source does not have: %s", strings.Join(unused, ", ")), "check the spelling against the source's tables")
	}
	return nil
}
