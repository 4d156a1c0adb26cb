package mongotest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// These tests run the query, update and aggregation languages end to end
// through the driver: every operator at least once. The internal packages
// test the corner cases.

// requireSameDocs asserts got equals want (a JSON array), in order.
func requireSameDocs(t testing.TB, want string, got []bson.D) {
	t.Helper()
	if got == nil {
		got = []bson.D{}
	}
	require.Equal(t, canonJSON(t, `{"a": `+want+`}`), toJSON(t, bson.D{{Key: "a", Value: got}}))
}

func TestQueryOperators(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	insertJSON(t, ctx, coll, `[
		{"_id": 1, "n": 1, "s": "apple", "tags": ["a", "b"], "sub": {"x": 1}, "arr": [{"k": 1, "v": "x"}, {"k": 2, "v": "y"}]},
		{"_id": 2, "n": 2.5, "s": "Banana", "tags": ["b", "c"], "sub": {"x": 2}, "arr": [{"k": 3, "v": "x"}]},
		{"_id": 3, "n": {"$numberLong": "3"}, "s": "cherry", "tags": [], "nul": null},
		{"_id": 4, "n": "4", "s": null, "tags": ["a", "b", "c"]},
		{"_id": 5, "n": {"$numberDecimal": "5"}, "tags": "a"},
		{"_id": 6, "s": "date", "d": {"$date": "2024-01-01T00:00:00Z"}}
	]`)

	tests := []struct {
		name string
		give string
		want []int32
	}{
		{name: "implicit $eq", give: `{"n": 1}`, want: []int32{1}},
		{name: "$eq across int32, int64 and double", give: `{"n": {"$eq": 3.0}}`, want: []int32{3}},
		{name: "$eq matches decimal128", give: `{"n": 5}`, want: []int32{5}},
		{name: "$eq on an array element", give: `{"tags": "b"}`, want: []int32{1, 2, 4}},
		{name: "$eq on a whole array", give: `{"tags": ["a", "b"]}`, want: []int32{1}},
		{name: "$eq null matches null and missing", give: `{"s": null}`, want: []int32{4, 5}},
		{name: "$ne matches missing fields", give: `{"n": {"$ne": 1}}`, want: []int32{2, 3, 4, 5, 6}},
		{name: "$gt brackets by type", give: `{"n": {"$gt": 2}}`, want: []int32{2, 3, 5}},
		{name: "$gte", give: `{"n": {"$gte": 3}}`, want: []int32{3, 5}},
		{name: "$lt", give: `{"n": {"$lt": 3}}`, want: []int32{1, 2}},
		{name: "$lte", give: `{"n": {"$lte": 3}}`, want: []int32{1, 2, 3}},
		{name: "$gt on strings", give: `{"s": {"$gt": "b"}}`, want: []int32{3, 6}},
		{name: "$gt on dates", give: `{"d": {"$gt": {"$date": "2023-06-01T00:00:00Z"}}}`, want: []int32{6}},
		{name: "$in with null", give: `{"s": {"$in": ["apple", null]}}`, want: []int32{1, 4, 5}},
		{name: "$in with a regex", give: `{"s": {"$in": [{"$regularExpression": {"pattern": "^b", "options": "i"}}]}}`, want: []int32{2}},
		{name: "$nin", give: `{"tags": {"$nin": ["a"]}}`, want: []int32{2, 3, 6}},
		{name: "$exists true", give: `{"nul": {"$exists": true}}`, want: []int32{3}},
		{name: "$exists false", give: `{"sub": {"$exists": false}}`, want: []int32{3, 4, 5, 6}},
		{name: "$type by alias", give: `{"n": {"$type": "string"}}`, want: []int32{4}},
		{name: "$type number", give: `{"n": {"$type": "number"}}`, want: []int32{1, 2, 3, 5}},
		{name: "$type by several aliases", give: `{"n": {"$type": ["double", "long"]}}`, want: []int32{2, 3}},
		{name: "$type by code", give: `{"n": {"$type": 16}}`, want: []int32{1}},
		{name: "$type null", give: `{"s": {"$type": "null"}}`, want: []int32{4}},
		{name: "$type array", give: `{"tags": {"$type": "array"}}`, want: []int32{1, 2, 3, 4}},
		{name: "$and", give: `{"$and": [{"tags": "a"}, {"tags": "c"}]}`, want: []int32{4}},
		{name: "$or", give: `{"$or": [{"n": 1}, {"s": "cherry"}]}`, want: []int32{1, 3}},
		{name: "$nor", give: `{"$nor": [{"tags": "a"}, {"tags": "c"}]}`, want: []int32{3, 6}},
		{name: "$not", give: `{"n": {"$not": {"$gt": 2}}}`, want: []int32{1, 4, 6}},
		{name: "$not with a regex", give: `{"s": {"$not": {"$regularExpression": {"pattern": "a", "options": ""}}}}`, want: []int32{3, 4, 5}},
		{name: "$regex with $options", give: `{"s": {"$regex": "AN", "$options": "i"}}`, want: []int32{2}},
		{name: "a regex literal", give: `{"s": {"$regularExpression": {"pattern": "^c", "options": ""}}}`, want: []int32{3}},
		{name: "$regex on array elements", give: `{"tags": {"$regex": "^c$"}}`, want: []int32{2, 4}},
		{name: "$elemMatch on documents needs one element to match all", give: `{"arr": {"$elemMatch": {"k": {"$gte": 2}, "v": "x"}}}`, want: []int32{2}},
		{name: "$elemMatch on scalars", give: `{"tags": {"$elemMatch": {"$gt": "b"}}}`, want: []int32{2, 4}},
		{name: "$size", give: `{"tags": {"$size": 2}}`, want: []int32{1, 2}},
		{name: "$size 0", give: `{"tags": {"$size": 0}}`, want: []int32{3}},
		{name: "$all", give: `{"tags": {"$all": ["a", "b"]}}`, want: []int32{1, 4}},
		{name: "$mod", give: `{"n": {"$mod": [2, 1]}}`, want: []int32{1, 3, 5}},
		{name: "$comment is ignored", give: `{"$comment": "why", "n": 1}`, want: []int32{1}},
		{name: "a dotted path into a document", give: `{"sub.x": 2}`, want: []int32{2}},
		{name: "a dotted path through an array", give: `{"arr.v": "y"}`, want: []int32{1}},
		{name: "an array index in a path", give: `{"tags.1": "c"}`, want: []int32{2}},
		{name: "several conditions on one field", give: `{"n": {"$gt": 1, "$lt": 5}}`, want: []int32{2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur, err := coll.Find(ctx, fromJSON(t, tt.give), options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetProjection(bson.D{{Key: "_id", Value: 1}}))
			require.NoError(t, err)
			var docs []struct {
				ID int32 `bson:"_id"`
			}
			require.NoError(t, cur.All(ctx, &docs))
			got := []int32{}
			for _, d := range docs {
				got = append(got, d.ID)
			}
			if tt.want == nil {
				tt.want = []int32{}
			}
			assert.Equal(t, tt.want, got)

			n, err := coll.CountDocuments(ctx, fromJSON(t, tt.give))
			require.NoError(t, err)
			assert.Equal(t, int64(len(tt.want)), n, "count agrees with find")
		})
	}

	errs := []struct {
		name     string
		give     string
		wantCode int32
	}{
		{name: "an unknown operator", give: `{"n": {"$nope": 1}}`, wantCode: 2},
		{name: "$where", give: `{"$where": "true"}`},
		{name: "$expr dividing by zero", give: `{"$expr": {"$divide": ["$n", 0]}}`, wantCode: 16608},
		{name: "$expr with an undefined variable", give: `{"$expr": {"$eq": ["$n", "$$nope"]}}`, wantCode: 17276},
		{name: "a lookahead regex", give: `{"s": {"$regex": "a(?=b)"}}`, wantCode: 51091},
		{name: "$size with a negative number", give: `{"tags": {"$size": -1}}`, wantCode: 2},
		{name: "$in without an array", give: `{"n": {"$in": 1}}`, wantCode: 2},
		{name: "$and without an array", give: `{"$and": {"n": 1}}`, wantCode: 2},
		{name: "$mod with one argument", give: `{"n": {"$mod": [2]}}`, wantCode: 2},
	}
	for _, tt := range errs {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			_, err := coll.Find(ctx, fromJSON(t, tt.give))
			var ce mongo.CommandError
			require.ErrorAs(t, err, &ce, "got %v", err)
			if tt.wantCode != 0 {
				assert.Equal(t, tt.wantCode, ce.Code, "got %v", err)
			}
		})
	}
}

func TestProjectionOperators(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	insertJSON(t, ctx, coll, `[{"_id": 1, "a": [1, 2, 3, 4, 5], "b": [{"k": 1}, {"k": 2}, {"k": 2, "x": true}], "c": "keep"}]`)

	tests := []struct {
		name string
		give string
		want string
	}{
		{name: "$slice first n", give: `{"a": {"$slice": 2}}`, want: `{"_id": 1, "a": [1, 2], "b": [{"k": 1}, {"k": 2}, {"k": 2, "x": true}], "c": "keep"}`},
		{name: "$slice last n", give: `{"a": {"$slice": -2}, "b": 0}`, want: `{"_id": 1, "a": [4, 5], "c": "keep"}`},
		{name: "$slice skip and limit", give: `{"a": {"$slice": [1, 2]}, "c": 1}`, want: `{"_id": 1, "a": [2, 3], "c": "keep"}`},
		{name: "$elemMatch keeps the first match", give: `{"b": {"$elemMatch": {"k": 2}}}`, want: `{"_id": 1, "b": [{"k": 2}]}`},
		{name: "$elemMatch with no match drops the field", give: `{"b": {"$elemMatch": {"k": 9}}, "c": 1}`, want: `{"_id": 1, "c": "keep"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got bson.D
			require.NoError(t, coll.FindOne(ctx, bson.D{}, options.FindOne().SetProjection(fromJSON(t, tt.give))).Decode(&got))
			assert.Equal(t, canonJSON(t, tt.want), toJSON(t, got))
		})
	}
}

func TestUpdateOperators(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")

	tests := []struct {
		name         string
		give         string // the document, _id 1
		giveUpdate   string
		giveFilters  string // arrayFilters, a JSON array
		want         string
		wantUnchaged bool
	}{
		{name: "$set a field", give: `{"_id": 1, "a": 1}`, giveUpdate: `{"$set": {"a": 2, "b": "new"}}`, want: `{"_id": 1, "a": 2, "b": "new"}`},
		{name: "$set creates nested documents", give: `{"_id": 1}`, giveUpdate: `{"$set": {"a.b.c": 1}}`, want: `{"_id": 1, "a": {"b": {"c": 1}}}`},
		{name: "$set an array element", give: `{"_id": 1, "a": [1, 2, 3]}`, giveUpdate: `{"$set": {"a.1": 9}}`, want: `{"_id": 1, "a": [1, 9, 3]}`},
		{name: "$set past an array's end pads with null", give: `{"_id": 1, "a": [1]}`, giveUpdate: `{"$set": {"a.3": 9}}`, want: `{"_id": 1, "a": [1, null, null, 9]}`},
		{name: "$set to the same value changes nothing", give: `{"_id": 1, "a": 1}`, giveUpdate: `{"$set": {"a": 1}}`, want: `{"_id": 1, "a": 1}`, wantUnchaged: true},
		{name: "$set to an equal number of another type changes the type", give: `{"_id": 1, "a": 1}`, giveUpdate: `{"$set": {"a": 1.0}}`, want: `{"_id": 1, "a": 1.0}`},
		{name: "$unset fields", give: `{"_id": 1, "a": 1, "b": {"c": 2, "d": 3}}`, giveUpdate: `{"$unset": {"a": "", "b.c": 1}}`, want: `{"_id": 1, "b": {"d": 3}}`},
		{name: "$unset an array element leaves null", give: `{"_id": 1, "a": [1, 2, 3]}`, giveUpdate: `{"$unset": {"a.1": ""}}`, want: `{"_id": 1, "a": [1, null, 3]}`},
		{name: "$unset a missing field changes nothing", give: `{"_id": 1}`, giveUpdate: `{"$unset": {"a": ""}}`, want: `{"_id": 1}`, wantUnchaged: true},
		{name: "$inc adds and creates", give: `{"_id": 1, "a": 1, "b": 1}`, giveUpdate: `{"$inc": {"a": 2, "b": -1.5, "c.d": 1}}`, want: `{"_id": 1, "a": 3, "b": -0.5, "c": {"d": 1}}`},
		{name: "$mul multiplies and creates zero", give: `{"_id": 1, "a": 3}`, giveUpdate: `{"$mul": {"a": 2.5, "b": 7}}`, want: `{"_id": 1, "a": 7.5, "b": 0}`},
		{name: "$min lowers", give: `{"_id": 1, "a": 5, "b": 1}`, giveUpdate: `{"$min": {"a": 2, "b": 3, "c": 0}}`, want: `{"_id": 1, "a": 2, "b": 1, "c": 0}`},
		{name: "$min that changes nothing", give: `{"_id": 1, "a": 1}`, giveUpdate: `{"$min": {"a": 2}}`, want: `{"_id": 1, "a": 1}`, wantUnchaged: true},
		{name: "$max raises", give: `{"_id": 1, "a": 5, "b": 1}`, giveUpdate: `{"$max": {"a": 2, "b": 3}}`, want: `{"_id": 1, "a": 5, "b": 3}`},
		{name: "$max compares dates", give: `{"_id": 1, "d": {"$date": "2024-01-01T00:00:00Z"}}`, giveUpdate: `{"$max": {"d": {"$date": "2025-01-01T00:00:00Z"}}}`, want: `{"_id": 1, "d": {"$date": "2025-01-01T00:00:00Z"}}`},
		{name: "$rename moves a field", give: `{"_id": 1, "a": 1, "b": 2}`, giveUpdate: `{"$rename": {"a": "z"}}`, want: `{"_id": 1, "b": 2, "z": 1}`},
		{name: "$rename into a nested path", give: `{"_id": 1, "a": {"b": 1}}`, giveUpdate: `{"$rename": {"a.b": "c.d"}}`, want: `{"_id": 1, "a": {}, "c": {"d": 1}}`},
		{name: "$rename of a missing field changes nothing", give: `{"_id": 1}`, giveUpdate: `{"$rename": {"a": "b"}}`, want: `{"_id": 1}`, wantUnchaged: true},
		{name: "$push appends", give: `{"_id": 1, "a": [1]}`, giveUpdate: `{"$push": {"a": [2]}}`, want: `{"_id": 1, "a": [1, [2]]}`},
		{name: "$push creates the array", give: `{"_id": 1}`, giveUpdate: `{"$push": {"a": 1}}`, want: `{"_id": 1, "a": [1]}`},
		{name: "$push $each", give: `{"_id": 1, "a": [1]}`, giveUpdate: `{"$push": {"a": {"$each": [2, 3]}}}`, want: `{"_id": 1, "a": [1, 2, 3]}`},
		{name: "$push $each $position", give: `{"_id": 1, "a": [1, 2]}`, giveUpdate: `{"$push": {"a": {"$each": [8, 9], "$position": 1}}}`, want: `{"_id": 1, "a": [1, 8, 9, 2]}`},
		{name: "$push $each $slice keeps the last n", give: `{"_id": 1, "a": [1, 2]}`, giveUpdate: `{"$push": {"a": {"$each": [3, 4], "$slice": -3}}}`, want: `{"_id": 1, "a": [2, 3, 4]}`},
		{name: "$push $each $sort by field then $slice", give: `{"_id": 1, "a": [{"s": 5}, {"s": 1}]}`, giveUpdate: `{"$push": {"a": {"$each": [{"s": 3}], "$sort": {"s": -1}, "$slice": 2}}}`, want: `{"_id": 1, "a": [{"s": 5}, {"s": 3}]}`},
		{name: "$push $each $sort of scalars", give: `{"_id": 1, "a": [3, 1]}`, giveUpdate: `{"$push": {"a": {"$each": [2], "$sort": 1}}}`, want: `{"_id": 1, "a": [1, 2, 3]}`},
		{name: "$addToSet adds a new value", give: `{"_id": 1, "a": [1, 2]}`, giveUpdate: `{"$addToSet": {"a": 3}}`, want: `{"_id": 1, "a": [1, 2, 3]}`},
		{name: "$addToSet of a present value changes nothing", give: `{"_id": 1, "a": [1, 2]}`, giveUpdate: `{"$addToSet": {"a": 2.0}}`, want: `{"_id": 1, "a": [1, 2]}`, wantUnchaged: true},
		{name: "$addToSet $each", give: `{"_id": 1, "a": ["x"]}`, giveUpdate: `{"$addToSet": {"a": {"$each": ["x", "y", "y", "z"]}}}`, want: `{"_id": 1, "a": ["x", "y", "z"]}`},
		{name: "$pull a value", give: `{"_id": 1, "a": [1, 2, 1, 3]}`, giveUpdate: `{"$pull": {"a": 1}}`, want: `{"_id": 1, "a": [2, 3]}`},
		{name: "$pull by condition", give: `{"_id": 1, "a": [1, 5, 2, 6]}`, giveUpdate: `{"$pull": {"a": {"$gte": 5}}}`, want: `{"_id": 1, "a": [1, 2]}`},
		{name: "$pull documents by a query", give: `{"_id": 1, "a": [{"k": 1, "v": 1}, {"k": 2, "v": 1}]}`, giveUpdate: `{"$pull": {"a": {"k": 2}}}`, want: `{"_id": 1, "a": [{"k": 1, "v": 1}]}`},
		{name: "$pull with no match changes nothing", give: `{"_id": 1, "a": [1]}`, giveUpdate: `{"$pull": {"a": 7}}`, want: `{"_id": 1, "a": [1]}`, wantUnchaged: true},
		{name: "$pullAll", give: `{"_id": 1, "a": [1, 2, 3, 2, 1]}`, giveUpdate: `{"$pullAll": {"a": [1, 2]}}`, want: `{"_id": 1, "a": [3]}`},
		{name: "$pop last", give: `{"_id": 1, "a": [1, 2, 3]}`, giveUpdate: `{"$pop": {"a": 1}}`, want: `{"_id": 1, "a": [1, 2]}`},
		{name: "$pop first", give: `{"_id": 1, "a": [1, 2, 3]}`, giveUpdate: `{"$pop": {"a": -1}}`, want: `{"_id": 1, "a": [2, 3]}`},
		{name: "$setOnInsert does nothing to an existing document", give: `{"_id": 1, "a": 1}`, giveUpdate: `{"$setOnInsert": {"a": 2, "b": 2}}`, want: `{"_id": 1, "a": 1}`, wantUnchaged: true},
		{name: "$bit", give: `{"_id": 1, "a": 12, "b": 12, "c": 12}`, giveUpdate: `{"$bit": {"a": {"and": 10}, "b": {"or": 3}, "c": {"xor": 5}}}`, want: `{"_id": 1, "a": 8, "b": 15, "c": 9}`},
		{name: "$[] updates every element", give: `{"_id": 1, "a": [1, 2, 3]}`, giveUpdate: `{"$inc": {"a.$[]": 10}}`, want: `{"_id": 1, "a": [11, 12, 13]}`},
		{
			name: "$[id] updates the elements the array filter matches", give: `{"_id": 1, "a": [{"k": 1, "v": 0}, {"k": 2, "v": 0}, {"k": 3, "v": 0}]}`,
			giveUpdate: `{"$set": {"a.$[e].v": 9}}`, giveFilters: `[{"e.k": {"$gte": 2}}]`,
			want: `{"_id": 1, "a": [{"k": 1, "v": 0}, {"k": 2, "v": 9}, {"k": 3, "v": 9}]}`,
		},
		{name: "several operators at once", give: `{"_id": 1, "a": 1, "b": [1], "c": 1}`, giveUpdate: `{"$inc": {"a": 1}, "$push": {"b": 2}, "$unset": {"c": ""}, "$set": {"d": true}}`, want: `{"_id": 1, "a": 2, "b": [1, 2], "d": true}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := coll.DeleteMany(ctx, bson.D{})
			require.NoError(t, err)
			_, err = coll.InsertOne(ctx, fromJSON(t, tt.give))
			require.NoError(t, err)
			opts := options.UpdateOne()
			if tt.giveFilters != "" {
				var filters []any
				for _, f := range fromJSONArray(t, tt.giveFilters) {
					filters = append(filters, f)
				}
				opts.SetArrayFilters(filters)
			}

			res, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, fromJSON(t, tt.giveUpdate), opts)

			require.NoError(t, err)
			assert.Equal(t, int64(1), res.MatchedCount)
			if tt.wantUnchaged {
				assert.Zero(t, res.ModifiedCount)
			} else {
				assert.Equal(t, int64(1), res.ModifiedCount)
			}
			requireStored(t, ctx, coll, `[`+tt.want+`]`)
		})
	}

	t.Run("$inc keeps the wider numeric type", func(t *testing.T) {
		_, err := coll.DeleteMany(ctx, bson.D{})
		require.NoError(t, err)
		_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "i", Value: int32(1)}, {Key: "l", Value: int32(1)}, {Key: "d", Value: int64(1)}})
		require.NoError(t, err)
		_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "i", Value: int32(1)}, {Key: "l", Value: int64(1)}, {Key: "d", Value: 0.5}}}})
		require.NoError(t, err)
		var got bson.D
		require.NoError(t, coll.FindOne(ctx, bson.D{}).Decode(&got))
		assert.Equal(t, bson.D{{Key: "_id", Value: int32(1)}, {Key: "i", Value: int32(2)}, {Key: "l", Value: int64(2)}, {Key: "d", Value: 1.5}}, got)
	})

	t.Run("$currentDate writes the server's time", func(t *testing.T) {
		_, err := coll.DeleteMany(ctx, bson.D{})
		require.NoError(t, err)
		_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
		require.NoError(t, err)
		before := time.Now().Add(-time.Second)
		_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, fromJSON(t, `{"$currentDate": {"d": true, "e": {"$type": "date"}, "ts": {"$type": "timestamp"}}}`))
		require.NoError(t, err)
		var got struct {
			D  time.Time      `bson:"d"`
			E  bson.DateTime  `bson:"e"`
			TS bson.Timestamp `bson:"ts"`
		}
		require.NoError(t, coll.FindOne(ctx, bson.D{}).Decode(&got))
		assert.WithinRange(t, got.D, before, time.Now().Add(time.Second))
		assert.WithinRange(t, got.E.Time(), before, time.Now().Add(time.Second))
		assert.GreaterOrEqual(t, int64(got.TS.T), before.Unix())
	})

	errs := []struct {
		name     string
		give     string
		update   string
		wantCode int
	}{
		{name: "$inc of a string", give: `{"_id": 1, "a": "x"}`, update: `{"$inc": {"a": 1}}`, wantCode: 14},
		{name: "$inc by a string", give: `{"_id": 1, "a": 1}`, update: `{"$inc": {"a": "x"}}`, wantCode: 14},
		{name: "two operators on one path", give: `{"_id": 1}`, update: `{"$set": {"a": 1}, "$inc": {"a": 1}}`, wantCode: 40},
		{name: "operators on a path and its parent", give: `{"_id": 1}`, update: `{"$set": {"a.b": 1}, "$unset": {"a": ""}}`, wantCode: 40},
		{name: "a path through a scalar", give: `{"_id": 1, "a": 1}`, update: `{"$set": {"a.b": 1}}`, wantCode: 28},
		{name: "an unknown modifier", give: `{"_id": 1}`, update: `{"$frob": {"a": 1}}`, wantCode: 9},
		{name: "$push onto a non-array", give: `{"_id": 1, "a": 1}`, update: `{"$push": {"a": 1}}`, wantCode: 2},
		{name: "$pop of a non-array", give: `{"_id": 1, "a": 1}`, update: `{"$pop": {"a": 1}}`, wantCode: 14},
		{name: "$rename onto the same path", give: `{"_id": 1, "a": 1}`, update: `{"$rename": {"a": "a"}}`, wantCode: 2},
		{name: "$[id] without an array filter", give: `{"_id": 1, "a": [1]}`, update: `{"$set": {"a.$[x]": 1}}`, wantCode: 2},
		{name: "$inc of _id", give: `{"_id": 1}`, update: `{"$inc": {"_id": 1}}`, wantCode: 66},
	}
	for _, tt := range errs {
		t.Run(tt.name+" is refused and changes nothing", func(t *testing.T) {
			_, err := coll.DeleteMany(ctx, bson.D{})
			require.NoError(t, err)
			_, err = coll.InsertOne(ctx, fromJSON(t, tt.give))
			require.NoError(t, err)

			_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, fromJSON(t, tt.update))

			var se mongo.ServerError
			require.ErrorAs(t, err, &se, "got %v", err)
			assert.True(t, se.HasErrorCode(tt.wantCode), "want code %d, got %v", tt.wantCode, err)
			requireStored(t, ctx, coll, `[`+tt.give+`]`)
		})
	}

	t.Run("a pipeline update with a $match stage is refused", func(t *testing.T) {
		_, err := coll.UpdateOne(ctx, bson.D{}, mongo.Pipeline{{{Key: "$match", Value: bson.D{}}}})
		var se mongo.ServerError
		require.ErrorAs(t, err, &se, "got %v", err)
		assert.True(t, se.HasErrorCode(72), "got %v", err)
	})
}

func TestAggregationStages(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	insertJSON(t, ctx, coll, `[
		{"_id": 1, "cat": "a", "qty": 2, "price": 10, "tags": ["x", "y"]},
		{"_id": 2, "cat": "b", "qty": 1, "price": 20, "tags": []},
		{"_id": 3, "cat": "a", "qty": 5, "price": 1.5},
		{"_id": 4, "cat": "c", "qty": 3, "price": 7, "tags": ["z"]}
	]`)

	tests := []struct {
		name string
		give string // the pipeline
		want string
	}{
		{name: "$match", give: `[{"$match": {"cat": "a"}}]`,
			want: `[{"_id": 1, "cat": "a", "qty": 2, "price": 10, "tags": ["x", "y"]}, {"_id": 3, "cat": "a", "qty": 5, "price": 1.5}]`},
		{name: "$project inclusion with computed fields", give: `[{"$match": {"_id": {"$lte": 2}}}, {"$project": {"cat": 1, "total": {"$multiply": ["$qty", "$price"]}}}]`,
			want: `[{"_id": 1, "cat": "a", "total": 20}, {"_id": 2, "cat": "b", "total": 20}]`},
		{name: "$project exclusion", give: `[{"$match": {"_id": 1}}, {"$project": {"tags": 0, "price": 0, "_id": 0}}]`,
			want: `[{"cat": "a", "qty": 2}]`},
		{name: "$addFields", give: `[{"$match": {"_id": 3}}, {"$addFields": {"total": {"$multiply": ["$qty", "$price"]}, "qty": {"$add": ["$qty", 1]}}}]`,
			want: `[{"_id": 3, "cat": "a", "qty": 6, "price": 1.5, "total": 7.5}]`},
		{name: "$set", give: `[{"$match": {"_id": 2}}, {"$set": {"sub.flag": true}}]`,
			want: `[{"_id": 2, "cat": "b", "qty": 1, "price": 20, "tags": [], "sub": {"flag": true}}]`},
		{name: "$unset one field", give: `[{"$match": {"_id": 2}}, {"$unset": "tags"}]`,
			want: `[{"_id": 2, "cat": "b", "qty": 1, "price": 20}]`},
		{name: "$unset several fields", give: `[{"$match": {"_id": 2}}, {"$unset": ["tags", "price", "qty"]}]`,
			want: `[{"_id": 2, "cat": "b"}]`},
		{name: "$sort compound", give: `[{"$sort": {"cat": -1, "qty": 1}}, {"$project": {"_id": 1}}]`,
			want: `[{"_id": 4}, {"_id": 2}, {"_id": 1}, {"_id": 3}]`},
		{name: "$skip and $limit", give: `[{"$sort": {"_id": 1}}, {"$skip": 1}, {"$limit": 2}, {"$project": {"_id": 1}}]`,
			want: `[{"_id": 2}, {"_id": 3}]`},
		{name: "$count", give: `[{"$match": {"qty": {"$gt": 1}}}, {"$count": "n"}]`, want: `[{"n": 3}]`},
		{name: "$count of nothing returns nothing", give: `[{"$match": {"qty": {"$gt": 100}}}, {"$count": "n"}]`, want: `[]`},
		{name: "$unwind", give: `[{"$unwind": "$tags"}, {"$project": {"tags": 1}}]`,
			want: `[{"_id": 1, "tags": "x"}, {"_id": 1, "tags": "y"}, {"_id": 4, "tags": "z"}]`},
		{name: "$unwind keeping empty arrays with the index", give: `[{"$unwind": {"path": "$tags", "preserveNullAndEmptyArrays": true, "includeArrayIndex": "i"}}, {"$project": {"tags": 1, "i": 1}}]`,
			want: `[{"_id": 1, "tags": "x", "i": 0}, {"_id": 1, "tags": "y", "i": 1}, {"_id": 2, "i": null}, {"_id": 3, "i": null}, {"_id": 4, "tags": "z", "i": 0}]`},
		{
			name: "$group with every accumulator",
			give: `[{"$sort": {"_id": 1}}, {"$group": {
				"_id": "$cat",
				"sum": {"$sum": "$qty"}, "n": {"$sum": 1}, "avg": {"$avg": "$qty"},
				"min": {"$min": "$price"}, "max": {"$max": "$price"},
				"first": {"$first": "$_id"}, "last": {"$last": "$_id"},
				"all": {"$push": "$qty"}, "cats": {"$addToSet": "$cat"}, "count": {"$count": {}}
			}}, {"$sort": {"_id": 1}}]`,
			want: `[
				{"_id": "a", "sum": 7, "n": 2, "avg": 3.5, "min": 1.5, "max": 10, "first": 1, "last": 3, "all": [2, 5], "cats": ["a"], "count": 2},
				{"_id": "b", "sum": 1, "n": 1, "avg": 1.0, "min": 20, "max": 20, "first": 2, "last": 2, "all": [1], "cats": ["b"], "count": 1},
				{"_id": "c", "sum": 3, "n": 1, "avg": 3.0, "min": 7, "max": 7, "first": 4, "last": 4, "all": [3], "cats": ["c"], "count": 1}
			]`,
		},
		{name: "$group by null over everything", give: `[{"$group": {"_id": null, "revenue": {"$sum": {"$multiply": ["$qty", "$price"]}}}}]`,
			want: `[{"_id": null, "revenue": 68.5}]`},
		{name: "$group by a compound key", give: `[{"$group": {"_id": {"cat": "$cat", "big": {"$gt": ["$qty", 2]}}, "n": {"$sum": 1}}}, {"$sort": {"_id.cat": 1, "_id.big": 1}}]`,
			want: `[{"_id": {"cat": "a", "big": false}, "n": 1}, {"_id": {"cat": "a", "big": true}, "n": 1}, {"_id": {"cat": "b", "big": false}, "n": 1}, {"_id": {"cat": "c", "big": true}, "n": 1}]`},
		{name: "$unwind then $group", give: `[{"$unwind": "$tags"}, {"$group": {"_id": null, "tags": {"$push": "$tags"}}}]`,
			want: `[{"_id": null, "tags": ["x", "y", "z"]}]`},
		{
			name: "expression operators",
			give: `[{"$match": {"_id": 1}}, {"$project": {"_id": 0,
				"add": {"$add": ["$qty", 1, 0.5]}, "sub": {"$subtract": ["$price", "$qty"]}, "div": {"$divide": ["$price", 4]},
				"mod": {"$mod": ["$price", 3]}, "abs": {"$abs": -2}, "concat": {"$concat": ["$cat", "-", "z"]},
				"lower": {"$toLower": "ABC"}, "upper": {"$toUpper": "$cat"},
				"eq": {"$eq": ["$qty", 2]}, "ne": {"$ne": ["$qty", 2]}, "gt": {"$gt": ["$qty", 1]}, "gte": {"$gte": ["$qty", 3]},
				"lt": {"$lt": ["$qty", 3]}, "lte": {"$lte": ["$qty", 1]}, "cmp": {"$cmp": ["$qty", 5]},
				"and": {"$and": [true, "$qty"]}, "or": {"$or": [false, 0]}, "not": {"$not": [false]},
				"cond": {"$cond": {"if": {"$gt": ["$qty", 1]}, "then": "many", "else": "one"}}, "condArr": {"$cond": [false, 1, 2]},
				"ifNull": {"$ifNull": ["$missing", "dflt"]}, "in": {"$in": ["x", "$tags"]}, "size": {"$size": "$tags"},
				"elemAt": {"$arrayElemAt": ["$tags", -1]}, "maxOf": {"$max": [1, 5, 3]}, "minOf": {"$min": [4, 2]},
				"sumOf": {"$sum": [1, 2, 3]}, "avgOf": {"$avg": [1, 2]}, "lit": {"$literal": "$notAField"}
			}}]`,
			want: `[{"add": 3.5, "sub": 8, "div": 2.5, "mod": 1, "abs": 2, "concat": "a-z", "lower": "abc", "upper": "A",
				"eq": true, "ne": false, "gt": true, "gte": false, "lt": true, "lte": false, "cmp": -1,
				"and": true, "or": false, "not": true, "cond": "many", "condArr": 2, "ifNull": "dflt", "in": true, "size": 2,
				"elemAt": "y", "maxOf": 5, "minOf": 2, "sumOf": 6, "avgOf": 1.5, "lit": "$notAField"}]`,
		},
		{name: "an empty pipeline returns everything", give: `[]`,
			want: `[{"_id": 1, "cat": "a", "qty": 2, "price": 10, "tags": ["x", "y"]}, {"_id": 2, "cat": "b", "qty": 1, "price": 20, "tags": []}, {"_id": 3, "cat": "a", "qty": 5, "price": 1.5}, {"_id": 4, "cat": "c", "qty": 3, "price": 7, "tags": ["z"]}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur, err := coll.Aggregate(ctx, fromJSONArray(t, tt.give))
			require.NoError(t, err)
			var got []bson.D
			require.NoError(t, cur.All(ctx, &got))
			requireSameDocs(t, tt.want, got)
		})
	}

	t.Run("aggregate on a missing collection is empty", func(t *testing.T) {
		cur, err := db.Collection("missing").Aggregate(ctx, mongo.Pipeline{})
		require.NoError(t, err)
		var got []bson.D
		require.NoError(t, cur.All(ctx, &got))
		assert.Empty(t, got)
	})

	errs := []struct {
		name     string
		give     string
		wantCode int32
	}{
		{name: "an unknown stage", give: `[{"$frob": {}}]`, wantCode: 40324},
		{name: "an unsupported stage", give: `[{"$graphLookup": {"from": "x"}}]`, wantCode: 20},
		{name: "$lookup without as", give: `[{"$lookup": {"from": "x", "localField": "a", "foreignField": "b"}}]`, wantCode: 9},
		{name: "$out before the last stage", give: `[{"$out": "x"}, {"$match": {}}]`, wantCode: 40601},
		{name: "$group without _id", give: `[{"$group": {"n": {"$sum": 1}}}]`, wantCode: 15955},
		{name: "an unknown accumulator", give: `[{"$group": {"_id": null, "n": {"$frob": 1}}}]`, wantCode: 15952},
		{name: "a negative $limit", give: `[{"$limit": -1}]`, wantCode: 5107201},
		{name: "an unknown expression operator", give: `[{"$project": {"x": {"$frob": 1}}}]`, wantCode: 168},
		{name: "a stage with two keys", give: `[{"$match": {}, "$limit": 1}]`, wantCode: 40323},
	}
	for _, tt := range errs {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			_, err := coll.Aggregate(ctx, fromJSONArray(t, tt.give))
			var ce mongo.CommandError
			require.ErrorAs(t, err, &ce, "got %v", err)
			assert.Equal(t, tt.wantCode, ce.Code, "got %v", err)
		})
	}
}
