package mongotest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/mongotest"
)

// examined is serverStatus metrics.queryExecutor: index keys and
// documents the server has examined so far.
type examined struct{ keys, docs int64 }

func queryExecutor(t testing.TB, client *mongo.Client) examined {
	t.Helper()
	var status struct {
		Metrics struct {
			QueryExecutor struct {
				Scanned        *int64 `bson:"scanned"`
				ScannedObjects *int64 `bson:"scannedObjects"`
			} `bson:"queryExecutor"`
		} `bson:"metrics"`
	}
	require.NoError(t, client.Database("admin").RunCommand(context.Background(), bson.D{{Key: "serverStatus", Value: 1}}).Decode(&status))
	qe := status.Metrics.QueryExecutor
	require.NotNil(t, qe.Scanned, "serverStatus has metrics.queryExecutor.scanned")
	require.NotNil(t, qe.ScannedObjects, "serverStatus has metrics.queryExecutor.scannedObjects")
	return examined{keys: *qe.Scanned, docs: *qe.ScannedObjects}
}

// examinedBy runs fn and returns what the server examined meanwhile.
func examinedBy(t *testing.T, client *mongo.Client, fn func()) examined {
	t.Helper()
	before := queryExecutor(t, client)
	fn()
	after := queryExecutor(t, client)
	return examined{keys: after.keys - before.keys, docs: after.docs - before.docs}
}

// seeded returns a collection of n documents {_id: "d000", status:
// "open", n: 0}, … on a server of its own.
func seeded(t *testing.T, n int) (*mongo.Client, *mongo.Collection) {
	t.Helper()
	client := connect(t, mongotest.Start(t, mongotest.WithoutListener()))
	coll := client.Database("db").Collection("c")
	docs := make([]any, n)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: fmt.Sprintf("d%03d", i)}, {Key: "status", Value: "open"}, {Key: "n", Value: i}}
	}
	_, err := coll.InsertMany(context.Background(), docs)
	require.NoError(t, err)
	return client, coll
}

func TestServerStatusCountsWhatQueriesExamine(t *testing.T) {
	ctx := context.Background()
	client, coll := seeded(t, 10)

	t.Run("a collection scan examines every document and no key", func(t *testing.T) {
		got := examinedBy(t, client, func() {
			n, err := coll.CountDocuments(ctx, bson.D{{Key: "n", Value: bson.D{{Key: "$gte", Value: 5}}}})
			require.NoError(t, err)
			require.Equal(t, int64(5), n)
		})
		require.Equal(t, examined{keys: 0, docs: 10}, got)
	})
	t.Run("a find by _id examines one key and one document", func(t *testing.T) {
		got := examinedBy(t, client, func() {
			require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: "d003"}}).Err())
		})
		require.Equal(t, examined{keys: 1, docs: 1}, got)
	})
	t.Run("a find by a missing _id examines nothing", func(t *testing.T) {
		got := examinedBy(t, client, func() {
			require.ErrorIs(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: "nope"}}).Err(), mongo.ErrNoDocuments)
		})
		require.Equal(t, examined{}, got)
	})
	t.Run("an aggregation examines the collection it reads", func(t *testing.T) {
		got := examinedBy(t, client, func() {
			cur, err := coll.Aggregate(ctx, mongo.Pipeline{{{Key: "$match", Value: bson.D{{Key: "status", Value: "open"}}}}})
			require.NoError(t, err)
			var docs []bson.D
			require.NoError(t, cur.All(ctx, &docs))
			require.Len(t, docs, 10)
		})
		require.Equal(t, examined{keys: 0, docs: 10}, got)
	})
}

// Credits and payments guard every update with a filter on _id and the
// expected state; MongoDB plans it as an _id index lookup and evaluates
// the rest on the one document it fetches
// (finding mongotest-compound-id-filter-scans).
func TestIDEqualityWithOtherFieldsExaminesOneDocument(t *testing.T) {
	ctx := context.Background()
	client, coll := seeded(t, 500)
	open := func(id string) bson.D {
		return bson.D{{Key: "_id", Value: id}, {Key: "status", Value: "open"}}
	}

	t.Run("UpdateOne", func(t *testing.T) {
		got := examinedBy(t, client, func() {
			res, err := coll.UpdateOne(ctx, open("d100"), bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: "held"}}}})
			require.NoError(t, err)
			require.Equal(t, int64(1), res.ModifiedCount)
		})
		require.Equal(t, int64(1), got.docs)
	})
	t.Run("Find", func(t *testing.T) {
		got := examinedBy(t, client, func() {
			cur, err := coll.Find(ctx, bson.D{{Key: "_id", Value: "d200"}, {Key: "n", Value: bson.D{{Key: "$lte", Value: 200}}}})
			require.NoError(t, err)
			var docs []bson.D
			require.NoError(t, cur.All(ctx, &docs))
			require.Len(t, docs, 1)
		})
		require.Equal(t, int64(1), got.docs)
	})
	t.Run("DeleteOne", func(t *testing.T) {
		got := examinedBy(t, client, func() {
			res, err := coll.DeleteOne(ctx, open("d300"))
			require.NoError(t, err)
			require.Equal(t, int64(1), res.DeletedCount)
		})
		require.Equal(t, int64(1), got.docs)
	})
	t.Run("FindOneAndUpdate", func(t *testing.T) {
		got := examinedBy(t, client, func() {
			err := coll.FindOneAndUpdate(ctx, open("d400"), bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}).Err()
			require.NoError(t, err)
		})
		require.Equal(t, int64(1), got.docs)
	})
	t.Run("UpdateOne of a missing _id", func(t *testing.T) {
		got := examinedBy(t, client, func() {
			res, err := coll.UpdateOne(ctx, open("nope"), bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: "held"}}}})
			require.NoError(t, err)
			require.Equal(t, int64(0), res.MatchedCount)
		})
		require.Equal(t, int64(0), got.docs)
	})
}

// BenchmarkUpdateByIDAndField is the guarded update credits and payments
// send, {_id, status}, in a small and a large collection: with an _id
// lookup the two cost the same.
func BenchmarkUpdateByIDAndField(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("docs=%d", n), func(b *testing.B) {
			ctx := context.Background()
			coll := seededIDs(b, n)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				filter := bson.D{{Key: "_id", Value: fmt.Sprintf("d%05d", i%n)}, {Key: "status", Value: "open"}}
				res, err := coll.UpdateOne(ctx, filter, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}})
				if err != nil || res.ModifiedCount != 1 {
					b.Fatalf("update %v: %+v %v", filter, res, err)
				}
			}
		})
	}
}

// seededIDs returns a collection of an in-memory server holding n
// documents {_id: "d00000"…, status: "open", n}, for the _id lookup
// benchmarks.
func seededIDs(b *testing.B, n int) *mongo.Collection {
	b.Helper()
	coll := connect(b, mongotest.Start(b, mongotest.WithoutListener())).Database("db").Collection("c")
	docs := make([]any, n)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: fmt.Sprintf("d%05d", i)}, {Key: "status", Value: "open"}, {Key: "n", Value: i}}
	}
	_, err := coll.InsertMany(context.Background(), docs)
	require.NoError(b, err)
	return coll
}
