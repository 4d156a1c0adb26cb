package update

import (
	"errors"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// operators parse one {path: arg} entry of an operator into u's tree.
var operators map[string]func(u *Update, op string, parts []string, arg bson.E) error

func init() {
	operators = map[string]func(u *Update, op string, parts []string, arg bson.E) error{
		"$set":         parseSet,
		"$setOnInsert": parseSet,
		"$unset":       func(u *Update, _ string, p []string, _ bson.E) error { return u.insert(p, unsetMod{}) },
		"$inc":         parseArith,
		"$mul":         parseArith,
		"$min":         parseMinMax,
		"$max":         parseMinMax,
		"$currentDate": parseCurrentDate,
		"$rename":      parseRename,
		"$push":        parsePush,
		"$addToSet":    parseAddToSet,
		"$pull":        parsePull,
		"$pullAll":     parsePullAll,
		"$pop":         parsePop,
		"$bit":         parseBit,
	}
}

// insert adds m at parts and records the array filter identifiers used.
// A path holds one positional $ at most, never first
// (UpdateObjectNode::parseAndMerge).
func (u *Update) insert(parts []string, m modifier) error {
	path := strings.Join(parts, ".")
	positional := 0
	for _, p := range parts {
		if isArrayUpdate(p) && len(p) > 3 {
			u.identifiers[p[2:len(p)-1]] = path
		}
		if p == "$" {
			positional++
		}
	}
	switch {
	case positional > 1:
		return merr.New(merr.BadValue, "Too many positional (i.e. '$') elements found in path '%s'", path)
	case positional == 1 && parts[0] == "$":
		return merr.New(merr.BadValue, "Cannot have positional (i.e. '$') element in the first position in path '%s'", path)
	}
	u.positional = u.positional || positional > 0
	return u.root.insert(parts, m)
}

type setMod struct {
	val      any
	onInsert bool
}

func parseSet(u *Update, op string, parts []string, a bson.E) error {
	return u.insert(parts, setMod{val: a.Value, onInsert: op == "$setOnInsert"})
}

func (m setMod) apply(s *state, f field) (any, bool, error) {
	if m.onInsert && !s.opts.Insert {
		return f.value, f.exists, nil
	}
	return bsonkit.Clone(m.val), true, nil
}

type unsetMod struct{}

func (unsetMod) apply(*state, field) (any, bool, error) { return nil, false, nil }

type arithMod struct {
	op  string
	val any
}

func parseArith(u *Update, op string, parts []string, a bson.E) error {
	if !bsonkit.IsNumber(a.Value) {
		verb := "increment"
		if op == "$mul" {
			verb = "multiply"
		}
		return merr.New(merr.TypeMismatch, "Cannot %s with non-numeric argument: {%s}", verb, bsonkit.FormatElem(a.Key, a.Value))
	}
	return u.insert(parts, arithMod{op: op, val: a.Value})
}

func (m arithMod) apply(s *state, f field) (any, bool, error) {
	if !f.exists {
		if m.op == "$mul" {
			return zeroLike(m.val), true, nil
		}
		return m.val, true, nil
	}
	if !bsonkit.IsNumber(f.value) {
		return nil, false, merr.New(merr.TypeMismatch,
			"Cannot apply %s to a value of non-numeric type. {%s} has the field '%s' of non-numeric type %s",
			m.op, bsonkit.IDString(s.orig), f.name, typeName(f.value))
	}
	var r any
	var err error
	if m.op == "$mul" {
		r, err = bsonkit.Multiply(f.value, m.val)
	} else {
		r, err = bsonkit.Add(f.value, m.val)
	}
	if errors.Is(err, bsonkit.ErrOverflow) {
		return nil, false, merr.New(merr.BadValue,
			"Failed to apply %s operations to current value (%s) for document {%s}",
			m.op, numberString(f.value), bsonkit.IDString(s.orig))
	}
	return r, err == nil, err
}

// numberString renders a number as the server's SafeNum does: "(NumberLong)5".
func numberString(v any) string {
	switch v.(type) {
	case int32:
		return "(NumberInt)" + bsonkit.FormatValue(v)
	case int64:
		return "(NumberLong)" + bsonkit.FormatValue(v)
	case float64:
		return "(NumberDouble)" + bsonkit.FormatValue(v)
	}
	return "(NumberDecimal)" + bsonkit.FormatValue(v)
}

func zeroLike(v any) any {
	switch v.(type) {
	case int64:
		return int64(0)
	case float64:
		return 0.0
	case bson.Decimal128:
		d, _ := bson.ParseDecimal128("0")
		return d
	}
	return int32(0)
}

type minMaxMod struct {
	max bool
	val any
}

func parseMinMax(u *Update, op string, parts []string, a bson.E) error {
	return u.insert(parts, minMaxMod{max: op == "$max", val: a.Value})
}

func (m minMaxMod) apply(_ *state, f field) (any, bool, error) {
	if !f.exists {
		return bsonkit.Clone(m.val), true, nil
	}
	c := bsonkit.Compare(m.val, f.value)
	if (m.max && c > 0) || (!m.max && c < 0) {
		return bsonkit.Clone(m.val), true, nil
	}
	return f.value, true, nil
}

type currentDateMod struct{ timestamp bool }

func parseCurrentDate(u *Update, _ string, parts []string, a bson.E) error {
	const typeRequired = "The '$type' string field is required to be 'date' or 'timestamp': {$currentDate: {field : {$type: 'date'}}}"
	var m currentDateMod
	switch v := a.Value.(type) {
	case bool:
	case bson.D:
		found := false
		for _, e := range v {
			if e.Key != "$type" {
				return merr.New(merr.BadValue, "Unrecognized $currentDate option: %s", e.Key)
			}
			switch e.Value {
			case "date":
			case "timestamp":
				m.timestamp = true
			default:
				return merr.New(merr.BadValue, typeRequired)
			}
			found = true
		}
		if !found {
			return merr.New(merr.BadValue, typeRequired)
		}
	default:
		return merr.New(merr.BadValue,
			"%s is not valid type for $currentDate. Please use a boolean ('true') or a $type expression ({$type: 'timestamp/date'}).",
			typeName(a.Value))
	}
	return u.insert(parts, m)
}

func (m currentDateMod) apply(s *state, _ field) (any, bool, error) {
	if !m.timestamp {
		return s.opts.Now, true, nil
	}
	if s.opts.Timestamp != (bson.Timestamp{}) {
		return s.opts.Timestamp, true, nil
	}
	return bson.Timestamp{T: uint32(int64(s.opts.Now) / 1000), I: 1}, true, nil
}

// renameMod sits at the rename's destination and copies the source value
// from the original document; an unsetMod at the source removes it.
type renameMod struct {
	from  string
	parts []string
}

func parseRename(u *Update, _ string, from []string, a bson.E) error {
	to, ok := a.Value.(string)
	if !ok {
		return merr.New(merr.BadValue, "The 'to' field for $rename must be a string: %s", bsonkit.FormatElem(a.Key, a.Value))
	}
	toParts, err := splitPath(to)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(from, isPositional) {
		return merr.New(merr.BadValue, "The source field for $rename may not be dynamic: %s", a.Key)
	}
	if slices.ContainsFunc(toParts, isPositional) {
		return merr.New(merr.BadValue, "The destination field for $rename may not be dynamic: %s", to)
	}
	if a.Key == to {
		return merr.New(merr.BadValue, "The source and target field for $rename must differ: %s", bsonkit.FormatElem(a.Key, a.Value))
	}
	if strings.HasPrefix(to, a.Key+".") || strings.HasPrefix(a.Key, to+".") {
		return merr.New(merr.BadValue, "The source and target field for $rename must not be on the same path: %s", bsonkit.FormatElem(a.Key, a.Value))
	}
	if err := u.insert(from, unsetMod{}); err != nil {
		return err
	}
	return u.insert(toParts, renameMod{from: a.Key, parts: from})
}

func isPositional(p string) bool { return p == "$" || isArrayUpdate(p) }

func (m renameMod) apply(s *state, f field) (any, bool, error) {
	v, ok, err := lookupSource(s.orig, m.parts, m.from)
	if err != nil || !ok {
		return f.value, f.exists, err
	}
	if f.inArray != "" {
		return nil, false, merr.New(merr.BadValue,
			"The destination field cannot be an array element, '%s' in doc with %s has an array field called '%s'",
			f.path, bsonkit.IDString(s.orig), f.inArray)
	}
	return bsonkit.Clone(v), true, nil
}

type bitMod struct {
	ops bson.D
}

func parseBit(u *Update, _ string, parts []string, a bson.E) error {
	ops, ok := a.Value.(bson.D)
	if !ok {
		return merr.New(merr.BadValue,
			"The $bit modifier is not compatible with a %s. You must pass in an embedded document: {$bit: {field: {and/or/xor: #}}",
			typeName(a.Value))
	}
	for _, e := range ops {
		if e.Key != "and" && e.Key != "or" && e.Key != "xor" {
			return merr.New(merr.BadValue,
				"The $bit modifier only supports 'and', 'or', and 'xor', not '%s' which is an unknown operator: {%s}",
				e.Key, bsonkit.FormatElem(e.Key, e.Value))
		}
		switch e.Value.(type) {
		case int32, int64:
		default:
			return merr.New(merr.BadValue,
				"The $bit modifier field must be an Integer(32/64 bit); a '%s' is not supported here: {%s}",
				typeName(e.Value), bsonkit.FormatElem(e.Key, e.Value))
		}
	}
	return u.insert(parts, bitMod{ops: ops})
}

func (m bitMod) apply(s *state, f field) (any, bool, error) {
	cur := f.value
	if !f.exists {
		cur = int32(0)
	}
	switch cur.(type) {
	case int32, int64:
	default:
		return nil, false, merr.New(merr.BadValue,
			"Cannot apply $bit to a value of non-integral type.{%s} has the field %s of non-integer type %s",
			bsonkit.IDString(s.orig), f.name, typeName(f.value))
	}
	for _, e := range m.ops {
		x, _ := bsonkit.ToInt64(cur)
		y, _ := bsonkit.ToInt64(e.Value)
		var r int64
		switch e.Key {
		case "and":
			r = x & y
		case "or":
			r = x | y
		default:
			r = x ^ y
		}
		_, curIs32 := cur.(int32)
		_, argIs32 := e.Value.(int32)
		if curIs32 && argIs32 {
			cur = int32(r)
		} else {
			cur = r
		}
	}
	return cur, true, nil
}
