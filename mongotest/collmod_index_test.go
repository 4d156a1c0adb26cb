package mongotest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// indexSpec returns the listIndexes entry of coll named name, nil if none.
func indexSpec(t *testing.T, ctx context.Context, coll *mongo.Collection, name string) bson.D {
	t.Helper()
	cur, err := coll.Indexes().List(ctx)
	require.NoError(t, err)
	var specs []bson.D
	require.NoError(t, cur.All(ctx, &specs))
	for _, s := range specs {
		if replyField(s, "name") == name {
			return s
		}
	}
	return nil
}

// collModIndex runs collMod with index and returns the reply (ok or not).
func collModIndex(t *testing.T, ctx context.Context, db *mongo.Database, coll, index string) bson.D {
	t.Helper()
	var reply bson.D
	err := db.RunCommand(ctx, bson.D{{Key: "collMod", Value: coll}, {Key: "index", Value: fromJSON(t, index)}}).Decode(&reply)
	if err != nil {
		var ce mongo.CommandError
		require.ErrorAs(t, err, &ce)
		require.NoError(t, bson.Unmarshal(ce.Raw, &reply))
	}
	return reply
}

// collMod's index options, as MongoDB 7.0's coll_mod.cpp and
// coll_mod_index.cpp apply them.
// https://www.mongodb.com/docs/manual/reference/command/collMod/#change-index-properties
func TestCollModIndexOptions(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	insertJSON(t, ctx, coll, `[{"_id": 1, "k": 1, "t": 1}, {"_id": 2, "k": 1, "t": 2}]`)
	for _, m := range []mongo.IndexModel{
		{Keys: bson.D{{Key: "t", Value: 1}}, Options: options.Index().SetExpireAfterSeconds(3600)},
		{Keys: bson.D{{Key: "k", Value: 1}}},
		{Keys: bson.D{{Key: "a", Value: 1}, {Key: "b", Value: 1}}},
	} {
		_, err := coll.Indexes().CreateOne(ctx, m)
		require.NoError(t, err)
	}

	t.Run("expireAfterSeconds changes a TTL index", func(t *testing.T) {
		reply := collModIndex(t, ctx, db, "c", `{"keyPattern": {"t": 1}, "expireAfterSeconds": 60}`)
		requireOK(t, reply)
		assert.EqualValues(t, 3600, replyField(reply, "expireAfterSeconds_old"))
		assert.EqualValues(t, 60, replyField(reply, "expireAfterSeconds_new"))
		assert.EqualValues(t, 60, replyField(indexSpec(t, ctx, coll, "t_1"), "expireAfterSeconds"))
	})
	t.Run("expireAfterSeconds on a compound index is refused", func(t *testing.T) {
		requireCode(t, collModIndex(t, ctx, db, "c", `{"name": "a_1_b_1", "expireAfterSeconds": 60}`), 72, "InvalidOptions")
		assert.Nil(t, replyField(indexSpec(t, ctx, coll, "a_1_b_1"), "expireAfterSeconds"))
	})
	t.Run("hidden hides an index from hints and shows in listIndexes", func(t *testing.T) {
		reply := collModIndex(t, ctx, db, "c", `{"name": "k_1", "hidden": true}`)
		requireOK(t, reply)
		assert.Equal(t, false, replyField(reply, "hidden_old"))
		assert.Equal(t, true, replyField(reply, "hidden_new"))
		assert.Equal(t, true, replyField(indexSpec(t, ctx, coll, "k_1"), "hidden"))
		_, err := coll.Find(ctx, bson.D{}, options.Find().SetHint("k_1"))
		requireCommandError(t, err, 2, "BadValue")
		requireOK(t, collModIndex(t, ctx, db, "c", `{"name": "k_1", "hidden": false}`))
		assert.Nil(t, replyField(indexSpec(t, ctx, coll, "k_1"), "hidden"))
		_, err = coll.Find(ctx, bson.D{}, options.Find().SetHint("k_1"))
		require.NoError(t, err)
		requireCode(t, collModIndex(t, ctx, db, "c", `{"name": "_id_", "hidden": true}`), 2, "BadValue")
	})
	t.Run("unique needs prepareUnique first", func(t *testing.T) {
		requireCode(t, collModIndex(t, ctx, db, "c", `{"name": "k_1", "unique": true}`), 72, "InvalidOptions")
		requireCode(t, collModIndex(t, ctx, db, "c", `{"name": "k_1", "unique": false}`), 2, "BadValue")
		assert.Nil(t, replyField(indexSpec(t, ctx, coll, "k_1"), "unique"))
	})
	t.Run("prepareUnique refuses new duplicates and keeps old ones", func(t *testing.T) {
		reply := collModIndex(t, ctx, db, "c", `{"name": "k_1", "prepareUnique": true}`)
		requireOK(t, reply)
		assert.Equal(t, false, replyField(reply, "prepareUnique_old"))
		assert.Equal(t, true, replyField(reply, "prepareUnique_new"))
		_, err := coll.InsertOne(ctx, fromJSON(t, `{"_id": 3, "k": 1}`))
		requireWriteError(t, err, 11000)
		_, err = coll.UpdateOne(ctx, fromJSON(t, `{"_id": 1}`), fromJSON(t, `{"$set": {"t": 5}}`))
		require.NoError(t, err, "a write that adds no new duplicate key is allowed")
		requireStored(t, ctx, coll, `[{"_id": 1, "k": 1, "t": 5}, {"_id": 2, "k": 1, "t": 2}]`)
	})
	t.Run("unique over duplicates fails with their ids and changes nothing", func(t *testing.T) {
		reply := collModIndex(t, ctx, db, "c", `{"name": "k_1", "unique": true}`)
		requireCode(t, reply, 359, "CannotConvertIndexToUnique")
		assert.Equal(t, canonJSON(t, `{"v": [{"ids": [1, 2]}]}`), toJSON(t, bson.D{{Key: "v", Value: replyField(reply, "violations")}}))
		assert.Nil(t, replyField(indexSpec(t, ctx, coll, "k_1"), "unique"))
	})
	t.Run("unique converts the index once the duplicates are gone", func(t *testing.T) {
		_, err := coll.DeleteOne(ctx, fromJSON(t, `{"_id": 2}`))
		require.NoError(t, err)
		reply := collModIndex(t, ctx, db, "c", `{"name": "k_1", "unique": true}`)
		requireOK(t, reply)
		assert.Equal(t, true, replyField(reply, "unique_new"))
		spec := indexSpec(t, ctx, coll, "k_1")
		assert.Equal(t, true, replyField(spec, "unique"))
		assert.Nil(t, replyField(spec, "prepareUnique"), "converting resets prepareUnique")
		_, err = coll.InsertOne(ctx, fromJSON(t, `{"_id": 4, "k": 1}`))
		requireWriteError(t, err, 11000)
	})
	t.Run("a bad request is refused", func(t *testing.T) {
		tests := []struct {
			give     string
			wantCode int32
			wantName string
		}{
			{give: `{"name": "nope", "hidden": true}`, wantCode: 27, wantName: "IndexNotFound"},
			{give: `{"keyPattern": {"nope": 1}, "hidden": true}`, wantCode: 27, wantName: "IndexNotFound"},
			{give: `{"name": "k_1", "keyPattern": {"k": 1}, "hidden": true}`, wantCode: 72, wantName: "InvalidOptions"},
			{give: `{"hidden": true}`, wantCode: 72, wantName: "InvalidOptions"},
			{give: `{"name": "k_1"}`, wantCode: 72, wantName: "InvalidOptions"},
			{give: `{"name": "t_1", "prepareUnique": true, "hidden": true}`, wantCode: 72, wantName: "InvalidOptions"},
			{give: `{"name": "t_1", "foo": 1}`, wantCode: 40415, wantName: "Location40415"},
		}
		for _, tt := range tests {
			requireCode(t, collModIndex(t, ctx, db, "c", tt.give), tt.wantCode, tt.wantName)
		}
		assert.Nil(t, replyField(indexSpec(t, ctx, coll, "t_1"), "hidden"))
	})
}

// Two indexes may share a key pattern (with other collations); a key
// pattern that names more than one is AmbiguousIndexKeyPattern, never the
// first one silently.
func TestAmbiguousKeyPatternIsRefused(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "n", Value: 1}}})
	require.NoError(t, err)
	_, err = coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "n", Value: 1}},
		Options: options.Index().SetName("n_ci").SetCollation(&options.Collation{Locale: "en", Strength: 2})})
	require.NoError(t, err)
	requireCode(t, collModIndex(t, ctx, db, "c", `{"keyPattern": {"n": 1}, "hidden": true}`), 181, "AmbiguousIndexKeyPattern")
	err = coll.Indexes().DropWithKey(ctx, bson.D{{Key: "n", Value: 1}})
	requireCommandError(t, err, 181, "AmbiguousIndexKeyPattern")
	assert.NotNil(t, indexSpec(t, ctx, coll, "n_1"))
	assert.NotNil(t, indexSpec(t, ctx, coll, "n_ci"))
}
