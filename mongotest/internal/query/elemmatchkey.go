package query

import (
	"cmp"
	"slices"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ElemMatchKey returns what the positional $ update operator stands for
// in doc, which the filter matches: the offset of the array element the
// filter's condition matched, in the first array its path went through
// (MatchDetails::elemMatchKey). It is "" when no condition matched through
// an array, so "$" has nothing to stand for.
//
// As in MongoDB, the conditions of the query's $and are evaluated in
// canonical order (by kind of operator, then path) and the last one that
// matched through an array wins; $or with more than one clause, $nor,
// $not and the negations ($ne, $nin) record nothing.
func (f *Filter) ElemMatchKey(doc bson.D) string {
	if f == nil || f.root == nil {
		return ""
	}
	key, ok := nodeKey(f.root, doc)
	if !ok || key < 0 {
		return ""
	}
	return strconv.Itoa(key)
}

// condition is one conjunct of a canonical $and.
type condition struct {
	rank int
	path string
	key  func(doc bson.D) (int, bool)
}

// nodeKey matches n against doc and returns the elemMatchKey it records
// (-1: none).
func nodeKey(n node, doc bson.D) (int, bool) {
	conds := appendConditions(nil, n)
	if len(conds) > 1 {
		slices.SortStableFunc(conds, func(a, b condition) int {
			return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.path, b.path))
		})
	}
	key := -1
	for _, c := range conds {
		k, ok := c.key(doc)
		if !ok {
			return -1, false
		}
		if k >= 0 {
			key = k
		}
	}
	return key, true
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
		return append(conds, condition{rank: rankOr, key: matchOnly(x)})
	case *fieldNode:
		return appendFieldConditions(conds, x.expr, &x.path)
	}
	return append(conds, condition{rank: nodeRank(n), key: matchOnly(n)})
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
			return rankIn
		case *typePred:
			return rankType
		}
	}
	return rankBoolean
}
