package update

import (
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/aggregate"
	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/expr"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// Update is a compiled update: either operators or a replacement document.
// It is immutable and safe for concurrent use.
type Update struct {
	replacement bson.D
	isReplace   bool
	root        *node
	spec        bson.D
	pipeline    *aggregate.Pipeline
	// identifiers are the $[identifier] names used, for array filters.
	identifiers map[string]string
	// positional is set when a path has the positional $.
	positional bool
}

// Options are the per-application inputs of [Update.Apply].
type Options struct {
	// Insert is set when applying to a document an upsert is inserting:
	// $setOnInsert takes effect and _id may be set, but not changed from the
	// value seeded by the query.
	Insert bool
	// Now is the time $currentDate writes; zero means time.Now().
	Now bson.DateTime
	// Timestamp is what $currentDate {$type: "timestamp"} writes; zero
	// derives one from Now.
	Timestamp bson.Timestamp
	// ArrayFilters bind the $[identifier] components of the update's paths.
	ArrayFilters []bson.D
	// MatchedField is what the positional $ stands for: the array offset
	// the query matched the document at (query.Filter.ElemMatchKey); ""
	// when it matched none, as an upsert's insert, where a $ fails.
	MatchedField string
}

// Compile parses an update specification: a bson.D of update operators, a
// replacement document, or an aggregation pipeline (bson.A).
func Compile(spec any) (*Update, error) { return CompileVars(spec, nil) }

// CompileVars is [Compile] with the variables a pipeline update sees: the
// command's let and $$NOW, $$CLUSTER_TIME.
func CompileVars(spec any, vars expr.Vars) (*Update, error) {
	var d bson.D
	switch s := spec.(type) {
	case nil:
	case bson.D:
		d = s
	case bson.A:
		return compilePipeline(s, vars)
	default:
		return nil, merr.New(merr.FailedToParse, "Update argument must be either an object or an array")
	}
	if len(d) == 0 || !strings.HasPrefix(d[0].Key, "$") {
		return compileReplacement(d)
	}
	u := &Update{root: &node{}, spec: d, identifiers: map[string]string{}}
	for _, e := range d {
		parse, ok := operators[e.Key]
		if !ok {
			return nil, merr.New(merr.FailedToParse,
				"Unknown modifier: %s. Expected a valid update modifier or pipeline-style update specified as an array", e.Key)
		}
		args, ok := e.Value.(bson.D)
		if !ok {
			return nil, merr.New(merr.FailedToParse,
				"Modifiers operate on fields but we found type %s instead. For example: {$mod: {<field>: ...}} not {%s}",
				typeName(e.Value), bsonkit.FormatElem(e.Key, e.Value))
		}
		for _, a := range args {
			parts, err := splitPath(a.Key)
			if err != nil {
				return nil, err
			}
			if err := parse(u, e.Key, parts, a); err != nil {
				return nil, err
			}
		}
	}
	u.root.sortKeys()
	return u, nil
}

func compileReplacement(d bson.D) (*Update, error) {
	for _, e := range d {
		if strings.HasPrefix(e.Key, "$") {
			return nil, merr.New(merr.DollarPrefixedFieldName,
				"The dollar ($) prefixed field '%s' in '%s' is not allowed in the context of an update's replacement document. Consider using an aggregation pipeline with $replaceWith.",
				e.Key, e.Key)
		}
	}
	return &Update{replacement: bsonkit.CloneDoc(d), isReplace: true}, nil
}

// Positional reports whether a path of u has the positional $, which
// needs [Options.MatchedField].
func (u *Update) Positional() bool { return u.positional }

// IsReplacement reports whether u replaces whole documents.
func (u *Update) IsReplacement() bool { return u.isReplace }

// state is what modifiers see of one Apply call.
type state struct {
	opts    Options
	orig    bson.D
	filters map[string]func(any) bool
}

// arrayFilter returns the matcher for a "$[identifier]" component, or nil
// for "$[]", which selects every element. bindArrayFilters has checked that
// every identifier has one.
func (s *state) arrayFilter(k string) func(any) bool {
	if id := k[2 : len(k)-1]; id != "" {
		return s.filters[id]
	}
	return nil
}

// Apply returns doc with the update applied, and whether it differs from
// doc byte for byte. doc is never modified. When o.Insert is set, _id is
// moved to the front as the server stores inserted documents.
func (u *Update) Apply(doc bson.D, o Options) (bson.D, bool, error) {
	if o.Now == 0 {
		o.Now = bson.NewDateTimeFromTime(time.Now())
	}
	var out bson.D
	var err error
	switch {
	case u.pipeline != nil:
		out, err = u.runPipeline(doc, o)
	case u.isReplace:
		out, err = u.replace(doc)
	default:
		out, err = u.modify(doc, o)
	}
	if err != nil {
		return nil, false, err
	}
	if id, ok := bsonkit.Get(out, "_id"); ok {
		if _, isArray := id.(bson.A); isArray {
			return nil, false, merr.New(merr.InvalidIdField, "The '_id' value cannot be of type array")
		}
		if o.Insert {
			out = idFirst(out)
		}
	}
	return out, !identical(doc, out), nil
}

func (u *Update) replace(doc bson.D) (bson.D, error) {
	id, hasID := bsonkit.Get(doc, "_id")
	newID, newHasID := bsonkit.Get(u.replacement, "_id")
	if !hasID {
		return bsonkit.CloneDoc(u.replacement), nil
	}
	if newHasID && !identical(id, newID) {
		return nil, merr.New(merr.ImmutableField,
			"After applying the update, the (immutable) field '_id' was found to have been altered to %s",
			bsonkit.FormatElem("_id", newID))
	}
	out := make(bson.D, 0, len(u.replacement)+1)
	out = append(out, bson.E{Key: "_id", Value: bsonkit.Clone(id)})
	for _, e := range u.replacement {
		if e.Key != "_id" {
			out = append(out, bson.E{Key: e.Key, Value: bsonkit.Clone(e.Value)})
		}
	}
	return out, nil
}

func (u *Update) modify(doc bson.D, o Options) (bson.D, error) {
	s := &state{opts: o, orig: doc}
	if err := u.bindArrayFilters(s); err != nil {
		return nil, err
	}
	v, _, err := u.root.apply(s, field{value: bsonkit.CloneDoc(doc), exists: true})
	if err != nil {
		return nil, err
	}
	out, _ := v.(bson.D)
	if out == nil {
		out = bson.D{}
	}
	if !o.Insert {
		if name, path := newDollarField(doc, out, ""); name != "" {
			return nil, merr.New(merr.DollarPrefixedFieldName, "The dollar ($) prefixed field '%s' in '%s' is not valid for storage.", name, path)
		}
	}
	id, hasID := bsonkit.Get(doc, "_id")
	if !hasID {
		return out, nil
	}
	newID, newHasID := bsonkit.Get(out, "_id")
	switch {
	case newHasID && identical(id, newID):
		return out, nil
	case !o.Insert:
		return nil, merr.New(merr.ImmutableField,
			"Performing an update on the path '_id' would modify the immutable field '_id'")
	case !newHasID:
		return nil, merr.New(merr.ImmutableField,
			"After applying the update, the (immutable) field '_id' was found to have been removed")
	}
	return nil, merr.New(merr.ImmutableField,
		"After applying the update, the (immutable) field '_id' was found to have been altered to %s",
		bsonkit.FormatElem("_id", newID))
}

// bindArrayFilters compiles o.ArrayFilters and checks they match the
// update's $[identifier] components one to one.
func (u *Update) bindArrayFilters(s *state) error {
	if len(s.opts.ArrayFilters) == 0 && len(u.identifiers) == 0 {
		return nil
	}
	s.filters = map[string]func(any) bool{}
	for _, f := range s.opts.ArrayFilters {
		id, match, err := compileArrayFilter(f)
		if err != nil {
			return err
		}
		if _, dup := s.filters[id]; dup {
			return merr.New(merr.FailedToParse, "Found multiple array filters with the same top-level field name %s", id)
		}
		if _, used := u.identifiers[id]; !used {
			return merr.New(merr.FailedToParse,
				"The array filter for identifier '%s' was not used in the update %s", id, bsonkit.FormatValue(u.spec))
		}
		s.filters[id] = match
	}
	for id, path := range u.identifiers {
		if _, ok := s.filters[id]; !ok {
			return merr.New(merr.BadValue, "No array filter found for identifier '%s' in path '%s'", id, path)
		}
	}
	return nil
}

// newDollarField returns a '$'-prefixed field name (other than a DBRef's)
// that an update of an existing document created, with its path: MongoDB
// stores such fields from inserts only (storage_validation.cpp). Fields
// inside arrays are not checked, as the server does not.
func newDollarField(old, out bson.D, prefix string) (name, path string) {
	for _, e := range out {
		p := e.Key
		if prefix != "" {
			p = prefix + "." + e.Key
		}
		prev, had := bsonkit.Get(old, e.Key)
		if strings.HasPrefix(e.Key, "$") && !had && e.Key != "$ref" && e.Key != "$id" && e.Key != "$db" {
			return e.Key, p
		}
		if sub, ok := e.Value.(bson.D); ok {
			prevSub, _ := prev.(bson.D)
			if name, path := newDollarField(prevSub, sub, p); name != "" {
				return name, path
			}
		}
	}
	return "", ""
}

func idFirst(d bson.D) bson.D {
	for i, e := range d {
		if e.Key == "_id" {
			if i == 0 {
				return d
			}
			out := make(bson.D, 0, len(d))
			out = append(out, e)
			out = append(out, d[:i]...)
			return append(out, d[i+1:]...)
		}
	}
	return d
}

func typeName(v any) string { return bsonkit.TypeAlias(v) }
