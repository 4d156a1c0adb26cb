package mongotest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func listCollection(t *testing.T, db *mongo.Database, name string) bson.D {
	t.Helper()
	cur, err := db.ListCollections(testContext(t), bson.D{{Key: "name", Value: name}})
	require.NoError(t, err)
	var got []bson.D
	require.NoError(t, cur.All(testContext(t), &got))
	require.Len(t, got, 1)
	return got[0]
}

// https://www.mongodb.com/docs/manual/core/views/
func TestViews(t *testing.T) {
	ctx, db := newTestDB(t)
	people := db.Collection("people")
	insertJSON(t, ctx, people, `[{"_id": 1, "name": "Ann", "age": 30}, {"_id": 2, "name": "Bob", "age": 17}, {"_id": 3, "name": "Cid", "age": 41}]`)
	require.NoError(t, db.CreateView(ctx, "adults", "people", fromJSONArray(t, `[{"$match": {"age": {"$gte": 18}}}, {"$project": {"age": 0}}]`)))
	adults := db.Collection("adults")

	t.Run("find reads through the pipeline", func(t *testing.T) {
		cur, err := adults.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "name", Value: -1}}))
		require.NoError(t, err)
		var got []bson.D
		require.NoError(t, cur.All(ctx, &got))
		assert.Equal(t, canonJSON(t, `{"a": [{"_id": 3, "name": "Cid"}, {"_id": 1, "name": "Ann"}]}`), toJSON(t, bson.D{{Key: "a", Value: got}}))
	})
	t.Run("a filter applies to the view's documents", func(t *testing.T) {
		n, err := adults.CountDocuments(ctx, fromJSON(t, `{"name": "Ann"}`))
		require.NoError(t, err)
		assert.Equal(t, int64(1), n)
		n, err = adults.CountDocuments(ctx, fromJSON(t, `{"name": "Bob"}`))
		require.NoError(t, err)
		assert.Equal(t, int64(0), n)
	})
	t.Run("aggregate and distinct read through the pipeline", func(t *testing.T) {
		got := aggregateJSON(t, adults, `[{"$count": "n"}]`)
		assert.Equal(t, canonJSON(t, `{"a": [{"n": 2}]}`), toJSON(t, bson.D{{Key: "a", Value: got}}))
		res := adults.Distinct(ctx, "name", bson.D{})
		var names []string
		require.NoError(t, res.Decode(&names))
		assert.Equal(t, []string{"Ann", "Cid"}, names)
	})
	t.Run("a view sees later writes to its collection", func(t *testing.T) {
		_, err := people.InsertOne(ctx, bson.D{{Key: "_id", Value: 4}, {Key: "name", Value: "Dee"}, {Key: "age", Value: 50}})
		require.NoError(t, err)
		n, err := adults.CountDocuments(ctx, bson.D{})
		require.NoError(t, err)
		assert.Equal(t, int64(3), n)
	})
	t.Run("a view on a view", func(t *testing.T) {
		require.NoError(t, db.CreateView(ctx, "names", "adults", fromJSONArray(t, `[{"$project": {"_id": 0, "name": 1}}]`)))
		got := aggregateJSON(t, db.Collection("names"), `[{"$sort": {"name": 1}}, {"$limit": 1}]`)
		assert.Equal(t, canonJSON(t, `{"a": [{"name": "Ann"}]}`), toJSON(t, bson.D{{Key: "a", Value: got}}))
	})
	t.Run("$lookup from a view", func(t *testing.T) {
		got := aggregateJSON(t, people, `[{"$match": {"_id": 2}}, {"$lookup": {"from": "adults", "pipeline": [{"$count": "n"}], "as": "adults"}}, {"$project": {"adults": 1}}]`)
		assert.Equal(t, canonJSON(t, `{"a": [{"_id": 2, "adults": [{"n": 3}]}]}`), toJSON(t, bson.D{{Key: "a", Value: got}}))
	})
	t.Run("writes are refused and change nothing", func(t *testing.T) {
		_, err := adults.InsertOne(ctx, bson.D{{Key: "name", Value: "X"}})
		requireCommandError(t, err, 166, "CommandNotSupportedOnView")
		_, err = adults.UpdateOne(ctx, bson.D{}, fromJSON(t, `{"$set": {"x": 1}}`))
		requireCommandError(t, err, 166, "CommandNotSupportedOnView")
		_, err = adults.DeleteMany(ctx, bson.D{})
		requireCommandError(t, err, 166, "CommandNotSupportedOnView")
		err = adults.FindOneAndDelete(ctx, bson.D{}).Err()
		requireCommandError(t, err, 166, "CommandNotSupportedOnView")
		_, err = adults.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "name", Value: 1}}})
		requireCommandError(t, err, 166, "CommandNotSupportedOnView")
		n, err := people.CountDocuments(ctx, bson.D{})
		require.NoError(t, err)
		assert.Equal(t, int64(4), n)
	})
	t.Run("listCollections shows a view", func(t *testing.T) {
		got := listCollection(t, db, "adults")
		assert.Equal(t, canonJSON(t, `{"name": "adults", "type": "view", "options": {"viewOn": "people", "pipeline": [{"$match": {"age": {"$gte": 18}}}, {"$project": {"age": 0}}]}, "info": {"readOnly": true}}`), toJSON(t, got))
	})
	t.Run("a view with $out is refused", func(t *testing.T) {
		err := db.CreateView(ctx, "bad", "people", fromJSONArray(t, `[{"$out": "x"}]`))
		requireCommandError(t, err, 167, "OptionNotSupportedOnView")
	})
	t.Run("a pipeline without viewOn is refused", func(t *testing.T) {
		err := db.RunCommand(ctx, fromJSON(t, `{"create": "bad", "pipeline": []}`)).Err()
		requireCommandError(t, err, 2, "BadValue")
	})
	t.Run("collMod changes the pipeline", func(t *testing.T) {
		require.NoError(t, db.RunCommand(ctx, fromJSON(t, `{"collMod": "adults", "viewOn": "people", "pipeline": [{"$match": {"age": {"$gte": 40}}}]}`)).Err())
		n, err := adults.CountDocuments(ctx, bson.D{})
		require.NoError(t, err)
		assert.Equal(t, int64(2), n)
	})
}

// https://www.mongodb.com/docs/manual/core/schema-validation/
func TestValidators(t *testing.T) {
	ctx, db := newTestDB(t)
	schema := `{"$jsonSchema": {"bsonType": "object", "required": ["name"], "properties": {"name": {"bsonType": "string"}, "age": {"bsonType": "int", "minimum": 0}}}}`
	require.NoError(t, db.CreateCollection(ctx, "people", options.CreateCollection().SetValidator(fromJSON(t, schema))))
	people := db.Collection("people")

	t.Run("a valid document is stored", func(t *testing.T) {
		_, err := people.InsertOne(ctx, fromJSON(t, `{"_id": 1, "name": "Ann", "age": 30}`))
		require.NoError(t, err)
	})
	t.Run("an invalid insert is refused with MongoDB 7's details", func(t *testing.T) {
		_, err := people.InsertOne(ctx, fromJSON(t, `{"_id": 2, "age": -1}`))
		we := requireWriteError(t, err, 121)
		assert.Equal(t, "Document failed validation", we.Message)
		var info bson.D
		require.NoError(t, bson.Unmarshal(we.Details, &info))
		assert.Equal(t, canonJSON(t, `{"failingDocumentId": 2, "details": {"operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [
			{"operatorName": "properties", "propertiesNotSatisfied": [{"propertyName": "age", "details": [{"operatorName": "minimum", "specifiedAs": {"minimum": 0}, "reason": "comparison failed", "consideredValue": -1}]}]},
			{"operatorName": "required", "specifiedAs": {"required": ["name"]}, "missingProperties": ["name"]}]}}`), toJSON(t, info))
		requireStored(t, ctx, people, `[{"_id": 1, "name": "Ann", "age": 30}]`)
	})
	t.Run("an invalid update is refused", func(t *testing.T) {
		_, err := people.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, fromJSON(t, `{"$set": {"name": 5}}`))
		requireWriteError(t, err, 121)
		err = people.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: 1}}, fromJSON(t, `{"$unset": {"name": 1}}`)).Err()
		requireCommandError(t, err, 121, "DocumentValidationFailure")
		requireStored(t, ctx, people, `[{"_id": 1, "name": "Ann", "age": 30}]`)
	})
	t.Run("bypassDocumentValidation skips the check", func(t *testing.T) {
		_, err := people.InsertOne(ctx, fromJSON(t, `{"_id": 3}`), options.InsertOne().SetBypassDocumentValidation(true))
		require.NoError(t, err)
	})
	t.Run("moderate does not check updates of invalid documents", func(t *testing.T) {
		require.NoError(t, db.RunCommand(ctx, fromJSON(t, `{"collMod": "people", "validationLevel": "moderate"}`)).Err())
		_, err := people.UpdateOne(ctx, bson.D{{Key: "_id", Value: 3}}, fromJSON(t, `{"$set": {"x": 1}}`))
		require.NoError(t, err)
		_, err = people.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, fromJSON(t, `{"$set": {"name": 5}}`))
		requireWriteError(t, err, 121)
	})
	t.Run("warn lets invalid documents in", func(t *testing.T) {
		require.NoError(t, db.RunCommand(ctx, fromJSON(t, `{"collMod": "people", "validationAction": "warn"}`)).Err())
		_, err := people.InsertOne(ctx, fromJSON(t, `{"_id": 4}`))
		require.NoError(t, err)
	})
	t.Run("listCollections shows the validator with its level and action", func(t *testing.T) {
		got := listCollection(t, db, "people")
		opts, _ := field(got, "options").(bson.D)
		assert.Equal(t, canonJSON(t, `{"validator": `+schema+`, "validationLevel": "moderate", "validationAction": "warn"}`), toJSON(t, opts))
	})
	t.Run("a query validator", func(t *testing.T) {
		require.NoError(t, db.CreateCollection(ctx, "q", options.CreateCollection().SetValidator(fromJSON(t, `{"qty": {"$gte": 0}}`))))
		_, err := db.Collection("q").InsertOne(ctx, fromJSON(t, `{"qty": -1}`))
		requireWriteError(t, err, 121)
	})
	t.Run("collMod replaces the validator", func(t *testing.T) {
		require.NoError(t, db.RunCommand(ctx, fromJSON(t, `{"collMod": "q", "validator": {"qty": {"$lt": 0}}}`)).Err())
		_, err := db.Collection("q").InsertOne(ctx, fromJSON(t, `{"qty": -1}`))
		require.NoError(t, err)
	})
	t.Run("bad validators and levels are refused", func(t *testing.T) {
		err := db.RunCommand(ctx, fromJSON(t, `{"create": "bad", "validator": {"$jsonSchema": {"nope": 1}}}`)).Err()
		requireCommandError(t, err, 9, "FailedToParse")
		err = db.RunCommand(ctx, fromJSON(t, `{"create": "bad", "validator": {}, "validationLevel": "sometimes"}`)).Err()
		requireCommandError(t, err, 2, "BadValue")
		err = db.RunCommand(ctx, fromJSON(t, `{"collMod": "nope", "validator": {}}`)).Err()
		requireCommandError(t, err, 26, "NamespaceNotFound")
		err = db.RunCommand(ctx, fromJSON(t, `{"collMod": "q", "expireAfterSeconds": 5}`)).Err()
		requireCommandError(t, err, 72, "InvalidOptions")
	})
	t.Run("$jsonSchema in a find filter", func(t *testing.T) {
		n, err := people.CountDocuments(ctx, fromJSON(t, `{"$jsonSchema": {"required": ["name"]}}`))
		require.NoError(t, err)
		assert.Equal(t, int64(1), n)
	})
}

// MongoDB's CollectionOptions::toBSON writes size and max with
// appendNumber (an int below 2^30) and in a fixed order; the Go driver's
// own ListCollectionSpecifications test expects {capped: true, size: 4096}
// with an int32 size after a create that sent an int64.
func TestListCollectionsOptionTypes(t *testing.T) {
	ctx, db := newTestDB(t)
	err := db.RunCommand(ctx, bson.D{{Key: "create", Value: "c"}, {Key: "validationAction", Value: "warn"}, {Key: "validator", Value: bson.D{{Key: "a", Value: int32(1)}}}}).Err()
	require.NoError(t, err)
	got := listCollection(t, db, "c")
	opts, _ := field(got, "options").(bson.D)
	require.Equal(t, bson.D{
		{Key: "validator", Value: bson.D{{Key: "a", Value: int32(1)}}},
		{Key: "validationLevel", Value: "strict"},
		{Key: "validationAction", Value: "warn"},
	}, opts)
	info, _ := field(got, "info").(bson.D)
	assert.Equal(t, false, field(info, "readOnly"))
	uuid, _ := field(info, "uuid").(bson.Binary)
	assert.Equal(t, byte(4), uuid.Subtype)
}

func TestCollModChangeStreamPreAndPostImages(t *testing.T) {
	ctx, db := newTestDB(t)
	require.NoError(t, db.CreateCollection(ctx, "c"))
	require.NoError(t, db.RunCommand(ctx, fromJSON(t, `{"collMod": "c", "changeStreamPreAndPostImages": {"enabled": true}}`)).Err())
	opts, _ := field(listCollection(t, db, "c"), "options").(bson.D)
	assert.Equal(t, canonJSON(t, `{"changeStreamPreAndPostImages": {"enabled": true}}`), toJSON(t, opts))
	err := db.RunCommand(ctx, fromJSON(t, `{"collMod": "c", "changeStreamPreAndPostImages": {}}`)).Err()
	requireCommandError(t, err, 9, "FailedToParse")
}
