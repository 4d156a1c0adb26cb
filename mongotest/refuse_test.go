package mongotest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/mongotest"
)

// A hint must name an existing index, as on MongoDB (BadValue); a write
// with a bad hint changes nothing.
func TestHintToAMissingIndexIsRefused(t *testing.T) {
	srv := mongotest.Start(t)
	ctx := testContext(t)
	coll := connect(t, srv).Database("db").Collection("c")
	_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "x", Value: 1}})
	require.NoError(t, err)
	_, err = coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "x", Value: 1}}})
	require.NoError(t, err)
	_, err = coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "s", Value: 1}}, Options: options.Index().SetSparse(true)})
	require.NoError(t, err)

	requireCode := func(t *testing.T, err error, code int) {
		t.Helper()
		var se mongo.ServerError
		require.ErrorAs(t, err, &se)
		require.True(t, se.HasErrorCode(code), "want code %d, got %v", code, err)
	}

	t.Run("find with an existing index by name or key pattern runs", func(t *testing.T) {
		for _, hint := range []any{"x_1", bson.D{{Key: "x", Value: 1}}, "_id_", bson.D{{Key: "$natural", Value: 1}}} {
			n, err := coll.CountDocuments(ctx, bson.D{}, options.Count().SetHint(hint))
			require.NoError(t, err)
			assert.EqualValues(t, 1, n)
			cur, err := coll.Find(ctx, bson.D{}, options.Find().SetHint(hint))
			require.NoError(t, err)
			var docs []bson.D
			require.NoError(t, cur.All(ctx, &docs))
			assert.Len(t, docs, 1)
		}
	})
	t.Run("find with a missing index fails with BadValue", func(t *testing.T) {
		_, err := coll.Find(ctx, bson.D{}, options.Find().SetHint("nope_1"))
		requireCode(t, err, 2)
		_, err = coll.Find(ctx, bson.D{}, options.Find().SetHint(bson.D{{Key: "x", Value: -1}}))
		requireCode(t, err, 2)
		_, err = coll.Aggregate(ctx, mongo.Pipeline{}, options.Aggregate().SetHint("nope_1"))
		requireCode(t, err, 2)
	})
	t.Run("writes with a missing index fail and change nothing", func(t *testing.T) {
		_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 2}}}}, options.UpdateOne().SetHint("nope_1"))
		requireCode(t, err, 2)
		_, err = coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: 1}}, options.DeleteOne().SetHint("nope_1"))
		requireCode(t, err, 2)
		err = coll.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 2}}}}, options.FindOneAndUpdate().SetHint("nope_1")).Err()
		requireCode(t, err, 2)
		var got bson.D
		require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&got))
		assert.Equal(t, bson.D{{Key: "_id", Value: int32(1)}, {Key: "x", Value: int32(1)}}, got)
	})
	t.Run("a hint to a sparse index, which would change the result, is refused", func(t *testing.T) {
		_, err := coll.Find(ctx, bson.D{}, options.Find().SetHint("s_1"))
		requireCode(t, err, 238)
	})
}

// Every mongotest collection is a plain (not capped) one, so a tailable
// cursor is refused as MongoDB refuses it there, rather than returned as a
// plain cursor that ends.
func TestTailableCursorIsRefused(t *testing.T) {
	srv := mongotest.Start(t)
	ctx := testContext(t)
	coll := connect(t, srv).Database("db").Collection("c")
	_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	require.NoError(t, err)
	for _, ct := range []options.CursorType{options.Tailable, options.TailableAwait} {
		_, err := coll.Find(ctx, bson.D{}, options.Find().SetCursorType(ct))
		var se mongo.ServerError
		require.ErrorAs(t, err, &se)
		assert.True(t, se.HasErrorCode(2), "tailable: %v", err)
		assert.ErrorContains(t, err, "tailable cursor requested on non capped collection")
	}
}

func TestTTLIndexOptionIsValidated(t *testing.T) {
	srv := mongotest.Start(t)
	ctx := testContext(t)
	coll := connect(t, srv).Database("db").Collection("c")
	_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "a", Value: 1}, {Key: "b", Value: 1}}, Options: options.Index().SetExpireAfterSeconds(60)})
	require.ErrorContains(t, err, "compound indexes do not support TTL")
	_, err = coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "a", Value: 1}}, Options: options.Index().SetExpireAfterSeconds(-1)})
	require.ErrorContains(t, err, "expireAfterSeconds")
	specs, err := coll.Indexes().ListSpecifications(ctx)
	require.NoError(t, err)
	assert.Empty(t, specs, "no index, not even the collection, was created")
}

// A statement's unknown or unimplemented field fails the whole command
// before any statement runs, as MongoDB's parser does ("update with sort"
// on a 7.0 server): the earlier statements are not applied either.
func TestAStatementsUnknownFieldFailsTheWholeCommand(t *testing.T) {
	srv := mongotest.Start(t)
	ctx := testContext(t)
	db := connect(t, srv).Database("db")
	_, err := db.Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "x", Value: 1}})
	require.NoError(t, err)
	err = db.RunCommand(ctx, bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{
		bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 2}}}}}},
		bson.D{{Key: "q", Value: bson.D{}}, {Key: "u", Value: bson.D{{Key: "$inc", Value: bson.D{{Key: "x", Value: 1}}}}}, {Key: "sort", Value: bson.D{{Key: "_id", Value: -1}}}},
	}}}).Err()
	var ce mongo.CommandError
	require.ErrorAs(t, err, &ce)
	assert.EqualValues(t, 40415, ce.Code)
	assert.Equal(t, "BSON field 'update.updates.sort' is an unknown field.", ce.Message)
	var got bson.D
	require.NoError(t, db.Collection("c").FindOne(ctx, bson.D{}).Decode(&got))
	assert.Equal(t, bson.D{{Key: "_id", Value: int32(1)}, {Key: "x", Value: int32(1)}}, got, "no statement ran")
}

// Text and geo indexes need their own key formats and query operators,
// which mongotest does not have: creating one is refused, never built as
// a plain index on the field.
func TestTextAndGeoIndexesAreRefused(t *testing.T) {
	srv := mongotest.Start(t)
	ctx := testContext(t)
	coll := connect(t, srv).Database("db").Collection("c")
	for _, kind := range []string{"text", "2d", "2dsphere"} {
		_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "f", Value: kind}}})
		requireCommandError(t, err, 238, "NotImplemented")
		assert.Contains(t, err.Error(), kind)
	}
	cur, err := coll.Indexes().List(ctx)
	if err == nil {
		var specs []bson.D
		require.NoError(t, cur.All(ctx, &specs))
		assert.LessOrEqual(t, len(specs), 1, "only _id_: %v", specs)
	}
}

// Wildcard indexes ({"$**": 1}, {"a.$**": 1}) are valid MongoDB key
// patterns (a "$**" last component, index_key_validate.cpp), which
// mongotest does not build: refused as not implemented, not as an illegal
// field name, while any other component starting with '$' stays illegal.
func TestWildcardIndexesAreRefusedAsNotImplemented(t *testing.T) {
	srv := mongotest.Start(t)
	ctx := testContext(t)
	coll := connect(t, srv).Database("db").Collection("c")
	for _, key := range []string{"$**", "a.$**"} {
		_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: key, Value: 1}}})
		requireCommandError(t, err, 238, "NotImplemented")
		assert.Contains(t, err.Error(), "wildcard")
	}
	for _, key := range []string{"$a", "a.$**.b", "a.$x"} {
		_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: key, Value: 1}}})
		requireCommandError(t, err, 67, "CannotCreateIndex")
	}
}
