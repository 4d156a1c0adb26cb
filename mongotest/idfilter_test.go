package mongotest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/mongotest"
)

// A filter with an _id equality and other fields matches exactly what
// MongoDB's does, whether the server looks the _id up or scans.
func TestIDEqualityWithOtherFieldsMatchesAsMongoDB(t *testing.T) {
	ctx := context.Background()
	coll := connect(t, mongotest.Start(t, mongotest.WithoutListener())).Database("db").Collection("c")
	_, err := coll.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: 1.0}, {Key: "x", Value: 1}},
		bson.D{{Key: "_id", Value: int32(2)}, {Key: "x", Value: 2}},
		bson.D{{Key: "_id", Value: bson.D{{Key: "a", Value: 1}, {Key: "b", Value: "x"}}}, {Key: "x", Value: 1}},
		bson.D{{Key: "_id", Value: "abc"}, {Key: "x", Value: 1}},
	})
	require.NoError(t, err)

	sub := func(a any, b string) bson.D { return bson.D{{Key: "a", Value: a}, {Key: "b", Value: b}} }
	tests := []struct {
		name string
		give bson.D
		want int64
	}{
		{"the other field matches", bson.D{{Key: "_id", Value: 2}, {Key: "x", Value: 2}}, 1},
		{"the other field does not match", bson.D{{Key: "_id", Value: 2}, {Key: "x", Value: 1}}, 0},
		{"the other field is an operator", bson.D{{Key: "_id", Value: 2}, {Key: "x", Value: bson.D{{Key: "$lte", Value: 5}}}}, 1},
		{"an int _id finds a double 1.0", bson.D{{Key: "_id", Value: int32(1)}, {Key: "x", Value: int64(1)}}, 1},
		{"a long _id finds a double 1.0", bson.D{{Key: "x", Value: 1}, {Key: "_id", Value: int64(1)}}, 1},
		{"a double 1.5 _id finds no 1", bson.D{{Key: "_id", Value: 1.5}, {Key: "x", Value: 1}}, 0},
		{"_id given twice, equal", bson.D{{Key: "_id", Value: 2}, {Key: "_id", Value: 2.0}, {Key: "x", Value: 2}}, 1},
		{"_id given twice, different", bson.D{{Key: "_id", Value: 1}, {Key: "_id", Value: 2}, {Key: "x", Value: 2}}, 0},
		{"_id given as an operator, then a value", bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: 1}}}, {Key: "_id", Value: 2}}, 1},
		{"_id given as a value, then an operator that excludes it", bson.D{{Key: "_id", Value: 2}, {Key: "_id", Value: bson.D{{Key: "$ne", Value: 2}}}}, 0},
		{"_id a sub-document", bson.D{{Key: "_id", Value: sub(1, "x")}, {Key: "x", Value: 1}}, 1},
		{"_id a sub-document with a double", bson.D{{Key: "_id", Value: sub(1.0, "x")}, {Key: "x", Value: 1}}, 1},
		{"_id a sub-document in another field order", bson.D{{Key: "_id", Value: bson.D{{Key: "b", Value: "x"}, {Key: "a", Value: 1}}}, {Key: "x", Value: 1}}, 0},
		{"_id a sub-document, the other field does not match", bson.D{{Key: "_id", Value: sub(1, "x")}, {Key: "x", Value: 2}}, 0},
		{"_id null", bson.D{{Key: "_id", Value: nil}, {Key: "x", Value: 1}}, 0},
		{"_id missing", bson.D{{Key: "_id", Value: 9}, {Key: "x", Value: 1}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := coll.CountDocuments(ctx, tt.give)
			require.NoError(t, err)
			assert.Equal(t, tt.want, n, "count")

			res, err := coll.UpdateMany(ctx, tt.give, bson.D{{Key: "$inc", Value: bson.D{{Key: "seen", Value: 1}}}})
			require.NoError(t, err)
			assert.Equal(t, tt.want, res.MatchedCount, "updateMany")

			err = coll.FindOneAndUpdate(ctx, tt.give, bson.D{{Key: "$inc", Value: bson.D{{Key: "seen", Value: 1}}}}).Err()
			if tt.want == 0 {
				assert.ErrorIs(t, err, mongo.ErrNoDocuments, "findAndModify")
			} else {
				assert.NoError(t, err, "findAndModify")
			}
		})
	}

	t.Run("a collation applies to the _id", func(t *testing.T) {
		cur, err := coll.Find(ctx, bson.D{{Key: "_id", Value: "ABC"}, {Key: "x", Value: 1}},
			options.Find().SetCollation(&options.Collation{Locale: "en", Strength: 2}))
		require.NoError(t, err)
		var docs []bson.D
		require.NoError(t, cur.All(ctx, &docs))
		require.Len(t, docs, 1)
		require.Equal(t, "abc", docs[0][0].Value)
	})
	t.Run("a delete whose other field does not match deletes nothing", func(t *testing.T) {
		res, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: 2}, {Key: "x", Value: 3}})
		require.NoError(t, err)
		require.Zero(t, res.DeletedCount)
		n, err := coll.CountDocuments(ctx, bson.D{{Key: "_id", Value: 2}})
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
	})
	t.Run("a delete whose other field matches deletes", func(t *testing.T) {
		res, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: 2}, {Key: "x", Value: 2}})
		require.NoError(t, err)
		require.Equal(t, int64(1), res.DeletedCount)
	})
}

// An upsert with an _id equality and other fields that matches nothing
// inserts the _id and the equalities; one that matches updates.
func TestUpsertWithIDAndOtherFields(t *testing.T) {
	ctx := context.Background()
	coll := connect(t, mongotest.Start(t, mongotest.WithoutListener())).Database("db").Collection("c")
	_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "h1"}, {Key: "status", Value: "settled"}})
	require.NoError(t, err)
	filter := func(id string) bson.D {
		return bson.D{{Key: "_id", Value: id}, {Key: "status", Value: "open"}, {Key: "n", Value: bson.D{{Key: "$gte", Value: 0}}}}
	}
	set := bson.D{{Key: "$set", Value: bson.D{{Key: "amount", Value: 5}}}}

	res, err := coll.UpdateOne(ctx, filter("h2"), set, options.UpdateOne().SetUpsert(true))
	require.NoError(t, err)
	require.Equal(t, "h2", res.UpsertedID)
	var got bson.D
	require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: "h2"}}).Decode(&got))
	require.Equal(t, bson.D{{Key: "_id", Value: "h2"}, {Key: "status", Value: "open"}, {Key: "amount", Value: int32(5)}}, got)

	// h1 exists but is not open: the upsert inserts a second h1, which
	// the _id index refuses, as on MongoDB.
	_, err = coll.UpdateOne(ctx, filter("h1"), set, options.UpdateOne().SetUpsert(true))
	require.True(t, mongo.IsDuplicateKeyError(err), "got %v", err)

	res, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: "h2"}, {Key: "status", Value: "open"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "amount", Value: 6}}}}, options.UpdateOne().SetUpsert(true))
	require.NoError(t, err)
	require.Equal(t, int64(1), res.MatchedCount)
	require.Nil(t, res.UpsertedID)
}

// A multi-document update with an _id equality and other fields, outside
// and inside a transaction, updates the one document when the rest
// matches.
func TestUpdateManyWithIDAndOtherFields(t *testing.T) {
	ctx := context.Background()
	client := connect(t, mongotest.Start(t, mongotest.WithoutListener()))
	coll := client.Database("db").Collection("c")
	_, err := coll.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: "a"}, {Key: "status", Value: "open"}},
		bson.D{{Key: "_id", Value: "b"}, {Key: "status", Value: "open"}},
	})
	require.NoError(t, err)
	closeA := func(ctx context.Context) (*mongo.UpdateResult, error) {
		return coll.UpdateMany(ctx, bson.D{{Key: "_id", Value: "a"}, {Key: "status", Value: "open"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: "closed"}}}})
	}

	res, err := closeA(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), res.ModifiedCount)
	res, err = closeA(ctx)
	require.NoError(t, err)
	require.Zero(t, res.MatchedCount)

	sess, err := client.StartSession()
	require.NoError(t, err)
	defer sess.EndSession(ctx)
	_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: "a"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: "open"}}}})
	require.NoError(t, err)
	_, err = sess.WithTransaction(ctx, func(ctx context.Context) (any, error) {
		res, err := closeA(ctx)
		if err != nil {
			return nil, err
		}
		require.Equal(t, int64(1), res.ModifiedCount)
		res, err = closeA(ctx)
		if err != nil {
			return nil, err
		}
		require.Zero(t, res.MatchedCount)
		return nil, nil
	})
	require.NoError(t, err)

	n, err := coll.CountDocuments(ctx, bson.D{{Key: "status", Value: "open"}})
	require.NoError(t, err)
	require.Equal(t, int64(1), n, "b stays open")
}
