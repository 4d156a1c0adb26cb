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
