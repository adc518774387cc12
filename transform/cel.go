package transform

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// celIdent is what CEL reads as an identifier; celReserved are the words
// it keeps for itself (language keywords and reserved names).
var (
	celIdent    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	celReserved = map[string]bool{
		"true": true, "false": true, "null": true, "in": true, "as": true, "break": true,
		"const": true, "continue": true, "else": true, "for": true, "function": true, "if": true,
		"import": true, "let": true, "loop": true, "package": true, "namespace": true,
		"return": true, "var": true, "void": true, "while": true,
	}
)

// celType is the CEL type a column of kind k is read as.
func celType(k model.Kind) *cel.Type {
	switch k {
	case model.KindBool:
		return cel.BoolType
	case model.KindInt16, model.KindInt32, model.KindInt64:
		return cel.IntType
	case model.KindFloat32, model.KindFloat64, model.KindDecimal:
		return cel.DoubleType
	case model.KindText, model.KindJSON, model.KindUUID, model.KindEnum,
		model.KindInet, model.KindCIDR, model.KindMACAddr:
		return cel.StringType
	case model.KindBytes:
		return cel.BytesType
	case model.KindDate, model.KindTimestamp, model.KindTimestampTZ:
		return cel.TimestampType
	}
	return cel.DynType
}

// celEnv is one source table's CEL environment: its columns as variables.
type celEnv struct {
	table *model.Table
	env   *cel.Env
	// index maps a variable to its column's position in a source row.
	index map[string]int
	// unreadable are the columns whose names are not CEL identifiers.
	unreadable []string
	acts       sync.Pool
}

func newCelEnv(t *model.Table) (*celEnv, error) {
	e := &celEnv{table: t, index: make(map[string]int, len(t.Columns))}
	// The extensions give what a computed column needs most: string
	// functions (split, lowerAscii, replace), math (greatest, round) and
	// base64.
	opts := []cel.EnvOption{ext.Strings(), ext.Math(), ext.Encoders()}
	for i, c := range t.Columns {
		if !celIdent.MatchString(c.Name) || celReserved[c.Name] {
			e.unreadable = append(e.unreadable, c.Name)
			continue
		}
		typ := celType(c.Type.Kind)
		if c.Nullable && typ != cel.DynType {
			typ = cel.NullableType(typ)
		}
		opts = append(opts, cel.Variable(c.Name, typ))
		e.index[c.Name] = i
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("table %s: CEL environment of its columns: %w", t.Namespace, err)
	}
	e.env = env
	e.acts.New = func() any { return &activation{env: e} }
	return e, nil
}

// program is one compiled expression of a table: a filter or a computed
// column.
type program struct {
	what string // "filter" or "computed column NAME", for messages
	expr string
	prg  cel.Program
	kind model.Kind // a computed column's kind
	// reads are the source columns the expression reads.
	reads []string
}

// compile compiles and type-checks expr, refusing what cannot run: a
// compile error, a type other than want (bool for a filter; for a
// computed column one ferry can store, want nil).
func (e *celEnv) compile(what, expr string, filter bool) (*program, error) {
	ns := e.table.Namespace
	ast, iss := e.env.Compile(expr)
	if iss.Err() != nil {
		fix := "use the table's column names and CEL's syntax (https://github.com/google/cel-spec/blob/master/doc/langdef.md)"
		if len(e.unreadable) > 0 && strings.Contains(iss.Err().Error(), "undeclared reference") {
			fix = fmt.Sprintf("an expression cannot read a column whose name is not a CEL identifier (%s); %s", strings.Join(e.unreadable, ", "), fix)
		}
		return nil, errs.BadConfig(fmt.Sprintf("table %s: %s %q does not compile: %v", ns, what, expr, iss.Err()), fix)
	}
	p := &program{what: what, expr: expr}
	out := ast.OutputType()
	if filter {
		if out.Kind() != types.BoolKind {
			return nil, errs.BadConfig(fmt.Sprintf("table %s: %s %q is of type %s, a filter must be bool", ns, what, expr, out), "make it a condition, for example `amount > 100` or `status == \"active\"`")
		}
	} else {
		k, ok := storedKind(out)
		if !ok {
			return nil, errs.BadConfig(fmt.Sprintf("table %s: %s %q is of type %s, which ferry cannot store", ns, what, expr, out), "make it an int, double, string, bool, bytes or timestamp, for example string(x) or int(x)")
		}
		p.kind = k
	}
	seen := map[string]bool{}
	for _, ref := range ast.NativeRep().ReferenceMap() {
		if ref.Name != "" && len(ref.OverloadIDs) == 0 && ref.Value == nil && !seen[ref.Name] {
			if _, ok := e.index[ref.Name]; ok {
				seen[ref.Name] = true
				p.reads = append(p.reads, ref.Name)
			}
		}
	}
	sort.Strings(p.reads)
	prg, err := e.env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, errs.BadConfig(fmt.Sprintf("table %s: %s %q: %v", ns, what, expr, err), "simplify the expression")
	}
	p.prg = prg
	return p, nil
}

// storedKind is the kind of a computed column whose expression has type t.
func storedKind(t *cel.Type) (model.Kind, bool) {
	switch t.Kind() {
	case types.IntKind:
		return model.KindInt64, true
	case types.DoubleKind:
		return model.KindFloat64, true
	case types.StringKind:
		return model.KindText, true
	case types.BoolKind:
		return model.KindBool, true
	case types.BytesKind:
		return model.KindBytes, true
	case types.TimestampKind:
		return model.KindTimestampTZ, true
	}
	return model.KindUnknown, false
}

// eval runs p over a source row; the error names the table, the expression
// and the row's key, so the row can be found at the source.
func (e *celEnv) eval(p *program, row model.Row) (ref.Val, error) {
	a := e.acts.Get().(*activation)
	a.row = row
	out, _, err := p.prg.Eval(a)
	a.row = nil
	e.acts.Put(a)
	if err != nil {
		return nil, e.evalErr(p, row, err)
	}
	return out, nil
}

func (e *celEnv) evalErr(p *program, row model.Row, err error) error {
	where := "a row"
	if k := model.KeyText(e.table, row); k != "" {
		where = "the row " + k
	}
	return fmt.Errorf("table %s: %s %q failed on %s: %w (a NULL reaching an operator fails: guard a nullable column, `x != null && x > 5`)", e.table.Namespace, p.what, p.expr, where, err)
}

// pass evaluates a filter: true passes, false and null do not.
func (e *celEnv) pass(p *program, row model.Row) (bool, error) {
	out, err := e.eval(p, row)
	if err != nil {
		return false, err
	}
	switch v := out.(type) {
	case types.Bool:
		return bool(v), nil
	case types.Null:
		return false, nil
	}
	return false, e.evalErr(p, row, fmt.Errorf("result %v is of type %s, not bool", out, out.Type()))
}

// computed evaluates a computed column into its Go value.
func (e *celEnv) computed(p *program, row model.Row) (any, error) {
	out, err := e.eval(p, row)
	if err != nil {
		return nil, err
	}
	switch v := out.(type) {
	case types.Null:
		return nil, nil
	case types.Int:
		if p.kind == model.KindInt64 {
			return int64(v), nil
		}
	case types.Double:
		if p.kind == model.KindFloat64 {
			return float64(v), nil
		}
	case types.String:
		if p.kind == model.KindText {
			return string(v), nil
		}
	case types.Bool:
		if p.kind == model.KindBool {
			return bool(v), nil
		}
	case types.Bytes:
		if p.kind == model.KindBytes {
			return []byte(v), nil
		}
	case types.Timestamp:
		if p.kind == model.KindTimestampTZ {
			return v.Time.UTC(), nil
		}
	}
	return nil, e.evalErr(p, row, fmt.Errorf("result %v is of type %s, not the column's %s", out, out.Type(), p.kind))
}

// activation resolves a variable to its column's value in the row being
// evaluated, converted only when read.
type activation struct {
	env *celEnv
	row model.Row
}

func (a *activation) ResolveName(name string) (any, bool) {
	i, ok := a.env.index[name]
	if !ok || i >= len(a.row) {
		return nil, false
	}
	c := &a.env.table.Columns[i]
	return celValue(c.Name, c.Type, a.row[i]), true
}

func (a *activation) Parent() interpreter.Activation { return nil }

// celValue converts a row value of type t to CEL; a value CEL cannot hold
// is an error value, failing the evaluation only if the expression reads it.
func celValue(name string, t model.Type, v any) ref.Val {
	if v == nil {
		return types.NullValue
	}
	if model.IsUnchanged(v) {
		return types.NewErr("column %s: the source did not send its value (unchanged)", name)
	}
	if inf, ok := v.(model.Infinity); ok {
		return types.NewErr("column %s is %s, which a CEL timestamp cannot hold", name, inf)
	}
	switch x := v.(type) {
	case bool:
		return types.Bool(x)
	case int64:
		return types.Int(x)
	case float64:
		return types.Double(x)
	case []byte:
		return types.Bytes(x)
	case time.Time:
		return types.Timestamp{Time: x}
	case time.Duration:
		return types.Duration{Duration: x}
	case string:
		if t.Kind == model.KindDecimal {
			f, err := strconv.ParseFloat(x, 64)
			if err != nil {
				return types.NewErr("column %s: decimal %q: %v", name, x, err)
			}
			return types.Double(f)
		}
		return types.String(x)
	case []any:
		elem := model.Type{Kind: model.KindUnknown}
		if t.Elem != nil {
			elem = *t.Elem
		}
		vals := make([]ref.Val, len(x))
		for i, e := range x {
			if sub, ok := e.([]any); ok && elem.Kind != model.KindArray {
				vals[i] = celValue(name, t, sub) // a multi-dimensional array's row
				continue
			}
			vals[i] = celValue(name, elem, e)
		}
		return types.NewRefValList(types.DefaultTypeAdapter, vals)
	}
	if err := checkGoType(t, v); err != nil {
		return types.NewErr("column %s: %v", name, err)
	}
	s, err := model.FormatText(t, v)
	if err != nil {
		return types.NewErr("column %s: %v", name, err)
	}
	return types.String(s)
}
