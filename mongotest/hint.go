package mongotest

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/engine"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// checkHint validates a hint (an index name or key pattern) against ns's
// indexes. mongotest plans no queries, so a hint to a full index changes
// nothing; a hint naming no index is MongoDB's BadValue, and one to a
// sparse or partial index, which on MongoDB limits the result to the
// documents in that index, is refused rather than ignored.
func checkHint(e *engine.Engine, ns engine.Namespace, hint any) error {
	if hint == nil {
		return nil
	}
	var name string
	var keys bson.D
	switch h := hint.(type) {
	case string:
		name = h
	case bson.D:
		if len(h) == 1 && h[0].Key == "$natural" {
			if n, _ := bsonkit.ToFloat(h[0].Value); n < 0 {
				return merr.New(merr.NotImplemented, "mongotest does not implement the hint {$natural: -1} (reverse natural order) on %s", ns.String())
			}
			return nil
		}
		keys = h
	default:
		return typeErr("hint", hint, "object")
	}
	specs, err := e.ListIndexes(ns)
	if err != nil {
		return nil // as MongoDB: no collection, nothing to hint, an empty result
	}
	for _, spec := range specs {
		if name != "" && field(spec, "name") != name {
			continue
		}
		if keys != nil && !samePattern(field(spec, "key"), keys) {
			continue
		}
		if hidden, _ := field(spec, "hidden").(bool); hidden {
			continue // as MongoDB's planner, which does not see hidden indexes
		}
		if sparse, _ := field(spec, "sparse").(bool); sparse || field(spec, "partialFilterExpression") != nil {
			return merr.New(merr.NotImplemented, "mongotest does not implement a hint to the sparse or partial index %v on %s", field(spec, "name"), ns.String())
		}
		return nil
	}
	return merr.New(merr.BadValue, "error processing query: ns=%s planner returned error :: caused by :: hint provided does not correspond to an existing index", ns.String())
}

// samePattern compares index key patterns: the same fields in the same
// order, with numerically equal directions ({a: 1} matches {a: 1.0}).
func samePattern(v any, want bson.D) bool {
	got, ok := v.(bson.D)
	if !ok || len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].Key != want[i].Key || bsonkit.Compare(got[i].Value, want[i].Value) != 0 {
			return false
		}
	}
	return true
}

// checkTailable answers a find's tailable and awaitData options as MongoDB
// does for a collection that is not capped, which every mongotest
// collection is (capped collections are refused at create).
func checkTailable(cmd bson.D, ns engine.Namespace) error {
	tailable, err := boolField(cmd, "tailable", false)
	if err != nil {
		return err
	}
	awaitData, err := boolField(cmd, "awaitData", false)
	if err != nil {
		return err
	}
	if awaitData && !tailable {
		return merr.New(merr.FailedToParse, "Cannot set 'awaitData' without also setting 'tailable'")
	}
	if tailable {
		return merr.New(merr.BadValue, "error processing query: ns=%s tailable cursor requested on non capped collection", ns.String())
	}
	return nil
}
