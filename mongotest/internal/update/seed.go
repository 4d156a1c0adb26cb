package update

import (
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// Seed builds the document an upsert starts from: each equality of the
// filter (dotted paths as the filter spells them) becomes a field, creating
// nested documents for dotted paths. Fields are added in path order, as
// MongoDB's equalities are a map keyed by path (pathsupport::
// EqualityMatches, a std::map), and _id, when present, comes first.
func Seed(filterEqualities bson.D) (bson.D, error) {
	filterEqualities = slices.Clone(filterEqualities)
	slices.SortStableFunc(filterEqualities, func(a, b bson.E) int { return strings.Compare(a.Key, b.Key) })
	out := bson.D{}
	seen := make([]string, 0, len(filterEqualities))
	for _, e := range filterEqualities {
		parts, err := splitPath(e.Key)
		if err != nil {
			return nil, err
		}
		for _, p := range seen {
			switch {
			case p == e.Key:
				return nil, merr.New(merr.NotSingleValueField,
					"cannot infer query fields to set, path '%s' is matched twice", e.Key)
			case strings.HasPrefix(e.Key, p+"."), strings.HasPrefix(p, e.Key+"."):
				return nil, merr.New(merr.NotSingleValueField,
					"cannot infer query fields to set, both paths '%s' and '%s' are matched", p, e.Key)
			}
		}
		seen = append(seen, e.Key)
		out = seedPath(out, parts, bsonkit.Clone(e.Value))
	}
	return idFirst(out), nil
}

// seedPath sets v at parts inside d. The conflict checks in Seed guarantee
// every existing prefix is a document it created.
func seedPath(d bson.D, parts []string, v any) bson.D {
	if len(parts) == 1 {
		return append(d, bson.E{Key: parts[0], Value: v})
	}
	for i := range d {
		if d[i].Key == parts[0] {
			sub, _ := d[i].Value.(bson.D)
			d[i].Value = seedPath(sub, parts[1:], v)
			return d
		}
	}
	return append(d, bson.E{Key: parts[0], Value: seedPath(bson.D{}, parts[1:], v)})
}
