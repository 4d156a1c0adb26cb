package expr

import (
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// opFunc evaluates an operator over its evaluated arguments.
type opFunc func(args []any) (any, error)

// opSpec describes an operator: its arity (-1 for any) and evaluator.
type opSpec struct {
	arity int
	eval  opFunc
	// lazy operators get unevaluated arguments: $cond, $and, $or, $ifNull.
	lazy func(args []Expr) Expr
}

var exprOperators map[string]opSpec

func init() {
	exprOperators = map[string]opSpec{
		"$add":          {arity: -1, eval: evalAdd},
		"$subtract":     {arity: 2, eval: evalSubtract},
		"$multiply":     {arity: -1, eval: evalMultiply},
		"$divide":       {arity: 2, eval: evalDivide},
		"$mod":          {arity: 2, eval: evalMod},
		"$abs":          {arity: 1, eval: evalAbs},
		"$concat":       {arity: -1, eval: evalConcat},
		"$toLower":      {arity: 1, eval: caseFunc(strings.ToLower)},
		"$toUpper":      {arity: 1, eval: caseFunc(strings.ToUpper)},
		"$eq":           {arity: 2, eval: cmpFunc(func(c int) bool { return c == 0 })},
		"$ne":           {arity: 2, eval: cmpFunc(func(c int) bool { return c != 0 })},
		"$gt":           {arity: 2, eval: cmpFunc(func(c int) bool { return c > 0 })},
		"$gte":          {arity: 2, eval: cmpFunc(func(c int) bool { return c >= 0 })},
		"$lt":           {arity: 2, eval: cmpFunc(func(c int) bool { return c < 0 })},
		"$lte":          {arity: 2, eval: cmpFunc(func(c int) bool { return c <= 0 })},
		"$cmp":          {arity: 2, eval: func(a []any) (any, error) { return int32(Compare(a[0], a[1])), nil }},
		"$not":          {arity: 1, eval: func(a []any) (any, error) { return !Truthy(a[0]), nil }},
		"$in":           {arity: 2, eval: evalIn},
		"$size":         {arity: 1, eval: evalSize},
		"$arrayElemAt":  {arity: 2, eval: evalArrayElemAt},
		"$max":          {arity: -1, eval: extremum(1)},
		"$min":          {arity: -1, eval: extremum(-1)},
		"$sum":          {arity: -1, eval: overArray(func(vs []any) any { return sumOf(vs) })},
		"$avg":          {arity: -1, eval: overArray(avgOf)},
		"$concatArrays": {arity: -1, eval: evalConcatArrays},
		"$mergeObjects": {arity: -1, eval: evalMergeObjects},
		"$isArray":      {arity: 1, eval: func(a []any) (any, error) { _, ok := a[0].(bson.A); return ok, nil }},
		"$type":         {arity: 1, eval: func(a []any) (any, error) { return TypeName(a[0]), nil }},
		"$and":          {arity: -1, lazy: lazyAndOr(false)},
		"$or":           {arity: -1, lazy: lazyAndOr(true)},
		"$ifNull":       {arity: -1, lazy: lazyIfNull},
	}
}

// operator compiles {$op: arg}.
func (s *scope) operator(name string, arg any) (Expr, error) {
	switch name {
	case "$literal":
		return Constant(arg), nil
	case "$cond":
		return s.cond(arg)
	case "$let":
		return s.let(arg)
	case "$map":
		return s.mapOp(arg)
	case "$filter":
		return s.filter(arg)
	case "$reduce":
		return s.reduce(arg)
	case "$switch":
		return s.switchOp(arg)
	case "$getField":
		return s.getField(arg)
	case "$setField", "$unsetField":
		return s.setField(name, arg)
	case "$rand":
		if d, ok := arg.(bson.D); !ok || len(d) != 0 {
			return nil, merr.New(merr.FailedToParse, "$rand does not currently accept arguments")
		}
		return func(*Env) (any, error) { return rand.Float64(), nil }, nil
	}
	spec, ok := exprOperators[name]
	if !ok {
		return nil, merr.New(CodeInvalidPipelineOperator, "Unrecognized expression '%s'", name)
	}
	if s.str != nil {
		spec = s.collated(name, spec)
	}
	raw, isArray := arg.(bson.A)
	if !isArray {
		raw = bson.A{arg}
	}
	if spec.arity >= 0 && len(raw) != spec.arity {
		return nil, merr.New(CodeArity, "Expression %s takes exactly %d arguments. %d were passed in.", name, spec.arity, len(raw))
	}
	if name == "$ifNull" && len(raw) < 2 {
		return nil, merr.New(1257300, "$ifNull needs at least two arguments, had: %d", len(raw))
	}
	args := make([]Expr, len(raw))
	for i, a := range raw {
		var err error
		if args[i], err = s.compile(a); err != nil {
			return nil, err
		}
	}
	if spec.lazy != nil {
		return spec.lazy(args), nil
	}
	// The accumulator forms traverse a lone argument that is an array, so
	// $sum: "$arr" and $sum: ["$arr"] both sum the elements.
	unwrap := len(args) == 1 && (name == "$sum" || name == "$avg" || name == "$max" || name == "$min")
	return func(env *Env) (any, error) {
		vals := make([]any, len(args))
		for i, a := range args {
			v, err := a(env)
			if err != nil {
				return nil, err
			}
			vals[i] = v
		}
		if unwrap {
			if a, ok := vals[0].(bson.A); ok {
				vals = a
			}
		}
		return spec.eval(vals)
	}, nil
}

func (s *scope) cond(arg any) (Expr, error) {
	var parts [3]any
	switch a := arg.(type) {
	case bson.A:
		if len(a) != 3 {
			return nil, merr.New(CodeArity, "Expression $cond takes exactly 3 arguments. %d were passed in.", len(a))
		}
		copy(parts[:], a)
	case bson.D:
		seen := [3]bool{}
		for _, e := range a {
			i := map[string]int{"if": 0, "then": 1, "else": 2}[e.Key]
			if e.Key != "if" && e.Key != "then" && e.Key != "else" {
				return nil, merr.New(17083, "Unrecognized parameter to $cond: %s", e.Key)
			}
			parts[i], seen[i] = e.Value, true
		}
		for i, name := range []string{"if", "then", "else"} {
			if !seen[i] {
				return nil, merr.New(17080+int32(i), "Missing '%s' parameter to $cond", name)
			}
		}
	default:
		return nil, merr.New(CodeArity, "Expression $cond takes exactly 3 arguments. 1 were passed in.")
	}
	var ex [3]Expr
	for i, p := range parts {
		var err error
		if ex[i], err = s.compile(p); err != nil {
			return nil, err
		}
	}
	return func(env *Env) (any, error) {
		c, err := ex[0](env)
		if err != nil {
			return nil, err
		}
		if Truthy(c) {
			return ex[1](env)
		}
		return ex[2](env)
	}, nil
}

func lazyAndOr(isOr bool) func([]Expr) Expr {
	return func(args []Expr) Expr {
		return func(env *Env) (any, error) {
			for _, a := range args {
				v, err := a(env)
				if err != nil {
					return nil, err
				}
				if Truthy(v) == isOr {
					return isOr, nil
				}
			}
			return !isOr, nil
		}
	}
}

func lazyIfNull(args []Expr) Expr {
	return func(env *Env) (any, error) {
		for _, a := range args[:len(args)-1] {
			v, err := a(env)
			if err != nil || !Nullish(v) {
				return v, err
			}
		}
		return args[len(args)-1](env)
	}
}

// collated returns spec with its comparisons under the scope's collation.
func (s *scope) collated(name string, spec opSpec) opSpec {
	ok := map[string]func(int) bool{
		"$eq": func(c int) bool { return c == 0 }, "$ne": func(c int) bool { return c != 0 },
		"$gt": func(c int) bool { return c > 0 }, "$gte": func(c int) bool { return c >= 0 },
		"$lt": func(c int) bool { return c < 0 }, "$lte": func(c int) bool { return c <= 0 },
	}[name]
	switch {
	case ok != nil:
		spec.eval = func(a []any) (any, error) { return ok(CompareWith(a[0], a[1], s.str)), nil }
	case name == "$cmp":
		spec.eval = func(a []any) (any, error) { return int32(CompareWith(a[0], a[1], s.str)), nil }
	case name == "$in":
		spec.eval = func(a []any) (any, error) {
			arr, isArray := a[1].(bson.A)
			if !isArray {
				return evalIn(a)
			}
			for _, e := range arr {
				if CompareWith(a[0], e, s.str) == 0 {
					return true, nil
				}
			}
			return false, nil
		}
	}
	return spec
}

func cmpFunc(ok func(int) bool) opFunc {
	return func(a []any) (any, error) { return ok(Compare(a[0], a[1])), nil }
}

// addNumbers adds with the server's promotion; int64 overflow becomes double.
func addNumbers(a, b any) any {
	r, err := bsonkit.Add(a, b)
	if errors.Is(err, bsonkit.ErrOverflow) {
		x, _ := bsonkit.ToFloat(a)
		y, _ := bsonkit.ToFloat(b)
		return x + y
	}
	return r
}

func multiplyNumbers(a, b any) any {
	r, err := bsonkit.Multiply(a, b)
	if errors.Is(err, bsonkit.ErrOverflow) {
		x, _ := bsonkit.ToFloat(a)
		y, _ := bsonkit.ToFloat(b)
		return x * y
	}
	return r
}

func evalAdd(args []any) (any, error) {
	var sum Sum
	var date *bson.DateTime
	nums := make([]any, 0, len(args))
	for _, v := range args {
		if Nullish(v) {
			return nil, nil
		}
		switch x := v.(type) {
		case bson.DateTime:
			if date != nil {
				return nil, merr.New(16612, "only one date allowed in an $add expression")
			}
			date = &x
		default:
			if !bsonkit.IsNumber(v) {
				return nil, merr.New(16554, "$add only supports numeric or date types, not %s", TypeName(v))
			}
			sum.Add(v)
			nums = append(nums, v)
		}
	}
	if date != nil {
		return addToDate(*date, nums)
	}
	return sum.Result(), nil
}

// addToDate is $add with a date, as ExpressionAdd::evaluate
// (src/mongo/db/pipeline/expression.cpp): without a decimal operand the
// total is rounded half away from zero (DoubleDoubleSummation::getLong)
// and one outside int64 fails with Overflow "date overflow in $add"; with
// a decimal operand it is rounded half to even by Decimal128::toLong, which
// does not fail: a NaN, infinite or out-of-range total is the minimum
// int64 (the BID library's integer indefinite).
func addToDate(date bson.DateTime, nums []any) (any, error) {
	total := new(big.Rat).SetInt64(int64(date))
	decimal, finite := false, true
	for _, v := range nums {
		if _, ok := v.(bson.Decimal128); ok {
			decimal = true
		}
		r, ok := bsonkit.Rat(v)
		if !ok {
			finite = false
			continue
		}
		total.Add(total, r)
	}
	var ms *big.Int
	if finite {
		ms = roundRat(total, decimal)
	}
	if ms == nil || !ms.IsInt64() {
		if decimal {
			return bson.DateTime(math.MinInt64), nil
		}
		return nil, merr.New(merr.Overflow, "date overflow in $add")
	}
	return bson.DateTime(ms.Int64()), nil
}

// roundRat rounds r to an integer, half to even when even is set, else
// half away from zero.
func roundRat(r *big.Rat, even bool) *big.Int {
	q, m := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	// q is truncated toward zero; m has r's sign.
	twice := new(big.Int).Abs(m)
	twice.Lsh(twice, 1)
	c := twice.Cmp(r.Denom())
	if c > 0 || c == 0 && (!even || q.Bit(0) == 1) {
		if r.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return q
}

func evalSubtract(args []any) (any, error) {
	a, b := args[0], args[1]
	if Nullish(a) || Nullish(b) {
		return nil, nil
	}
	if da, ok := a.(bson.DateTime); ok {
		if db, ok := b.(bson.DateTime); ok {
			return int64(da - db), nil
		}
		if bsonkit.IsNumber(b) {
			f, _ := bsonkit.ToFloat(b)
			return da - bson.DateTime(math.Round(f)), nil
		}
	}
	if !bsonkit.IsNumber(a) || !bsonkit.IsNumber(b) {
		return nil, merr.New(16556, "cant $subtract %s from %s", TypeName(b), TypeName(a))
	}
	return addNumbers(a, negate(b)), nil
}

// negate returns -v, widening int32 and int64 minimums.
func negate(v any) any {
	switch x := v.(type) {
	case int32:
		if x == math.MinInt32 {
			return -int64(x)
		}
		return -x
	case int64:
		if x == math.MinInt64 {
			return -float64(x)
		}
		return -x
	case float64:
		return -x
	}
	return multiplyNumbers(v, int32(-1))
}

func evalMultiply(args []any) (any, error) {
	var p any = int32(1)
	for _, v := range args {
		if Nullish(v) {
			return nil, nil
		}
		if !bsonkit.IsNumber(v) {
			return nil, merr.New(16555, "$multiply only supports numeric types, not %s", TypeName(v))
		}
		p = multiplyNumbers(p, v)
	}
	return p, nil
}

func evalDivide(args []any) (any, error) {
	a, b := args[0], args[1]
	if Nullish(a) || Nullish(b) {
		return nil, nil
	}
	if !bsonkit.IsNumber(a) || !bsonkit.IsNumber(b) {
		return nil, merr.New(16609, "$divide only supports numeric types, not %s and %s", TypeName(a), TypeName(b))
	}
	if y, _ := bsonkit.ToFloat(b); y == 0 {
		return nil, merr.New(16608, "can't $divide by zero")
	}
	return bsonkit.Divide(a, b)
}

func evalMod(args []any) (any, error) {
	a, b := args[0], args[1]
	if Nullish(a) || Nullish(b) {
		return nil, nil
	}
	if !bsonkit.IsNumber(a) || !bsonkit.IsNumber(b) {
		return nil, merr.New(16611, "$mod only supports numeric types, not %s and %s", TypeName(a), TypeName(b))
	}
	y, _ := bsonkit.ToFloat(b)
	if y == 0 {
		return nil, merr.New(16610, "can't $mod by zero")
	}
	_, aInt := a.(int32)
	_, bInt := b.(int32)
	_, aLong := a.(int64)
	_, bLong := b.(int64)
	if (aInt || aLong) && (bInt || bLong) {
		x, _ := bsonkit.ToInt64(a)
		z, _ := bsonkit.ToInt64(b)
		if z == -1 {
			z = 1 // avoids MinInt64 % -1 overflow; the result is 0 either way
		}
		if aInt && bInt {
			return int32(x % z), nil
		}
		return x % z, nil
	}
	x, _ := bsonkit.ToFloat(a)
	return math.Mod(x, y), nil
}

func evalAbs(args []any) (any, error) {
	v := args[0]
	if Nullish(v) {
		return nil, nil
	}
	switch x := v.(type) {
	case int32:
		if x < 0 {
			return negate(x), nil
		}
		return x, nil
	case int64:
		if x == math.MinInt64 {
			return nil, merr.New(28680, "can't take $abs of long long min")
		}
		if x < 0 {
			return -x, nil
		}
		return x, nil
	case float64:
		return math.Abs(x), nil
	}
	if !bsonkit.IsNumber(v) {
		return nil, merr.New(28765, "$abs only supports numeric types, not %s", TypeName(v))
	}
	if bsonkit.Compare(v, int32(0)) < 0 {
		return negate(v), nil
	}
	return v, nil
}

func evalConcat(args []any) (any, error) {
	var b strings.Builder
	for _, v := range args {
		if Nullish(v) {
			return nil, nil
		}
		s, ok := v.(string)
		if !ok {
			return nil, merr.New(16702, "$concat only supports strings, not %s", TypeName(v))
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

func caseFunc(f func(string) string) opFunc {
	return func(args []any) (any, error) {
		s, err := toString(args[0])
		if err != nil {
			return nil, err
		}
		return f(s), nil
	}
}

// toString is the server's coerceToString for $toLower and $toUpper.
func toString(v any) (string, error) {
	switch x := v.(type) {
	case nil, missingValue, bson.Null, bson.Undefined:
		return "", nil
	case string:
		return x, nil
	case bson.Symbol:
		return string(x), nil
	case int32:
		return strconv.FormatInt(int64(x), 10), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case bson.Decimal128:
		return x.String(), nil
	case bson.DateTime:
		return x.Time().UTC().Format("2006-01-02T15:04:05.000Z"), nil
	}
	return "", merr.New(16007, "can't convert from BSON type %s to String", TypeName(v))
}

func evalIn(args []any) (any, error) {
	arr, ok := args[1].(bson.A)
	if !ok {
		return nil, merr.New(40081, "$in requires an array as a second argument, found: %s", TypeName(args[1]))
	}
	for _, e := range arr {
		if Compare(args[0], e) == 0 {
			return true, nil
		}
	}
	return false, nil
}

func evalSize(args []any) (any, error) {
	arr, ok := args[0].(bson.A)
	if !ok {
		return nil, merr.New(17124, "The argument to $size must be an array. Type of the argument was: %s", TypeName(args[0]))
	}
	return int32(len(arr)), nil
}

func evalArrayElemAt(args []any) (any, error) {
	if Nullish(args[0]) || Nullish(args[1]) {
		return nil, nil
	}
	arr, ok := args[0].(bson.A)
	if !ok {
		return nil, merr.New(28689, "$arrayElemAt's first argument must be an array, but is %s", TypeName(args[0]))
	}
	if !bsonkit.IsNumber(args[1]) {
		return nil, merr.New(28690, "$arrayElemAt's second argument must be a numeric value, but is %s", TypeName(args[1]))
	}
	i, ok := bsonkit.ToInt64(args[1])
	if !ok || i < math.MinInt32 || i > math.MaxInt32 {
		return nil, merr.New(28691, "$arrayElemAt's second argument must be representable as a 32-bit integer: %s", bsonkit.FormatValue(args[1]))
	}
	if i < 0 {
		i += int64(len(arr))
	}
	if i < 0 || i >= int64(len(arr)) {
		return Missing, nil
	}
	return arr[i], nil
}

// extremum is $max (dir 1) or $min (dir -1) over non-null values.
func extremum(dir int) opFunc {
	return func(vals []any) (any, error) {
		var best any
		for _, v := range vals {
			if Nullish(v) {
				continue
			}
			if best == nil || dir*Compare(v, best) > 0 {
				best = v
			}
		}
		return best, nil
	}
}

func overArray(f func([]any) any) opFunc {
	return func(vals []any) (any, error) { return f(vals), nil }
}

// sumOf adds the numbers among vals, ignoring everything else.
func sumOf(vals []any) any {
	var sum Sum
	for _, v := range vals {
		sum.Add(v)
	}
	return sum.Result()
}

// avgOf averages the numbers among vals (see [Sum.Avg]), or null if none.
func avgOf(vals []any) any {
	var sum Sum
	for _, v := range vals {
		sum.Add(v)
	}
	return sum.Avg()
}
