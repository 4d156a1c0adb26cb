package query

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/merr"
)

// MongoDB's codes for a bad projection.
const (
	codePathCollision        int32 = 31250
	codeInclusionInExclusion int32 = 31253
	codeExclusionInInclusion int32 = 31254
	codeEmptySubProjection   int32 = 51270
	codeNestedElemMatch      int32 = 31275
	codeSliceValue           int32 = 28667
	codeSliceLimit           int32 = 28724
)

// Projection is a compiled find projection. A nil *Projection returns
// documents unchanged.
type Projection struct {
	inclusion bool
	root      *projNode
	// elemMatch fields are top-level and land after the other fields.
	elemMatch []elemMatchField
}

type projNode struct {
	children map[string]*projNode
	// leaf marks a projected path: kept in an inclusion projection, dropped
	// in an exclusion one, unless slice is set, which keeps it sliced.
	leaf  bool
	slice *sliceSpec
}

type elemMatchField struct {
	key    string
	filter *Filter
}

type sliceSpec struct {
	skip, limit int
	hasSkip     bool
}

// CompileProjection parses a find projection: inclusions (1, true, any
// non-zero number), exclusions (0, false), dotted or nested paths, $slice
// and top-level $elemMatch. _id is included unless excluded explicitly.
// Computed fields, $meta and positional ("a.$") projections are not
// supported and fail with BadValue.
func CompileProjection(spec bson.D) (*Projection, error) {
	c := projCompiler{root: &projNode{}}
	if err := c.parse(spec, ""); err != nil {
		return nil, err
	}
	p := &Projection{root: c.root, elemMatch: c.elemMatch}
	switch {
	case c.mode == modeInclude:
		p.inclusion = true
	case c.mode == modeNone && len(c.elemMatch) > 0:
		p.inclusion = true
	case c.mode == modeNone && c.idMode == modeInclude && !c.hasSlice:
		p.inclusion = true
	}
	if p.inclusion {
		if _, explicit := p.root.children["_id"]; c.idMode != modeExclude && !explicit {
			if _, err := c.insert("_id"); err != nil {
				return nil, err
			}
		}
		if c.idMode == modeExclude {
			delete(p.root.children, "_id")
		}
	} else {
		if c.idMode == modeInclude {
			delete(p.root.children, "_id")
		}
		for _, em := range c.elemMatch {
			n, err := c.insert(em.key)
			if err != nil {
				return nil, err
			}
			n.leaf = true
		}
	}
	return p, nil
}

type projMode uint8

const (
	modeNone projMode = iota
	modeInclude
	modeExclude
)

type projCompiler struct {
	root      *projNode
	mode      projMode
	idMode    projMode
	hasSlice  bool
	elemMatch []elemMatchField
}

func (c *projCompiler) parse(spec bson.D, prefix string) error {
	for _, e := range spec {
		key := prefix + e.Key
		if strings.HasSuffix(key, ".$") || strings.Contains(key, ".$.") {
			return merr.New(merr.BadValue, "positional projection is not supported by mongotest: %s", key)
		}
		if strings.HasPrefix(e.Key, "$") {
			return merr.New(merr.BadValue, "FieldPath field names may not start with '$'.")
		}
		switch v := e.Value.(type) {
		case bson.D:
			if len(v) == 0 {
				return merr.New(codeEmptySubProjection,
					"An empty sub-projection is not a valid value. Found empty object at path")
			}
			if !strings.HasPrefix(v[0].Key, "$") {
				if err := c.parse(v, key+"."); err != nil {
					return err
				}
				continue
			}
			if err := c.parseOperator(key, v); err != nil {
				return err
			}
			continue
		case bool, int32, int64, float64, bson.Decimal128:
			if err := c.add(key, truthy(v)); err != nil {
				return err
			}
			continue
		}
		return merr.New(merr.BadValue,
			"projection value for %s is not supported by mongotest: use 0, 1, true, false, $slice or $elemMatch", key)
	}
	return nil
}

func (c *projCompiler) add(key string, include bool) error {
	want := modeExclude
	if include {
		want = modeInclude
	}
	if key == "_id" {
		c.idMode = want
		if include {
			return nil
		}
		_, err := c.insert(key)
		return err
	}
	switch {
	case c.mode == modeInclude && !include:
		return merr.New(codeExclusionInInclusion, "Cannot do exclusion on field %s in inclusion projection", key)
	case c.mode == modeExclude && include:
		return merr.New(codeInclusionInExclusion, "Cannot do inclusion on field %s in exclusion projection", key)
	}
	c.mode = want
	_, err := c.insert(key)
	return err
}

func (c *projCompiler) parseOperator(key string, v bson.D) error {
	switch v[0].Key {
	case "$slice":
		s, err := parseSlice(v[0].Value)
		if err != nil {
			return err
		}
		n, err := c.insert(key)
		if err != nil {
			return err
		}
		n.slice = s
		c.hasSlice = true
		return nil
	case "$elemMatch":
		if strings.Contains(key, ".") {
			return merr.New(codeNestedElemMatch, "Cannot use $elemMatch projection on a nested field.")
		}
		d, ok := v[0].Value.(bson.D)
		if !ok {
			return merr.New(merr.BadValue, "elemMatch: Invalid argument, object required.")
		}
		f, err := Compile(d)
		if err != nil {
			return err
		}
		f.eqs = nil
		c.elemMatch = append(c.elemMatch, elemMatchField{key: key, filter: f})
		return nil
	}
	return merr.New(merr.BadValue, "projection operator %s is not supported by mongotest", v[0].Key)
}

// insert adds a leaf for a dotted key, rejecting paths that overlap.
func (c *projCompiler) insert(key string) (*projNode, error) {
	parts := strings.Split(key, ".")
	cur := c.root
	for i, part := range parts {
		if cur.leaf {
			return nil, merr.New(codePathCollision, "Path collision at %s remaining portion %s",
				key, strings.Join(parts[i:], "."))
		}
		if cur.children == nil {
			cur.children = make(map[string]*projNode)
		}
		child := cur.children[part]
		if child == nil {
			child = &projNode{}
			cur.children[part] = child
		}
		if i == len(parts)-1 {
			if child.leaf || len(child.children) > 0 {
				return nil, merr.New(codePathCollision, "Path collision at %s", key)
			}
			child.leaf = true
			return child, nil
		}
		cur = child
	}
	return cur, nil
}

func parseSlice(v any) (*sliceSpec, error) {
	if arr, ok := v.(bson.A); ok {
		if len(arr) != 2 {
			return nil, merr.New(codeSliceValue, "$slice only supports numbers and [skip, limit] arrays")
		}
		skip, ok1 := sliceInt(arr[0])
		limit, ok2 := sliceInt(arr[1])
		if !ok1 || !ok2 {
			return nil, merr.New(codeSliceValue, "$slice only supports numbers and [skip, limit] arrays")
		}
		if limit <= 0 {
			return nil, merr.New(codeSliceLimit, "$slice limit must be positive")
		}
		return &sliceSpec{skip: skip, limit: limit, hasSkip: true}, nil
	}
	n, ok := sliceInt(v)
	if !ok {
		return nil, merr.New(codeSliceValue, "$slice only supports numbers and [skip, limit] arrays")
	}
	return &sliceSpec{limit: n}, nil
}

func sliceInt(v any) (int, bool) {
	f, ok := numberValue(v)
	if !ok || f != f {
		return 0, false
	}
	const limit = 1 << 31
	switch {
	case f > limit:
		f = limit
	case f < -limit:
		f = -limit
	}
	return int(f), true
}

func (s *sliceSpec) apply(v any) any {
	a, ok := v.(bson.A)
	if !ok {
		return v
	}
	n := len(a)
	var start, end int
	switch {
	case s.hasSkip:
		start = s.skip
		if start < 0 {
			start = max(n+start, 0)
		}
		start = min(start, n)
		end = min(start+s.limit, n)
	case s.limit >= 0:
		start, end = 0, min(s.limit, n)
	default:
		start, end = max(n+s.limit, 0), n
	}
	out := make(bson.A, end-start)
	copy(out, a[start:end])
	return out
}

// Apply returns the projected document. doc is never mutated; values the
// projection does not reshape are shared with doc, so callers clone before
// mutating the result.
func (p *Projection) Apply(doc bson.D) bson.D {
	if p == nil {
		return doc
	}
	var out bson.D
	if p.inclusion {
		out = include(doc, p.root)
	} else {
		out = exclude(doc, p.root)
	}
	for _, em := range p.elemMatch {
		v, ok := field(doc, em.key)
		if !ok {
			continue
		}
		a, ok := v.(bson.A)
		if !ok {
			continue
		}
		match := elemMatchDocPred{filter: em.filter}
		for _, el := range a {
			if match.visit(bson.A{el}, false) {
				out = append(out, bson.E{Key: em.key, Value: bson.A{el}})
				break
			}
		}
	}
	return out
}

func include(d bson.D, n *projNode) bson.D {
	out := make(bson.D, 0, len(n.children))
	for _, e := range d {
		c := n.children[e.Key]
		if c == nil {
			continue
		}
		if c.leaf {
			v := e.Value
			if c.slice != nil {
				v = c.slice.apply(v)
			}
			out = append(out, bson.E{Key: e.Key, Value: v})
			continue
		}
		switch v := e.Value.(type) {
		case bson.D:
			out = append(out, bson.E{Key: e.Key, Value: include(v, c)})
		case bson.A:
			out = append(out, bson.E{Key: e.Key, Value: includeArray(v, c)})
		}
	}
	return out
}

// includeArray projects each document of an array (recursing into nested
// arrays) and drops scalars, as MongoDB's inclusion projection does.
func includeArray(a bson.A, n *projNode) bson.A {
	out := make(bson.A, 0, len(a))
	for _, el := range a {
		switch v := el.(type) {
		case bson.D:
			out = append(out, include(v, n))
		case bson.A:
			out = append(out, includeArray(v, n))
		}
	}
	return out
}

func exclude(d bson.D, n *projNode) bson.D {
	out := make(bson.D, 0, len(d))
	for _, e := range d {
		c := n.children[e.Key]
		if c == nil {
			out = append(out, e)
			continue
		}
		if c.leaf {
			if c.slice != nil {
				out = append(out, bson.E{Key: e.Key, Value: c.slice.apply(e.Value)})
			}
			continue
		}
		switch v := e.Value.(type) {
		case bson.D:
			out = append(out, bson.E{Key: e.Key, Value: exclude(v, c)})
		case bson.A:
			out = append(out, bson.E{Key: e.Key, Value: excludeArray(v, c)})
		default:
			out = append(out, e)
		}
	}
	return out
}

func excludeArray(a bson.A, n *projNode) bson.A {
	out := make(bson.A, 0, len(a))
	for _, el := range a {
		switch v := el.(type) {
		case bson.D:
			out = append(out, exclude(v, n))
		case bson.A:
			out = append(out, excludeArray(v, n))
		default:
			out = append(out, el)
		}
	}
	return out
}
