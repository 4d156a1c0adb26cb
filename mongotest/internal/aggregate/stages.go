package aggregate

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/expr"
	"github.com/txkit/txkit/mongotest/internal/merr"
	"github.com/txkit/txkit/mongotest/internal/query"
)

// Server codes of the stages in this file.
const (
	codeReplaceRootNotObject int32 = 40228
	codeReplaceRootSpec      int32 = 40231
	codeLookupNotObject      int32 = 40319
	codeFacetNotObject       int32 = 15947
	codeFacetEmpty           int32 = 40169
	codeFacetNotArray        int32 = 40170
	codeFacetStage           int32 = 40600
	codeUnionWithBad         int32 = 40280
	codeDocumentsNotArray    int32 = 5858203
	codeMergeBadInto         int32 = 51178
	codeMergeUnknownField    int32 = 40415
)

func parseReplaceRoot(c *compiler, spec any) (stage, error) {
	d, ok := spec.(bson.D)
	if !ok {
		return nil, merr.New(codeReplaceRootSpec, "expected an object as specification for $replaceRoot stage, got %s", expr.TypeName(spec))
	}
	var newRoot any
	found := false
	for _, e := range d {
		if e.Key != "newRoot" {
			return nil, merr.New(codeMergeUnknownField, "BSON field '$replaceRoot.%s' is an unknown field.", e.Key)
		}
		newRoot, found = e.Value, true
	}
	if !found {
		return nil, merr.New(codeMissingFieldStage, "BSON field '$replaceRoot.newRoot' is missing but a required field")
	}
	return replaceRoot(c, newRoot)
}

// codeMissingFieldStage is IDL's "missing but a required field".
const codeMissingFieldStage int32 = 40414

func parseReplaceWith(c *compiler, spec any) (stage, error) { return replaceRoot(c, spec) }

func replaceRoot(c *compiler, newRoot any) (stage, error) {
	x, err := c.expr(newRoot)
	if err != nil {
		return nil, err
	}
	return mapDocs(func(d bson.D) (bson.D, error) {
		v, err := x.Eval(d)
		if err != nil {
			return nil, err
		}
		nd, ok := v.(bson.D)
		if !ok {
			shown := "missing"
			if !expr.IsMissing(v) {
				shown = bsonkit.FormatValue(v)
			}
			return nil, merr.New(codeReplaceRootNotObject,
				"'replacement document' must evaluate to an object, but resulting value was: %s. Type of resulting value: '%s'. Input document: %s",
				shown, expr.TypeName(v), bsonkit.FormatValue(d))
		}
		return nd, nil
	}), nil
}

// subPipeline reads a sub-pipeline argument.
func subPipeline(v any, code int32, what string) (bson.A, error) {
	a, ok := v.(bson.A)
	if !ok {
		return nil, merr.New(code, "%s must be an array, but found %s", what, expr.TypeName(v))
	}
	return a, nil
}

// nestedCompile compiles a sub-pipeline of stage name with vars.
func (c *compiler) nestedCompile(pipeline bson.A, name string, vars expr.Vars) (*Pipeline, error) {
	opts := c.opts
	opts.nested = name
	opts.Vars = vars
	return CompileWith(pipeline, opts)
}

func (c *compiler) source(stageName string) (Source, error) {
	if c.opts.Source == nil {
		return nil, merr.New(merr.IllegalOperation, "%s is not supported here by mongotest", stageName)
	}
	return c.opts.Source, nil
}

// parseLookup is $lookup in both forms: equality (localField and
// foreignField) and pipeline (let and pipeline, which MongoDB 5.0+ also
// combines with the equality).
func parseLookup(c *compiler, spec any) (stage, error) {
	d, ok := spec.(bson.D)
	if !ok {
		return nil, merr.New(codeLookupNotObject, "the $lookup specification must be an Object, but found %s", expr.TypeName(spec))
	}
	var from, as, local, foreign string
	var hasFrom, hasLocal, hasForeign, hasPipeline bool
	var let bson.D
	var pipeline bson.A
	for _, e := range d {
		switch e.Key {
		case "from", "as", "localField", "foreignField":
			s, ok := e.Value.(string)
			if !ok {
				return nil, merr.New(merr.FailedToParse, "$lookup argument '%s' must be a string, found %s", bsonkit.FormatElem(e.Key, e.Value), expr.TypeName(e.Value))
			}
			switch e.Key {
			case "from":
				from, hasFrom = s, true
			case "as":
				as = s
			case "localField":
				local, hasLocal = s, true
			case "foreignField":
				foreign, hasForeign = s, true
			}
		case "let":
			l, ok := e.Value.(bson.D)
			if !ok {
				return nil, merr.New(merr.FailedToParse, "$lookup argument 'let' must be an object, is type %s", expr.TypeName(e.Value))
			}
			let = l
		case "pipeline":
			p, ok := e.Value.(bson.A)
			if !ok {
				return nil, merr.New(merr.FailedToParse, "$lookup argument 'pipeline' must be an array, is type %s", expr.TypeName(e.Value))
			}
			pipeline, hasPipeline = p, true
		default:
			return nil, merr.New(merr.FailedToParse, "unknown argument to $lookup: %s", e.Key)
		}
	}
	if as == "" {
		return nil, merr.New(merr.FailedToParse, "must specify 'as' field for a $lookup")
	}
	if hasLocal != hasForeign {
		return nil, merr.New(merr.FailedToParse, "$lookup requires both or neither of 'localField' and 'foreignField' to be specified")
	}
	if !hasPipeline && !hasLocal {
		return nil, merr.New(merr.FailedToParse, "$lookup requires either 'pipeline' or both 'localField' and 'foreignField' to be specified")
	}
	if !hasPipeline && let != nil {
		return nil, merr.New(merr.FailedToParse, "$lookup with 'let' must also specify 'pipeline'")
	}
	startsWithDocuments := hasPipeline && len(pipeline) > 0 && firstStage(pipeline) == "$documents"
	if !hasFrom && !startsWithDocuments {
		return nil, merr.New(merr.FailedToParse, "must specify 'from' field for a $lookup")
	}
	src, err := c.source("$lookup")
	if err != nil {
		return nil, err
	}
	letNames := make([]string, len(let))
	letExprs := make([]expr.Expr, len(let))
	for i, e := range let {
		if err := expr.ValidateVarName(e.Key); err != nil {
			return nil, err
		}
		letNames[i] = e.Key
		if letExprs[i], err = c.expr(e.Value); err != nil {
			return nil, err
		}
	}
	// Compile once with the let variables bound to null, so that errors
	// surface before any document is read.
	if hasPipeline {
		probe := expr.Vars{}
		for _, n := range letNames {
			probe[n] = nil
		}
		if _, err := c.nestedCompile(pipeline, "$lookup", c.opts.Vars.With(probe)); err != nil {
			return nil, err
		}
	}
	return func(docs []bson.D) ([]bson.D, error) {
		var foreignDocs []bson.D
		if hasFrom {
			var err error
			if foreignDocs, err = src.Documents(from); err != nil {
				return nil, err
			}
		}
		out := make([]bson.D, len(docs))
		for i, doc := range docs {
			matched := foreignDocs
			if hasLocal {
				var err error
				if matched, err = equalityJoin(doc, local, foreign, foreignDocs, c.str()); err != nil {
					return nil, err
				}
			}
			if hasPipeline {
				vars := expr.Vars{}
				for j, x := range letExprs {
					v, err := x.Eval(doc)
					if err != nil {
						return nil, err
					}
					if expr.IsMissing(v) {
						v = nil
					}
					vars[letNames[j]] = v
				}
				p, err := c.nestedCompile(pipeline, "$lookup", c.opts.Vars.With(vars))
				if err != nil {
					return nil, err
				}
				if matched, err = p.Run(matched); err != nil {
					return nil, err
				}
			}
			arr := make(bson.A, len(matched))
			for j, m := range matched {
				arr[j] = m
			}
			out[i] = setNested(doc, splitPath(as), arr)
		}
		return out, nil
	}, nil
}

func firstStage(p bson.A) string {
	if d, ok := p[0].(bson.D); ok && len(d) > 0 {
		return d[0].Key
	}
	return ""
}

func splitPath(p string) []string {
	var parts []string
	start := 0
	for i := 0; i < len(p); i++ {
		if p[i] == '.' {
			parts = append(parts, p[start:i])
			start = i + 1
		}
	}
	return append(parts, p[start:])
}

// equalityJoin returns the foreign documents whose foreignField equals the
// document's localField, or one of its elements when it is an array; a
// missing localField matches null and missing foreign fields.
func equalityJoin(doc bson.D, local, foreign string, foreignDocs []bson.D, str func(a, b string) int) ([]bson.D, error) {
	vals, _ := query.Lookup(doc, local)
	in := bson.A{}
	for _, v := range vals {
		if a, ok := v.(bson.A); ok {
			in = append(in, a...)
			continue
		}
		in = append(in, v)
	}
	if len(in) == 0 {
		in = append(in, nil)
	}
	for i, v := range in {
		if r, ok := v.(bson.Regex); ok {
			// A regex is compared as a value, not applied as a pattern.
			in[i] = bson.D{{Key: "$eq", Value: r}}
		}
	}
	f, err := query.CompileWith(bson.D{{Key: foreign, Value: bson.D{{Key: "$in", Value: in}}}}, query.Options{Collation: str})
	if err != nil {
		return nil, err
	}
	var out []bson.D
	for _, fd := range foreignDocs {
		if f.Match(fd) {
			out = append(out, fd)
		}
	}
	return out, nil
}

func parseFacet(c *compiler, spec any) (stage, error) {
	d, ok := spec.(bson.D)
	if !ok {
		return nil, merr.New(codeFacetNotObject, "the $facet specification must be a non-empty object, but found: %s", bsonkit.FormatValue(spec))
	}
	if len(d) == 0 {
		return nil, merr.New(codeFacetEmpty, "the $facet specification must be a non-empty object")
	}
	names := make([]string, len(d))
	pipes := make([]*Pipeline, len(d))
	for i, e := range d {
		arr, err := subPipeline(e.Value, codeFacetNotArray, "arguments to $facet")
		if err != nil {
			return nil, err
		}
		for _, st := range arr {
			if sd, ok := st.(bson.D); ok && len(sd) == 1 {
				switch sd[0].Key {
				case "$facet", "$documents", "$unionWith", "$lookup", "$collStats", "$indexStats":
					if sd[0].Key == "$facet" || sd[0].Key == "$collStats" || sd[0].Key == "$indexStats" {
						return nil, merr.New(codeFacetStage, "%s is not allowed to be used within a $facet stage", sd[0].Key)
					}
				}
			}
		}
		names[i] = e.Key
		if pipes[i], err = c.nestedCompile(arr, "$facet", c.opts.Vars); err != nil {
			return nil, err
		}
	}
	return func(docs []bson.D) ([]bson.D, error) {
		out := make(bson.D, len(names))
		for i, p := range pipes {
			res, err := p.Run(docs)
			if err != nil {
				return nil, err
			}
			arr := make(bson.A, len(res))
			for j, r := range res {
				arr[j] = r
			}
			out[i] = bson.E{Key: names[i], Value: arr}
		}
		return []bson.D{out}, nil
	}, nil
}

func parseUnionWith(c *compiler, spec any) (stage, error) {
	var coll string
	var pipeline bson.A
	hasColl := false
	switch x := spec.(type) {
	case string:
		coll, hasColl = x, true
	case bson.D:
		for _, e := range x {
			switch e.Key {
			case "coll":
				s, ok := e.Value.(string)
				if !ok {
					return nil, merr.New(merr.TypeMismatch, "BSON field '$unionWith.coll' is the wrong type '%s', expected type 'string'", expr.TypeName(e.Value))
				}
				coll, hasColl = s, true
			case "pipeline":
				a, ok := e.Value.(bson.A)
				if !ok {
					return nil, merr.New(merr.TypeMismatch, "BSON field '$unionWith.pipeline' is the wrong type '%s', expected type 'array'", expr.TypeName(e.Value))
				}
				pipeline = a
			default:
				return nil, merr.New(codeMergeUnknownField, "BSON field '$unionWith.%s' is an unknown field.", e.Key)
			}
		}
	default:
		return nil, merr.New(codeUnionWithBad, "the $unionWith stage specification must be an object or string, but found %s", expr.TypeName(spec))
	}
	if !hasColl && (len(pipeline) == 0 || firstStage(pipeline) != "$documents") {
		return nil, merr.New(codeMissingFieldStage, "BSON field '$unionWith.coll' is missing but a required field")
	}
	src, err := c.source("$unionWith")
	if err != nil {
		return nil, err
	}
	p, err := c.nestedCompile(pipeline, "$unionWith", c.opts.Vars)
	if err != nil {
		return nil, err
	}
	return func(docs []bson.D) ([]bson.D, error) {
		var other []bson.D
		if hasColl {
			var err error
			if other, err = src.Documents(coll); err != nil {
				return nil, err
			}
		}
		res, err := p.Run(other)
		if err != nil {
			return nil, err
		}
		return append(append([]bson.D(nil), docs...), res...), nil
	}, nil
}

// parseListLocalSessions is $listLocalSessions: the sessions this server
// holds (all users: mongotest has no authentication).
func parseListLocalSessions(c *compiler, spec any) (stage, error) {
	d, ok := spec.(bson.D)
	if !ok {
		return nil, merr.New(merr.TypeMismatch, "$listLocalSessions options must be specified in an object, but found: %s", expr.TypeName(spec))
	}
	for _, e := range d {
		if e.Key != "allUsers" && e.Key != "users" {
			return nil, merr.New(codeMergeUnknownField, "BSON field '$listLocalSessions.%s' is an unknown field.", e.Key)
		}
	}
	if c.opts.LocalSessions == nil {
		return nil, merr.New(merr.IllegalOperation, "$listLocalSessions is not supported here by mongotest")
	}
	list := c.opts.LocalSessions
	return func([]bson.D) ([]bson.D, error) { return list(), nil }, nil
}

// parseDocuments is $documents: an expression evaluating to an array of
// documents, which replaces the input.
func parseDocuments(c *compiler, spec any) (stage, error) {
	x, err := c.expr(spec)
	if err != nil {
		return nil, err
	}
	v, err := x.Eval(bson.D{})
	if err != nil {
		return nil, err
	}
	arr, ok := v.(bson.A)
	if !ok {
		return nil, merr.New(codeDocumentsNotArray, "error during $documents evaluation: expected an array, got %s", expr.TypeName(v))
	}
	docs := make([]bson.D, len(arr))
	for i, e := range arr {
		d, ok := e.(bson.D)
		if !ok {
			return nil, merr.New(codeDocumentsNotArray, "error during $documents evaluation: each element must be an object, got %s", expr.TypeName(e))
		}
		docs[i] = d
	}
	return func([]bson.D) ([]bson.D, error) { return docs, nil }, nil
}
