package aggregate

import (
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/expr"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// Server codes for projection errors.
const (
	codeProjectEmpty        int32 = 40177
	codeInclusionInExclude  int32 = 31253
	codeExclusionInInclude  int32 = 31254
	codeExprInExclusion     int32 = 31252
	codeProjectNotObject    int32 = 15969
	codeEmptySubProjection  int32 = 51270
	codePathCollision       int32 = 31250
	codeAddFieldsNotObject  int32 = 40272
	codeUnsetBadSpec        int32 = 31002
	codeUnsetEmpty          int32 = 31119
	codeUnsetNonString      int32 = 31120
	codeProjectionDollarKey int32 = 16410
)

// projection is one level of a $project, $addFields or $unset spec, in
// spec order.
type projection struct {
	fields []*projField
}

type projField struct {
	name    string
	include bool
	exclude bool
	expr    expr.Expr
	sub     *projection
}

func (p *projection) field(name string) *projField {
	for _, f := range p.fields {
		if f.name == name {
			return f
		}
	}
	return nil
}

// child returns the sub-projection at name, creating it.
func (p *projection) child(name, path string) (*projection, error) {
	f := p.field(name)
	if f == nil {
		f = &projField{name: name, sub: &projection{}}
		p.fields = append(p.fields, f)
	}
	if f.sub == nil {
		return nil, merr.New(codePathCollision, "Invalid $project :: caused by :: Path collision at %s", path)
	}
	return f.sub, nil
}

func (p *projection) hasComputed() bool {
	for _, f := range p.fields {
		if f.expr != nil || (f.sub != nil && f.sub.hasComputed()) {
			return true
		}
	}
	return false
}

// leafKind classifies a spec value: 1 include, 0 exclude, -1 computed,
// 2 nested spec.
func leafKind(v any, computedOnly bool) int {
	if computedOnly {
		if d, ok := v.(bson.D); ok && len(d) > 0 && !strings.HasPrefix(d[0].Key, "$") {
			return 2
		}
		return -1
	}
	switch x := v.(type) {
	case bool:
		if x {
			return 1
		}
		return 0
	case bson.D:
		if len(x) > 0 && !strings.HasPrefix(x[0].Key, "$") {
			return 2
		}
		return -1
	}
	if bsonkit.IsNumber(v) {
		if expr.Truthy(v) {
			return 1
		}
		return 0
	}
	return -1
}

// build parses spec into p. computedOnly is $addFields: every leaf is an
// expression. leaves records each leaf's dotted path and kind in order.
func (p *projection) build(c *compiler, prefix string, spec bson.D, computedOnly bool, leaves *[]leaf) error {
	for _, e := range spec {
		if e.Key == "" {
			return merr.New(merr.Location40352, "FieldPath cannot be constructed with empty string")
		}
		if strings.HasPrefix(e.Key, "$") {
			return merr.New(codeProjectionDollarKey, "FieldPath field names may not start with '$'. Consider using $getField or $setField.")
		}
		parts := strings.Split(e.Key, ".")
		cur := p
		path := prefix
		for _, part := range parts[:len(parts)-1] {
			if part == "" {
				return merr.New(merr.Location15974, "FieldPath field names may not be empty strings.")
			}
			path = joinPath(path, part)
			var err error
			if cur, err = cur.child(part, path); err != nil {
				return err
			}
		}
		name := parts[len(parts)-1]
		path = joinPath(path, name)
		kind := leafKind(e.Value, computedOnly)
		if kind == 2 {
			sub, err := cur.child(name, path)
			if err != nil {
				return err
			}
			if err := sub.build(c, path, e.Value.(bson.D), computedOnly, leaves); err != nil {
				return err
			}
			continue
		}
		if d, ok := e.Value.(bson.D); ok && len(d) == 0 && !computedOnly {
			return merr.New(codeEmptySubProjection, "An empty sub-projection is not a valid value. Found empty object at path")
		}
		if cur.field(name) != nil {
			return merr.New(codePathCollision, "Invalid $project :: caused by :: Path collision at %s", path)
		}
		f := &projField{name: name, include: kind == 1, exclude: kind == 0}
		if kind == -1 {
			var err error
			if f.expr, err = c.expr(e.Value); err != nil {
				return err
			}
		}
		cur.fields = append(cur.fields, f)
		*leaves = append(*leaves, leaf{path: path, kind: kind})
	}
	return nil
}

type leaf struct {
	path string
	kind int
}

func joinPath(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func parseProject(c *compiler, spec any) (stage, error) {
	d, ok := spec.(bson.D)
	if !ok {
		return nil, merr.New(codeProjectNotObject, "$project specification must be an object")
	}
	if len(d) == 0 {
		return nil, merr.New(codeProjectEmpty, "Invalid $project :: caused by :: projection specification must have at least one field")
	}
	p := &projection{}
	var leaves []leaf
	if err := p.build(c, "", d, false, &leaves); err != nil {
		return nil, err
	}
	return projectionStage(p, leaves)
}

// projectionStage decides between inclusion and exclusion as the server
// does: the first leaf other than _id sets the mode.
func projectionStage(p *projection, leaves []leaf) (stage, error) {
	exclusion := false
	decided := false
	for _, l := range leaves {
		if l.path != "_id" {
			exclusion, decided = l.kind == 0, true
			break
		}
	}
	if !decided {
		exclusion = leaves[0].kind == 0
	}
	for _, l := range leaves {
		switch {
		case exclusion && l.kind == 1 && l.path != "_id":
			return nil, merr.New(codeInclusionInExclude, "Invalid $project :: caused by :: Cannot do inclusion on field %s in exclusion projection", l.path)
		case exclusion && l.kind == -1:
			return nil, merr.New(codeExprInExclusion, "Invalid $project :: caused by :: Cannot use expression other than $meta in exclusion projection")
		case !exclusion && l.kind == 0 && l.path != "_id":
			return nil, merr.New(codeExclusionInInclude, "Invalid $project :: caused by :: Cannot do exclusion on field %s in inclusion projection", l.path)
		}
	}
	if exclusion {
		return mapDocs(func(d bson.D) (bson.D, error) { return p.exclude(d), nil }), nil
	}
	idExcluded := false
	if f := p.field("_id"); f != nil && f.exclude {
		idExcluded = true
		p.fields = slices.DeleteFunc(p.fields, func(f *projField) bool { return f.name == "_id" })
	}
	return mapDocs(func(d bson.D) (bson.D, error) {
		return p.include(d, d, !idExcluded)
	}), nil
}

func mapDocs(f func(bson.D) (bson.D, error)) stage {
	return func(docs []bson.D) ([]bson.D, error) {
		out := make([]bson.D, len(docs))
		for i, d := range docs {
			var err error
			if out[i], err = f(d); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
}

// include applies an inclusion projection to d: included fields in d's
// order, then computed fields in spec order. keepID keeps an unmentioned
// top-level _id.
func (p *projection) include(root, d bson.D, keepID bool) (bson.D, error) {
	out := bson.D{}
	for _, e := range d {
		f := p.field(e.Key)
		switch {
		case f == nil:
			if keepID && e.Key == "_id" {
				out = append(out, e)
			}
		case f.include:
			out = append(out, e)
		case f.sub != nil:
			v, ok, err := f.sub.includeValue(root, e.Value)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, bson.E{Key: e.Key, Value: v})
			}
		}
	}
	for _, f := range p.fields {
		switch {
		case f.expr != nil:
			v, err := f.expr.Eval(root)
			if err != nil {
				return nil, err
			}
			if !expr.IsMissing(v) {
				out = setField(out, f.name, v)
			}
		case f.sub != nil && f.sub.hasComputed():
			if _, done := bsonkit.Get(out, f.name); done {
				continue
			}
			v, err := f.sub.include(root, bson.D{}, false)
			if err != nil {
				return nil, err
			}
			out = setField(out, f.name, v)
		}
	}
	return out, nil
}

// includeValue applies a nested inclusion to a field's value: documents are
// projected, arrays element-wise, and scalars dropped unless the nested
// projection computes fields.
func (p *projection) includeValue(root bson.D, v any) (any, bool, error) {
	switch x := v.(type) {
	case bson.D:
		d, err := p.include(root, x, false)
		return d, true, err
	case bson.A:
		out := bson.A{}
		for _, e := range x {
			r, ok, err := p.includeValue(root, e)
			if err != nil {
				return nil, false, err
			}
			if ok {
				out = append(out, r)
			}
		}
		return out, true, nil
	}
	if p.hasComputed() {
		d, err := p.include(root, bson.D{}, false)
		return d, true, err
	}
	return nil, false, nil
}

// exclude removes the excluded fields from d, reaching into arrays.
func (p *projection) exclude(d bson.D) bson.D {
	out := make(bson.D, 0, len(d))
	for _, e := range d {
		f := p.field(e.Key)
		switch {
		case f == nil:
			out = append(out, e)
		case f.exclude:
		case f.sub != nil:
			out = append(out, bson.E{Key: e.Key, Value: f.sub.excludeValue(e.Value)})
		default:
			out = append(out, e)
		}
	}
	return out
}

func (p *projection) excludeValue(v any) any {
	switch x := v.(type) {
	case bson.D:
		return p.exclude(x)
	case bson.A:
		out := make(bson.A, len(x))
		for i, e := range x {
			out[i] = p.excludeValue(e)
		}
		return out
	}
	return v
}

func setField(d bson.D, name string, v any) bson.D {
	for i := range d {
		if d[i].Key == name {
			out := slices.Clone(d)
			out[i].Value = v
			return out
		}
	}
	return append(d, bson.E{Key: name, Value: v})
}

func parseAddFields(c *compiler, spec any) (stage, error) {
	d, ok := spec.(bson.D)
	if !ok {
		return nil, merr.New(codeAddFieldsNotObject, "$addFields specification stage must be an object, got %s", expr.TypeName(spec))
	}
	p := &projection{}
	var leaves []leaf
	if err := p.build(c, "", d, true, &leaves); err != nil {
		return nil, err
	}
	return mapDocs(func(doc bson.D) (bson.D, error) { return p.addFields(doc, doc) }), nil
}

// addFields sets each computed field in d, keeping existing fields in
// place; a missing result removes the field.
func (p *projection) addFields(root, d bson.D) (bson.D, error) {
	out := slices.Clone(d)
	for _, f := range p.fields {
		if f.expr != nil {
			v, err := f.expr.Eval(root)
			if err != nil {
				return nil, err
			}
			if expr.IsMissing(v) {
				out = bsonkit.Delete(out, f.name)
			} else {
				out = setField(out, f.name, v)
			}
			continue
		}
		cur, _ := bsonkit.Get(out, f.name)
		v, err := f.sub.addFieldsValue(root, cur)
		if err != nil {
			return nil, err
		}
		out = setField(out, f.name, v)
	}
	return out, nil
}

func (p *projection) addFieldsValue(root bson.D, v any) (any, error) {
	switch x := v.(type) {
	case bson.D:
		return p.addFields(root, x)
	case bson.A:
		out := make(bson.A, len(x))
		for i, e := range x {
			var err error
			if out[i], err = p.addFieldsValue(root, e); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return p.addFields(root, bson.D{})
}

func parseUnset(c *compiler, spec any) (stage, error) {
	var paths []string
	switch x := spec.(type) {
	case string:
		paths = []string{x}
	case bson.A:
		if len(x) == 0 {
			return nil, merr.New(codeUnsetEmpty, "$unset specification must be a string or an array with at least one field")
		}
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, merr.New(codeUnsetNonString, "$unset specification must be a string or an array containing only string values")
			}
			paths = append(paths, s)
		}
	default:
		return nil, merr.New(codeUnsetBadSpec, "$unset specification must be a string or an array")
	}
	spec2 := make(bson.D, len(paths))
	for i, s := range paths {
		spec2[i] = bson.E{Key: s, Value: int32(0)}
	}
	p := &projection{}
	var leaves []leaf
	if err := p.build(c, "", spec2, false, &leaves); err != nil {
		return nil, err
	}
	return mapDocs(func(d bson.D) (bson.D, error) { return p.exclude(d), nil }), nil
}
