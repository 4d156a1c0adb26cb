package mongotest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The positional $ update operator stands for the offset of the array
// element the query matched (manual: reference/operator/update/positional;
// MongoDB records it while matching, MatchDetails::elemMatchKey, and
// UpdateObjectNode::apply binds "$" to it). Without such a match — a query
// that matched through no array, a $or of several paths, a negation, an
// upsert that inserts — the update fails with BadValue (2) "The positional
// operator did not find the match needed from the query." and changes
// nothing.
func TestPositionalOperator(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	reset := func(t *testing.T, docs string) {
		t.Helper()
		_, err := coll.DeleteMany(ctx, bson.D{})
		require.NoError(t, err)
		insertJSON(t, ctx, coll, docs)
	}
	noMatch := "The positional operator did not find the match needed from the query"

	t.Run("the manual's students: the first matching grade", func(t *testing.T) {
		reset(t, `[{"_id":1,"grades":[85,80,80]},{"_id":2,"grades":[88,90,92]},{"_id":3,"grades":[85,100,90]}]`)
		_, err := coll.UpdateOne(ctx, fromJSON(t, `{"_id":1,"grades":80}`), fromJSON(t, `{"$set":{"grades.$":82}}`))
		require.NoError(t, err)
		requireStored(t, ctx, coll, `[{"_id":1,"grades":[85,82,80]},{"_id":2,"grades":[88,90,92]},{"_id":3,"grades":[85,100,90]}]`)
	})
	t.Run("a dotted query reaches the matched document", func(t *testing.T) {
		reset(t, `[{"_id":4,"grades":[{"grade":80,"mean":75,"std":8},{"grade":85,"mean":90,"std":5},{"grade":85,"mean":85,"std":8}]}]`)
		_, err := coll.UpdateOne(ctx, fromJSON(t, `{"_id":4,"grades.grade":85}`), fromJSON(t, `{"$set":{"grades.$.std":6}}`))
		require.NoError(t, err)
		requireStored(t, ctx, coll, `[{"_id":4,"grades":[{"grade":80,"mean":75,"std":8},{"grade":85,"mean":90,"std":6},{"grade":85,"mean":85,"std":8}]}]`)
	})
	t.Run("elemMatch picks the element matching all its conditions", func(t *testing.T) {
		reset(t, `[{"_id":5,"grades":[{"grade":80,"mean":75,"std":8},{"grade":85,"mean":90,"std":5},{"grade":90,"mean":85,"std":3}]}]`)
		_, err := coll.UpdateOne(ctx, fromJSON(t, `{"_id":5,"grades":{"$elemMatch":{"grade":{"$lte":90},"mean":{"$gt":80}}}}`),
			fromJSON(t, `{"$set":{"grades.$.std":6}}`))
		require.NoError(t, err)
		requireStored(t, ctx, coll, `[{"_id":5,"grades":[{"grade":80,"mean":75,"std":8},{"grade":85,"mean":90,"std":6},{"grade":90,"mean":85,"std":3}]}]`)
	})
	t.Run("updateMany binds $ in each document", func(t *testing.T) {
		reset(t, `[{"_id":1,"a":[1,5,9]},{"_id":2,"a":[7,2]}]`)
		_, err := coll.UpdateMany(ctx, fromJSON(t, `{"a":{"$gt":4}}`), fromJSON(t, `{"$mul":{"a.$":10}}`))
		require.NoError(t, err)
		requireStored(t, ctx, coll, `[{"_id":1,"a":[1,50,9]},{"_id":2,"a":[70,2]}]`)
	})
	t.Run("findAndModify binds $ and returns the new document", func(t *testing.T) {
		reset(t, `[{"_id":1,"a":[{"k":"x","n":1},{"k":"y","n":1}]}]`)
		var got bson.D
		require.NoError(t, coll.FindOneAndUpdate(ctx, fromJSON(t, `{"a.k":"y"}`), fromJSON(t, `{"$inc":{"a.$.n":1}}`),
			options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&got))
		assert.Equal(t, toJSON(t, fromJSON(t, `{"_id":1,"a":[{"k":"x","n":1},{"k":"y","n":2}]}`)), toJSON(t, got))
	})
	t.Run("an upsert that matches binds $", func(t *testing.T) {
		reset(t, `[{"_id":1,"a":[1,2]}]`)
		_, err := coll.UpdateOne(ctx, fromJSON(t, `{"a":2}`), fromJSON(t, `{"$set":{"a.$":3}}`), options.UpdateOne().SetUpsert(true))
		require.NoError(t, err)
		requireStored(t, ctx, coll, `[{"_id":1,"a":[1,3]}]`)
	})
	t.Run("a one-clause $or is its clause", func(t *testing.T) {
		reset(t, `[{"_id":1,"a":[1,2]}]`)
		_, err := coll.UpdateOne(ctx, fromJSON(t, `{"$or":[{"a":2}]}`), fromJSON(t, `{"$set":{"a.$":3}}`))
		require.NoError(t, err)
		requireStored(t, ctx, coll, `[{"_id":1,"a":[1,3]}]`)
	})
	t.Run("the last array condition of the query's $and wins", func(t *testing.T) {
		// Canonical order sorts the conjuncts by operator, then path: the
		// equality on b comes after the one on a.
		reset(t, `[{"_id":1,"a":[0,1],"b":[0,0,1]}]`)
		_, err := coll.UpdateOne(ctx, fromJSON(t, `{"b":1,"a":1}`), fromJSON(t, `{"$set":{"a.$":9}}`))
		require.NoError(t, err)
		requireStored(t, ctx, coll, `[{"_id":1,"a":[0,1,9],"b":[0,0,1]}]`)
	})
	t.Run("$ beside the offset it stands for is a conflict", func(t *testing.T) {
		reset(t, `[{"_id":1,"a":[1,2]}]`)
		_, err := coll.UpdateOne(ctx, fromJSON(t, `{"a":2}`), fromJSON(t, `{"$set":{"a.$":3,"a.1":4}}`))
		requireArgRefused(t, err, "Update created a conflict at 'a.1'", 40)
		requireStored(t, ctx, coll, `[{"_id":1,"a":[1,2]}]`)
	})

	for _, tt := range []struct{ name, filter string }{
		{"a query through no array", `{"_id":1}`},
		{"a $or of several clauses", `{"$or":[{"a":2},{"b":5}]}`},
		{"a negation", `{"a":{"$ne":5}}`},
		{"a whole-array equality", `{"a":[1,2]}`},
	} {
		t.Run(tt.name+" gives $ nothing to stand for", func(t *testing.T) {
			reset(t, `[{"_id":1,"a":[1,2]}]`)
			_, err := coll.UpdateOne(ctx, fromJSON(t, tt.filter), fromJSON(t, `{"$set":{"a.$":3}}`))
			requireArgRefused(t, err, noMatch, 2)
			err = coll.FindOneAndUpdate(ctx, fromJSON(t, tt.filter), fromJSON(t, `{"$set":{"a.$":3}}`)).Err()
			requireArgRefused(t, err, noMatch, 2)
			requireStored(t, ctx, coll, `[{"_id":1,"a":[1,2]}]`)
		})
	}
	t.Run("an upsert that inserts fails", func(t *testing.T) {
		reset(t, `[{"_id":1,"a":[1,2]}]`)
		_, err := coll.UpdateOne(ctx, fromJSON(t, `{"_id":3,"a":80}`), fromJSON(t, `{"$set":{"a.$":82}}`), options.UpdateOne().SetUpsert(true))
		requireArgRefused(t, err, noMatch, 2)
		err = coll.FindOneAndUpdate(ctx, fromJSON(t, `{"_id":3,"a":80}`), fromJSON(t, `{"$set":{"a.$":82}}`), options.FindOneAndUpdate().SetUpsert(true)).Err()
		requireArgRefused(t, err, noMatch, 2)
		requireStored(t, ctx, coll, `[{"_id":1,"a":[1,2]}]`)
	})
	t.Run("a path with two $ or a leading $ is refused", func(t *testing.T) {
		reset(t, `[{"_id":1,"a":[[1]]}]`)
		_, err := coll.UpdateOne(ctx, fromJSON(t, `{"a":[1]}`), fromJSON(t, `{"$set":{"a.$.$":3}}`))
		requireArgRefused(t, err, "Too many positional (i.e. '$') elements found in path 'a.$.$'", 2)
		_, err = coll.UpdateOne(ctx, fromJSON(t, `{"a":[1]}`), fromJSON(t, `{"$set":{"$.a":3}}`))
		requireArgRefused(t, err, "Cannot have positional (i.e. '$') element in the first position in path '$.a'", 2)
	})
}
