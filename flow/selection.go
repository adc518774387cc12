// Package flow holds what defines a flow before it runs: which tables it
// takes, what they are called at the destination, its settings from the
// command line or a YAML flow file, and its name.
package flow

import (
	"fmt"
	"path"
	"strings"

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
// ("shop.*=archive.*").
type Renames struct {
	exact   map[model.Namespace]model.Namespace
	schemas map[string]string
	rules   []string
}

// ParseRenames parses rules of the form FROM=TO.
func ParseRenames(rules []string) (*Renames, error) {
	r := &Renames{exact: map[model.Namespace]model.Namespace{}, schemas: map[string]string{}}
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
				r.exact[f] = t
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

// Apply maps a source namespace to its destination namespace.
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

// Unused returns exact rename rules that name a table not in tables, so a
// typo is an error rather than a silent no-op.
func (r *Renames) Unused(tables []model.Namespace) []string {
	if r == nil {
		return nil
	}
	seen := map[model.Namespace]bool{}
	for _, t := range tables {
		seen[t] = true
	}
	var out []string
	for from := range r.exact {
		if !seen[from] {
			out = append(out, from.String())
		}
	}
	return out
}
