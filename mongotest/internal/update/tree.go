package update

import (
	"slices"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// emptyFieldName is MongoDB's EmptyFieldName code, which merr lacks.
const emptyFieldName int32 = 56

// node is one path component of a compiled operator update. A leaf holds
// the modifier for its full path; an interior node holds the components
// below it, applied in the server's order.
type node struct {
	mod      modifier
	children map[string]*node
	keys     []string
}

// field is the element a node applies to.
type field struct {
	name   string // last path component: a field name or an array index
	path   string // full dotted path from the document root
	value  any
	exists bool
	// inArray names the nearest array the path went through, if any.
	inArray string
}

// modifier is one update operator bound to one path.
type modifier interface {
	// apply returns the field's new value, or ok=false to remove it.
	apply(s *state, f field) (v any, ok bool, err error)
}

func splitPath(path string) ([]string, error) {
	if path == "" {
		return nil, merr.New(emptyFieldName, "An empty update path is not valid.")
	}
	parts := strings.Split(path, ".")
	if slices.Contains(parts, "") {
		return nil, merr.New(emptyFieldName,
			"The update path '%s' contains an empty field name, which is not allowed.", path)
	}
	return parts, nil
}

// insert adds m at parts, rejecting a path that equals or nests inside or
// around a path already in the tree.
func (n *node) insert(parts []string, m modifier) error {
	path := strings.Join(parts, ".")
	cur := n
	for i, p := range parts {
		if cur.mod != nil {
			return conflict(path, strings.Join(parts[:i], "."))
		}
		child := cur.children[p]
		if child == nil {
			if cur.children == nil {
				cur.children = map[string]*node{}
			}
			child = &node{}
			cur.children[p] = child
			cur.keys = append(cur.keys, p)
		}
		cur = child
	}
	if cur.mod != nil || len(cur.children) > 0 {
		return conflict(path, path)
	}
	cur.mod = m
	return nil
}

func conflict(path, at string) error {
	return merr.New(merr.ConflictingUpdateOperators,
		"Updating the path '%s' would create a conflict at '%s'", path, at)
}

// sortKeys orders every node's children as the server applies them.
func (n *node) sortKeys() {
	slices.SortFunc(n.keys, comparePathComponents)
	for _, c := range n.children {
		c.sortKeys()
	}
}

// comparePathComponents orders numeric components numerically and all
// others as strings.
func comparePathComponents(a, b string) int {
	if isDigits(a) && isDigits(b) && len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// arrayIndex parses a component that addresses an array element.
func arrayIndex(s string) (int, bool) {
	if !isDigits(s) || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	return i, err == nil
}

// isArrayUpdate reports whether a component is "$[]" or "$[identifier]".
func isArrayUpdate(s string) bool {
	return strings.HasPrefix(s, "$[") && strings.HasSuffix(s, "]")
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func (n *node) apply(s *state, f field) (any, bool, error) {
	if n.mod != nil {
		return n.mod.apply(s, f)
	}
	if _, ok := n.children["$"]; ok {
		bound, err := n.bindPositional(s.opts.MatchedField, f.path)
		if err != nil {
			return nil, false, err
		}
		return bound.apply(s, f)
	}
	hasArrayUpdate := false
	for _, k := range n.keys {
		hasArrayUpdate = hasArrayUpdate || isArrayUpdate(k)
	}
	if hasArrayUpdate {
		if !f.exists {
			return nil, false, merr.New(merr.BadValue,
				"The path '%s' must exist in the document in order to apply array updates.", f.path)
		}
		if _, ok := f.value.(bson.A); !ok {
			return nil, false, merr.New(merr.BadValue,
				"Cannot apply array updates to non-array element %s", bsonkit.FormatElem(f.name, f.value))
		}
	}
	switch v := f.value.(type) {
	case bson.D:
		if f.exists {
			d, err := n.applyDoc(s, f, v)
			return d, true, err
		}
	case bson.A:
		a, err := n.applyArray(s, f, v)
		return a, true, err
	}
	if !f.exists {
		// Create the document only if some child puts a value into it.
		d, err := n.applyDoc(s, f, bson.D{})
		if err != nil || len(d) == 0 {
			return nil, false, err
		}
		return d, true, nil
	}
	for _, k := range n.keys {
		if err := n.notViable(s, f, k); err != nil {
			return nil, false, err
		}
	}
	return f.value, true, nil
}

// bindPositional returns n with its positional child "$" standing for
// matched, the element the query matched, as UpdateObjectNode::apply
// binds it: "$" applies to the child named matched, merged with a child
// of that name if n has one (a conflict when both update the same path).
// An empty matched, where the query matched no array element or an upsert
// inserts, fails.
func (n *node) bindPositional(matched, path string) (*node, error) {
	if matched == "" {
		return nil, merr.New(merr.BadValue, "The positional operator did not find the match needed from the query.")
	}
	bound := &node{children: make(map[string]*node, len(n.children)), keys: make([]string, 0, len(n.keys))}
	for _, k := range n.keys {
		if k != "$" {
			bound.children[k] = n.children[k]
			bound.keys = append(bound.keys, k)
		}
	}
	if other, ok := bound.children[matched]; ok {
		merged, err := mergeNodes(other, n.children["$"], join(path, matched))
		if err != nil {
			return nil, err
		}
		bound.children[matched] = merged
		return bound, nil
	}
	bound.children[matched] = n.children["$"]
	bound.keys = append(bound.keys, matched)
	slices.SortFunc(bound.keys, comparePathComponents)
	return bound, nil
}

// mergeNodes is UpdateNode::createUpdateNodeByMerging: two interior nodes
// merge child by child; a modifier meeting anything at the same path is a
// conflict.
func mergeNodes(a, b *node, path string) (*node, error) {
	if a.mod != nil || b.mod != nil {
		return nil, merr.New(merr.ConflictingUpdateOperators, "Update created a conflict at '%s'", path)
	}
	m := &node{children: make(map[string]*node, len(a.children)+len(b.children))}
	for _, k := range a.keys {
		m.children[k] = a.children[k]
		m.keys = append(m.keys, k)
	}
	for _, k := range b.keys {
		if c, ok := m.children[k]; ok {
			merged, err := mergeNodes(c, b.children[k], join(path, k))
			if err != nil {
				return nil, err
			}
			m.children[k] = merged
			continue
		}
		m.children[k] = b.children[k]
		m.keys = append(m.keys, k)
	}
	slices.SortFunc(m.keys, comparePathComponents)
	return m, nil
}

// notViable fails if the child k would create a field inside f, which
// cannot hold one.
func (n *node) notViable(s *state, f field, k string) error {
	_, ok, err := n.children[k].apply(s, field{name: k, path: join(f.path, k), inArray: f.inArray})
	if err != nil {
		return err
	}
	if ok {
		return merr.New(merr.PathNotViable,
			"Cannot create field '%s' in element {%s}", k, bsonkit.FormatElem(f.name, f.value))
	}
	return nil
}

func (n *node) applyDoc(s *state, f field, d bson.D) (bson.D, error) {
	for _, k := range n.keys {
		cf := field{name: k, path: join(f.path, k), inArray: f.inArray}
		i := slices.IndexFunc(d, func(e bson.E) bool { return e.Key == k })
		if i >= 0 {
			cf.value, cf.exists = d[i].Value, true
		}
		v, ok, err := n.children[k].apply(s, cf)
		if err != nil {
			return nil, err
		}
		switch {
		case ok && i >= 0:
			d[i].Value = v
		case ok:
			d = append(d, bson.E{Key: k, Value: v})
		case i >= 0:
			d = slices.Delete(d, i, i+1)
		}
	}
	return d, nil
}

func (n *node) applyArray(s *state, f field, a bson.A) (bson.A, error) {
	for _, k := range n.keys {
		child := n.children[k]
		if isArrayUpdate(k) {
			match := s.arrayFilter(k)
			for i := range a {
				if match != nil && !match(a[i]) {
					continue
				}
				var err error
				if a[i], err = applyElem(s, f, child, i, a[i], true); err != nil {
					return nil, err
				}
			}
			continue
		}
		i, ok := arrayIndex(k)
		if !ok {
			if err := n.notViable(s, f, k); err != nil {
				return nil, err
			}
			continue
		}
		if i < len(a) {
			var err error
			if a[i], err = applyElem(s, f, child, i, a[i], true); err != nil {
				return nil, err
			}
			continue
		}
		cf := field{name: k, path: join(f.path, k), inArray: f.name}
		v, ok, err := child.apply(s, cf)
		if err != nil {
			return nil, err
		}
		if ok {
			if i-len(a) > maxBackfill {
				return nil, merr.New(merr.BadValue, "can't backfill array to larger than %d elements", maxBackfill)
			}
			for len(a) < i {
				a = append(a, nil)
			}
			a = append(a, v)
		}
	}
	return a, nil
}

// applyElem applies child to an existing array element. Removing an array
// element leaves null in its place, as $unset does.
func applyElem(s *state, f field, child *node, i int, v any, exists bool) (any, error) {
	name := strconv.Itoa(i)
	out, ok, err := child.apply(s, field{name: name, path: join(f.path, name), value: v, exists: exists, inArray: f.name})
	if err != nil || !ok {
		return nil, err
	}
	return out, nil
}

// lookupSource finds a $rename source in the original document. It walks
// documents only: a source under an array is an error when it exists.
func lookupSource(doc bson.D, parts []string, from string) (any, bool, error) {
	var cur any = doc
	for i, p := range parts {
		d, ok := cur.(bson.D)
		if !ok {
			return nil, false, nil
		}
		if cur, ok = bsonkit.Get(d, p); !ok {
			return nil, false, nil
		}
		if a, ok := cur.(bson.A); ok && i+1 < len(parts) {
			if j, ok := arrayIndex(parts[i+1]); ok && j < len(a) {
				return nil, false, merr.New(merr.BadValue,
					"The source field cannot be an array element, '%s' in doc with %s has an array field called '%s'",
					from, bsonkit.IDString(doc), p)
			}
			return nil, false, nil
		}
	}
	return cur, true, nil
}

// maxBackfill is how many nulls MongoDB pads an array with at most when an
// update sets an element past its end.
const maxBackfill = 1500000
