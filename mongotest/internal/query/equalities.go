package query

import (
	"go.mongodb.org/mongo-driver/v2/bson"
)

// equality is an upsert seed: `path: value` or `path: {$eq: value}` found at
// the top level of a filter or inside its top-level $and.
type equality struct {
	path  string
	value any
}

// Equalities returns the fields an upsert may seed its new document with:
// top-level `field: value` equalities, `field: {$eq: value}`, `field: {$in:
// [value]}`, each value of `field: {$all: [...]}`, and those inside
// top-level $and or a one-clause $or (which MongoDB's canonicalization
// collapses), keyed by their dotted paths as written ("a.b"), in filter
// order. A path may appear twice or under another: the caller decides
// which paths it uses and refuses conflicts among those (update.Seed), as
// a replacement upsert looks at _id only. Values are shared with the
// filter; callers clone before mutating.
func (f *Filter) Equalities() bson.D {
	if f == nil || len(f.eqs) == 0 {
		return bson.D{}
	}
	out := make(bson.D, 0, len(f.eqs))
	for _, e := range f.eqs {
		out = append(out, bson.E{Key: e.path, Value: e.value})
	}
	return out
}
