package query

import (
	"math"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/expr"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// Filter is a compiled query predicate. A nil *Filter matches everything.
type Filter struct {
	root node
	// eqs are the upsert seed candidates, in filter order.
	eqs []equality
	// vars are the variables $expr sees; nested is set inside $elemMatch,
	// where $expr is not allowed.
	vars    expr.Vars
	nested  bool
	hasExpr bool
	// str orders strings: the command's collation; nil is binary.
	str func(a, b string) int
}

// Compile parses a query filter. A nil or empty filter matches every
// document. Errors are *merr.Error with MongoDB's codes and messages.
func Compile(filter bson.D) (*Filter, error) { return CompileVars(filter, nil) }

// CompileVars is [Compile] with the variables a command's let binds, which
// $expr sees.
func CompileVars(filter bson.D, vars expr.Vars) (*Filter, error) {
	return CompileWith(filter, Options{Vars: vars})
}

// Options are what a filter is compiled with.
type Options struct {
	// Vars are the variables $expr sees.
	Vars expr.Vars
	// Collation orders and equates strings (a collation's Compare); nil
	// is binary.
	Collation func(a, b string) int
}

// CompileWith is [Compile] with variables and a collation.
func CompileWith(filter bson.D, opts Options) (*Filter, error) {
	return compileIn(nil, filter, opts)
}

// Storage holds a compiled filter in its owner's allocation (a parsed
// find keeps one), for the commonest filter, {field: literal}. A filter
// compiled in it lives as long as the Storage; compile one filter per
// Storage.
type Storage struct{ eq equalityFilter }

// CompileWith is [CompileWith] compiling into s when the filter fits.
func (s *Storage) CompileWith(filter bson.D, opts Options) (*Filter, error) {
	return compileIn(s, filter, opts)
}

// compileIn is CompileWith, using s (nil: none) for an equality.
func compileIn(s *Storage, filter bson.D, opts Options) (*Filter, error) {
	if len(filter) == 1 && isLiteralEquality(filter[0]) {
		var q *equalityFilter
		if s != nil {
			q = &s.eq
		}
		return compileEquality(q, filter[0], opts), nil
	}
	f := &Filter{vars: opts.Vars, str: opts.Collation}
	root, err := f.parseDoc(filter, true)
	if err != nil {
		return nil, err
	}
	f.root = root
	return f, nil
}

// isLiteralEquality reports whether e, a filter's only field, is the
// commonest filter, `field: literal` (a find or update by _id): what
// parseDoc and parseField compile to one field node with one equality.
func isLiteralEquality(e bson.E) bool {
	if strings.HasPrefix(e.Key, "$") {
		return false
	}
	switch v := e.Value.(type) {
	case bson.Regex, bson.Undefined:
		return false
	case bson.D:
		return !isOperatorDoc(v)
	}
	return true
}

// equalityFilter holds the filter {field: literal}, its nodes and its
// upsert equality in one allocation.
type equalityFilter struct {
	f    Filter
	node fieldNode
	leaf leafExpr
	pred cmpPred
	eqs  [1]equality
}

// compileEquality compiles e, a literal equality (isLiteralEquality), to
// the same filter parseDoc makes of it, in q (nil: a new one).
func compileEquality(q *equalityFilter, e bson.E, opts Options) *Filter {
	if q == nil {
		q = new(equalityFilter)
	}
	q.pred = cmpPred{op: opEQ, rhs: e.Value, str: opts.Collation}
	q.leaf = leafExpr{pred: &q.pred, mode: leafTraverse}
	q.node = fieldNode{path: newPath(e.Key), expr: &q.leaf}
	q.eqs[0] = equality{path: e.Key, value: e.Value}
	q.f = Filter{root: &q.node, eqs: q.eqs[:1:1], vars: opts.Vars, str: opts.Collation}
	return &q.f
}

// Match reports whether doc satisfies the filter. A $expr that fails while
// it runs makes Match false; callers that must report that error use
// [Filter.Eval].
func (f *Filter) Match(doc bson.D) bool {
	ok, err := f.Eval(doc)
	return ok && err == nil
}

// Eval reports whether doc satisfies the filter, or the error a $expr
// raised while evaluating it, which fails the whole command in MongoDB.
func (f *Filter) Eval(doc bson.D) (bool, error) {
	if f == nil || f.root == nil {
		return true, nil
	}
	return f.root.match(doc)
}

// Collated reports whether the filter compares strings under a collation.
func (f *Filter) Collated() bool { return f != nil && f.str != nil }

// HasExpr reports whether the filter uses $expr.
func (f *Filter) HasExpr() bool { return f != nil && f.hasExpr }

// node is a predicate over a whole document.
type node interface {
	match(doc bson.D) (bool, error)
}

type andNode []node

func (n andNode) match(doc bson.D) (bool, error) {
	for _, c := range n {
		if ok, err := c.match(doc); !ok || err != nil {
			return false, err
		}
	}
	return true, nil
}

type orNode []node

func (n orNode) match(doc bson.D) (bool, error) {
	for _, c := range n {
		if ok, err := c.match(doc); ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

type norNode []node

func (n norNode) match(doc bson.D) (bool, error) {
	ok, err := orNode(n).match(doc)
	return !ok && err == nil, err
}

// schemaNode is $jsonSchema.
type schemaNode struct{ s *Schema }

func (n schemaNode) match(doc bson.D) (bool, error) { return n.s.Validate(doc), nil }

// exprNode is $expr: an aggregation expression, true when truthy.
type exprNode struct{ x expr.Expr }

func (n exprNode) match(doc bson.D) (bool, error) {
	v, err := n.x.Eval(doc)
	return err == nil && expr.Truthy(v), err
}

type constNode bool

func (n constNode) match(bson.D) (bool, error) { return bool(n), nil }

// fieldNode applies an operator expression to the values of one path.
type fieldNode struct {
	path path
	expr fieldExpr
}

func (n *fieldNode) match(doc bson.D) (bool, error) { return n.expr.matchPath(doc, &n.path), nil }

// fieldExpr is the operator part of `field: {...}`. It evaluates either
// over everything a path yields (a filter) or on one value ($elemMatch's
// value form, where each array element is tested directly).
type fieldExpr interface {
	matchPath(doc bson.D, p *path) bool
	matchElem(v any) bool
}

// leafExpr is one predicate: true when any yielded value satisfies it.
type leafExpr struct {
	pred visitor
	mode leafMode
}

func (e *leafExpr) matchPath(doc bson.D, p *path) bool { return p.walk(doc, e.mode, e.pred) }
func (e *leafExpr) matchElem(v any) bool               { return e.pred.visit(v, false) }

// notExpr negates a whole expression, which is how $ne, $nin, $not and
// $exists: false see every array element at once.
type notExpr struct{ expr fieldExpr }

func (e *notExpr) matchPath(doc bson.D, p *path) bool { return !e.expr.matchPath(doc, p) }
func (e *notExpr) matchElem(v any) bool               { return !e.expr.matchElem(v) }

type allExpr []fieldExpr

func (e allExpr) matchPath(doc bson.D, p *path) bool {
	for _, x := range e {
		if !x.matchPath(doc, p) {
			return false
		}
	}
	return true
}

func (e allExpr) matchElem(v any) bool {
	for _, x := range e {
		if !x.matchElem(v) {
			return false
		}
	}
	return true
}

type constExpr bool

func (e constExpr) matchPath(bson.D, *path) bool { return bool(e) }
func (e constExpr) matchElem(any) bool           { return bool(e) }

func leaf(pred visitor) fieldExpr { return &leafExpr{pred: pred, mode: leafTraverse} }

// parseDoc parses a filter document; collect records upsert equalities,
// which MongoDB takes from the top level and from top-level $and.
func (f *Filter) parseDoc(d bson.D, collect bool) (node, error) {
	if len(d) == 1 && !strings.HasPrefix(d[0].Key, "$") {
		// The common {field: value}: no list to build.
		expr, err := f.parseField(d[0].Key, d[0].Value, collect)
		if err != nil {
			return nil, err
		}
		return &fieldNode{path: newPath(d[0].Key), expr: expr}, nil
	}
	nodes := make(andNode, 0, len(d))
	for _, e := range d {
		if strings.HasPrefix(e.Key, "$") {
			n, err := f.parseTopOperator(e, collect)
			if err != nil {
				return nil, err
			}
			if n != nil {
				nodes = append(nodes, n)
			}
			continue
		}
		expr, err := f.parseField(e.Key, e.Value, collect)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, &fieldNode{path: newPath(e.Key), expr: expr})
	}
	if len(nodes) == 1 {
		return nodes[0], nil
	}
	return nodes, nil
}

func (f *Filter) parseTopOperator(e bson.E, collect bool) (node, error) {
	switch e.Key {
	case "$and", "$or", "$nor":
		arr, ok := e.Value.(bson.A)
		if !ok || len(arr) == 0 {
			return nil, merr.New(merr.BadValue, "$and/$or/$nor must be a nonempty array")
		}
		children := make([]node, 0, len(arr))
		for _, el := range arr {
			sub, ok := el.(bson.D)
			if !ok {
				return nil, merr.New(merr.BadValue, "$or/$and/$nor entries need to be full objects")
			}
			// Canonicalization collapses a one-clause $or to its clause,
			// so its equalities seed an upsert as $and's do.
			n, err := f.parseDoc(sub, collect && (e.Key == "$and" || e.Key == "$or" && len(arr) == 1))
			if err != nil {
				return nil, err
			}
			children = append(children, n)
		}
		switch e.Key {
		case "$and":
			return andNode(children), nil
		case "$or":
			return orNode(children), nil
		}
		return norNode(children), nil
	case "$comment":
		return nil, nil
	case "$alwaysTrue", "$alwaysFalse":
		if n, ok := numberValue(e.Value); !ok || n != 1 {
			return nil, merr.New(merr.FailedToParse, "%s must be an integer value of 1", e.Key)
		}
		return constNode(e.Key == "$alwaysTrue"), nil
	case "$expr":
		if f.nested {
			return nil, merr.New(merr.BadValue, "$expr can only be applied to the top-level document")
		}
		x, err := expr.CompileCollated(e.Value, f.vars, f.str)
		if err != nil {
			return nil, err
		}
		f.hasExpr = true
		return exprNode{x}, nil
	case "$jsonSchema":
		d, ok := e.Value.(bson.D)
		if !ok {
			return nil, merr.New(merr.TypeMismatch, "$jsonSchema must be an object")
		}
		s, err := CompileSchema(d)
		if err != nil {
			return nil, err
		}
		return schemaNode{s}, nil
	case "$where", "$text", "$sampleRate":
		return nil, merr.New(merr.BadValue, "%s is not supported by mongotest", e.Key)
	case "$not":
		return nil, merr.New(merr.BadValue,
			"unknown top level operator: $not. If you are trying to negate an entire expression, use $nor.")
	}
	return nil, merr.New(merr.BadValue,
		"unknown top level operator: %s. If you have a field name that starts with a '$' symbol, consider using $getField or $setField.",
		e.Key)
}

// parseField parses `key: value` where value is a literal, a regex or an
// operator document.
func (f *Filter) parseField(key string, value any, collect bool) (fieldExpr, error) {
	switch v := value.(type) {
	case bson.Regex:
		r, err := newRegexPred(v.Pattern, v.Options)
		if err != nil {
			return nil, err
		}
		return leaf(r), nil
	case bson.D:
		if isOperatorDoc(v) {
			expr, err := f.parseOperators(v)
			if err != nil {
				return nil, err
			}
			if collect {
				for _, e := range v {
					switch e.Key {
					case "$eq":
						f.eqs = append(f.eqs, equality{path: key, value: e.Value})
					case "$in":
						// MongoDB's canonicalization rewrites a $in of exactly
						// one distinct value (and no regex) to an equality
						// (InMatchExpression's optimizer, "Simplify IN of
						// exactly one equality"), so an upsert seeds it.
						if v, ok := f.singleInValue(e.Value); ok {
							f.eqs = append(f.eqs, equality{path: key, value: v})
						}
					case "$all":
						// $all parses to an $and of equalities, one a value
						// (AllElemMatchOp aside), which canonicalization
						// flattens into the query's $and: {x: {$all: [1]}}
						// seeds x: 1, {x: {$all: [1, 2]}} matches x twice
						// (jstests/core/upsert_fields.js).
						arr, _ := e.Value.(bson.A)
						for _, x := range arr {
							if d, ok := x.(bson.D); ok && len(d) > 0 && d[0].Key == "$elemMatch" {
								break
							}
							if _, re := x.(bson.Regex); !re {
								f.eqs = append(f.eqs, equality{path: key, value: x})
							}
						}
					}
				}
			}
			return expr, nil
		}
	case bson.Undefined:
		return nil, merr.New(merr.BadValue, "cannot compare to undefined")
	}
	if collect {
		f.eqs = append(f.eqs, equality{path: key, value: value})
	}
	return leaf(&cmpPred{op: opEQ, rhs: value, str: f.str}), nil
}

// isOperatorDoc mirrors MongoDB's isExpressionDocument: the first key starts
// with '$' and the document is not a DBRef.
func isOperatorDoc(d bson.D) bool {
	if len(d) == 0 || !strings.HasPrefix(d[0].Key, "$") {
		return false
	}
	return d[0].Key != "$ref"
}

// parseOperators parses an operator document such as {$gt: 1, $lt: 5}.
func (f *Filter) parseOperators(d bson.D) (fieldExpr, error) {
	exprs := make(allExpr, 0, len(d))
	regexDone := false
	for _, e := range d {
		var (
			x   fieldExpr
			err error
		)
		switch e.Key {
		case "$regex", "$options":
			if regexDone {
				continue
			}
			regexDone = true
			x, err = f.parseRegexOperator(d)
		default:
			x, err = f.parseOperator(e)
		}
		if err != nil {
			return nil, err
		}
		exprs = append(exprs, x)
	}
	if len(exprs) == 1 {
		return exprs[0], nil
	}
	return exprs, nil
}

func (f *Filter) parseOperator(e bson.E) (fieldExpr, error) {
	switch e.Key {
	case "$eq", "$ne", "$gt", "$gte", "$lt", "$lte":
		if _, ok := e.Value.(bson.Undefined); ok {
			return nil, merr.New(merr.BadValue, "cannot compare to undefined")
		}
		if _, ok := e.Value.(bson.Regex); ok && e.Key != "$eq" {
			if e.Key == "$ne" {
				return nil, merr.New(merr.BadValue, "Can't have regex as arg to $ne.")
			}
			return nil, merr.New(merr.BadValue, "Can't have RegEx as arg to predicate over field.")
		}
		op := map[string]cmpOp{"$eq": opEQ, "$ne": opEQ, "$gt": opGT, "$gte": opGTE, "$lt": opLT, "$lte": opLTE}[e.Key]
		x := leaf(&cmpPred{op: op, rhs: e.Value, str: f.str})
		if e.Key == "$ne" {
			return &notExpr{x}, nil
		}
		return x, nil
	case "$in", "$nin":
		arr, ok := e.Value.(bson.A)
		if !ok {
			return nil, merr.New(merr.BadValue, "%s needs an array", e.Key)
		}
		p, err := f.parseIn(arr)
		if err != nil {
			return nil, err
		}
		if e.Key == "$nin" {
			return &notExpr{leaf(p)}, nil
		}
		return leaf(p), nil
	case "$exists":
		if truthy(e.Value) {
			return leaf(existsPred{}), nil
		}
		return &notExpr{leaf(existsPred{})}, nil
	case "$type":
		p, err := parseType(e.Value)
		if err != nil {
			return nil, err
		}
		return leaf(p), nil
	case "$not":
		return f.parseNot(e.Value)
	case "$elemMatch":
		return f.parseElemMatch(e.Value)
	case "$size":
		n, err := parseSize(e.Value)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return constExpr(false), nil
		}
		return &leafExpr{pred: &sizePred{n: n}, mode: leafWhole}, nil
	case "$all":
		return f.parseAll(e.Value)
	case "$mod":
		p, err := parseMod(e.Value)
		if err != nil {
			return nil, err
		}
		return leaf(p), nil
	}
	return nil, merr.New(merr.BadValue, "unknown operator: %s", e.Key)
}

func (f *Filter) parseRegexOperator(d bson.D) (fieldExpr, error) {
	var (
		pattern, options string
		hasRegex         bool
		regexOptions     string
		hasOptions       bool
	)
	for _, e := range d {
		switch e.Key {
		case "$regex":
			hasRegex = true
			switch v := e.Value.(type) {
			case string:
				pattern = v
			case bson.Regex:
				pattern, regexOptions = v.Pattern, v.Options
			default:
				return nil, merr.New(merr.BadValue, "$regex has to be a string")
			}
		case "$options":
			s, ok := e.Value.(string)
			if !ok {
				return nil, merr.New(merr.BadValue, "$options has to be a string")
			}
			hasOptions = true
			options = s
		}
	}
	if !hasRegex {
		return nil, merr.New(merr.BadValue, "$options needs a $regex")
	}
	if regexOptions != "" {
		if hasOptions && options != "" {
			return nil, merr.New(merr.BadValue, "options set in both $regex and $options")
		}
		options = regexOptions
	}
	r, err := newRegexPred(pattern, options)
	if err != nil {
		return nil, err
	}
	return leaf(r), nil
}

func (f *Filter) parseIn(arr bson.A) (*inPred, error) {
	values := make([]any, 0, len(arr))
	var regexes []*regexPred
	for _, v := range arr {
		switch x := v.(type) {
		case bson.Regex:
			r, err := newRegexPred(x.Pattern, x.Options)
			if err != nil {
				return nil, err
			}
			regexes = append(regexes, r)
			continue
		case bson.D:
			if isOperatorDoc(x) {
				return nil, merr.New(merr.BadValue, "cannot nest $ under $in")
			}
		case bson.Undefined:
			return nil, merr.New(merr.BadValue, "InMatchExpression equality cannot be undefined")
		}
		values = append(values, v)
	}
	return newInPred(values, regexes, f.str), nil
}

// singleInValue returns the value of a $in array holding exactly one
// distinct value (as the filter compares) and no regex.
func (f *Filter) singleInValue(v any) (any, bool) {
	arr, ok := v.(bson.A)
	if !ok || len(arr) == 0 {
		return nil, false
	}
	for _, x := range arr {
		if _, re := x.(bson.Regex); re || bsonkit.CompareWith(x, arr[0], f.str) != 0 {
			return nil, false
		}
	}
	return arr[0], true
}

// truthy is BSONElement::trueValue.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil, bson.Null, bson.Undefined:
		return false
	case bool:
		return x
	case int32, int64, float64, bson.Decimal128:
		f, _ := bsonkit.ToFloat(x)
		return f != 0 // NaN is true, as in MongoDB
	}
	return true
}

var typeAliases = map[string]int32{
	"double": 1, "string": 2, "object": 3, "array": 4, "binData": 5, "undefined": 6,
	"objectId": 7, "bool": 8, "date": 9, "null": 10, "regex": 11, "dbPointer": 12,
	"javascript": 13, "symbol": 14, "javascriptWithScope": 15, "int": 16,
	"timestamp": 17, "long": 18, "decimal": 19, "minKey": -1, "maxKey": 127,
}

func parseType(v any) (*typePred, error) {
	p := &typePred{}
	add := func(x any) error {
		switch t := x.(type) {
		case string:
			if t == "number" {
				p.number = true
				return nil
			}
			code, ok := typeAliases[t]
			if !ok {
				return merr.New(merr.BadValue, "Unknown type name alias: %s", t)
			}
			p.codes = append(p.codes, code)
			return nil
		case int32, int64, float64, bson.Decimal128:
			n, ok := bsonkit.ToInt64(t)
			if !ok || n < math.MinInt32 || n > math.MaxInt32 {
				f, _ := bsonkit.ToFloat(t)
				return merr.New(merr.BadValue, "Invalid numerical type code: %v", f)
			}
			if (n < 1 || n > 19) && n != -1 && n != 127 {
				return merr.New(merr.BadValue, "Invalid numerical type code: %d", n)
			}
			p.codes = append(p.codes, int32(n))
			return nil
		}
		return merr.New(merr.TypeMismatch, "type must be represented as a number or a string")
	}
	if arr, ok := v.(bson.A); ok {
		for _, x := range arr {
			if err := add(x); err != nil {
				return nil, err
			}
		}
		return p, nil
	}
	if err := add(v); err != nil {
		return nil, err
	}
	return p, nil
}

func (f *Filter) parseNot(v any) (fieldExpr, error) {
	switch x := v.(type) {
	case bson.Regex:
		r, err := newRegexPred(x.Pattern, x.Options)
		if err != nil {
			return nil, err
		}
		return &notExpr{leaf(r)}, nil
	case bson.D:
		if len(x) == 0 {
			return nil, merr.New(merr.BadValue, "$not cannot be empty")
		}
		inner, err := f.parseOperators(x)
		if err != nil {
			return nil, err
		}
		return &notExpr{inner}, nil
	}
	return nil, merr.New(merr.BadValue, "$not needs a regex or a document")
}

func (f *Filter) parseElemMatch(v any) (fieldExpr, error) {
	d, ok := v.(bson.D)
	if !ok {
		return nil, merr.New(merr.BadValue, "$elemMatch needs an Object")
	}
	if isOperatorDoc(d) {
		switch d[0].Key {
		case "$and", "$or", "$nor", "$where", "$expr", "$comment", "$alwaysTrue", "$alwaysFalse":
		default:
			expr, err := f.parseOperators(d)
			if err != nil {
				return nil, err
			}
			return &leafExpr{pred: &elemMatchValuePred{expr: expr}, mode: leafWhole}, nil
		}
	}
	sub := &Filter{nested: true, str: f.str}
	root, err := sub.parseDoc(d, false)
	if err != nil {
		return nil, err
	}
	sub.root = root
	return &leafExpr{pred: &elemMatchDocPred{filter: sub}, mode: leafWhole}, nil
}

// parseSize returns $size's operand; -1 means "matches nothing" (a
// fractional size).
func parseSize(v any) (int, error) {
	switch n := v.(type) {
	case int32:
		if n < 0 {
			return 0, merr.New(merr.BadValue, "$size may not be negative")
		}
		return int(n), nil
	case int64:
		if n < math.MinInt32 || n > math.MaxInt32 {
			return 0, merr.New(merr.BadValue, "$size must be representable as a 32-bit integer")
		}
		if n < 0 {
			return 0, merr.New(merr.BadValue, "$size may not be negative")
		}
		return int(n), nil
	case float64, bson.Decimal128:
		f, _ := bsonkit.ToFloat(n)
		if f < 0 {
			return 0, merr.New(merr.BadValue, "$size may not be negative")
		}
		if f != math.Trunc(f) || f > math.MaxInt32 {
			return -1, nil
		}
		return int(f), nil
	}
	return 0, merr.New(merr.BadValue, "$size needs a number")
}

func (f *Filter) parseAll(v any) (fieldExpr, error) {
	arr, ok := v.(bson.A)
	if !ok {
		return nil, merr.New(merr.BadValue, "$all needs an array")
	}
	if len(arr) == 0 {
		return constExpr(false), nil
	}
	isElemMatch := func(x any) (bson.D, bool) {
		d, ok := x.(bson.D)
		return d, ok && len(d) > 0 && d[0].Key == "$elemMatch"
	}
	exprs := make(allExpr, 0, len(arr))
	if _, ok := isElemMatch(arr[0]); ok {
		for _, x := range arr {
			d, ok := isElemMatch(x)
			if !ok {
				return nil, merr.New(merr.BadValue, "$all/$elemMatch has to be consistent")
			}
			expr, err := f.parseElemMatch(d[0].Value)
			if err != nil {
				return nil, err
			}
			exprs = append(exprs, expr)
		}
		return exprs, nil
	}
	for _, x := range arr {
		switch t := x.(type) {
		case bson.Regex:
			r, err := newRegexPred(t.Pattern, t.Options)
			if err != nil {
				return nil, err
			}
			exprs = append(exprs, leaf(r))
			continue
		case bson.D:
			if _, ok := isElemMatch(t); ok {
				return nil, merr.New(merr.BadValue, "$all/$elemMatch has to be consistent")
			}
			if isOperatorDoc(t) {
				return nil, merr.New(merr.BadValue, "no $ expressions in $all")
			}
		}
		exprs = append(exprs, leaf(&cmpPred{op: opEQ, rhs: x, str: f.str}))
	}
	return exprs, nil
}

func parseMod(v any) (*modPred, error) {
	arr, ok := v.(bson.A)
	if !ok {
		return nil, merr.New(merr.BadValue, "malformed mod, needs to be an array")
	}
	if len(arr) < 2 {
		if len(arr) == 1 && !bsonkit.IsNumber(arr[0]) {
			return nil, merr.New(merr.BadValue, "malformed mod, divisor not a number")
		}
		return nil, merr.New(merr.BadValue, "malformed mod, not enough elements")
	}
	if !bsonkit.IsNumber(arr[0]) {
		return nil, merr.New(merr.BadValue, "malformed mod, divisor not a number")
	}
	if !bsonkit.IsNumber(arr[1]) {
		return nil, merr.New(merr.BadValue, "malformed mod, remainder not a number")
	}
	if len(arr) > 2 {
		return nil, merr.New(merr.BadValue, "malformed mod, too many elements")
	}
	divisor, err := modOperand(arr[0], "divisor")
	if err != nil {
		return nil, err
	}
	remainder, err := modOperand(arr[1], "remainder")
	if err != nil {
		return nil, err
	}
	if divisor == 0 {
		return nil, merr.New(merr.BadValue, "divisor cannot be 0")
	}
	return &modPred{divisor: divisor, remainder: remainder}, nil
}

func modOperand(v any, name string) (int64, error) {
	switch n := v.(type) {
	case int32:
		return int64(n), nil
	case int64:
		return n, nil
	}
	f, _ := bsonkit.ToFloat(v)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, merr.New(merr.BadValue,
			"malformed mod, %s value is invalid :: caused by :: Unable to coerce NaN/Inf to integral type", name)
	}
	f = math.Trunc(f)
	if f < -9.223372036854776e18 || f >= 9.223372036854776e18 {
		return 0, merr.New(merr.BadValue,
			"malformed mod, %s value is invalid :: caused by :: Out of bounds coercing to integral value", name)
	}
	return int64(f), nil
}

// numberValue returns v as a float when it is a BSON number.
func numberValue(v any) (float64, bool) {
	if !bsonkit.IsNumber(v) {
		return 0, false
	}
	return bsonkit.ToFloat(v)
}
