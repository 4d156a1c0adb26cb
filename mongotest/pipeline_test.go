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

// These tests pin MongoDB 7.0's documented behaviour of pipeline updates,
// $expr and let, and the stages that reach other collections.

func aggregateJSON(t *testing.T, coll *mongo.Collection, pipeline string, opts ...options.Lister[options.AggregateOptions]) []bson.D {
	t.Helper()
	cur, err := coll.Aggregate(testContext(t), fromJSONArray(t, pipeline), opts...)
	require.NoError(t, err)
	var got []bson.D
	require.NoError(t, cur.All(testContext(t), &got))
	return got
}

func TestPipelineUpdates(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	insertJSON(t, ctx, coll, `[{"_id": 1, "a": 2, "b": 3}, {"_id": 2, "a": 5, "b": 1}]`)

	// https://www.mongodb.com/docs/manual/tutorial/update-documents-with-aggregation-pipeline/
	res, err := coll.UpdateMany(ctx, bson.D{}, fromJSONArray(t, `[{"$set": {"sum": {"$add": ["$a", "$b"]}}}, {"$unset": "b"}]`))
	require.NoError(t, err)
	assert.Equal(t, int64(2), res.ModifiedCount)
	requireStored(t, ctx, coll, `[{"_id": 1, "a": 2, "sum": 5}, {"_id": 2, "a": 5, "sum": 6}]`)

	t.Run("a no-op pipeline matches but does not modify", func(t *testing.T) {
		res, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, fromJSONArray(t, `[{"$set": {"a": 2}}]`))
		require.NoError(t, err)
		assert.Equal(t, int64(1), res.MatchedCount)
		assert.Equal(t, int64(0), res.ModifiedCount)
	})
	t.Run("a pipeline upsert builds on the query's equalities", func(t *testing.T) {
		_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 3}}, fromJSONArray(t, `[{"$set": {"a": {"$ifNull": ["$a", 0]}}}]`), options.UpdateOne().SetUpsert(true))
		require.NoError(t, err)
		requireStored(t, ctx, coll, `[{"_id": 1, "a": 2, "sum": 5}, {"_id": 2, "a": 5, "sum": 6}, {"_id": 3, "a": 0}]`)
	})
	t.Run("let variables and $$NOW reach the pipeline", func(t *testing.T) {
		_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}},
			fromJSONArray(t, `[{"$set": {"tag": "$$tag", "at": "$$NOW"}}]`),
			options.UpdateOne().SetLet(bson.D{{Key: "tag", Value: "x"}}))
		require.NoError(t, err)
		var got bson.M
		require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&got))
		assert.Equal(t, "x", got["tag"])
		assert.IsType(t, bson.DateTime(0), got["at"])
	})
	t.Run("changing the _id is refused and changes nothing", func(t *testing.T) {
		before := stored(t, ctx, coll)
		_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 2}}, fromJSONArray(t, `[{"$set": {"_id": 9}}]`))
		requireWriteError(t, err, 66)
		requireStoredDocs(t, ctx, coll, before)
	})
	t.Run("a stage other than the update stages is refused", func(t *testing.T) {
		_, err := coll.UpdateOne(ctx, bson.D{}, fromJSONArray(t, `[{"$group": {"_id": null}}]`))
		requireWriteError(t, err, 72)
	})
	t.Run("findAndModify takes a pipeline", func(t *testing.T) {
		var got bson.D
		err := coll.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: 2}}, fromJSONArray(t, `[{"$set": {"a": {"$multiply": ["$a", 10]}}}]`),
			options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&got)
		require.NoError(t, err)
		assert.Equal(t, canonJSON(t, `{"_id": 2, "a": 50, "sum": 6}`), toJSON(t, got))
	})
}

func TestExprAndLet(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("budgets")
	insertJSON(t, ctx, coll, `[{"_id": 1, "spent": 5, "budget": 3}, {"_id": 2, "spent": 1, "budget": 3}, {"_id": 3, "spent": 9, "budget": 10}]`)

	// https://www.mongodb.com/docs/manual/reference/operator/query/expr/
	cur, err := coll.Find(ctx, fromJSON(t, `{"$expr": {"$gt": ["$spent", "$budget"]}}`))
	require.NoError(t, err)
	var got []bson.D
	require.NoError(t, cur.All(ctx, &got))
	assert.Equal(t, canonJSON(t, `{"a": [{"_id": 1, "spent": 5, "budget": 3}]}`), toJSON(t, bson.D{{Key: "a", Value: got}}))

	t.Run("find with let", func(t *testing.T) {
		cur, err := coll.Find(ctx, fromJSON(t, `{"$expr": {"$gte": ["$spent", "$$min"]}}`), options.Find().SetLet(bson.D{{Key: "min", Value: 5}}).SetSort(bson.D{{Key: "_id", Value: 1}}))
		require.NoError(t, err)
		var got []bson.D
		require.NoError(t, cur.All(ctx, &got))
		require.Len(t, got, 2)
	})
	t.Run("count with $expr", func(t *testing.T) {
		n, err := coll.CountDocuments(ctx, fromJSON(t, `{"$expr": {"$lt": ["$spent", "$budget"]}}`))
		require.NoError(t, err)
		assert.Equal(t, int64(2), n)
	})
	t.Run("delete with let", func(t *testing.T) {
		res, err := coll.DeleteMany(ctx, fromJSON(t, `{"$expr": {"$eq": ["$_id", "$$id"]}}`), options.DeleteMany().SetLet(bson.D{{Key: "id", Value: 3}}))
		require.NoError(t, err)
		assert.Equal(t, int64(1), res.DeletedCount)
		requireStored(t, ctx, coll, `[{"_id": 1, "spent": 5, "budget": 3}, {"_id": 2, "spent": 1, "budget": 3}]`)
	})
	t.Run("update with let in $expr", func(t *testing.T) {
		res, err := coll.UpdateMany(ctx, fromJSON(t, `{"$expr": {"$gt": ["$spent", "$$cap"]}}`), fromJSON(t, `{"$set": {"over": true}}`), options.UpdateMany().SetLet(bson.D{{Key: "cap", Value: 4}}))
		require.NoError(t, err)
		assert.Equal(t, int64(1), res.ModifiedCount)
	})
	t.Run("aggregate with let", func(t *testing.T) {
		got := aggregateJSON(t, coll, `[{"$match": {"$expr": {"$eq": ["$_id", "$$id"]}}}, {"$project": {"_id": 1}}]`, options.Aggregate().SetLet(bson.D{{Key: "id", Value: 2}}))
		assert.Equal(t, canonJSON(t, `{"a": [{"_id": 2}]}`), toJSON(t, bson.D{{Key: "a", Value: got}}))
	})
	t.Run("an expression that fails fails the command", func(t *testing.T) {
		_, err := coll.Find(ctx, fromJSON(t, `{"$expr": {"$divide": ["$spent", 0]}}`))
		requireCommandError(t, err, 16608, "Location16608")
	})
	t.Run("a let variable with a bad name is refused", func(t *testing.T) {
		_, err := coll.Find(ctx, bson.D{}, options.Find().SetLet(bson.D{{Key: "Bad", Value: 1}}))
		requireCommandError(t, err, 16870, "Location16870")
	})
	t.Run("an undefined variable is refused", func(t *testing.T) {
		_, err := coll.DeleteOne(ctx, fromJSON(t, `{"$expr": "$$nope"}`))
		requireWriteError(t, err, 17276)
		requireStored(t, ctx, coll, `[{"_id": 1, "spent": 5, "budget": 3, "over": true}, {"_id": 2, "spent": 1, "budget": 3}]`)
	})
}

func TestJoinsAndFacets(t *testing.T) {
	ctx, db := newTestDB(t)
	orders, items := db.Collection("orders"), db.Collection("items")
	insertJSON(t, ctx, orders, `[{"_id": 1, "item": "a", "qty": 2}, {"_id": 2, "item": "b", "qty": 9}, {"_id": 3, "item": "a", "qty": 5}]`)
	insertJSON(t, ctx, items, `[{"_id": "a", "min": 3}, {"_id": "b", "min": 1}, {"_id": "c", "min": 0}]`)

	t.Run("$lookup by equality", func(t *testing.T) {
		got := aggregateJSON(t, items, `[{"$lookup": {"from": "orders", "localField": "_id", "foreignField": "item", "as": "o"}}, {"$project": {"n": {"$size": "$o"}}}, {"$sort": {"_id": 1}}]`)
		assert.Equal(t, canonJSON(t, `{"a": [{"_id": "a", "n": 2}, {"_id": "b", "n": 1}, {"_id": "c", "n": 0}]}`), toJSON(t, bson.D{{Key: "a", Value: got}}))
	})
	t.Run("$lookup with let and a pipeline", func(t *testing.T) {
		got := aggregateJSON(t, items, `[{"$lookup": {"from": "orders", "let": {"it": "$_id", "m": "$min"},
			"pipeline": [{"$match": {"$expr": {"$and": [{"$eq": ["$item", "$$it"]}, {"$gte": ["$qty", "$$m"]}]}}}, {"$project": {"_id": 1}}], "as": "o"}},
			{"$project": {"o": 1}}, {"$sort": {"_id": 1}}]`)
		assert.Equal(t, canonJSON(t, `{"a": [{"_id": "a", "o": [{"_id": 3}]}, {"_id": "b", "o": [{"_id": 2}]}, {"_id": "c", "o": []}]}`), toJSON(t, bson.D{{Key: "a", Value: got}}))
	})
	t.Run("$facet", func(t *testing.T) {
		got := aggregateJSON(t, orders, `[{"$facet": {"total": [{"$group": {"_id": null, "q": {"$sum": "$qty"}}}], "big": [{"$match": {"qty": {"$gt": 4}}}, {"$count": "n"}]}}]`)
		assert.Equal(t, canonJSON(t, `{"a": [{"total": [{"_id": null, "q": 16}], "big": [{"n": 2}]}]}`), toJSON(t, bson.D{{Key: "a", Value: got}}))
	})
	t.Run("$unionWith", func(t *testing.T) {
		got := aggregateJSON(t, orders, `[{"$project": {"_id": 1}}, {"$unionWith": {"coll": "items", "pipeline": [{"$match": {"_id": "c"}}, {"$project": {"_id": 1}}]}}]`)
		assert.Equal(t, canonJSON(t, `{"a": [{"_id": 1}, {"_id": 2}, {"_id": 3}, {"_id": "c"}]}`), toJSON(t, bson.D{{Key: "a", Value: got}}))
	})
	t.Run("$lookup inside a transaction sees the transaction's writes", func(t *testing.T) {
		sess, err := db.Client().StartSession()
		require.NoError(t, err)
		defer sess.EndSession(ctx)
		_, err = sess.WithTransaction(ctx, func(sc context.Context) (any, error) {
			if _, err := orders.InsertOne(sc, bson.D{{Key: "_id", Value: 4}, {Key: "item", Value: "c"}}); err != nil {
				return nil, err
			}
			cur, err := items.Aggregate(sc, fromJSONArray(t, `[{"$match": {"_id": "c"}}, {"$lookup": {"from": "orders", "localField": "_id", "foreignField": "item", "as": "o"}}]`))
			if err != nil {
				return nil, err
			}
			var got []bson.D
			if err := cur.All(sc, &got); err != nil {
				return nil, err
			}
			require.Len(t, got, 1)
			o, _ := field(got[0], "o").(bson.A)
			assert.Len(t, o, 1)
			return nil, nil
		})
		require.NoError(t, err)
	})
}

func TestDatabaseAggregate(t *testing.T) {
	ctx, db := newTestDB(t)
	// https://www.mongodb.com/docs/manual/reference/operator/aggregation/documents/
	cur, err := db.Aggregate(ctx, fromJSONArray(t, `[{"$documents": [{"x": 1}, {"x": 2}, {"x": 3}]}, {"$match": {"x": {"$gte": 2}}}]`))
	require.NoError(t, err)
	var got []bson.D
	require.NoError(t, cur.All(ctx, &got))
	assert.Equal(t, canonJSON(t, `{"a": [{"x": 2}, {"x": 3}]}`), toJSON(t, bson.D{{Key: "a", Value: got}}))

	_, err = db.Aggregate(ctx, fromJSONArray(t, `[{"$match": {}}]`))
	requireCommandError(t, err, 73, "InvalidNamespace")
}

func TestOutAndMerge(t *testing.T) {
	ctx, db := newTestDB(t)
	src, dst := db.Collection("src"), db.Collection("dst")
	insertJSON(t, ctx, src, `[{"_id": 1, "k": "a", "v": 1}, {"_id": 2, "k": "b", "v": 2}]`)
	insertJSON(t, ctx, dst, `[{"_id": 9, "old": true}]`)

	t.Run("$out replaces the target's documents", func(t *testing.T) {
		got := aggregateJSON(t, src, `[{"$match": {"v": {"$gt": 1}}}, {"$out": "dst"}]`)
		assert.Empty(t, got)
		requireStored(t, ctx, dst, `[{"_id": 2, "k": "b", "v": 2}]`)
	})
	t.Run("$out with duplicate ids fails and leaves the target", func(t *testing.T) {
		_, err := src.Aggregate(ctx, fromJSONArray(t, `[{"$project": {"_id": {"$literal": 1}}}, {"$out": "dst"}]`))
		requireCommandError(t, err, 11000, "DuplicateKey")
		requireStored(t, ctx, dst, `[{"_id": 2, "k": "b", "v": 2}]`)
	})
	t.Run("$merge merges matched and inserts the others", func(t *testing.T) {
		_, err := dst.UpdateOne(ctx, bson.D{{Key: "_id", Value: 2}}, fromJSON(t, `{"$set": {"extra": 1, "v": 0}}`))
		require.NoError(t, err)
		aggregateJSON(t, src, `[{"$merge": {"into": "dst"}}]`)
		requireStored(t, ctx, dst, `[{"_id": 1, "k": "a", "v": 1}, {"_id": 2, "k": "b", "v": 2, "extra": 1}]`)
	})
	t.Run("$merge with a pipeline sees $$new", func(t *testing.T) {
		aggregateJSON(t, src, `[{"$merge": {"into": "dst", "whenMatched": [{"$set": {"v": {"$add": ["$v", "$$new.v"]}}}], "whenNotMatched": "discard"}}]`)
		requireStored(t, ctx, dst, `[{"_id": 1, "k": "a", "v": 2}, {"_id": 2, "k": "b", "v": 4, "extra": 1}]`)
	})
	t.Run("$merge whenMatched fail fails", func(t *testing.T) {
		_, err := src.Aggregate(ctx, fromJSONArray(t, `[{"$merge": {"into": "dst", "whenMatched": "fail"}}]`))
		requireCommandError(t, err, 11000, "DuplicateKey")
	})
	t.Run("$merge on fields without a unique index is refused", func(t *testing.T) {
		_, err := src.Aggregate(ctx, fromJSONArray(t, `[{"$merge": {"into": "dst", "on": "k"}}]`))
		requireCommandError(t, err, 51183, "Location51183")
	})
	t.Run("$merge into another database", func(t *testing.T) {
		aggregateJSON(t, src, `[{"$merge": {"into": {"db": "other", "coll": "copy"}}}]`)
		requireStored(t, ctx, db.Client().Database("other").Collection("copy"), `[{"_id": 1, "k": "a", "v": 1}, {"_id": 2, "k": "b", "v": 2}]`)
	})
	t.Run("$out inside a transaction is refused", func(t *testing.T) {
		sess, err := db.Client().StartSession()
		require.NoError(t, err)
		defer sess.EndSession(ctx)
		_, err = sess.WithTransaction(ctx, func(sc context.Context) (any, error) {
			_, err := src.Aggregate(sc, fromJSONArray(t, `[{"$out": "dst"}]`))
			return nil, err
		})
		requireCommandError(t, err, 263, "OperationNotSupportedInTransaction")
	})
}

func TestSumOverflowsOnlyInBetween(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	insertJSON(t, ctx, coll, `[{"v": {"$numberLong": "9223372036854775807"}}, {"v": {"$numberLong": "1"}}, {"v": {"$numberLong": "-1"}}]`)
	// MongoDB's $sum keeps an exact total and returns a long when it fits.
	got := aggregateJSON(t, coll, `[{"$group": {"_id": null, "s": {"$sum": "$v"}}}]`)
	require.Len(t, got, 1)
	assert.Equal(t, int64(9223372036854775807), field(got[0], "s"))
}

func TestDistinctWithoutMatchIsEmpty(t *testing.T) {
	ctx, db := newTestDB(t)
	var reply bson.Raw
	reply, err := db.RunCommand(ctx, bson.D{{Key: "distinct", Value: "none"}, {Key: "key", Value: "a"}}).Raw()
	require.NoError(t, err)
	values := reply.Lookup("values")
	require.Equal(t, bson.TypeArray, values.Type, "values must be an array, not %s", values.Type)
	vals, _ := values.Array().Values()
	assert.Empty(t, vals)
}

func field(d bson.D, key string) any {
	for _, e := range d {
		if e.Key == key {
			return e.Value
		}
	}
	return nil
}

// The unified CRUD spec's dots_and_dollars files store such fields with
// $setField in pipeline updates (MongoDB 5.0+).
func TestSetFieldStoresDollarAndDottedNames(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	insertJSON(t, ctx, coll, `[{"_id": 1, "a": {}}]`)
	_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, fromJSONArray(t,
		`[{"$replaceWith": {"$setField": {"field": {"$literal": "$x"}, "value": 1, "input": "$$ROOT"}}},
		  {"$set": {"a": {"$setField": {"field": "y.z", "value": 2, "input": "$a"}}}}]`))
	require.NoError(t, err)
	requireStored(t, ctx, coll, `[{"_id": 1, "a": {"y.z": 2}, "$x": 1}]`)

	_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, fromJSONArray(t, `[{"$replaceWith": {"$unsetField": {"field": {"$literal": "$x"}, "input": "$$ROOT"}}}]`))
	require.NoError(t, err)
	requireStored(t, ctx, coll, `[{"_id": 1, "a": {"y.z": 2}}]`)

	t.Run("an _id with a $-prefixed field is refused", func(t *testing.T) {
		_, err := coll.InsertOne(ctx, fromJSON(t, `{"_id": {"$x": 1}}`))
		requireWriteError(t, err, 52)
		requireStored(t, ctx, coll, `[{"_id": 1, "a": {"y.z": 2}}]`)
	})
}

func TestListLocalSessions(t *testing.T) {
	ctx, db := newTestDB(t)
	sess, err := db.Client().StartSession()
	require.NoError(t, err)
	defer sess.EndSession(ctx)
	require.NoError(t, db.RunCommand(mongo.NewSessionContext(ctx, sess), bson.D{{Key: "ping", Value: 1}}).Err())
	cur, err := db.Aggregate(ctx, fromJSONArray(t, `[{"$listLocalSessions": {}}, {"$match": {"_id.id": {"$exists": true}}}, {"$count": "n"}]`))
	require.NoError(t, err)
	var got []bson.D
	require.NoError(t, cur.All(ctx, &got))
	require.Len(t, got, 1)
	n, _ := field(got[0], "n").(int32)
	assert.GreaterOrEqual(t, n, int32(1))
}

func TestMergeErrorsCarryKeys(t *testing.T) {
	ctx, db := newTestDB(t)
	insertJSON(t, ctx, db.Collection("test"), `[{"_id": 2, "x": 1}]`)
	_, err := db.Aggregate(ctx, fromJSONArray(t, `[{"$documents": [{"_id": 2, "x": 1}]}, {"$merge": {"into": "test", "whenMatched": "fail"}}]`))
	var ce mongo.CommandError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, int32(11000), ce.Code)
	var reply bson.D
	require.NoError(t, bson.Unmarshal(ce.Raw, &reply))
	assert.Equal(t, canonJSON(t, `{"_id": 1}`), toJSON(t, field(reply, "keyPattern")))
	assert.Equal(t, canonJSON(t, `{"_id": 2}`), toJSON(t, field(reply, "keyValue")))

	err = db.RunCommand(ctx, fromJSON(t, `{"aggregate": "test", "pipeline": [{"$out": "o"}], "cursor": {}, "readConcern": {"level": "linearizable"}}`)).Err()
	requireCommandError(t, err, 72, "InvalidOptions")
}

// An aggregate with $out or $merge writes, so an unsatisfiable write
// concern gets its writeConcernError, as on a one-member replica set of
// MongoDB, and the write itself stays applied.
func TestAggregateOutReportsAnUnsatisfiableWriteConcern(t *testing.T) {
	ctx, db := newTestDB(t)
	insertJSON(t, ctx, db.Collection("src"), `[{"_id": 1}]`)
	for _, stage := range []string{`{"$out": "dst"}`, `{"$merge": {"into": "dst2"}}`} {
		err := db.RunCommand(ctx, bson.D{{Key: "aggregate", Value: "src"},
			{Key: "pipeline", Value: bson.A{fromJSON(t, stage)}}, {Key: "cursor", Value: bson.D{}},
			{Key: "writeConcern", Value: bson.D{{Key: "w", Value: 30}}}}).Err()
		var we mongo.WriteException
		require.ErrorAs(t, err, &we, "%s", stage)
		require.NotNil(t, we.WriteConcernError, "%s: %v", stage, err)
		assert.Equal(t, 100, we.WriteConcernError.Code)
	}
	requireStored(t, ctx, db.Collection("dst"), `[{"_id": 1}]`)
	requireStored(t, ctx, db.Collection("dst2"), `[{"_id": 1}]`)
}

// $merge's on fields need a unique, non-partial index whose collation is
// the aggregate's, and documents match under that collation, as in
// MongoDB (supportsUniqueKey: collatorsMatch, !isPartial).
func TestMergeOnNeedsAUniqueIndexWithTheAggregatesCollation(t *testing.T) {
	ctx, db := newTestDB(t)
	caseInsensitive := &options.Collation{Locale: "en", Strength: 2}
	insertJSON(t, ctx, db.Collection("src"), `[{"_id": 1, "n": "ALICE", "v": 2}]`)
	dst := db.Collection("dst")
	insertJSON(t, ctx, dst, `[{"_id": 10, "n": "alice", "v": 1}]`)
	_, err := dst.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "n", Value: 1}},
		Options: options.Index().SetUnique(true).SetCollation(caseInsensitive)})
	require.NoError(t, err)
	partial := db.Collection("partial")
	_, err = partial.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "n", Value: 1}},
		Options: options.Index().SetUnique(true).SetPartialFilterExpression(fromJSON(t, `{"v": {"$gt": 0}}`))})
	require.NoError(t, err)
	merge := func(into string) bson.A {
		return bson.A{fromJSON(t, `{"$project": {"_id": 0}}`), fromJSON(t, `{"$merge": {"into": "`+into+`", "on": "n", "whenMatched": "merge"}}`)}
	}

	_, err = db.Collection("src").Aggregate(ctx, merge("dst"))
	requireCommandError(t, err, 51183, "Location51183")
	_, err = db.Collection("src").Aggregate(ctx, merge("partial"))
	requireCommandError(t, err, 51183, "Location51183")
	requireStored(t, ctx, dst, `[{"_id": 10, "n": "alice", "v": 1}]`)

	_, err = db.Collection("src").Aggregate(ctx, merge("dst"), options.Aggregate().SetCollation(caseInsensitive))
	require.NoError(t, err)
	requireStored(t, ctx, dst, `[{"_id": 10, "n": "ALICE", "v": 2}]`)
}
