package query

import (
	"hash/maphash"
	"strconv"
	"strings"
	"sync/atomic"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// path is a dotted field path split once at compile time.
type path struct {
	raw   string
	parts []string
	// index holds each part's value as an array offset, or -1.
	index []int
}

func newPath(raw string) path {
	slot := &pathCache[maphash.String(pathSeed, raw)%uint64(len(pathCache))]
	if p := slot.Load(); p != nil && p.raw == raw {
		return *p
	}
	parts := strings.Split(raw, ".")
	index := make([]int, len(parts))
	for i, p := range parts {
		index[i] = arrayOffset(p)
	}
	p := &path{raw: raw, parts: parts, index: index}
	slot.Store(p)
	return *p
}

// pathCache keeps the paths split lately: filters name the same fields
// command after command. A path's slices are never modified, so the
// copies share them.
var (
	pathCache [256]atomic.Pointer[path]
	pathSeed  = maphash.MakeSeed()
)

// arrayOffset returns p as an array offset when it is all digits, as
// MongoDB's path iterator requires, or -1.
func arrayOffset(p string) int {
	if p == "" {
		return -1
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return -1
		}
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return -1
	}
	return n
}

// visitor receives the values a path yields. missing reports a branch where
// the path does not exist (MongoDB's EOO element). Returning true stops the
// walk: the visitor has found a match.
type visitor interface {
	visit(v any, missing bool) bool
}

// leafMode says what a path yields when it ends at an array.
type leafMode uint8

const (
	// leafTraverse yields each element and then the array itself, as
	// comparisons, $in, $type and $exists need.
	leafTraverse leafMode = iota
	// leafWhole yields the array itself, as $size and $elemMatch need.
	leafWhole
	// leafElements yields only the elements, as sort keys need.
	leafElements
)

// walk feeds vis every value p yields in doc, mirroring MongoDB's
// BSONElementIterator, and reports whether vis stopped the walk.
func (p *path) walk(doc bson.D, mode leafMode, vis visitor) bool {
	return p.walkDoc(doc, 0, mode, vis, nil)
}

// position follows a walk for [Filter.ElemMatchKey]: cur is the offset of
// the element of the outermost array the walk is implicitly traversing
// (MongoDB's ElementIterator::Context::arrayOffset; an explicit numeric
// component is not a traversal), -1 outside any; key is cur when the
// visitor stopped the walk, or, when cur was -1, the element an $elemMatch
// matched.
type position struct{ cur, key int }

// visit feeds v to vis and, when vis matches, records where.
func (pos *position) visit(vis visitor, v any, missing bool) bool {
	if !vis.visit(v, missing) {
		return false
	}
	if pos != nil {
		pos.key = pos.cur
		if ix, ok := vis.(indexer); ok && pos.cur < 0 {
			pos.key = ix.index(v)
		}
	}
	return true
}

// enter marks the walk as traversing element j, unless it traverses an
// outer array already, and reports whether it did.
func (pos *position) enter(j int) bool {
	if pos == nil || pos.cur >= 0 {
		return false
	}
	pos.cur = j
	return true
}

func (pos *position) leave(entered bool) {
	if entered {
		pos.cur = -1
	}
}

func (p *path) walkDoc(d bson.D, i int, mode leafMode, vis visitor, pos *position) bool {
	v, ok := field(d, p.parts[i])
	if !ok {
		return pos.visit(vis, nil, true)
	}
	if i == len(p.parts)-1 {
		return walkLeaf(v, mode, vis, pos)
	}
	switch x := v.(type) {
	case bson.D:
		return p.walkDoc(x, i+1, mode, vis, pos)
	case bson.A:
		if len(x) == 0 && mode == leafElements {
			return pos.visit(vis, bson.Undefined{}, false) // see walkLeaf
		}
		return p.walkArray(x, i+1, mode, vis, pos)
	}
	return pos.visit(vis, nil, true)
}

// walkArray applies parts[i:] to each element of a. Documents are searched
// for the remaining path; a numeric part also selects the element at that
// offset. Nested arrays are entered only through an offset, and an array
// that yields nothing yields no "missing" either.
func (p *path) walkArray(a bson.A, i int, mode leafMode, vis visitor, pos *position) bool {
	offset := p.index[i]
	last := i == len(p.parts)-1
	for j, el := range a {
		if d, ok := el.(bson.D); ok {
			entered := pos.enter(j)
			found := p.walkDoc(d, i, mode, vis, pos)
			pos.leave(entered)
			if found {
				return true
			}
			if j == offset {
				if last {
					if pos.visit(vis, el, false) {
						return true
					}
				} else if p.walkDoc(d, i+1, mode, vis, pos) {
					return true
				}
			}
			continue
		}
		if j != offset {
			continue
		}
		if last {
			if pos.visit(vis, el, false) {
				return true
			}
			continue
		}
		if sub, ok := el.(bson.A); ok && p.walkArray(sub, i+1, mode, vis, pos) {
			return true
		}
	}
	return false
}

func walkLeaf(v any, mode leafMode, vis visitor, pos *position) bool {
	if a, ok := v.(bson.A); ok && mode != leafWhole {
		for j, el := range a {
			entered := pos.enter(j)
			found := pos.visit(vis, el, false)
			pos.leave(entered)
			if found {
				return true
			}
		}
		if mode == leafElements {
			if len(a) == 0 {
				// An empty array's sort key is undefined, which sorts
				// before null (the btree key generator's "x : [] - need
				// to insert undefined", for a terminal or an inner array
				// alike; manual: bson-type-comparison-order, "Arrays").
				return pos.visit(vis, bson.Undefined{}, false)
			}
			return false
		}
	}
	return pos.visit(vis, v, false)
}

func field(d bson.D, key string) (any, bool) {
	for i := range d {
		if d[i].Key == key {
			return d[i].Value, true
		}
	}
	return nil, false
}

// Lookup returns the values path reaches in doc, with MongoDB's array
// traversal: a component applied to an array of documents reaches into each
// element ({a: [{b: 1}, {b: 2}]} yields 1 and 2 for "a.b"), and a numeric
// component also indexes the array ("a.0.b"). An array at the end of the path
// is returned whole, not expanded. Branches where the path is absent
// contribute nothing; found reports whether any value was reached.
func Lookup(doc bson.D, path string) (values []any, found bool) {
	p := newPath(path)
	c := collector{}
	p.walk(doc, leafWhole, &c)
	return c.values, len(c.values) > 0
}

type collector struct{ values []any }

func (c *collector) visit(v any, missing bool) bool {
	if !missing {
		c.values = append(c.values, v)
	}
	return false
}
