package query

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/merr"
)

// equality is an upsert seed: `path: value` or `path: {$eq: value}` found at
// the top level of a filter or inside its top-level $and.
type equality struct {
	path  string
	value any
}

// Equalities returns the fields an upsert seeds its new document with:
// top-level `field: value` equalities, `field: {$eq: value}`, `field: {$in:
// [value]}`, and those inside top-level $and or a one-clause $or (which
// MongoDB's canonicalization collapses), keyed by their dotted paths as
// written ("a.b").
// Like MongoDB it fails with NotSingleValueField when a path is matched
// twice or one path is a prefix of another. Values are shared with the
// filter; callers clone before mutating.
func (f *Filter) Equalities() (bson.D, error) {
	if f == nil || len(f.eqs) == 0 {
		return bson.D{}, nil
	}
	out := make(bson.D, 0, len(f.eqs))
	for i, e := range f.eqs {
		for _, prev := range f.eqs[:i] {
			switch {
			case prev.path == e.path:
				return nil, merr.New(merr.NotSingleValueField,
					"cannot infer query fields to set, path '%s' is matched twice", e.path)
			case isPathPrefix(prev.path, e.path):
				return nil, merr.New(merr.NotSingleValueField,
					"cannot infer query fields to set, both paths '%s' and '%s' are matched", e.path, prev.path)
			case isPathPrefix(e.path, prev.path):
				return nil, merr.New(merr.NotSingleValueField,
					"cannot infer query fields to set, both paths '%s' and '%s' are matched", prev.path, e.path)
			}
		}
		out = append(out, bson.E{Key: e.path, Value: e.value})
	}
	return out, nil
}

// isPathPrefix reports whether a is a strict dotted prefix of b ("a" of "a.b").
func isPathPrefix(a, b string) bool {
	return len(b) > len(a) && strings.HasPrefix(b, a) && b[len(a)] == '.'
}
