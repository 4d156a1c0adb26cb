package query

import (
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
)

// A predicate tests one value a path yields; it is the visitor of a walk.

type cmpOp uint8

const (
	opEQ cmpOp = iota
	opLT
	opLTE
	opGT
	opGTE
)

// cmpPred is $eq, $lt, $lte, $gt and $gte (and a plain `field: value`).
type cmpPred struct {
	op  cmpOp
	rhs any
	str func(a, b string) int
}

func (p *cmpPred) visit(v any, missing bool) bool {
	return compareMatch(p.op, v, missing, p.rhs, p.str)
}

// compareMatch follows ComparisonMatchExpression::matchesSingleElement:
// values of different canonical types never compare, except that null,
// undefined and a missing field are alike for the inclusive operators, and
// MinKey/MaxKey bound everything.
func compareMatch(op cmpOp, v any, missing bool, rhs any, str func(a, b string) int) bool {
	if missing {
		// A missing field is MongoDB's EOO, which compares like undefined.
		switch rhs.(type) {
		case nil, bson.Null:
			return op == opEQ || op == opLTE || op == opGTE
		case bson.MaxKey:
			return op == opLT || op == opLTE
		case bson.MinKey:
			return op == opGT || op == opGTE
		}
		return false
	}
	if bsonkit.TypeRank(v) != bsonkit.TypeRank(rhs) {
		switch rhs.(type) {
		case bson.MaxKey:
			return op == opLT || op == opLTE
		case bson.MinKey:
			return op == opGT || op == opGTE
		}
		return false
	}
	if op != opEQ {
		lnan, rnan := isNaN(v), isNaN(rhs)
		if lnan || rnan {
			return (op == opLTE || op == opGTE) && lnan && rnan
		}
	}
	c := bsonkit.CompareWith(v, rhs, str)
	switch op {
	case opLT:
		return c < 0
	case opLTE:
		return c <= 0
	case opGT:
		return c > 0
	case opGTE:
		return c >= 0
	}
	return c == 0
}

func isNaN(v any) bool {
	switch n := v.(type) {
	case float64:
		return math.IsNaN(n)
	case bson.Decimal128:
		return n.IsNaN()
	}
	return false
}

func isNull(v any) bool {
	switch v.(type) {
	case nil, bson.Null:
		return true
	}
	return false
}

// inPred is $in: equality with any listed value, or a match of any listed
// regex. A listed null also matches undefined and missing fields.
type inPred struct {
	sorted  []any // sorted by bsonkit.CompareWith for binary search
	regexes []*regexPred
	hasNull bool
	str     func(a, b string) int
}

func newInPred(values []any, regexes []*regexPred, str func(a, b string) int) *inPred {
	p := &inPred{regexes: regexes, str: str}
	for _, v := range values {
		if isNull(v) {
			p.hasNull = true
		}
	}
	p.sorted = values
	sort.SliceStable(p.sorted, func(i, j int) bool { return bsonkit.CompareWith(p.sorted[i], p.sorted[j], str) < 0 })
	return p
}

func (p *inPred) visit(v any, missing bool) bool {
	if missing {
		return p.hasNull
	}
	if _, ok := v.(bson.Undefined); ok && p.hasNull {
		return true
	}
	i := sort.Search(len(p.sorted), func(i int) bool { return bsonkit.CompareWith(p.sorted[i], v, p.str) >= 0 })
	if i < len(p.sorted) && bsonkit.CompareWith(p.sorted[i], v, p.str) == 0 {
		return true
	}
	for _, r := range p.regexes {
		if r.visit(v, false) {
			return true
		}
	}
	return false
}

// existsPred is $exists: true; $exists: false is its negation.
type existsPred struct{}

func (existsPred) visit(_ any, missing bool) bool { return !missing }

// typePred is $type over a set of BSON type codes.
type typePred struct {
	codes  []int32
	number bool
}

func (p *typePred) visit(v any, missing bool) bool {
	if missing {
		return false
	}
	if p.number && bsonkit.IsNumber(v) {
		return true
	}
	c := bsonkit.TypeCode(v)
	for _, want := range p.codes {
		if c == want {
			return true
		}
	}
	return false
}

// regexPred is $regex and a regex used as a value: strings and symbols match
// the pattern, stored regexes match when pattern and options are identical.
type regexPred struct {
	re *regexp.Regexp
	// beforeFinalNewline, when the pattern has an end anchor, is the
	// pattern for the subject without its final newline (see matchString).
	beforeFinalNewline *regexp.Regexp
	pattern            string
	options            string
}

// matchString reports whether s matches as PCRE matches it. PCRE's $ (and
// \Z) also matches before a newline that ends the subject (MongoDB compiles
// without PCRE2_DOLLAR_ENDONLY, src/mongo/util/pcre_util.cpp), RE2's only
// at the very end. A match that uses that position is a match of the
// subject without its final newline, where \z never holds; any other
// match there is also a match of the whole subject.
func (p *regexPred) matchString(s string) bool {
	if p.re.MatchString(s) {
		return true
	}
	return p.beforeFinalNewline != nil && strings.HasSuffix(s, "\n") &&
		p.beforeFinalNewline.MatchString(s[:len(s)-1])
}

func (p *regexPred) visit(v any, _ bool) bool {
	switch s := v.(type) {
	case string:
		return p.matchString(s)
	case bson.Symbol:
		return p.matchString(string(s))
	case bson.Regex:
		return s.Pattern == p.pattern && s.Options == p.options
	}
	return false
}

// modPred is $mod: the dividend is truncated to an integer first.
type modPred struct{ divisor, remainder int64 }

func (p *modPred) visit(v any, missing bool) bool {
	if missing {
		return false
	}
	var dividend int64
	switch n := v.(type) {
	case int32:
		dividend = int64(n)
	case int64:
		dividend = n
	case float64, bson.Decimal128:
		f, ok := bsonkit.ToFloat(n)
		if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
			return false
		}
		f = math.Trunc(f)
		if f < -9.223372036854776e18 || f >= 9.223372036854776e18 {
			return false
		}
		dividend = int64(f)
	default:
		return false
	}
	if p.divisor == -1 {
		return p.remainder == 0 // avoids MinInt64 % -1 overflow; x % -1 is always 0
	}
	return dividend%p.divisor == p.remainder
}

// sizePred is $size; it sees leaf arrays whole.
type sizePred struct{ n int }

func (p *sizePred) visit(v any, _ bool) bool {
	a, ok := v.(bson.A)
	return ok && len(a) == p.n
}

// elemMatchDocPred is $elemMatch with a full filter over document elements.
type elemMatchDocPred struct{ filter *Filter }

func (p *elemMatchDocPred) visit(v any, _ bool) bool { return p.index(v) >= 0 }

// index returns the offset of the first element of v that matches, or -1.
func (p *elemMatchDocPred) index(v any) int {
	a, ok := v.(bson.A)
	if !ok {
		return -1
	}
	for i, el := range a {
		switch x := el.(type) {
		case bson.D:
			if p.filter.Match(x) {
				return i
			}
		case bson.A:
			// MongoDB treats a nested array as an object keyed "0", "1", ...
			if p.filter.Match(arrayAsDoc(x)) {
				return i
			}
		}
	}
	return -1
}

func arrayAsDoc(a bson.A) bson.D {
	d := make(bson.D, len(a))
	for i, v := range a {
		d[i] = bson.E{Key: strconv.Itoa(i), Value: v}
	}
	return d
}

// elemMatchValuePred is $elemMatch with operators applied to each element.
type elemMatchValuePred struct{ expr fieldExpr }

func (p *elemMatchValuePred) visit(v any, _ bool) bool { return p.index(v) >= 0 }

// index returns the offset of the first element of v that matches, or -1.
func (p *elemMatchValuePred) index(v any) int {
	a, ok := v.(bson.A)
	if !ok {
		return -1
	}
	for i, el := range a {
		if p.expr.matchElem(el) {
			return i
		}
	}
	return -1
}

// indexer is a predicate over a whole array that knows which element
// matched ($elemMatch): MongoDB's elemMatchKey when no outer array gives
// one.
type indexer interface{ index(v any) int }

var (
	_ indexer = (*elemMatchDocPred)(nil)
	_ indexer = (*elemMatchValuePred)(nil)
)
