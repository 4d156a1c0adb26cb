package aggregate

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// Server codes for expression parse and evaluation errors.
const (
	codeInvalidPipelineOperator int32 = 168
	codeExprOneField            int32 = 15983
	codeFieldPathDollar         int32 = 16410
	codeFieldPathDot            int32 = 16412
	codeFieldPathEmpty          int32 = 16872
	codeUndefinedVariable       int32 = 17276
	codeArity                   int32 = 16020
)

// missingValue is the result of a path that reaches nothing. It is distinct
// from null and never appears in output documents.
type missingValue struct{}

var missing any = missingValue{}

func isMissing(v any) bool { return v == missing }

// nullish reports whether v is null, undefined or missing.
func nullish(v any) bool {
	switch v.(type) {
	case nil, missingValue, bson.Null, bson.Undefined:
		return true
	}
	return false
}

// expr evaluates a compiled expression against the current document.
type expr func(root bson.D) (any, error)

func constant(v any) expr { return func(bson.D) (any, error) { return v, nil } }

// compileExpr compiles an aggregation expression: a field path, a variable,
// an operator document, an object or array of expressions, or a literal.
func compileExpr(v any) (expr, error) {
	switch x := v.(type) {
	case string:
		switch {
		case strings.HasPrefix(x, "$$"):
			return compileVariable(x[2:])
		case strings.HasPrefix(x, "$"):
			parts, err := fieldPath(x[1:])
			if err != nil {
				return nil, err
			}
			return func(root bson.D) (any, error) { return getPath(root, parts), nil }, nil
		}
	case bson.D:
		if len(x) > 0 && strings.HasPrefix(x[0].Key, "$") {
			if len(x) != 1 {
				return nil, merr.New(codeExprOneField,
					"an expression specification must contain exactly one field, the name of the expression. Found %d fields in %s",
					len(x), bsonkit.FormatValue(x))
			}
			return compileOperator(x[0].Key, x[0].Value)
		}
		return compileObject(x)
	case bson.A:
		items := make([]expr, len(x))
		for i, e := range x {
			var err error
			if items[i], err = compileExpr(e); err != nil {
				return nil, err
			}
		}
		return func(root bson.D) (any, error) {
			out := make(bson.A, len(items))
			for i, it := range items {
				v, err := it(root)
				if err != nil {
					return nil, err
				}
				if isMissing(v) {
					v = nil
				}
				out[i] = v
			}
			return out, nil
		}, nil
	}
	return constant(v), nil
}

func compileVariable(name string) (expr, error) {
	head, rest, _ := strings.Cut(name, ".")
	var parts []string
	if rest != "" {
		var err error
		if parts, err = fieldPath(rest); err != nil {
			return nil, err
		}
	}
	switch head {
	case "ROOT", "CURRENT":
		return func(root bson.D) (any, error) { return getPath(root, parts), nil }, nil
	case "REMOVE":
		return constant(missing), nil
	}
	return nil, merr.New(codeUndefinedVariable, "Use of undefined variable: %s", head)
}

func fieldPath(p string) ([]string, error) {
	if p == "" {
		return nil, merr.New(codeFieldPathEmpty, "'$' by itself is not a valid FieldPath")
	}
	parts := strings.Split(p, ".")
	for _, part := range parts {
		if part == "" {
			return nil, merr.New(merr.Location15974, "FieldPath field names may not be empty strings.")
		}
		if strings.HasPrefix(part, "$") {
			return nil, merr.New(codeFieldPathDollar, "FieldPath field names may not start with '$'. Consider using $getField or $setField.")
		}
	}
	return parts, nil
}

// getPath evaluates a field path: through documents, and across arrays by
// collecting each element's value, as the server's ExpressionFieldPath.
func getPath(v any, parts []string) any {
	for i, p := range parts {
		switch x := v.(type) {
		case bson.D:
			val, ok := bsonkit.Get(x, p)
			if !ok {
				return missing
			}
			v = val
		case bson.A:
			return arrayPath(x, parts[i:])
		default:
			return missing
		}
	}
	return v
}

func arrayPath(a bson.A, parts []string) bson.A {
	out := bson.A{}
	for _, e := range a {
		switch x := e.(type) {
		case bson.D:
			if r := getPath(x, parts); !isMissing(r) {
				out = append(out, r)
			}
		case bson.A:
			out = append(out, arrayPath(x, parts))
		}
	}
	return out
}

// compileObject compiles {field: expr, ...}; fields evaluating to missing
// are left out.
func compileObject(d bson.D) (expr, error) {
	keys := make([]string, len(d))
	vals := make([]expr, len(d))
	for i, e := range d {
		if strings.HasPrefix(e.Key, "$") {
			return nil, merr.New(codeFieldPathDollar, "FieldPath field names may not start with '$'. Consider using $getField or $setField.")
		}
		if strings.Contains(e.Key, ".") {
			return nil, merr.New(codeFieldPathDot, "FieldPath field names may not contain '.'. Consider using $getField or $setField.")
		}
		keys[i] = e.Key
		var err error
		if vals[i], err = compileExpr(e.Value); err != nil {
			return nil, err
		}
	}
	return func(root bson.D) (any, error) {
		out := make(bson.D, 0, len(keys))
		for i, k := range keys {
			v, err := vals[i](root)
			if err != nil {
				return nil, err
			}
			if !isMissing(v) {
				out = append(out, bson.E{Key: k, Value: v})
			}
		}
		return out, nil
	}, nil
}

// truthy is the server's coerceToBool.
func truthy(v any) bool {
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

// compareValues orders values as aggregation does: missing sorts below
// null, everything else as BSON.
func compareValues(a, b any) int {
	switch am, bm := isMissing(a), isMissing(b); {
	case am && bm:
		return 0
	case am:
		return -1
	case bm:
		return 1
	}
	return bsonkit.Compare(a, b)
}
