package mongotest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Manual, reference/bson-type-comparison-order ("Arrays"): "A comparison
// of an empty array (example, [ ]) considers the empty array as less than
// a null value or a missing field value." The sort key of an empty array
// is undefined (the btree key generator's "x : [] - need to insert
// undefined", src/mongo/db/index/btree_key_generator.cpp), which BSON
// orders after MinKey and before null. So an ascending sort puts [ ] before
// null and missing, a descending sort after them, in find and $sort alike.
func TestEmptyArraySortsBelowNullAndMissing(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	insertJSON(t, ctx, coll, `[{"_id":1,"a":null},{"_id":2},{"_id":3,"a":[]},{"_id":4,"a":{"$minKey":1}},{"_id":5,"a":[{"b":[]}]}]`)
	ids := func(docs []bson.D) []int32 {
		out := []int32{}
		for _, d := range docs {
			out = append(out, replyField(d, "_id").(int32))
		}
		return out
	}
	find := func(sort bson.D) []int32 {
		cur, err := coll.Find(ctx, bson.D{}, options.Find().SetSort(sort))
		require.NoError(t, err)
		var docs []bson.D
		require.NoError(t, cur.All(ctx, &docs))
		return ids(docs)
	}
	aggregate := func(sort bson.D) []int32 {
		cur, err := coll.Aggregate(ctx, bson.A{bson.D{{Key: "$sort", Value: sort}}})
		require.NoError(t, err)
		var docs []bson.D
		require.NoError(t, cur.All(ctx, &docs))
		return ids(docs)
	}
	asc := bson.D{{Key: "a", Value: 1}, {Key: "_id", Value: 1}}
	desc := bson.D{{Key: "a", Value: -1}, {Key: "_id", Value: 1}}
	// {a: [{b: []}]} sorts by its element, a document, after the rest.
	assert.Equal(t, []int32{4, 3, 1, 2, 5}, find(asc), "ascending: MinKey, [ ], then null and missing")
	assert.Equal(t, []int32{5, 1, 2, 3, 4}, find(desc), "descending: [ ] after null and missing")
	assert.Equal(t, []int32{4, 3, 1, 2, 5}, aggregate(asc))
	assert.Equal(t, []int32{5, 1, 2, 3, 4}, aggregate(desc))
	// Through a path: a.b is undefined for {a: []} and {a: [{b: []}]}, null
	// (missing) for the others.
	assert.Equal(t, []int32{3, 5, 1, 2, 4}, find(bson.D{{Key: "a.b", Value: 1}, {Key: "_id", Value: 1}}))
}

// An empty array is indexed as undefined, not null
// (src/mongo/db/index/btree_key_generator.cpp: "x : [] - need to insert
// undefined", for an array at the end of the key's path or along it), so
// in a unique index {e: []} and a document without e (key null) do not
// collide, while two {e: []} do; the same for a dotted key through an
// empty array. mongotest keyed [] as null.
func TestUniqueIndexKeysAnEmptyArrayApartFromNull(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("d")
	_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "e", Value: 1}}, Options: options.Index().SetUnique(true)})
	require.NoError(t, err)
	_, err = coll.InsertOne(ctx, fromJSON(t, `{"_id":1,"e":[]}`))
	require.NoError(t, err)
	_, err = coll.InsertOne(ctx, fromJSON(t, `{"_id":2}`))
	require.NoError(t, err, "missing (null key) does not collide with [] (undefined key)")
	_, err = coll.InsertOne(ctx, fromJSON(t, `{"_id":3,"e":[]}`))
	requireWriteError(t, err, 11000)

	nested := db.Collection("n")
	_, err = nested.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "a.b", Value: 1}}, Options: options.Index().SetUnique(true)})
	require.NoError(t, err)
	insertJSON(t, ctx, nested, `[{"_id":1,"a":[]},{"_id":2,"a":{}}]`)
	_, err = nested.InsertOne(ctx, fromJSON(t, `{"_id":3,"a":[{"b":[]}]}`))
	requireWriteError(t, err, 11000)
	// Queries still find them: {e: null} matches the missing field only.
	n, err := coll.CountDocuments(ctx, bson.D{{Key: "e", Value: nil}})
	require.NoError(t, err)
	assert.EqualValues(t, 1, n)
	n, err = nested.CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, 2, n, "the refused insert wrote nothing")
}
