package mongotest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// https://www.mongodb.com/docs/manual/reference/collation/
func TestCollation(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("names")
	insertJSON(t, ctx, coll, `[{"_id": 1, "n": "apple"}, {"_id": 2, "n": "Apple"}, {"_id": 3, "n": "äpple"}, {"_id": 4, "n": "banana"}, {"_id": 5, "v": "10"}, {"_id": 6, "v": "9"}]`)
	caseInsensitive := &options.Collation{Locale: "en", Strength: 2}
	ids := func(t *testing.T, filter string, opts *options.FindOptionsBuilder) []int32 {
		t.Helper()
		cur, err := coll.Find(ctx, fromJSON(t, filter), opts)
		require.NoError(t, err)
		var got []struct {
			ID int32 `bson:"_id"`
		}
		require.NoError(t, cur.All(ctx, &got))
		out := []int32{}
		for _, g := range got {
			out = append(out, g.ID)
		}
		return out
	}

	t.Run("strength 2 ignores case but not diacritics", func(t *testing.T) {
		assert.Equal(t, []int32{1, 2}, ids(t, `{"n": "APPLE"}`, options.Find().SetCollation(caseInsensitive).SetSort(bson.D{{Key: "_id", Value: 1}})))
	})
	t.Run("strength 1 ignores case and diacritics", func(t *testing.T) {
		assert.Equal(t, []int32{1, 2, 3}, ids(t, `{"n": "apple"}`, options.Find().SetCollation(&options.Collation{Locale: "en", Strength: 1}).SetSort(bson.D{{Key: "_id", Value: 1}})))
	})
	t.Run("strength 1 with caseLevel ignores diacritics but not case", func(t *testing.T) {
		assert.Equal(t, []int32{1, 3}, ids(t, `{"n": "apple"}`, options.Find().SetCollation(&options.Collation{Locale: "en", Strength: 1, CaseLevel: true}).SetSort(bson.D{{Key: "_id", Value: 1}})))
	})
	t.Run("without a collation comparison is binary", func(t *testing.T) {
		assert.Equal(t, []int32{1}, ids(t, `{"n": "apple"}`, options.Find()))
	})
	t.Run("$in and ranges use the collation", func(t *testing.T) {
		assert.Equal(t, []int32{1, 2}, ids(t, `{"n": {"$in": ["APPLE"]}}`, options.Find().SetCollation(caseInsensitive).SetSort(bson.D{{Key: "_id", Value: 1}})))
		assert.Equal(t, []int32{4}, ids(t, `{"n": {"$gt": "B"}}`, options.Find().SetCollation(caseInsensitive)))
	})
	t.Run("sort uses the collation", func(t *testing.T) {
		got := ids(t, `{"n": {"$exists": true}}`, options.Find().SetCollation(&options.Collation{Locale: "en"}).SetSort(bson.D{{Key: "n", Value: 1}, {Key: "_id", Value: 1}}))
		assert.Equal(t, []int32{1, 2, 3, 4}, got, "en orders apple < Apple < äpple < banana")
		got = ids(t, `{"n": {"$exists": true}}`, options.Find().SetSort(bson.D{{Key: "n", Value: 1}}))
		assert.Equal(t, []int32{2, 1, 4, 3}, got, "binary orders A < a < b < ä")
	})
	t.Run("numericOrdering", func(t *testing.T) {
		got := ids(t, `{"v": {"$exists": true}}`, options.Find().SetCollation(&options.Collation{Locale: "en", NumericOrdering: true}).SetSort(bson.D{{Key: "v", Value: 1}}))
		assert.Equal(t, []int32{6, 5}, got)
	})
	t.Run("count, distinct and delete use the collation", func(t *testing.T) {
		n, err := coll.CountDocuments(ctx, fromJSON(t, `{"n": "APPLE"}`), options.Count().SetCollation(caseInsensitive))
		require.NoError(t, err)
		assert.Equal(t, int64(2), n)
		var vals []string
		require.NoError(t, coll.Distinct(ctx, "n", fromJSON(t, `{"n": {"$exists": true}}`), options.Distinct().SetCollation(caseInsensitive)).Decode(&vals))
		assert.Len(t, vals, 3, "apple and Apple are one value: %v", vals)
	})
	t.Run("update uses the collation", func(t *testing.T) {
		res, err := coll.UpdateMany(ctx, fromJSON(t, `{"n": "APPLE"}`), fromJSON(t, `{"$set": {"hit": true}}`), options.UpdateMany().SetCollation(caseInsensitive))
		require.NoError(t, err)
		assert.Equal(t, int64(2), res.ModifiedCount)
	})
	t.Run("aggregate groups and matches under the collation", func(t *testing.T) {
		got := aggregateJSON(t, coll, `[{"$match": {"n": {"$exists": true}}}, {"$group": {"_id": "$n", "c": {"$sum": 1}}}, {"$sort": {"c": -1}}, {"$limit": 1}, {"$project": {"_id": 0, "c": 1}}]`,
			options.Aggregate().SetCollation(caseInsensitive))
		assert.Equal(t, canonJSON(t, `{"a": [{"c": 2}]}`), toJSON(t, bson.D{{Key: "a", Value: got}}))
		got = aggregateJSON(t, coll, `[{"$match": {"$expr": {"$eq": ["$n", "APPLE"]}}}, {"$count": "c"}]`, options.Aggregate().SetCollation(caseInsensitive))
		assert.Equal(t, canonJSON(t, `{"a": [{"c": 2}]}`), toJSON(t, bson.D{{Key: "a", Value: got}}))
	})
	t.Run("delete uses the collation", func(t *testing.T) {
		res, err := coll.DeleteMany(ctx, fromJSON(t, `{"n": "APPLE"}`), options.DeleteMany().SetCollation(caseInsensitive))
		require.NoError(t, err)
		assert.Equal(t, int64(2), res.DeletedCount)
	})
	t.Run("bad collations are refused", func(t *testing.T) {
		_, err := coll.Find(ctx, bson.D{}, options.Find().SetCollation(&options.Collation{Locale: "xx"}))
		requireCommandError(t, err, 2, "BadValue")
		_, err = coll.Find(ctx, bson.D{}, options.Find().SetCollation(&options.Collation{Locale: "en", Strength: 9}))
		requireCommandError(t, err, 2, "BadValue")
		_, err = coll.Find(ctx, bson.D{}, options.Find().SetCollation(&options.Collation{Locale: "en", Alternate: "shifted"}))
		requireCommandError(t, err, 2, "BadValue")
		err = db.RunCommand(ctx, fromJSON(t, `{"find": "names", "collation": {"strength": 1}}`)).Err()
		requireCommandError(t, err, 40414, "Location40414")
	})
	t.Run("a default collation on create is refused", func(t *testing.T) {
		err := db.CreateCollection(ctx, "ci", options.CreateCollection().SetCollation(caseInsensitive))
		requireCommandError(t, err, 72, "InvalidOptions")
	})
}

// A unique index with a collation enforces uniqueness by collation key, as
// MongoDB does: under strength 2, "a" and "A" are one key.
// https://www.mongodb.com/docs/manual/core/index-unique/#unique-index-and-collation
func TestUniqueIndexWithCollation(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("users")
	caseInsensitive := &options.Collation{Locale: "en", Strength: 2}
	_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "name", Value: 1}},
		Options: options.Index().SetUnique(true).SetCollation(caseInsensitive)})
	require.NoError(t, err)
	insertJSON(t, ctx, coll, `[{"_id": 1, "name": "alice"}]`)

	t.Run("an insert equal under the collation is a duplicate and is not stored", func(t *testing.T) {
		_, err := coll.InsertOne(ctx, fromJSON(t, `{"_id": 2, "name": "ALICE"}`))
		we := requireWriteError(t, err, 11000)
		assert.Contains(t, we.Message, "collation: { locale: \"en\"")
		_, err = coll.InsertOne(ctx, fromJSON(t, `{"_id": 3, "nested": 1, "name": ["x", "Alice"]}`))
		requireWriteError(t, err, 11000)
		requireStored(t, ctx, coll, `[{"_id": 1, "name": "alice"}]`)
	})
	t.Run("a value the collation does not equate is not a duplicate", func(t *testing.T) {
		insertJSON(t, ctx, coll, `[{"_id": 4, "name": "alicé"}]`)
	})
	t.Run("an update to an equal value is a duplicate and changes nothing", func(t *testing.T) {
		_, err := coll.UpdateOne(ctx, fromJSON(t, `{"_id": 4}`), fromJSON(t, `{"$set": {"name": "Alice"}}`))
		requireWriteError(t, err, 11000)
		requireStored(t, ctx, coll, `[{"_id": 1, "name": "alice"}, {"_id": 4, "name": "alicé"}]`)
	})
	t.Run("a query without a collation still compares binary", func(t *testing.T) {
		n, err := coll.CountDocuments(ctx, fromJSON(t, `{"name": "ALICE"}`))
		require.NoError(t, err)
		assert.Zero(t, n)
		n, err = coll.CountDocuments(ctx, fromJSON(t, `{"name": "ALICE"}`), options.Count().SetCollation(caseInsensitive))
		require.NoError(t, err)
		assert.EqualValues(t, 1, n)
	})
	t.Run("listIndexes shows the whole collation", func(t *testing.T) {
		cur, err := coll.Indexes().List(ctx)
		require.NoError(t, err)
		var specs []bson.D
		require.NoError(t, cur.All(ctx, &specs))
		require.Len(t, specs, 2)
		got, _ := replyField(specs[1], "collation").(bson.D)
		assert.Equal(t, canonJSON(t, `{"locale": "en", "caseLevel": false, "caseFirst": "off", "strength": 2, "numericOrdering": false, "alternate": "non-ignorable", "maxVariable": "punct", "normalization": false, "backwards": false, "version": "57.1"}`), toJSON(t, got))
	})
	t.Run("a build over values equal under the collation fails and adds no index", func(t *testing.T) {
		other := db.Collection("other")
		insertJSON(t, ctx, other, `[{"_id": 1, "k": "x"}, {"_id": 2, "k": "X"}]`)
		_, err := other.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "k", Value: 1}},
			Options: options.Index().SetUnique(true).SetCollation(caseInsensitive)})
		requireCommandError(t, err, 11000, "DuplicateKey")
		specs, err := other.Indexes().ListSpecifications(ctx)
		require.NoError(t, err)
		assert.Len(t, specs, 1)
	})
	t.Run("the same keys with another collation are another index", func(t *testing.T) {
		_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "name", Value: 1}},
			Options: options.Index().SetName("name_binary")})
		require.NoError(t, err)
		n, err := coll.CountDocuments(ctx, fromJSON(t, `{"name": "ALICE"}`))
		require.NoError(t, err)
		assert.Zero(t, n, "an equality lookup must not use the collated index")
		n, err = coll.CountDocuments(ctx, fromJSON(t, `{"name": "alice"}`))
		require.NoError(t, err)
		assert.EqualValues(t, 1, n)
	})
}
