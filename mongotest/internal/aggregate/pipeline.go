package aggregate

import (
	"math"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/collation"
	"github.com/txkit/txkit/mongotest/internal/expr"
	"github.com/txkit/txkit/mongotest/internal/merr"
	"github.com/txkit/txkit/mongotest/internal/query"
)

// Server codes for pipeline parse errors.
const (
	codeStageOneField    int32 = 40323
	codeUnknownStage     int32 = 40324
	codeMatchNotObject   int32 = 15959
	codeSortNotObject    int32 = 15973
	codeSortEmpty        int32 = 15976
	codeLimitNotPositive int32 = 15958
	codeLimitBad         int32 = 5107201
	codeSkipBad          int32 = 5107200
	codeCountDollar      int32 = 40158
	codeCountDot         int32 = 40160
	codeCountNotString   int32 = 40156
	codeOutNotLast       int32 = 40601
	codeOutNested        int32 = 40600
	codeFirstStageOnly   int32 = 40602
)

// Pipeline is a compiled aggregation pipeline. It is immutable and safe for
// concurrent use.
type Pipeline struct {
	stages []stage
	out    *Output
	first  string
}

// stage transforms the documents flowing through the pipeline. It may
// return its input documents but never modifies them.
type stage func(docs []bson.D) ([]bson.D, error)

// Source gives a pipeline the other collections of its database, for
// $lookup and $unionWith. A view is read through its pipeline.
type Source interface {
	Documents(coll string) ([]bson.D, error)
}

// Options are what a pipeline is compiled with.
type Options struct {
	// Vars are the command's let variables and the system variables
	// ($$NOW, $$CLUSTER_TIME).
	Vars expr.Vars
	// Source reads other collections; without it $lookup and $unionWith
	// are refused.
	Source Source
	// Collation orders and equates strings in $match, $sort, $group keys,
	// accumulators, comparison expressions and $lookup; nil is binary.
	Collation *collation.Collation
	// LocalSessions lists the server's sessions for $listLocalSessions;
	// without it the stage is refused.
	LocalSessions func() []bson.D
	// CurrentOp lists the server's operations for $currentOp; without it
	// the stage is refused.
	CurrentOp func(CurrentOpOptions) []bson.D
	// Collectionless: the pipeline is an {aggregate: 1}, which must start
	// with a stage that reads no collection ($documents, $currentOp, …).
	Collectionless bool
	// AdminCollectionless: the pipeline is an {aggregate: 1} on the admin
	// database, the only place $currentOp runs.
	AdminCollectionless bool
	// nested is set for $facet and $lookup sub-pipelines.
	nested string
}

type compiler struct{ opts Options }

func (c *compiler) expr(v any) (expr.Expr, error) {
	return expr.CompileCollated(v, c.opts.Vars, c.str())
}

// str is the collation's string order, nil for binary.
func (c *compiler) str() func(a, b string) int { return c.opts.Collation.StringCompare() }

type parser func(c *compiler, spec any) (stage, error)

var stageParsers map[string]parser

func plain(f func(spec any) (stage, error)) parser {
	return func(_ *compiler, spec any) (stage, error) { return f(spec) }
}

func init() {
	stageParsers = map[string]parser{
		"$match":             parseMatch,
		"$project":           parseProject,
		"$addFields":         parseAddFields,
		"$set":               parseAddFields,
		"$unset":             parseUnset,
		"$sort":              parseSort,
		"$skip":              plain(parseSkip),
		"$limit":             plain(parseLimit),
		"$count":             plain(parseCount),
		"$group":             parseGroup,
		"$unwind":            plain(parseUnwind),
		"$replaceRoot":       parseReplaceRoot,
		"$replaceWith":       parseReplaceWith,
		"$lookup":            parseLookup,
		"$facet":             parseFacet,
		"$unionWith":         parseUnionWith,
		"$documents":         parseDocuments,
		"$listLocalSessions": parseListLocalSessions,
		"$currentOp":         parseCurrentOp,
	}
}

// unsupported are real server stages mongotest does not implement.
var unsupported = []string{
	"$graphLookup", "$bucket",
	"$bucketAuto", "$sortByCount", "$sample",
	"$geoNear", "$collStats", "$indexStats", "$listSessions",
	"$redact", "$setWindowFields", "$densify", "$fill", "$changeStream",
	"$search", "$searchMeta", "$planCacheStats",
}

// Compile parses a pipeline: an array of single-field stage documents.
func Compile(pipeline bson.A) (*Pipeline, error) { return CompileWith(pipeline, Options{}) }

// CompileWith is [Compile] with variables and a source of other
// collections.
func CompileWith(pipeline bson.A, opts Options) (*Pipeline, error) {
	c := &compiler{opts: opts}
	p := &Pipeline{stages: make([]stage, 0, len(pipeline))}
	// misplaced is the first stage out of place. MongoDB checks positions
	// (Pipeline::validateCommon) after it has parsed every stage and
	// checked the first against {aggregate: 1} (validateTopLevelPipeline),
	// so their errors come first.
	var misplaced error
	for i, s := range pipeline {
		d, ok := s.(bson.D)
		if !ok {
			return nil, merr.New(merr.TypeMismatch, "Each element of the 'pipeline' array must be an object")
		}
		if len(d) != 1 {
			return nil, merr.New(codeStageOneField, "A pipeline stage specification object must contain exactly one field.")
		}
		name := d[0].Key
		if i == 0 {
			p.first = name
		}
		if name == "$out" || name == "$merge" {
			if opts.nested != "" {
				return nil, merr.New(codeOutNested, "%s is not allowed to be used within a %s stage", name, opts.nested)
			}
			if i != len(pipeline)-1 && misplaced == nil {
				misplaced = merr.New(codeOutNotLast, "%s can only be the final stage in the pipeline", name)
			}
			out, err := parseOutput(name, d[0].Value)
			if err != nil {
				return nil, err
			}
			p.out = out
			continue
		}
		if (name == "$documents" || name == "$listLocalSessions") && i != 0 {
			return nil, merr.New(codeFirstStageOnly, "$documents is only valid as the first stage in a pipeline")
		}
		if name == "$currentOp" && i != 0 {
			if _, err := parseCurrentOp(c, d[0].Value); err != nil {
				return nil, err
			}
			if misplaced == nil {
				misplaced = merr.New(codeFirstStageOnly, "%s is only valid as the first stage in a pipeline.", name)
			}
			continue
		}
		parse, ok := stageParsers[name]
		if !ok {
			if slices.Contains(unsupported, name) {
				return nil, merr.New(merr.IllegalOperation, "%s is not supported by mongotest", name)
			}
			return nil, merr.New(codeUnknownStage, "Unrecognized pipeline stage name: '%s'", name)
		}
		st, err := parse(c, d[0].Value)
		if err != nil {
			return nil, err
		}
		p.stages = append(p.stages, st)
	}
	if opts.Collectionless && opts.nested == "" && !p.StartsWithDocuments() {
		if len(pipeline) == 0 {
			return nil, merr.New(merr.InvalidNamespace, "{aggregate: 1} is not valid for an empty pipeline.")
		}
		return nil, merr.New(merr.InvalidNamespace, "{aggregate: 1} is not valid for '%s'; a collection is required.", p.first)
	}
	if misplaced != nil {
		return nil, misplaced
	}
	return p, nil
}

// Output is where a pipeline ending in $out or $merge writes; nil when it
// returns its results.
func (p *Pipeline) Output() *Output { return p.out }

// StartsWithDocuments reports whether the first stage is $documents, which
// a database-level aggregate requires.
func (p *Pipeline) StartsWithDocuments() bool {
	return p.first == "$documents" || p.first == "$listLocalSessions" || p.first == "$currentOp"
}

// Run passes docs, the input collection in natural order, through the
// pipeline. The input documents are not modified and the output shares no
// memory with them.
func (p *Pipeline) Run(docs []bson.D) ([]bson.D, error) {
	cur := docs
	for _, st := range p.stages {
		var err error
		if cur, err = st(cur); err != nil {
			return nil, err
		}
	}
	out := make([]bson.D, len(cur))
	for i, d := range cur {
		out[i] = bsonkit.CloneDoc(d)
	}
	return out, nil
}

func parseMatch(c *compiler, spec any) (stage, error) {
	d, ok := spec.(bson.D)
	if !ok {
		return nil, merr.New(codeMatchNotObject, "the match filter must be an expression in an object")
	}
	f, err := query.CompileWith(d, query.Options{Vars: c.opts.Vars, Collation: c.str()})
	if err != nil {
		return nil, err
	}
	return func(docs []bson.D) ([]bson.D, error) {
		out := make([]bson.D, 0, len(docs))
		for _, doc := range docs {
			ok, err := f.Eval(doc)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, doc)
			}
		}
		return out, nil
	}, nil
}

func parseSort(c *compiler, spec any) (stage, error) {
	d, ok := spec.(bson.D)
	if !ok {
		return nil, merr.New(codeSortNotObject, "the $sort key specification must be an object")
	}
	if len(d) == 0 {
		return nil, merr.New(codeSortEmpty, "$sort stage must have at least one sort key")
	}
	s, err := query.CompileSortCollated(d, c.str())
	if err != nil {
		return nil, err
	}
	return func(docs []bson.D) ([]bson.D, error) {
		out := slices.Clone(docs)
		slices.SortStableFunc(out, s.Compare)
		return out, nil
	}, nil
}

// count parses the argument of $skip or $limit: an integral number.
func count(stageName string, spec any, code int32) (int64, error) {
	f, ok := bsonkit.ToFloat(spec)
	if !bsonkit.IsNumber(spec) || !ok || math.IsNaN(f) {
		return 0, merr.New(code, "invalid argument to %s stage: Expected a number in: %s: %s", stageName, stageName, bsonkit.FormatValue(spec))
	}
	n, ok := bsonkit.ToInt64(spec)
	if !ok {
		return 0, merr.New(code, "invalid argument to %s stage: Cannot represent as a 64-bit integer: %s: %s", stageName, stageName, bsonkit.FormatValue(spec))
	}
	if n < 0 {
		return 0, merr.New(code, "invalid argument to %s stage: Expected a non-negative number in: %s: %s", stageName, stageName, bsonkit.FormatValue(spec))
	}
	return n, nil
}

func parseSkip(spec any) (stage, error) {
	n, err := count("$skip", spec, codeSkipBad)
	if err != nil {
		return nil, err
	}
	return func(docs []bson.D) ([]bson.D, error) {
		if n >= int64(len(docs)) {
			return nil, nil
		}
		return docs[n:], nil
	}, nil
}

func parseLimit(spec any) (stage, error) {
	n, err := count("$limit", spec, codeLimitBad)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, merr.New(codeLimitNotPositive, "the limit must be positive")
	}
	return func(docs []bson.D) ([]bson.D, error) {
		if n < int64(len(docs)) {
			return docs[:n], nil
		}
		return docs, nil
	}, nil
}

func parseCount(spec any) (stage, error) {
	name, ok := spec.(string)
	switch {
	case !ok || name == "":
		return nil, merr.New(codeCountNotString, "the count field must be a non-empty string")
	case strings.HasPrefix(name, "$"):
		return nil, merr.New(codeCountDollar, "the count field cannot be a $-prefixed path")
	case strings.Contains(name, "."):
		return nil, merr.New(codeCountDot, "the count field cannot contain '.'")
	}
	return func(docs []bson.D) ([]bson.D, error) {
		if len(docs) == 0 {
			return nil, nil
		}
		var n any = int32(len(docs))
		if len(docs) > math.MaxInt32 {
			n = int64(len(docs))
		}
		return []bson.D{{{Key: name, Value: n}}}, nil
	}, nil
}
