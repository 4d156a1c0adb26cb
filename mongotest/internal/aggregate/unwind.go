package aggregate

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/expr"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// Server codes for $unwind errors.
const (
	codeUnwindBadSpec      int32 = 15981
	codeUnwindPreserveBool int32 = 28809
	codeUnwindIndexString  int32 = 28810
	codeUnwindUnknownOpt   int32 = 28811
	codeUnwindNoPath       int32 = 28812
	codeUnwindPathDollar   int32 = 28818
	codeUnwindIndexDollar  int32 = 28822
)

type unwindSpec struct {
	path     []string
	index    string
	preserve bool
}

func parseUnwind(spec any) (stage, error) {
	var u unwindSpec
	var path string
	switch x := spec.(type) {
	case string:
		path = x
	case bson.D:
		hasPath := false
		for _, e := range x {
			switch e.Key {
			case "path":
				s, ok := e.Value.(string)
				if !ok {
					return nil, merr.New(codeUnwindBadSpec, "expected a string as the path for $unwind stage, got %s", expr.TypeName(e.Value))
				}
				path, hasPath = s, true
			case "includeArrayIndex":
				s, ok := e.Value.(string)
				if !ok {
					return nil, merr.New(codeUnwindIndexString, "expected a non-empty string for the includeArrayIndex option to $unwind stage, got %s", expr.TypeName(e.Value))
				}
				if s == "" {
					return nil, merr.New(codeUnwindIndexString, "expected a non-empty string for the includeArrayIndex option to $unwind stage, got string")
				}
				if strings.HasPrefix(s, "$") {
					return nil, merr.New(codeUnwindIndexDollar, "includeArrayIndex option to $unwind stage should not be prefixed with a '$': %s", s)
				}
				u.index = s
			case "preserveNullAndEmptyArrays":
				b, ok := e.Value.(bool)
				if !ok {
					return nil, merr.New(codeUnwindPreserveBool, "expected a boolean for the preserveNullAndEmptyArrays option to $unwind stage, got %s", expr.TypeName(e.Value))
				}
				u.preserve = b
			default:
				return nil, merr.New(codeUnwindUnknownOpt, "unrecognized option to $unwind stage: %s", e.Key)
			}
		}
		if !hasPath {
			return nil, merr.New(codeUnwindNoPath, "no path specified to $unwind stage")
		}
	default:
		return nil, merr.New(codeUnwindBadSpec, "expected either a string or an object as specification for $unwind stage, got %s", expr.TypeName(spec))
	}
	if !strings.HasPrefix(path, "$") {
		return nil, merr.New(codeUnwindPathDollar, "path option to $unwind stage should be prefixed with a '$': %s", path)
	}
	parts, err := expr.FieldPath(path[1:])
	if err != nil {
		return nil, err
	}
	u.path = parts
	return u.run, nil
}

func (u unwindSpec) run(docs []bson.D) ([]bson.D, error) {
	var out []bson.D
	for _, d := range docs {
		v := nestedField(d, u.path)
		arr, isArray := v.(bson.A)
		switch {
		case isArray && len(arr) > 0:
			for i, e := range arr {
				r := setNested(d, u.path, e)
				if u.index != "" {
					r = setNested(r, strings.Split(u.index, "."), int64(i))
				}
				out = append(out, r)
			}
		case !isArray && !expr.Nullish(v):
			r := d
			if u.index != "" {
				r = setNested(r, strings.Split(u.index, "."), nil)
			}
			out = append(out, r)
		case u.preserve:
			r := d
			if isArray {
				r = deleteNested(r, u.path)
			}
			if u.index != "" {
				r = setNested(r, strings.Split(u.index, "."), nil)
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// nestedField follows parts through documents only, as $unwind does.
func nestedField(d bson.D, parts []string) any {
	var v any = d
	for _, p := range parts {
		doc, ok := v.(bson.D)
		if !ok {
			return expr.Missing
		}
		if v, ok = bsonkit.Get(doc, p); !ok {
			return expr.Missing
		}
	}
	return v
}

// setNested returns a copy of d with v at parts, copying only the
// documents along the path.
func setNested(d bson.D, parts []string, v any) bson.D {
	if len(parts) == 1 {
		return setField(append(bson.D(nil), d...), parts[0], v)
	}
	sub, _ := bsonkit.Get(d, parts[0])
	subDoc, _ := sub.(bson.D)
	return setField(append(bson.D(nil), d...), parts[0], setNested(subDoc, parts[1:], v))
}

func deleteNested(d bson.D, parts []string) bson.D {
	if len(parts) == 1 {
		return bsonkit.Delete(d, parts[0])
	}
	sub, ok := bsonkit.Get(d, parts[0])
	subDoc, isDoc := sub.(bson.D)
	if !ok || !isDoc {
		return d
	}
	return setField(append(bson.D(nil), d...), parts[0], deleteNested(subDoc, parts[1:]))
}
