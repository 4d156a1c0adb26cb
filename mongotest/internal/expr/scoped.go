package expr

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// The operators here bind variables or take named arguments.

// args splits an operator's named arguments, refusing unknown ones with
// code and requiring those in required.
func args(op string, arg any, code int32, allowed []string, required ...string) (map[string]any, error) {
	d, ok := arg.(bson.D)
	if !ok {
		return nil, merr.New(code, "%s only supports an object as its argument", op)
	}
	out := make(map[string]any, len(d))
	for _, e := range d {
		known := false
		for _, a := range allowed {
			known = known || a == e.Key
		}
		if !known {
			return nil, merr.New(code, "Unrecognized parameter to %s: %s", op, e.Key)
		}
		out[e.Key] = e.Value
	}
	for _, r := range required {
		if _, ok := out[r]; !ok {
			return nil, merr.New(code, "Missing '%s' parameter to %s", r, op)
		}
	}
	return out, nil
}

// asName returns the variable name of an "as" argument, default if absent.
func asName(v any, def string) (string, error) {
	if v == nil {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", merr.New(merr.FailedToParse, "'as' must be a string, not %s", TypeName(v))
	}
	return s, ValidateVarName(s)
}

func (s *scope) let(arg any) (Expr, error) {
	a, err := args("$let", arg, 16875, []string{"vars", "in"}, "vars", "in")
	if err != nil {
		return nil, err
	}
	vars, ok := a["vars"].(bson.D)
	if !ok {
		return nil, merr.New(merr.FailedToParse, "invalid parameter: expected an object (vars)")
	}
	names := make([]string, len(vars))
	vals := make([]Expr, len(vars))
	for i, e := range vars {
		if err := ValidateVarName(e.Key); err != nil {
			return nil, err
		}
		names[i] = e.Key
		if vals[i], err = s.compile(e.Value); err != nil {
			return nil, err
		}
	}
	in, err := s.withLocals(names...).compile(a["in"])
	if err != nil {
		return nil, err
	}
	return func(env *Env) (any, error) {
		inner := env
		for i, v := range vals {
			x, err := v(env)
			if err != nil {
				return nil, err
			}
			inner = inner.bind(names[i], x)
		}
		return in(inner)
	}, nil
}

// iteration compiles the input and body of $map and $filter.
func (s *scope) iteration(op string, arg any, code int32, body string, extra ...string) (input Expr, as string, in Expr, rest map[string]any, err error) {
	a, err := args(op, arg, code, append([]string{"input", "as", body}, extra...), "input", body)
	if err != nil {
		return nil, "", nil, nil, err
	}
	if as, err = asName(a["as"], "this"); err != nil {
		return nil, "", nil, nil, err
	}
	if input, err = s.compile(a["input"]); err != nil {
		return nil, "", nil, nil, err
	}
	if in, err = s.withLocals(as).compile(a[body]); err != nil {
		return nil, "", nil, nil, err
	}
	return input, as, in, a, nil
}

func inputArray(op string, env *Env, input Expr, code int32) (bson.A, bool, error) {
	v, err := input(env)
	if err != nil {
		return nil, false, err
	}
	if Nullish(v) {
		return nil, false, nil
	}
	arr, ok := v.(bson.A)
	if !ok {
		return nil, false, merr.New(code, "input to %s must be an array not %s", op, TypeName(v))
	}
	return arr, true, nil
}

func (s *scope) mapOp(arg any) (Expr, error) {
	input, as, in, _, err := s.iteration("$map", arg, 16879, "in")
	if err != nil {
		return nil, err
	}
	return func(env *Env) (any, error) {
		arr, ok, err := inputArray("$map", env, input, 16883)
		if !ok || err != nil {
			return nil, err
		}
		out := make(bson.A, len(arr))
		for i, x := range arr {
			v, err := in(env.bind(as, x))
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

func (s *scope) filter(arg any) (Expr, error) {
	input, as, cond, rest, err := s.iteration("$filter", arg, 28647, "cond", "limit")
	if err != nil {
		return nil, err
	}
	limit := Constant(nil)
	if l, ok := rest["limit"]; ok {
		if limit, err = s.compile(l); err != nil {
			return nil, err
		}
	}
	return func(env *Env) (any, error) {
		arr, ok, err := inputArray("$filter", env, input, 28651)
		if !ok || err != nil {
			return nil, err
		}
		lv, err := limit(env)
		if err != nil {
			return nil, err
		}
		max := int64(-1)
		if !Nullish(lv) {
			n, ok := bsonkit.ToInt64(lv)
			if !bsonkit.IsNumber(lv) || !ok || n < 1 {
				return nil, merr.New(327392, "$filter: limit must be greater than 0: %s", bsonkit.FormatValue(lv))
			}
			max = n
		}
		out := bson.A{}
		for _, x := range arr {
			if max >= 0 && int64(len(out)) == max {
				break
			}
			v, err := cond(env.bind(as, x))
			if err != nil {
				return nil, err
			}
			if Truthy(v) {
				out = append(out, x)
			}
		}
		return out, nil
	}, nil
}

func (s *scope) reduce(arg any) (Expr, error) {
	a, err := args("$reduce", arg, 40076, []string{"input", "initialValue", "in"}, "input", "initialValue", "in")
	if err != nil {
		return nil, err
	}
	input, err := s.compile(a["input"])
	if err != nil {
		return nil, err
	}
	initial, err := s.compile(a["initialValue"])
	if err != nil {
		return nil, err
	}
	in, err := s.withLocals("this", "value").compile(a["in"])
	if err != nil {
		return nil, err
	}
	return func(env *Env) (any, error) {
		v, err := input(env)
		if err != nil || Nullish(v) {
			return nil, err
		}
		arr, ok := v.(bson.A)
		if !ok {
			return nil, merr.New(40080, "$reduce requires an array as the 'input' argument, found: %s", TypeName(v))
		}
		acc, err := initial(env)
		if err != nil {
			return nil, err
		}
		for _, x := range arr {
			if acc, err = in(env.bind("value", acc).bind("this", x)); err != nil {
				return nil, err
			}
		}
		return acc, nil
	}, nil
}

func (s *scope) switchOp(arg any) (Expr, error) {
	a, err := args("$switch", arg, 40067, []string{"branches", "default"}, "branches")
	if err != nil {
		return nil, err
	}
	branches, ok := a["branches"].(bson.A)
	if !ok {
		return nil, merr.New(40061, "$switch expected an array for 'branches', found: %s", TypeName(a["branches"]))
	}
	type branch struct{ cond, then Expr }
	bs := make([]branch, len(branches))
	for i, b := range branches {
		ba, err := args("$switch", b, 40063, []string{"case", "then"})
		if err != nil {
			return nil, err
		}
		if _, ok := ba["case"]; !ok {
			return nil, merr.New(40064, "$switch requires each branch have a 'case' expression")
		}
		if _, ok := ba["then"]; !ok {
			return nil, merr.New(40065, "$switch requires each branch have a 'then' expression.")
		}
		if bs[i].cond, err = s.compile(ba["case"]); err != nil {
			return nil, err
		}
		if bs[i].then, err = s.compile(ba["then"]); err != nil {
			return nil, err
		}
	}
	var def Expr
	if d, ok := a["default"]; ok {
		if def, err = s.compile(d); err != nil {
			return nil, err
		}
	}
	return func(env *Env) (any, error) {
		for _, b := range bs {
			c, err := b.cond(env)
			if err != nil {
				return nil, err
			}
			if Truthy(c) {
				return b.then(env)
			}
		}
		if def == nil {
			return nil, merr.New(40066, "$switch could not find a matching branch for an input, and no default was specified.")
		}
		return def(env)
	}, nil
}

// getField is $getField: a field of $$CURRENT or of an input, by a name
// that may contain '.' or start with '$'.
func (s *scope) getField(arg any) (Expr, error) {
	fieldArg, inputArg := arg, any("$$CURRENT")
	if d, ok := arg.(bson.D); ok && len(d) > 0 && !(len(d[0].Key) > 0 && d[0].Key[0] == '$') {
		a, err := args("$getField", arg, 3041701, []string{"field", "input"}, "field")
		if err != nil {
			return nil, err
		}
		fieldArg = a["field"]
		if in, ok := a["input"]; ok {
			inputArg = in
		}
	}
	name, ok := fieldArg.(string)
	if !ok {
		return nil, merr.New(5654602, "$getField requires 'field' to evaluate to type String, but got %s", TypeName(fieldArg))
	}
	input, err := s.compile(inputArg)
	if err != nil {
		return nil, err
	}
	return func(env *Env) (any, error) {
		v, err := input(env)
		if err != nil {
			return nil, err
		}
		if Nullish(v) {
			return nil, nil
		}
		d, ok := v.(bson.D)
		if !ok {
			return Missing, nil
		}
		if x, ok := bsonkit.Get(d, name); ok {
			return x, nil
		}
		return Missing, nil
	}, nil
}

func evalConcatArrays(vals []any) (any, error) {
	out := bson.A{}
	for _, v := range vals {
		if Nullish(v) {
			return nil, nil
		}
		a, ok := v.(bson.A)
		if !ok {
			return nil, merr.New(28664, "$concatArrays only supports arrays, not %s", TypeName(v))
		}
		out = append(out, a...)
	}
	return out, nil
}

func evalMergeObjects(vals []any) (any, error) {
	out := bson.D{}
	for _, v := range vals {
		if Nullish(v) {
			continue
		}
		d, ok := v.(bson.D)
		if !ok {
			return nil, merr.New(40400, "$mergeObjects requires object inputs, but input %s is of type %s", bsonkit.FormatValue(v), TypeName(v))
		}
		for _, e := range d {
			replaced := false
			for i := range out {
				if out[i].Key == e.Key {
					out[i].Value, replaced = e.Value, true
					break
				}
			}
			if !replaced {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// setField is $setField and $unsetField: a copy of the input document with
// one field, named by a constant string that may contain '.' or start with
// '$', set (or removed when the value is $$REMOVE).
func (s *scope) setField(op string, arg any) (Expr, error) {
	allowed := []string{"field", "input", "value"}
	required := []string{"field", "input", "value"}
	if op == "$unsetField" {
		allowed, required = allowed[:2], required[:2]
	}
	a, err := args(op, arg, 4161100, allowed, required...)
	if err != nil {
		return nil, err
	}
	name, ok := a["field"].(string)
	if !ok {
		if d, isDoc := a["field"].(bson.D); isDoc && len(d) == 1 && d[0].Key == "$literal" {
			name, ok = d[0].Value.(string)
		}
	}
	if !ok {
		return nil, merr.New(4161106, "%s requires 'field' to evaluate to type String, but got %s", op, TypeName(a["field"]))
	}
	input, err := s.compile(a["input"])
	if err != nil {
		return nil, err
	}
	value := Constant(Missing)
	if op == "$setField" {
		if value, err = s.compile(a["value"]); err != nil {
			return nil, err
		}
	}
	return func(env *Env) (any, error) {
		in, err := input(env)
		if err != nil {
			return nil, err
		}
		if Nullish(in) {
			return nil, nil
		}
		d, ok := in.(bson.D)
		if !ok {
			return nil, merr.New(4161105, "%s requires 'input' to evaluate to type Object", op)
		}
		v, err := value(env)
		if err != nil {
			return nil, err
		}
		out := make(bson.D, 0, len(d)+1)
		found := false
		for _, e := range d {
			if e.Key != name {
				out = append(out, e)
				continue
			}
			found = true
			if !IsMissing(v) {
				out = append(out, bson.E{Key: name, Value: v})
			}
		}
		if !found && !IsMissing(v) {
			out = append(out, bson.E{Key: name, Value: v})
		}
		return out, nil
	}, nil
}
