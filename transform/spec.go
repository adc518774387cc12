package transform

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"cel.dev/cel-go/cel"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// Spec is the transforms as the user wrote them (flags or the flow file),
// one rule per string.
type Spec struct {
	Exclude []string // "TABLE.COLUMN"
	Rename  []string // "TABLE.COLUMN=NEW"
	Mask    []string // "TABLE.COLUMN=redact" | "=hash" | "=lastN" (N >= 1, e.g. last4)
	Filter  []string // "TABLE: CEL" (at most one per TABLE; several matching one table are ANDed)
	Compute []string // "TABLE.COLUMN = CEL" (a new column appended at the end of the table)
	Salt    string   // the salt mask=hash uses (already resolved from a secret by the caller)
}

// Empty reports whether s has no rule (a salt alone is no rule).
func (s Spec) Empty() bool {
	return len(s.Exclude)+len(s.Rename)+len(s.Mask)+len(s.Filter)+len(s.Compute) == 0
}

// Rules are a Spec parsed, to be bound to each table by For.
type Rules struct {
	excludes []columnRule
	renames  []renameRule
	masks    []maskRule
	filters  []exprRule
	computes []computeRule
	salt     []byte
}

// columnRule is the part every column rule has: the rule as written (for
// messages), its table glob and its column.
type columnRule struct {
	rule   string
	table  string
	column string
}

type renameRule struct {
	columnRule
	to string
}

type maskRule struct {
	columnRule
	mask mask
}

type exprRule struct {
	rule  string
	table string
	expr  string
}

type computeRule struct {
	columnRule
	expr string
}

// Parse checks the rules' syntax: table globs, column names, masks, and
// CEL's grammar (types are checked against each table by For).
func Parse(s Spec) (*Rules, error) {
	r := &Rules{salt: []byte(s.Salt)}
	for _, raw := range s.Exclude {
		rule := "exclude " + strconv.Quote(raw)
		cr, err := parseColumn(rule, raw, "exclude users.email")
		if err != nil {
			return nil, err
		}
		r.excludes = append(r.excludes, cr)
	}
	for _, raw := range s.Rename {
		rule := "rename " + strconv.Quote(raw)
		left, to, ok := strings.Cut(raw, "=")
		to = strings.TrimSpace(to)
		if !ok || to == "" {
			return nil, errs.BadConfig(rule+": expected TABLE.COLUMN=NEW", "write it as, for example, rename users.mail=email")
		}
		cr, err := parseColumn(rule, left, "rename users.mail=email")
		if err != nil {
			return nil, err
		}
		r.renames = append(r.renames, renameRule{cr, to})
	}
	for _, raw := range s.Mask {
		rule := "mask " + strconv.Quote(raw)
		left, how, ok := strings.Cut(raw, "=")
		if !ok {
			return nil, errs.BadConfig(rule+": expected TABLE.COLUMN=redact, =hash or =lastN", "write it as, for example, mask users.email=hash")
		}
		cr, err := parseColumn(rule, left, "mask users.email=hash")
		if err != nil {
			return nil, err
		}
		m, err := parseMask(strings.TrimSpace(how))
		if err != nil {
			return nil, errs.BadConfig(rule+": "+err.Error(), "use redact, hash or lastN with N >= 1 (last4 keeps the last 4 characters)")
		}
		if m.kind == maskHash && s.Salt == "" {
			return nil, errs.BadConfig(rule+": mask=hash needs a salt, without one a hash is found again by hashing candidate values", "give the flow a hash salt (a secret)")
		}
		r.masks = append(r.masks, maskRule{cr, m})
	}
	seen := map[string]string{}
	for _, raw := range s.Filter {
		rule := "filter " + strconv.Quote(raw)
		table, expr, ok := strings.Cut(raw, ":")
		table, expr = strings.TrimSpace(table), strings.TrimSpace(expr)
		if !ok || table == "" || expr == "" {
			return nil, errs.BadConfig(rule+": expected TABLE: CEL", "write it as, for example, filter 'users: active && country == \"DE\"'")
		}
		if err := checkGlob(rule, table); err != nil {
			return nil, err
		}
		if prev, dup := seen[table]; dup {
			return nil, errs.BadConfig(fmt.Sprintf("%s and %s both filter %s", prev, rule, table), "join them into one filter with &&")
		}
		seen[table] = rule
		if err := checkSyntax(rule, expr); err != nil {
			return nil, err
		}
		r.filters = append(r.filters, exprRule{rule, table, expr})
	}
	for _, raw := range s.Compute {
		rule := "compute " + strconv.Quote(raw)
		left, expr, ok := strings.Cut(raw, "=")
		expr = strings.TrimSpace(expr)
		if !ok || expr == "" {
			return nil, errs.BadConfig(rule+": expected TABLE.COLUMN = CEL", "write it as, for example, compute 'users.domain = email.split(\"@\")[1]'")
		}
		cr, err := parseColumn(rule, left, "compute 'users.domain = email.split(\"@\")[1]'")
		if err != nil {
			return nil, err
		}
		if err := checkSyntax(rule, expr); err != nil {
			return nil, err
		}
		r.computes = append(r.computes, computeRule{cr, expr})
	}
	return r, nil
}

// parseColumn splits "TABLE.COLUMN" at its last dot (a schema-qualified
// glob keeps its own dot) and checks the glob.
func parseColumn(rule, s, example string) (columnRule, error) {
	s = strings.TrimSpace(s)
	i := strings.LastIndex(s, ".")
	if i < 0 {
		return columnRule{}, errs.BadConfig(rule+": expected TABLE.COLUMN", "name the table and the column, for example "+example)
	}
	table, column := strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+1:])
	if table == "" || column == "" {
		return columnRule{}, errs.BadConfig(rule+": expected TABLE.COLUMN", "name the table and the column, for example "+example)
	}
	if err := checkGlob(rule, table); err != nil {
		return columnRule{}, err
	}
	return columnRule{rule: rule, table: table, column: column}, nil
}

func checkGlob(rule, pattern string) error {
	if _, err := path.Match(pattern, ""); err != nil {
		return errs.BadConfig(fmt.Sprintf("%s: table pattern %q: %v", rule, pattern, err), "use a glob as --tables takes: shop.*, users, shop.user_?")
	}
	return nil
}

// syntaxEnv parses CEL without declarations: Parse checks grammar only,
// since the columns are known only in For.
var syntaxEnv = func() *cel.Env {
	env, err := cel.NewEnv()
	if err != nil {
		panic(fmt.Sprintf("transform: CEL environment without declarations: %v", err)) // unreachable: no options
	}
	return env
}()

func checkSyntax(rule, expr string) error {
	if _, iss := syntaxEnv.Parse(expr); iss.Err() != nil {
		return errs.BadConfig(fmt.Sprintf("%s: expression %q is not CEL: %v", rule, expr, iss.Err()), "see the CEL language definition, https://github.com/google/cel-spec/blob/master/doc/langdef.md")
	}
	return nil
}

// Empty reports whether r transforms nothing; a nil r is empty.
func (r *Rules) Empty() bool {
	return r == nil || len(r.excludes)+len(r.renames)+len(r.masks)+len(r.filters)+len(r.computes) == 0
}

// matchTable is flow's table glob matching (flow.Filter): a pattern with a
// dot matches "schema.table", one without the table name in any schema.
// It is repeated here because flow reads transforms from the flow file and
// so may import this package, not the other way round.
func matchTable(pattern string, ns model.Namespace) bool {
	if !strings.Contains(pattern, ".") {
		ok, _ := path.Match(pattern, ns.Table) // pattern checked in Parse
		return ok
	}
	ok, _ := path.Match(pattern, ns.String())
	return ok
}

// CheckUnused refuses a rule whose table glob matches none of tables (the
// flow's tables), or whose column none of the tables it matches has, so
// that a typo is an error rather than data left unmasked.
func (r *Rules) CheckUnused(tables []*model.Table) error {
	if r.Empty() {
		return nil
	}
	var problems []string
	check := func(rule, table, column string) {
		matched, has := false, false
		for _, t := range tables {
			if !matchTable(table, t.Namespace) {
				continue
			}
			matched = true
			if column == "" || t.ColumnIndex(column) >= 0 {
				has = true
			}
		}
		switch {
		case !matched:
			problems = append(problems, fmt.Sprintf("%s matches no table", rule))
		case !has:
			problems = append(problems, fmt.Sprintf("%s: no table %s matches has a column %s", rule, table, column))
		}
	}
	for _, c := range r.excludes {
		check(c.rule, c.table, c.column)
	}
	for _, c := range r.renames {
		check(c.rule, c.table, c.column)
	}
	for _, c := range r.masks {
		check(c.rule, c.table, c.column)
	}
	for _, c := range r.filters {
		check(c.rule, c.table, "")
	}
	for _, c := range r.computes {
		check(c.rule, c.table, "") // its column is new
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	return errs.BadConfig("transforms name what the flow's tables do not have: "+strings.Join(problems, "; "), "check the spelling against the source's tables and columns")
}
