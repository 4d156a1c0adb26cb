package mongotest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Idle sessions expire after logicalSessionTimeoutMinutes, aborting their
// open transaction, and idle cursors after 10 minutes: housekeeping is run
// here with a clock moved forward rather than by waiting.
func TestIdleSessionsAndCursorsExpire(t *testing.T) {
	ctx := context.Background()
	srv := Start(t)
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	require.NoError(t, err)
	defer func() { _ = client.Disconnect(ctx) }()
	coll := client.Database("db").Collection("c")
	for i := range 5 {
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: i}})
		require.NoError(t, err)
	}
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(2))
	require.NoError(t, err)
	defer cur.Close(ctx)

	sess, err := client.StartSession()
	require.NoError(t, err)
	defer sess.EndSession(ctx)
	require.NoError(t, sess.StartTransaction())
	_, err = coll.InsertOne(mongo.NewSessionContext(ctx, sess), bson.D{{Key: "_id", Value: "pending"}})
	require.NoError(t, err)
	require.Positive(t, srv.core.sessions.count())

	srv.core.housekeep(time.Now().Add(logicalSessionTimeoutMinutes*time.Minute + time.Minute))

	require.Zero(t, srv.core.sessions.count(), "idle sessions are forgotten")
	n, err := coll.CountDocuments(ctx, bson.D{{Key: "_id", Value: "pending"}})
	require.NoError(t, err)
	require.Zero(t, n, "the expired session's transaction was aborted")
	require.ErrorContains(t, sess.CommitTransaction(ctx), "NoSuchTransaction")
	for cur.Next(ctx) {
	}
	var ce mongo.ServerError
	require.ErrorAs(t, cur.Err(), &ce)
	require.True(t, ce.HasErrorCode(43), "the idle cursor was reaped: %v", cur.Err())
}

// A find with noCursorTimeout opens a cursor that idle-cursor reaping
// spares, as on MongoDB.
func TestNoCursorTimeoutCursorIsNotReaped(t *testing.T) {
	ctx := context.Background()
	srv := Start(t, WithoutListener())
	client, err := mongo.Connect(srv.ClientOptions())
	require.NoError(t, err)
	defer func() { _ = client.Disconnect(ctx) }()
	coll := client.Database("db").Collection("c")
	for i := range 5 {
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: i}})
		require.NoError(t, err)
	}
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(2).SetNoCursorTimeout(true))
	require.NoError(t, err)
	defer cur.Close(ctx)

	srv.core.housekeep(time.Now().Add(cursorIdleTimeout + time.Minute))

	var docs []bson.D
	require.NoError(t, cur.All(ctx, &docs))
	require.Len(t, docs, 5)
}

// A TTL index deletes the documents it has expired, as MongoDB's TTL
// monitor does; the others stay.
func TestTTLIndexDeletesExpiredDocuments(t *testing.T) {
	srv := Start(t, WithoutListener())
	ctx := context.Background()
	client, err := mongo.Connect(srv.ClientOptions())
	require.NoError(t, err)
	defer func() { _ = client.Disconnect(ctx) }()
	coll := client.Database("db").Collection("c")
	_, err = coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "at", Value: 1}}, Options: options.Index().SetExpireAfterSeconds(3600)})
	require.NoError(t, err)
	now := time.Now()
	_, err = coll.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: "old"}, {Key: "at", Value: now.Add(-2 * time.Hour)}},
		bson.D{{Key: "_id", Value: "oldInArray"}, {Key: "at", Value: bson.A{now, now.Add(-2 * time.Hour)}}},
		bson.D{{Key: "_id", Value: "fresh"}, {Key: "at", Value: now}},
		bson.D{{Key: "_id", Value: "notADate"}, {Key: "at", Value: "yesterday"}},
		bson.D{{Key: "_id", Value: "noField"}},
	})
	require.NoError(t, err)

	left := func() []string {
		cur, err := coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
		require.NoError(t, err)
		var docs []struct {
			ID string `bson:"_id"`
		}
		require.NoError(t, cur.All(ctx, &docs))
		var ids []string
		for _, d := range docs {
			ids = append(ids, d.ID)
		}
		return ids
	}
	all := []string{"fresh", "noField", "notADate", "old", "oldInArray"}
	srv.core.housekeep(now.Add(30 * time.Second))
	require.Equal(t, all, left(), "the monitor sleeps 60 s between passes, as MongoDB's")

	require.NoError(t, client.Database("admin").RunCommand(ctx, bson.D{{Key: "setParameter", Value: 1}, {Key: "ttlMonitorEnabled", Value: false}}).Err())
	srv.core.housekeep(now.Add(2 * ttlMonitorSleep))
	require.Equal(t, all, left(), "ttlMonitorEnabled: false stops it")

	require.NoError(t, client.Database("admin").RunCommand(ctx, bson.D{{Key: "setParameter", Value: 1}, {Key: "ttlMonitorEnabled", Value: true}}).Err())
	srv.core.housekeep(now.Add(3 * ttlMonitorSleep))
	require.Equal(t, []string{"fresh", "noField", "notADate"}, left(), "expired documents are deleted")
}
