package query

import (
	"math"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// Schema is a compiled $jsonSchema: MongoDB's draft-4 subset with
// bsonType. It is immutable and safe for concurrent use.
type Schema struct {
	spec bson.D
	// rules in spec order; each reports its failure, or nil.
	rules []schemaRule
}

type schemaRule struct {
	name string
	spec any
	// check returns nil when v satisfies the rule, else the detail document
	// MongoDB 7 puts in schemaRulesNotSatisfied.
	check func(v any) bson.D
}

// Keywords MongoDB accepts but does not implement, refused as it does.
var schemaUnsupported = []string{"$ref", "$schema", "default", "definitions", "format", "id"}

// CompileSchema parses a $jsonSchema document.
func CompileSchema(spec bson.D) (*Schema, error) {
	s := &Schema{spec: spec}
	types, err := schemaTypes(spec)
	if err != nil {
		return nil, err
	}
	for _, e := range spec {
		if slices.Contains(schemaUnsupported, e.Key) {
			return nil, merr.New(merr.FailedToParse, "$jsonSchema keyword '%s' is not currently supported", e.Key)
		}
		r, err := compileRule(e, spec, types)
		if err != nil {
			return nil, err
		}
		if r != nil {
			s.rules = append(s.rules, *r)
		}
	}
	slices.SortStableFunc(s.rules, func(a, b schemaRule) int { return ruleRank[a.name] - ruleRank[b.name] })
	return s, nil
}

// ruleRank orders the rules as the server's JSON Schema parser ANDs them,
// which is the order of schemaRulesNotSatisfied: type, then scalar, array,
// object and logical keywords.
var ruleRank = map[string]int{
	"type": 0, "bsonType": 0,
	"pattern": 1, "maxLength": 2, "minLength": 3, "minimum": 4, "maximum": 5, "multipleOf": 6,
	"minItems": 10, "maxItems": 11, "uniqueItems": 12, "items": 13, "additionalItems": 14,
	"properties": 20, "additionalProperties": 21, "patternProperties": 21, "required": 22,
	"minProperties": 23, "maxProperties": 24, "dependencies": 25,
	"allOf": 30, "anyOf": 31, "oneOf": 32, "not": 33, "enum": 34,
}

// Validate reports whether doc satisfies the schema.
func (s *Schema) Validate(doc bson.D) bool { return len(s.Explain(doc)) == 0 }

// Explain returns the rules doc does not satisfy, shaped as MongoDB 7's
// schemaRulesNotSatisfied; empty when it satisfies them all.
func (s *Schema) Explain(doc bson.D) bson.A { return s.explain(doc) }

func (s *Schema) explain(v any) bson.A {
	var out bson.A
	for _, r := range s.rules {
		if d := r.check(v); d != nil {
			out = append(out, d)
		}
	}
	return out
}

func schemaErr(format string, args ...any) error {
	return merr.New(merr.FailedToParse, format, args...)
}

// schemaTypes reads type and bsonType, which must not both appear.
func schemaTypes(spec bson.D) ([]string, error) {
	var out []string
	seen := ""
	for _, e := range spec {
		if e.Key != "type" && e.Key != "bsonType" {
			continue
		}
		if seen != "" {
			return nil, schemaErr("Cannot specify both $jsonSchema keywords 'type' and 'bsonType'")
		}
		seen = e.Key
		var names []any
		switch x := e.Value.(type) {
		case string:
			names = []any{x}
		case bson.A:
			names = x
		default:
			return nil, merr.New(merr.TypeMismatch, "$jsonSchema keyword '%s' must be either a string or an array of strings", e.Key)
		}
		for _, n := range names {
			s, ok := n.(string)
			if !ok {
				return nil, merr.New(merr.TypeMismatch, "$jsonSchema keyword '%s' array elements must be strings", e.Key)
			}
			if e.Key == "type" {
				switch s {
				case "object", "array", "number", "boolean", "string", "null":
				case "integer":
					return nil, schemaErr("$jsonSchema type 'integer' is not currently supported.")
				default:
					return nil, merr.New(merr.BadValue, "Unknown type name alias: %s", s)
				}
			} else if _, ok := typeAliases[s]; !ok && s != "number" {
				return nil, merr.New(merr.BadValue, "Unknown type name alias: %s", s)
			}
			out = append(out, s)
		}
	}
	return out, nil
}

func typeMatches(v any, name string) bool {
	switch name {
	case "number":
		return bsonkit.IsNumber(v)
	case "boolean":
		name = "bool"
	}
	return bsonkit.TypeAlias(v) == name
}

func failed(name string, spec any, reason string, extra ...bson.E) bson.D {
	d := bson.D{{Key: "operatorName", Value: name}, {Key: "specifiedAs", Value: bson.D{{Key: name, Value: spec}}}, {Key: "reason", Value: reason}}
	return append(d, extra...)
}

func considered(v any) []bson.E {
	return []bson.E{{Key: "consideredValue", Value: v}}
}

func compileRule(e bson.E, spec bson.D, types []string) (*schemaRule, error) {
	r := &schemaRule{name: e.Key, spec: e.Value}
	switch e.Key {
	case "type", "bsonType":
		r.check = func(v any) bson.D {
			for _, t := range types {
				if typeMatches(v, t) {
					return nil
				}
			}
			return failed(e.Key, e.Value, "type did not match", bson.E{Key: "consideredValue", Value: v}, bson.E{Key: "consideredType", Value: bsonkit.TypeAlias(v)})
		}
	case "title", "description":
		if _, ok := e.Value.(string); !ok {
			return nil, merr.New(merr.TypeMismatch, "$jsonSchema keyword '%s' must be a string", e.Key)
		}
		return nil, nil
	case "required":
		arr, ok := e.Value.(bson.A)
		if !ok || len(arr) == 0 {
			return nil, schemaErr("$jsonSchema keyword 'required' must be a non-empty array of strings")
		}
		for _, x := range arr {
			if _, ok := x.(string); !ok {
				return nil, merr.New(merr.TypeMismatch, "$jsonSchema keyword 'required' must be an array of strings")
			}
		}
		r.check = func(v any) bson.D {
			d, ok := v.(bson.D)
			if !ok {
				return nil
			}
			var missing bson.A
			for _, x := range arr {
				if _, has := bsonkit.Get(d, x.(string)); !has {
					missing = append(missing, x)
				}
			}
			if missing == nil {
				return nil
			}
			return bson.D{{Key: "operatorName", Value: "required"}, {Key: "specifiedAs", Value: bson.D{{Key: "required", Value: arr}}}, {Key: "missingProperties", Value: missing}}
		}
	case "properties":
		props, ok := e.Value.(bson.D)
		if !ok {
			return nil, merr.New(merr.TypeMismatch, "$jsonSchema keyword 'properties' must be an object")
		}
		subs := make([]*Schema, len(props))
		for i, p := range props {
			sd, ok := p.Value.(bson.D)
			if !ok {
				return nil, merr.New(merr.TypeMismatch, "Nested schema for $jsonSchema property '%s' must be an object", p.Key)
			}
			var err error
			if subs[i], err = CompileSchema(sd); err != nil {
				return nil, err
			}
		}
		r.check = func(v any) bson.D {
			d, ok := v.(bson.D)
			if !ok {
				return nil
			}
			var bad bson.A
			for i, p := range props {
				x, has := bsonkit.Get(d, p.Key)
				if !has {
					continue
				}
				if details := subs[i].explain(x); len(details) > 0 {
					pd := bson.D{{Key: "propertyName", Value: p.Key}}
					if desc, ok := bsonkit.Get(p.Value.(bson.D), "description"); ok {
						pd = append(pd, bson.E{Key: "description", Value: desc})
					}
					bad = append(bad, append(pd, bson.E{Key: "details", Value: details}))
				}
			}
			if bad == nil {
				return nil
			}
			return bson.D{{Key: "operatorName", Value: "properties"}, {Key: "propertiesNotSatisfied", Value: bad}}
		}
	case "additionalProperties", "patternProperties":
		return additionalProperties(e, spec)
	case "minimum", "maximum":
		if !bsonkit.IsNumber(e.Value) {
			return nil, merr.New(merr.TypeMismatch, "$jsonSchema keyword '%s' must be a number", e.Key)
		}
		excl, _ := bsonkit.Get(spec, "exclusive"+string(e.Key[0]-32)+e.Key[1:])
		exclusive, _ := excl.(bool)
		r.check = func(v any) bson.D {
			if !bsonkit.IsNumber(v) {
				return nil
			}
			c := bsonkit.Compare(v, e.Value)
			if e.Key == "maximum" {
				c = -c
			}
			if c > 0 || (c == 0 && !exclusive) {
				return nil
			}
			return failed(e.Key, e.Value, "comparison failed", considered(v)...)
		}
	case "exclusiveMinimum", "exclusiveMaximum":
		if _, ok := e.Value.(bool); !ok {
			return nil, merr.New(merr.TypeMismatch, "$jsonSchema keyword '%s' must be a boolean", e.Key)
		}
		if _, has := bsonkit.Get(spec, "m"+e.Key[10:]); !has {
			return nil, schemaErr("$jsonSchema keyword '%s' must be a present if %s is present", "m"+e.Key[10:], e.Key)
		}
		return nil, nil
	case "multipleOf":
		f, ok := bsonkit.ToFloat(e.Value)
		if !bsonkit.IsNumber(e.Value) || !ok || f <= 0 {
			return nil, schemaErr("$jsonSchema keyword 'multipleOf' must have a positive value")
		}
		r.check = func(v any) bson.D {
			x, ok := bsonkit.ToFloat(v)
			if !bsonkit.IsNumber(v) || !ok || math.Mod(x, f) == 0 {
				return nil
			}
			return failed(e.Key, e.Value, "considered value is not a multiple of the specified value", considered(v)...)
		}
	case "minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties":
		n, ok := bsonkit.ToInt64(e.Value)
		if !bsonkit.IsNumber(e.Value) || !ok || n < 0 {
			return nil, schemaErr("$jsonSchema keyword '%s' must be a non-negative integral number", e.Key)
		}
		r.check = func(v any) bson.D {
			var size int64
			var reason string
			switch x := v.(type) {
			case string:
				if e.Key != "minLength" && e.Key != "maxLength" {
					return nil
				}
				size, reason = int64(len([]rune(x))), "specified string length was not satisfied"
			case bson.A:
				if e.Key != "minItems" && e.Key != "maxItems" {
					return nil
				}
				size, reason = int64(len(x)), "array did not match specified length"
			case bson.D:
				if e.Key != "minProperties" && e.Key != "maxProperties" {
					return nil
				}
				size, reason = int64(len(x)), "specified number of properties was not satisfied"
			default:
				return nil
			}
			if (e.Key[:3] == "min" && size >= n) || (e.Key[:3] == "max" && size <= n) {
				return nil
			}
			return failed(e.Key, e.Value, reason, considered(v)...)
		}
	case "pattern":
		p, ok := e.Value.(string)
		if !ok {
			return nil, merr.New(merr.TypeMismatch, "$jsonSchema keyword 'pattern' must be a string")
		}
		re, err := newRegexPred(p, "")
		if err != nil {
			return nil, err
		}
		r.check = func(v any) bson.D {
			s, ok := v.(string)
			if !ok || re.matchString(s) {
				return nil
			}
			return failed(e.Key, e.Value, "regular expression did not match", considered(v)...)
		}
	case "enum":
		arr, ok := e.Value.(bson.A)
		if !ok || len(arr) == 0 {
			return nil, schemaErr("$jsonSchema keyword 'enum' cannot be an empty array")
		}
		// enum and uniqueItems compare as JSON Schema does, objects
		// without regard to field order (json_schema_parser.cpp parseEnum
		// and InternalSchemaUniqueItemsMatchExpression use an
		// UnorderedFieldsBSONElementComparator), and an enum with two
		// equal values is refused when parsed.
		values := make([]any, len(arr))
		for i, x := range arr {
			values[i] = unorderedFields(x)
			for _, y := range values[:i] {
				if schemaEqual(y, values[i]) {
					return nil, schemaErr("$jsonSchema keyword 'enum' array cannot contain duplicate values")
				}
			}
		}
		r.check = func(v any) bson.D {
			u := unorderedFields(v)
			for _, x := range values {
				if schemaEqual(x, u) {
					return nil
				}
			}
			return failed(e.Key, e.Value, "value was not found in enum", considered(v)...)
		}
	case "uniqueItems":
		b, ok := e.Value.(bool)
		if !ok {
			return nil, merr.New(merr.TypeMismatch, "$jsonSchema keyword 'uniqueItems' must be a boolean")
		}
		r.check = func(v any) bson.D {
			arr, ok := v.(bson.A)
			if !ok || !b {
				return nil
			}
			items := make([]any, len(arr))
			for i := range arr {
				items[i] = unorderedFields(arr[i])
				for _, prev := range items[:i] {
					if schemaEqual(prev, items[i]) {
						return failed(e.Key, e.Value, "found a duplicate item", considered(v)...)
					}
				}
			}
			return nil
		}
	case "items", "additionalItems":
		return itemsRule(e, spec)
	case "allOf", "anyOf", "oneOf":
		arr, ok := e.Value.(bson.A)
		if !ok || len(arr) == 0 {
			return nil, schemaErr("$jsonSchema keyword '%s' must be a non-empty array", e.Key)
		}
		subs, err := schemaList(e.Key, arr)
		if err != nil {
			return nil, err
		}
		r.check = func(v any) bson.D {
			n := 0
			for _, s := range subs {
				if len(s.explain(v)) == 0 {
					n++
				}
			}
			switch {
			case e.Key == "allOf" && n == len(subs), e.Key == "anyOf" && n > 0, e.Key == "oneOf" && n == 1:
				return nil
			}
			return failed(e.Key, e.Value, "at least one clause did not match", considered(v)...)
		}
	case "not":
		sd, ok := e.Value.(bson.D)
		if !ok {
			return nil, merr.New(merr.TypeMismatch, "$jsonSchema keyword 'not' must be an object")
		}
		sub, err := CompileSchema(sd)
		if err != nil {
			return nil, err
		}
		r.check = func(v any) bson.D {
			if len(sub.explain(v)) > 0 {
				return nil
			}
			return failed(e.Key, e.Value, "child expression matched", considered(v)...)
		}
	case "dependencies":
		return dependencies(e)
	default:
		return nil, schemaErr("Unknown $jsonSchema keyword: %s", e.Key)
	}
	return r, nil
}

func schemaList(name string, arr bson.A) ([]*Schema, error) {
	subs := make([]*Schema, len(arr))
	for i, x := range arr {
		sd, ok := x.(bson.D)
		if !ok {
			return nil, merr.New(merr.TypeMismatch, "$jsonSchema keyword '%s' must be an array of objects", name)
		}
		var err error
		if subs[i], err = CompileSchema(sd); err != nil {
			return nil, err
		}
	}
	return subs, nil
}

// additionalProperties handles additionalProperties and
// patternProperties together, as both decide which fields are "other".
func additionalProperties(e bson.E, spec bson.D) (*schemaRule, error) {
	if e.Key == "patternProperties" {
		if _, has := bsonkit.Get(spec, "additionalProperties"); has {
			return nil, nil // evaluated with additionalProperties
		}
	}
	var named []string
	if props, ok := bsonkit.Get(spec, "properties"); ok {
		if d, ok := props.(bson.D); ok {
			for _, p := range d {
				named = append(named, p.Key)
			}
		}
	}
	type pattern struct {
		re  *regexPred
		sub *Schema
	}
	var patterns []pattern
	if pp, ok := bsonkit.Get(spec, "patternProperties"); ok {
		d, ok := pp.(bson.D)
		if !ok {
			return nil, merr.New(merr.TypeMismatch, "$jsonSchema keyword 'patternProperties' must be an object")
		}
		for _, p := range d {
			re, err := newRegexPred(p.Key, "")
			if err != nil {
				return nil, err
			}
			sd, ok := p.Value.(bson.D)
			if !ok {
				return nil, merr.New(merr.TypeMismatch, "$jsonSchema keyword 'patternProperties' has property '%s' which is not an object", p.Key)
			}
			sub, err := CompileSchema(sd)
			if err != nil {
				return nil, err
			}
			patterns = append(patterns, pattern{re, sub})
		}
	}
	var allowed = true
	var other *Schema
	if ap, ok := bsonkit.Get(spec, "additionalProperties"); ok {
		switch x := ap.(type) {
		case bool:
			allowed = x
		case bson.D:
			var err error
			if other, err = CompileSchema(x); err != nil {
				return nil, err
			}
		default:
			return nil, merr.New(merr.TypeMismatch, "$jsonSchema keyword 'additionalProperties' must be either an object or a boolean")
		}
	}
	return &schemaRule{name: e.Key, spec: e.Value, check: func(v any) bson.D {
		d, ok := v.(bson.D)
		if !ok {
			return nil
		}
		var extra bson.A
		for _, f := range d {
			matched := false
			for _, p := range patterns {
				if p.re.matchString(f.Key) {
					matched = true
					if len(p.sub.explain(f.Value)) > 0 {
						return failed("patternProperties", get1(spec, "patternProperties"), "property did not match the pattern's schema", bson.E{Key: "propertyName", Value: f.Key})
					}
				}
			}
			if matched || slices.Contains(named, f.Key) {
				continue
			}
			if !allowed || (other != nil && len(other.explain(f.Value)) > 0) {
				extra = append(extra, f.Key)
			}
		}
		if extra == nil {
			return nil
		}
		return bson.D{{Key: "operatorName", Value: "additionalProperties"}, {Key: "specifiedAs", Value: bson.D{{Key: "additionalProperties", Value: get1(spec, "additionalProperties")}}}, {Key: "additionalProperties", Value: extra}}
	}}, nil
}

func itemsRule(e bson.E, spec bson.D) (*schemaRule, error) {
	if e.Key == "additionalItems" {
		items, has := bsonkit.Get(spec, "items")
		if _, isArray := items.(bson.A); !has || !isArray {
			return nil, nil // ignored unless items is an array, as in draft 4
		}
	}
	var all *Schema
	var tuple []*Schema
	switch x := e.Value.(type) {
	case bson.D:
		var err error
		if all, err = CompileSchema(x); err != nil {
			return nil, err
		}
	case bson.A:
		if e.Key == "additionalItems" {
			return nil, merr.New(merr.TypeMismatch, "$jsonSchema keyword 'additionalItems' must be either an object or a boolean")
		}
		var err error
		if tuple, err = schemaList("items", x); err != nil {
			return nil, err
		}
	case bool:
		if e.Key != "additionalItems" {
			return nil, merr.New(merr.TypeMismatch, "$jsonSchema keyword 'items' must be an array or an object")
		}
	default:
		return nil, merr.New(merr.TypeMismatch, "$jsonSchema keyword '%s' must be an array or an object", e.Key)
	}
	tupleLen := 0
	if e.Key == "additionalItems" {
		tupleLen = len(get1(spec, "items").(bson.A))
	}
	return &schemaRule{name: e.Key, spec: e.Value, check: func(v any) bson.D {
		arr, ok := v.(bson.A)
		if !ok {
			return nil
		}
		for i, x := range arr {
			var s *Schema
			switch {
			case e.Key == "additionalItems" && i < tupleLen:
				continue
			case e.Key == "additionalItems":
				if b, ok := e.Value.(bool); ok {
					if !b {
						return failed(e.Key, e.Value, "found additional items", considered(v)...)
					}
					continue
				}
				s = all
			case all != nil:
				s = all
			case i < len(tuple):
				s = tuple[i]
			default:
				continue
			}
			if len(s.explain(x)) > 0 {
				return failed(e.Key, e.Value, "At least one item did not match the sub-schema", bson.E{Key: "itemIndex", Value: int32(i)})
			}
		}
		return nil
	}}, nil
}

func dependencies(e bson.E) (*schemaRule, error) {
	d, ok := e.Value.(bson.D)
	if !ok {
		return nil, merr.New(merr.TypeMismatch, "$jsonSchema keyword 'dependencies' must be an object")
	}
	type dep struct {
		field  string
		fields []string
		schema *Schema
	}
	deps := make([]dep, len(d))
	for i, x := range d {
		deps[i].field = x.Key
		switch y := x.Value.(type) {
		case bson.D:
			var err error
			if deps[i].schema, err = CompileSchema(y); err != nil {
				return nil, err
			}
		case bson.A:
			for _, f := range y {
				s, ok := f.(string)
				if !ok {
					return nil, merr.New(merr.TypeMismatch, "property '%s' in $jsonSchema keyword 'dependencies' must be an array of strings", x.Key)
				}
				deps[i].fields = append(deps[i].fields, s)
			}
		default:
			return nil, merr.New(merr.TypeMismatch, "property '%s' in $jsonSchema keyword 'dependencies' must be either an object or an array", x.Key)
		}
	}
	return &schemaRule{name: e.Key, spec: e.Value, check: func(v any) bson.D {
		doc, ok := v.(bson.D)
		if !ok {
			return nil
		}
		for _, dp := range deps {
			if _, has := bsonkit.Get(doc, dp.field); !has {
				continue
			}
			for _, f := range dp.fields {
				if _, has := bsonkit.Get(doc, f); !has {
					return failed(e.Key, e.Value, "dependency not satisfied", bson.E{Key: "missingProperty", Value: f})
				}
			}
			if dp.schema != nil && len(dp.schema.explain(doc)) > 0 {
				return failed(e.Key, e.Value, "dependency schema not satisfied", bson.E{Key: "propertyName", Value: dp.field})
			}
		}
		return nil
	}}, nil
}

// get1 is the value of key in d, nil when absent.
func get1(d bson.D, key string) any {
	v, _ := bsonkit.Get(d, key)
	return v
}

// schemaEqual is $jsonSchema's equality of two values made by
// unorderedFields.
func schemaEqual(a, b any) bool {
	return bsonkit.TypeRank(a) == bsonkit.TypeRank(b) && bsonkit.Equal(a, b)
}

// unorderedFields returns v with the fields of every document in it sorted
// by name, so that comparing two such values ignores field order, as
// BSONObj::woCompare with kIgnoreFieldOrder does.
func unorderedFields(v any) any {
	switch x := v.(type) {
	case bson.D:
		out := make(bson.D, len(x))
		for i, e := range x {
			out[i] = bson.E{Key: e.Key, Value: unorderedFields(e.Value)}
		}
		slices.SortStableFunc(out, func(a, b bson.E) int { return strings.Compare(a.Key, b.Key) })
		return out
	case bson.A:
		out := make(bson.A, len(x))
		for i, el := range x {
			out[i] = unorderedFields(el)
		}
		return out
	}
	return v
}
