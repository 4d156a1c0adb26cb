package update

import (
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// pushMod is $push with its $each, $position, $sort and $slice clauses.
type pushMod struct {
	each     bson.A
	position *int64
	slice    *int64
	sort     *pushSort
}

type pushSort struct {
	dir     int    // whole-element direction, when by is empty
	pattern bson.D // {path: 1|-1, ...}
}

func parsePush(u *Update, _ string, parts []string, a bson.E) error {
	m := pushMod{each: bson.A{a.Value}}
	d, ok := a.Value.(bson.D)
	if !ok || !slices.ContainsFunc(d, func(e bson.E) bool { return e.Key == "$each" }) {
		return u.insert(parts, m)
	}
	for _, e := range d {
		switch e.Key {
		case "$each":
			each, ok := e.Value.(bson.A)
			if !ok {
				return merr.New(merr.BadValue, "The argument to $each in $push must be an array but it was of type: %s", typeName(e.Value))
			}
			m.each = each
		case "$slice":
			n, ok := integral(e.Value)
			if !ok {
				return merr.New(merr.BadValue, "The value for $slice must be an integer value but was given type: %s", typeName(e.Value))
			}
			m.slice = &n
		case "$position":
			n, ok := integral(e.Value)
			if !ok {
				return merr.New(merr.BadValue, "The value for $position must be an integer value, not of type: %s", typeName(e.Value))
			}
			m.position = &n
		case "$sort":
			s, err := parsePushSort(e.Value)
			if err != nil {
				return err
			}
			m.sort = s
		default:
			return merr.New(merr.BadValue, "Unrecognized clause in $push: %s", e.Key)
		}
	}
	return u.insert(parts, m)
}

func integral(v any) (int64, bool) {
	if !bsonkit.IsNumber(v) {
		return 0, false
	}
	return bsonkit.ToInt64(v)
}

func parsePushSort(v any) (*pushSort, error) {
	bad := merr.New(merr.BadValue,
		"The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort embedded fields")
	if d, ok := v.(bson.D); ok {
		if len(d) == 0 {
			return nil, merr.New(merr.BadValue, "The $sort pattern is empty when it should be a set of fields.")
		}
		for _, e := range d {
			if dir, ok := integral(e.Value); !ok || (dir != 1 && dir != -1) {
				return nil, bad
			}
			if e.Key == "" || strings.HasPrefix(e.Key, ".") || strings.HasSuffix(e.Key, ".") || strings.Contains(e.Key, "..") {
				return nil, merr.New(merr.BadValue, "The $sort field is a dotted field but has an empty part: %s", e.Key)
			}
		}
		return &pushSort{pattern: d}, nil
	}
	dir, ok := integral(v)
	if !ok || (dir != 1 && dir != -1) {
		return nil, bad
	}
	return &pushSort{dir: int(dir)}, nil
}

func (s *pushSort) compare(a, b any) int {
	if s.pattern == nil {
		return s.dir * bsonkit.Compare(a, b)
	}
	for _, e := range s.pattern {
		dir, _ := bsonkit.ToInt64(e.Value)
		if c := bsonkit.Compare(sortKey(a, e.Key), sortKey(b, e.Key)); c != 0 {
			return int(dir) * c
		}
	}
	return 0
}

// sortKey is the value at a dotted path inside v, or null.
func sortKey(v any, path string) any {
	for p := range strings.SplitSeq(path, ".") {
		d, ok := v.(bson.D)
		if !ok {
			return nil
		}
		if v, ok = bsonkit.Get(d, p); !ok {
			return nil
		}
	}
	return v
}

func (m pushMod) apply(s *state, f field) (any, bool, error) {
	arr := bson.A{}
	if f.exists {
		a, ok := f.value.(bson.A)
		if !ok {
			return nil, false, merr.New(merr.BadValue,
				"The field '%s' must be an array but is of type %s in document {%s}",
				f.name, typeName(f.value), bsonkit.IDString(s.orig))
		}
		arr = a
	}
	items := bsonkit.Clone(m.each).(bson.A)
	pos := int64(len(arr))
	if m.position != nil {
		pos = *m.position
		if pos < 0 {
			pos = max(0, int64(len(arr))+pos)
		}
		pos = min(pos, int64(len(arr)))
	}
	arr = slices.Insert(arr, int(pos), items...)
	if m.sort != nil {
		slices.SortStableFunc(arr, m.sort.compare)
	}
	if m.slice != nil {
		n := *m.slice
		switch {
		case n >= 0 && n < int64(len(arr)):
			arr = arr[:n]
		case n < 0 && n > -int64(len(arr)): // n > -len: -n cannot overflow
			arr = arr[int64(len(arr))+n:]
		}
	}
	return arr, true, nil
}

type addToSetMod struct{ each bson.A }

func parseAddToSet(u *Update, _ string, parts []string, a bson.E) error {
	d, ok := a.Value.(bson.D)
	if !ok || len(d) == 0 || d[0].Key != "$each" {
		return u.insert(parts, addToSetMod{each: bson.A{a.Value}})
	}
	each, ok := d[0].Value.(bson.A)
	if !ok {
		return merr.New(merr.TypeMismatch, "The argument to $each in $addToSet must be an array but it was of type %s", typeName(d[0].Value))
	}
	if len(d) > 1 {
		return merr.New(merr.BadValue, "Found unexpected fields after $each in $addToSet: %s", bsonkit.FormatValue(d))
	}
	return u.insert(parts, addToSetMod{each: each})
}

func (m addToSetMod) apply(_ *state, f field) (any, bool, error) {
	arr := bson.A{}
	if f.exists {
		a, ok := f.value.(bson.A)
		if !ok {
			return nil, false, merr.New(merr.BadValue,
				"Cannot apply $addToSet to non-array field. Field named '%s' has non-array type %s", f.name, typeName(f.value))
		}
		arr = a
	}
	for _, v := range m.each {
		if !slices.ContainsFunc(arr, func(x any) bool { return bsonkit.Equal(x, v) }) {
			arr = append(arr, bsonkit.Clone(v))
		}
	}
	return arr, true, nil
}

// cullMod removes the array elements match selects: $pull and $pullAll.
type cullMod struct {
	match func(any) bool
}

func parsePull(u *Update, _ string, parts []string, a bson.E) error {
	match, err := pullMatcher(a.Value)
	if err != nil {
		return err
	}
	return u.insert(parts, cullMod{match: match})
}

func parsePullAll(u *Update, _ string, parts []string, a bson.E) error {
	vals, ok := a.Value.(bson.A)
	if !ok {
		return merr.New(merr.BadValue, "$pullAll requires an array argument but was given a %s", typeName(a.Value))
	}
	return u.insert(parts, cullMod{match: func(x any) bool {
		return slices.ContainsFunc(vals, func(v any) bool { return bsonkit.Equal(x, v) })
	}})
}

func (m cullMod) apply(_ *state, f field) (any, bool, error) {
	if !f.exists {
		return nil, false, nil
	}
	a, ok := f.value.(bson.A)
	if !ok {
		return nil, false, merr.New(merr.BadValue, "Cannot apply $pull to a non-array value")
	}
	return slices.DeleteFunc(a, m.match), true, nil
}

type popMod struct{ first bool }

func parsePop(u *Update, _ string, parts []string, a bson.E) error {
	if !bsonkit.IsNumber(a.Value) {
		return merr.New(merr.FailedToParse, "Expected a number in: %s", bsonkit.FormatElem(a.Key, a.Value))
	}
	n, _ := bsonkit.ToFloat(a.Value)
	if n != 1 && n != -1 {
		return merr.New(merr.FailedToParse, "$pop expects 1 or -1, found: %s", bsonkit.FormatValue(a.Value))
	}
	return u.insert(parts, popMod{first: n == -1})
}

func (m popMod) apply(_ *state, f field) (any, bool, error) {
	if !f.exists {
		return nil, false, nil
	}
	a, ok := f.value.(bson.A)
	if !ok {
		return nil, false, merr.New(merr.TypeMismatch,
			"Path '%s' contains an element of non-array type '%s'", f.path, typeName(f.value))
	}
	switch {
	case len(a) == 0:
	case m.first:
		a = a[1:]
	default:
		a = a[:len(a)-1]
	}
	return a, true, nil
}
