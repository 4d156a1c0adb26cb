// Package expr compiles and evaluates MongoDB aggregation expressions: field
// paths, variables, operator documents, object and array expressions and
// literals, as $project, $addFields, $group, $match's $expr, pipeline updates
// and $lookup's let use them.
//
// # Variables
//
// Variables are bound when an expression is compiled: [Vars] holds the
// constants of a command's let and the system variables ($$NOW,
// $$CLUSTER_TIME), so a use of an undefined variable fails at compile time
// with MongoDB's code 17276. Variables bound while an expression runs
// ($map's $$this, $let, $filter) live in the [Env].
//
// # Missing values
//
// Expressions distinguish a missing field from null, as the server does:
// [Missing] leaves a field out of $project and $addFields output, compares
// below null, and becomes null inside arrays.
package expr

import (
	"strings"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// Server codes for expression parse and evaluation errors.
const (
	CodeInvalidPipelineOperator int32 = 168
	CodeExprOneField            int32 = 15983
	CodeFieldPathDollar         int32 = 16410
	CodeFieldPathDot            int32 = 16412
	CodeFieldPathEmpty          int32 = 16872
	CodeUndefinedVariable       int32 = 17276
	CodeArity                   int32 = 16020
	codeBadVariableName         int32 = 16870
	codeEmptyVariableName       int32 = 16869
)

// missingValue is the result of a path that reaches nothing. It is distinct
// from null and never appears in output documents.
type missingValue struct{}

// Missing is the value of a path that reaches nothing.
var Missing any = missingValue{}

// IsMissing reports whether v is [Missing].
func IsMissing(v any) bool { return v == Missing }

// Nullish reports whether v is null, undefined or missing.
func Nullish(v any) bool {
	switch v.(type) {
	case nil, missingValue, bson.Null, bson.Undefined:
		return true
	}
	return false
}

// Vars are variables bound for a whole compilation, by name without "$$".
type Vars map[string]any

// With returns a copy of v with more bindings.
func (v Vars) With(more Vars) Vars {
	out := make(Vars, len(v)+len(more))
	for k, x := range v {
		out[k] = x
	}
	for k, x := range more {
		out[k] = x
	}
	return out
}

// Env is what an expression sees while it runs: the document ($$ROOT and
// $$CURRENT) and the variables bound by enclosing expressions.
type Env struct {
	Root   bson.D
	locals map[string]any
}

// NewEnv returns the environment for evaluating against root.
func NewEnv(root bson.D) *Env { return &Env{Root: root} }

func (e *Env) bind(name string, v any) *Env {
	locals := make(map[string]any, len(e.locals)+1)
	for k, x := range e.locals {
		locals[k] = x
	}
	locals[name] = v
	return &Env{Root: e.Root, locals: locals}
}

// Expr is a compiled expression. It is immutable and safe for concurrent
// use.
type Expr func(env *Env) (any, error)

// Eval evaluates x against root.
func (x Expr) Eval(root bson.D) (any, error) { return x(NewEnv(root)) }

// scope is what the compiler knows of variables: constants and the names
// enclosing expressions bind at run time.
type scope struct {
	vars   Vars
	locals map[string]bool
	// str orders strings in comparisons: a collation; nil is binary.
	str func(a, b string) int
}

func (s *scope) withLocals(names ...string) *scope {
	locals := make(map[string]bool, len(s.locals)+len(names))
	for k := range s.locals {
		locals[k] = true
	}
	for _, n := range names {
		locals[n] = true
	}
	return &scope{vars: s.vars, locals: locals, str: s.str}
}

// Compile compiles an aggregation expression with vars bound.
func Compile(v any, vars Vars) (Expr, error) {
	return (&scope{vars: vars}).compile(v)
}

// CompileCollated is [Compile] with string comparisons ($eq, $ne, $gt,
// $gte, $lt, $lte, $cmp, $in) under a collation; nil str is binary.
func CompileCollated(v any, vars Vars, str func(a, b string) int) (Expr, error) {
	return (&scope{vars: vars, str: str}).compile(v)
}

// Constant returns an expression that always evaluates to v.
func Constant(v any) Expr { return func(*Env) (any, error) { return v, nil } }

func (s *scope) compile(v any) (Expr, error) {
	switch x := v.(type) {
	case string:
		switch {
		case strings.HasPrefix(x, "$$"):
			return s.variable(x[2:])
		case strings.HasPrefix(x, "$"):
			parts, err := FieldPath(x[1:])
			if err != nil {
				return nil, err
			}
			return func(env *Env) (any, error) { return GetPath(env.Root, parts), nil }, nil
		}
	case bson.D:
		if len(x) > 0 && strings.HasPrefix(x[0].Key, "$") {
			if len(x) != 1 {
				return nil, merr.New(CodeExprOneField,
					"an expression specification must contain exactly one field, the name of the expression. Found %d fields in %s",
					len(x), bsonkit.FormatValue(x))
			}
			return s.operator(x[0].Key, x[0].Value)
		}
		return s.object(x)
	case bson.A:
		items, err := s.compileAll(x)
		if err != nil {
			return nil, err
		}
		return func(env *Env) (any, error) {
			out := make(bson.A, len(items))
			for i, it := range items {
				v, err := it(env)
				if err != nil {
					return nil, err
				}
				if IsMissing(v) {
					v = nil
				}
				out[i] = v
			}
			return out, nil
		}, nil
	}
	return Constant(v), nil
}

func (s *scope) compileAll(a bson.A) ([]Expr, error) {
	out := make([]Expr, len(a))
	for i, e := range a {
		var err error
		if out[i], err = s.compile(e); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *scope) variable(name string) (Expr, error) {
	head, rest, _ := strings.Cut(name, ".")
	var parts []string
	if rest != "" {
		var err error
		if parts, err = FieldPath(rest); err != nil {
			return nil, err
		}
	}
	switch head {
	case "ROOT", "CURRENT":
		return func(env *Env) (any, error) { return GetPath(env.Root, parts), nil }, nil
	case "REMOVE":
		return Constant(Missing), nil
	}
	if s.locals[head] {
		return func(env *Env) (any, error) {
			v, ok := env.locals[head]
			if !ok {
				return Missing, nil
			}
			return GetPath(v, parts), nil
		}, nil
	}
	if v, ok := s.vars[head]; ok {
		return Constant(GetPath(v, parts)), nil
	}
	return nil, merr.New(CodeUndefinedVariable, "Use of undefined variable: %s", head)
}

// ValidateVarName checks a user variable name as the server's
// variableValidation::validateNameForUserWrite: it starts with a lowercase
// letter or a non-ASCII character and has only letters, digits and '_'.
func ValidateVarName(name string) error {
	if name == "" {
		return merr.New(codeEmptyVariableName, "empty variable names are not allowed")
	}
	if r := name[0]; r < utf8.RuneSelf && (r < 'a' || r > 'z') {
		return merr.New(codeBadVariableName, "'%s' starts with an invalid character for a user variable name", name)
	}
	for _, c := range name {
		if c < utf8.RuneSelf && !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return merr.New(16871, "'%s' contains an invalid character for a variable name: '%c'", name, c)
		}
	}
	return nil
}

// FieldPath splits and checks the path of a "$path" expression, without its "$".
func FieldPath(p string) ([]string, error) {
	if p == "" {
		return nil, merr.New(CodeFieldPathEmpty, "'$' by itself is not a valid FieldPath")
	}
	parts := strings.Split(p, ".")
	for _, part := range parts {
		if part == "" {
			return nil, merr.New(merr.Location15974, "FieldPath field names may not be empty strings.")
		}
		if strings.HasPrefix(part, "$") {
			return nil, merr.New(CodeFieldPathDollar, "FieldPath field names may not start with '$'. Consider using $getField or $setField.")
		}
	}
	return parts, nil
}

// GetPath evaluates a split field path: through documents, and across
// arrays by collecting each element's value, as the server's
// ExpressionFieldPath.
func GetPath(v any, parts []string) any {
	for i, p := range parts {
		switch x := v.(type) {
		case bson.D:
			val, ok := bsonkit.Get(x, p)
			if !ok {
				return Missing
			}
			v = val
		case bson.A:
			return arrayPath(x, parts[i:])
		default:
			return Missing
		}
	}
	return v
}

func arrayPath(a bson.A, parts []string) bson.A {
	out := bson.A{}
	for _, e := range a {
		switch x := e.(type) {
		case bson.D:
			if r := GetPath(x, parts); !IsMissing(r) {
				out = append(out, r)
			}
		case bson.A:
			out = append(out, arrayPath(x, parts))
		}
	}
	return out
}

// object compiles {field: expr, ...}; fields evaluating to missing are left
// out.
func (s *scope) object(d bson.D) (Expr, error) {
	keys := make([]string, len(d))
	vals := make([]Expr, len(d))
	for i, e := range d {
		if strings.HasPrefix(e.Key, "$") {
			return nil, merr.New(CodeFieldPathDollar, "FieldPath field names may not start with '$'. Consider using $getField or $setField.")
		}
		if strings.Contains(e.Key, ".") {
			return nil, merr.New(CodeFieldPathDot, "FieldPath field names may not contain '.'. Consider using $getField or $setField.")
		}
		keys[i] = e.Key
		var err error
		if vals[i], err = s.compile(e.Value); err != nil {
			return nil, err
		}
	}
	return func(env *Env) (any, error) {
		out := make(bson.D, 0, len(keys))
		for i, k := range keys {
			v, err := vals[i](env)
			if err != nil {
				return nil, err
			}
			if !IsMissing(v) {
				out = append(out, bson.E{Key: k, Value: v})
			}
		}
		return out, nil
	}, nil
}

// Truthy is the server's coerceToBool.
func Truthy(v any) bool {
	switch x := v.(type) {
	case nil, missingValue, bson.Null, bson.Undefined:
		return false
	case bool:
		return x
	}
	if bsonkit.IsNumber(v) {
		f, _ := bsonkit.ToFloat(v)
		return f != 0
	}
	return true
}

// Compare orders values as aggregation does: missing sorts below null,
// everything else as BSON.
func Compare(a, b any) int { return CompareWith(a, b, nil) }

// CompareWith is Compare with strings ordered by str (nil: binary).
func CompareWith(a, b any, str func(a, b string) int) int {
	switch am, bm := IsMissing(a), IsMissing(b); {
	case am && bm:
		return 0
	case am:
		return -1
	case bm:
		return 1
	}
	return bsonkit.CompareWith(a, b, str)
}

// TypeName is the server's type alias of v, "missing" for [Missing].
func TypeName(v any) string {
	if IsMissing(v) {
		return "missing"
	}
	return bsonkit.TypeAlias(v)
}
