package query

import (
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// MongoDB's codes for a bad sort specification.
const (
	codeIllegalSortKey   int32 = 15974
	codeBadSortDirection int32 = 15975
	codeDollarFieldPath  int32 = 16410
)

// Sort is a compiled sort specification. A nil *Sort orders nothing.
type Sort struct {
	keys []sortKey
	str  func(a, b string) int
}

type sortKey struct {
	path path
	desc bool
	str  func(a, b string) int
}

// CompileSort parses a sort specification such as {a: 1, "b.c": -1}.
// Directions are 1 or -1 of any numeric type; {$meta: ...} is not supported.
func CompileSort(spec bson.D) (*Sort, error) { return CompileSortCollated(spec, nil) }

// CompileSortCollated is [CompileSort] with strings ordered by a collation
// (nil: binary).
func CompileSortCollated(spec bson.D, str func(a, b string) int) (*Sort, error) {
	s := &Sort{keys: make([]sortKey, 0, len(spec)), str: str}
	for _, e := range spec {
		if e.Key == "" {
			return nil, merr.New(merr.Location40352, "FieldPath cannot be constructed with empty string")
		}
		if strings.HasPrefix(e.Key, "$") {
			return nil, merr.New(codeDollarFieldPath, "FieldPath field names may not start with '$'.")
		}
		if d, ok := e.Value.(bson.D); ok && len(d) > 0 && d[0].Key == "$meta" {
			return nil, merr.New(merr.BadValue, "$meta sort is not supported by mongotest")
		}
		n, ok := numberValue(e.Value)
		if !ok {
			return nil, merr.New(codeIllegalSortKey, "Illegal key in $sort specification: %s: %s", e.Key, fmt.Sprint(e.Value))
		}
		if n != 1 && n != -1 {
			return nil, merr.New(codeBadSortDirection, "$sort key ordering must be 1 (for ascending) or -1 (for descending)")
		}
		s.keys = append(s.keys, sortKey{path: newPath(e.Key), desc: n < 0, str: str})
	}
	return s, nil
}

// Compare orders a and b: negative when a sorts first. A missing field
// sorts as null; an array sorts by its smallest element ascending and its
// largest descending. Equal documents compare 0, so callers keep their
// order with sort.SliceStable.
func (s *Sort) Compare(a, b bson.D) int {
	if s == nil {
		return 0
	}
	for i := range s.keys {
		k := &s.keys[i]
		c := compareSortKeys(k.value(a), k.value(b), s.str)
		if k.desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// value is the document's sort key for k: the minimum (ascending) or maximum
// (descending) of the values the path yields, arrays expanded one level.
func (k *sortKey) value(doc bson.D) any {
	if len(k.path.parts) == 1 {
		v, _ := field(doc, k.path.parts[0])
		if _, isArray := v.(bson.A); !isArray {
			return v // fast path: no array, no walk; missing is nil
		}
	}
	e := extremum{desc: k.desc, str: k.str}
	k.path.walk(doc, leafElements, &e)
	return e.best
}

type extremum struct {
	best any
	seen bool
	desc bool
	str  func(a, b string) int
}

func (e *extremum) visit(v any, missing bool) bool {
	if missing {
		v = nil
	}
	if !e.seen {
		e.best, e.seen = v, true
		return false
	}
	c := compareSortKeys(v, e.best, e.str)
	if (e.desc && c > 0) || (!e.desc && c < 0) {
		e.best = v
	}
	return false
}

// compareSortKeys orders sort keys as MongoDB's BSON order does, where
// undefined (the key of an empty array) sorts after MinKey and before null
// and missing (canonicalizeBSONType: MinKey -1, Undefined 0, null 5);
// bsonkit.Compare, made for query matching, ranks undefined with null.
func compareSortKeys(a, b any, str func(a, b string) int) int {
	_, ua := a.(bson.Undefined)
	_, ub := b.(bson.Undefined)
	switch {
	case ua && ub:
		return 0
	case ua:
		if _, min := b.(bson.MinKey); min {
			return 1
		}
		return -1
	case ub:
		if _, min := a.(bson.MinKey); min {
			return -1
		}
		return 1
	}
	return bsonkit.CompareWith(a, b, str)
}
