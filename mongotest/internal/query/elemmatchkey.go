package query

import (
	"cmp"
	"slices"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/merr"
)

// ElemMatchKey returns what the positional $ update operator stands for
// in doc, which the filter matches: the offset of the array element the
// filter's condition matched, in the first array its path went through
// (MatchDetails::elemMatchKey). It is "" when no condition matched through
// an array, so "$" has nothing to stand for.
//
// As in MongoDB, the conditions are those of the canonical query
// (canonical_query.cpp normalizeFilter: MatchExpression::optimize, then
// sortTree): a $in of one value is that equality or regex, a $or of
// equalities on one path is a $in; the conditions of its $and are
// evaluated in canonical order (by kind of operator, then path) and the
// last one that matched through an array wins; $or with more than one
// clause, $nor, $not and the negations ($ne, $nin) record nothing. Where
// mongotest cannot tell which element MongoDB would bind (two $elemMatch
// on one path, ordered by their own conditions; a $or on one path that
// MongoDB may partly rewrite), it refuses with NotImplemented rather than
// update a possibly wrong element.
func (f *Filter) ElemMatchKey(doc bson.D) (string, error) {
	if f == nil || f.root == nil {
		return "", nil
	}
	key, ok, err := nodeKey(f.root, doc)
	if err != nil || !ok || key < 0 {
		return "", err
	}
	return strconv.Itoa(key), nil
}

// condition is one conjunct of a canonical $and.
type condition struct {
	rank int
	path string
	key  func(doc bson.D) (int, bool)
	// refused, when set, is why mongotest cannot tell the element this
	// condition makes MongoDB bind.
	refused string
}

// nodeKey matches n against doc and returns the elemMatchKey it records
// (-1: none).
func nodeKey(n node, doc bson.D) (int, bool, error) {
	conds := appendConditions(nil, n)
	if len(conds) > 1 {
		slices.SortStableFunc(conds, func(a, b condition) int {
			return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.path, b.path))
		})
	}
	for i, c := range conds {
		if c.refused != "" {
			return -1, false, positionalErr(c.refused)
		}
		// matchExpressionComparator breaks a tie of kind and path by the
		// conditions inside, which mongotest does not order as MongoDB.
		if i > 0 && (c.rank == rankElemMatchObject || c.rank == rankElemMatchValue) && conds[i-1].rank == c.rank && conds[i-1].path == c.path {
			return -1, false, positionalErr("two $elemMatch on '" + c.path + "' are ordered by their own conditions")
		}
	}
	key := -1
	for _, c := range conds {
		k, ok := c.key(doc)
		if !ok {
			return -1, false, nil
		}
		if k >= 0 {
			key = k
		}
	}
	return key, true, nil
}

func positionalErr(why string) error {
	return merr.New(merr.NotImplemented, "mongotest cannot tell which array element MongoDB binds the positional operator $ to for this query: %s", why)
}

// appendConditions flattens n into the conjuncts of MongoDB's canonical
// $and: nested $and, one-clause $or and the operators of one field.
func appendConditions(conds []condition, n node) []condition {
	switch x := n.(type) {
	case andNode:
		for _, c := range x {
			conds = appendConditions(conds, c)
		}
		return conds
	case orNode:
		if len(x) == 1 {
			return appendConditions(conds, x[0])
		}
		return append(conds, orCondition(x))
	case *fieldNode:
		return appendFieldConditions(conds, x.expr, &x.path)
	}
	return append(conds, condition{rank: nodeRank(n), key: matchOnly(n)})
}

// orCondition is the condition of a $or of several clauses: one that
// records nothing (OrMatchExpression::matches passes no MatchDetails),
// unless MongoDB's optimizer rewrites it whole to a $in (since 5.0, a $or
// of equalities on one path: jstests/core/query/or/or_to_in.js), which
// does. A clause of another kind stays a clause of the $or, which then
// still records nothing. mongotest rewrites the plain case, equalities to
// scalars, and refuses the others where every clause is an equality or a
// $in on one path (nulls, arrays, documents, regexes, $in lists), which
// MongoDB may or may not fold.
func orCondition(x orNode) condition {
	plain := condition{rank: rankOr, key: matchOnly(x)}
	var p *path
	leaves := make([]*leafExpr, 0, len(x))
	scalar := true
	for _, c := range x {
		fn, ok := c.(*fieldNode)
		if !ok || p != nil && fn.path.raw != p.raw {
			return plain
		}
		p = &fn.path
		leaf, ok := fn.expr.(*leafExpr)
		if !ok {
			return plain
		}
		v, isEq := equalityValue(fn.expr)
		_, isIn := leaf.pred.(*inPred)
		if !isEq && !isIn {
			return plain
		}
		scalar = scalar && isEq && scalarValue(v)
		leaves = append(leaves, leaf)
	}
	if !scalar {
		return condition{rank: rankOr, refused: "a $or of equalities or $in on '" + p.raw + "' that MongoDB may rewrite to a $in"}
	}
	return condition{rank: rankIn, path: p.raw, key: func(doc bson.D) (int, bool) {
		// A $in's key is the first element that matches any value: the
		// least key of the clauses that match.
		key, matched := -1, false
		for _, leaf := range leaves {
			pos := &position{cur: -1, key: -1}
			if !p.walkDoc(doc, 0, leaf.mode, leaf.pred, pos) {
				continue
			}
			if !matched || pos.key >= 0 && (key < 0 || pos.key < key) {
				key = pos.key
			}
			matched = true
		}
		return key, matched
	}}
}

// equalityValue returns the value e is an equality to: {$eq: v}, or a $in
// of that one value (InMatchExpression's optimizer makes it an equality).
func equalityValue(e fieldExpr) (any, bool) {
	leaf, ok := e.(*leafExpr)
	if !ok {
		return nil, false
	}
	switch p := leaf.pred.(type) {
	case *cmpPred:
		return p.rhs, p.op == opEQ
	case *inPred:
		if len(p.sorted) == 1 && len(p.regexes) == 0 {
			return p.sorted[0], true
		}
	}
	return nil, false
}

// scalarValue reports whether v is neither null, nor an array, a
// document or a regex: an equality mongotest is sure MongoDB folds into a
// $in as it is.
func scalarValue(v any) bool {
	switch v.(type) {
	case nil, bson.Null, bson.Undefined, bson.A, bson.D, bson.M, bson.Regex, bson.MinKey, bson.MaxKey:
		return false
	}
	return true
}

func appendFieldConditions(conds []condition, e fieldExpr, p *path) []condition {
	if all, ok := e.(allExpr); ok {
		for _, x := range all {
			conds = appendFieldConditions(conds, x, p)
		}
		return conds
	}
	return append(conds, condition{rank: exprRank(e), path: p.raw, key: func(doc bson.D) (int, bool) {
		leaf, ok := e.(*leafExpr)
		if !ok {
			return -1, e.matchPath(doc, p)
		}
		pos := &position{cur: -1, key: -1}
		if !p.walkDoc(doc, 0, leaf.mode, leaf.pred, pos) {
			return -1, false
		}
		return pos.key, true
	}})
}

func matchOnly(n node) func(bson.D) (int, bool) {
	return func(doc bson.D) (int, bool) {
		ok, err := n.match(doc)
		return -1, ok && err == nil
	}
}

// MongoDB's MatchExpression::MatchType order, which canonical $and
// children are sorted by.
const (
	rankOr = 1 + iota
	rankElemMatchObject
	rankElemMatchValue
	rankSize
	rankEQ
	rankLTE
	rankLT
	rankGT
	rankGTE
	rankRegex
	rankMod
	rankExists
	rankIn
	rankNot     = 19
	rankNor     = 20
	rankType    = 21
	rankExpr    = 24
	rankBoolean = 25
	rankSchema  = 40
)

func nodeRank(n node) int {
	switch n.(type) {
	case norNode:
		return rankNor
	case exprNode:
		return rankExpr
	case constNode:
		return rankBoolean
	case schemaNode:
		return rankSchema
	}
	return rankOr
}

func exprRank(e fieldExpr) int {
	switch x := e.(type) {
	case *notExpr:
		return rankNot
	case constExpr:
		return rankBoolean
	case *leafExpr:
		switch p := x.pred.(type) {
		case *cmpPred:
			return [...]int{opEQ: rankEQ, opLT: rankLT, opLTE: rankLTE, opGT: rankGT, opGTE: rankGTE}[p.op]
		case *elemMatchDocPred:
			return rankElemMatchObject
		case *elemMatchValuePred:
			return rankElemMatchValue
		case *sizePred:
			return rankSize
		case *regexPred:
			return rankRegex
		case *modPred:
			return rankMod
		case existsPred:
			return rankExists
		case *inPred:
			// InMatchExpression's optimizer makes a $in of one value
			// that equality, or that regex.
			switch {
			case len(p.sorted) == 1 && len(p.regexes) == 0:
				return rankEQ
			case len(p.sorted) == 0 && len(p.regexes) == 1:
				return rankRegex
			}
			return rankIn
		case *typePred:
			return rankType
		}
	}
	return rankBoolean
}
