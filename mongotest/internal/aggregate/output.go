package aggregate

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/expr"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// Output is the target of a pipeline's final $out or $merge stage, which
// the command layer carries out once the pipeline has produced its
// documents.
type Output struct {
	// Merge is set for $merge; $out replaces the whole collection.
	Merge bool
	// DB is empty for the pipeline's own database.
	DB, Coll string
	// On are the fields identifying a document for $merge, "_id" by default.
	On []string
	// WhenMatched is "merge", "replace", "keepExisting", "fail" or
	// "pipeline" (then Pipeline is the update pipeline and Let its
	// variables); WhenNotMatched is "insert", "discard" or "fail".
	WhenMatched, WhenNotMatched string
	Pipeline                    bson.A
	Let                         bson.D
}

const (
	codeOutBadSpec          int32 = 16990
	codeMergeBadWhenMatched int32 = 51191
	codeMergeBadOn          int32 = 51186
)

func parseOutput(name string, spec any) (*Output, error) {
	if name == "$out" {
		return parseOut(spec)
	}
	return parseMerge(spec)
}

func parseOut(spec any) (*Output, error) {
	switch x := spec.(type) {
	case string:
		return &Output{Coll: x}, nil
	case bson.D:
		out := &Output{}
		for _, e := range x {
			s, ok := e.Value.(string)
			switch {
			case e.Key == "timeseries":
				return nil, merr.New(merr.IllegalOperation, "$out with timeseries is not supported by mongotest")
			case e.Key != "db" && e.Key != "coll":
				return nil, merr.New(codeMergeUnknownField, "BSON field '$out.%s' is an unknown field.", e.Key)
			case !ok:
				return nil, merr.New(merr.TypeMismatch, "BSON field '$out.%s' is the wrong type '%s', expected type 'string'", e.Key, expr.TypeName(e.Value))
			case e.Key == "db":
				out.DB = s
			default:
				out.Coll = s
			}
		}
		if out.Coll == "" {
			return nil, merr.New(codeMissingFieldStage, "BSON field '$out.coll' is missing but a required field")
		}
		return out, nil
	}
	return nil, merr.New(codeOutBadSpec, "$out only supports a string or object argument, not %s", expr.TypeName(spec))
}

func parseMerge(spec any) (*Output, error) {
	out := &Output{Merge: true, On: []string{"_id"}, WhenMatched: "merge", WhenNotMatched: "insert"}
	if s, ok := spec.(string); ok {
		out.Coll = s
		return out, nil
	}
	d, ok := spec.(bson.D)
	if !ok {
		return nil, merr.New(merr.TypeMismatch, "$merge requires a string or object argument, but found %s", expr.TypeName(spec))
	}
	for _, e := range d {
		switch e.Key {
		case "into":
			switch x := e.Value.(type) {
			case string:
				out.Coll = x
			case bson.D:
				for _, f := range x {
					s, ok := f.Value.(string)
					if !ok || (f.Key != "db" && f.Key != "coll") {
						return nil, merr.New(codeMergeBadInto, "$merge 'into' field must be either a string or an object with 'db' and 'coll' string fields")
					}
					if f.Key == "db" {
						out.DB = s
					} else {
						out.Coll = s
					}
				}
			default:
				return nil, merr.New(codeMergeBadInto, "$merge 'into' field must be either a string or an object, but found %s", expr.TypeName(e.Value))
			}
		case "on":
			out.On = nil
			switch x := e.Value.(type) {
			case string:
				out.On = []string{x}
			case bson.A:
				for _, f := range x {
					s, ok := f.(string)
					if !ok {
						return nil, merr.New(codeMergeBadOn, "$merge 'on' array elements must be strings, but found %s", expr.TypeName(f))
					}
					out.On = append(out.On, s)
				}
				if len(out.On) == 0 {
					return nil, merr.New(codeMergeBadOn, "If explicitly specifying $merge 'on', must include at least one field")
				}
			default:
				return nil, merr.New(codeMergeBadOn, "$merge 'on' field must be either a string or an array of strings, but found %s", expr.TypeName(e.Value))
			}
		case "whenMatched":
			switch x := e.Value.(type) {
			case string:
				switch x {
				case "merge", "replace", "keepExisting", "fail":
					out.WhenMatched = x
				default:
					return nil, merr.New(merr.BadValue, "Enumeration value '%s' for field '$merge.whenMatched' is not a valid value.", x)
				}
			case bson.A:
				out.WhenMatched, out.Pipeline = "pipeline", x
			default:
				return nil, merr.New(codeMergeBadWhenMatched, "$merge 'whenMatched' field must be either a string or an array, but found %s", expr.TypeName(e.Value))
			}
		case "whenNotMatched":
			s, _ := e.Value.(string)
			switch s {
			case "insert", "discard", "fail":
				out.WhenNotMatched = s
			default:
				return nil, merr.New(merr.BadValue, "Enumeration value '%v' for field '$merge.whenNotMatched' is not a valid value.", e.Value)
			}
		case "let":
			l, ok := e.Value.(bson.D)
			if !ok {
				return nil, merr.New(merr.TypeMismatch, "BSON field '$merge.let' is the wrong type '%s', expected type 'object'", expr.TypeName(e.Value))
			}
			out.Let = l
		default:
			return nil, merr.New(codeMergeUnknownField, "BSON field '$merge.%s' is an unknown field.", e.Key)
		}
	}
	if out.Coll == "" {
		return nil, merr.New(codeMissingFieldStage, "BSON field '$merge.into' is missing but a required field")
	}
	if out.Let != nil && out.WhenMatched != "pipeline" {
		return nil, merr.New(51199, "Cannot use 'let' variables with 'whenMatched: %s' mode", out.WhenMatched)
	}
	return out, nil
}
