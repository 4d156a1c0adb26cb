package mongotest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/mongotest"
)

func TestSnapshotSessionReadsOnePointInTime(t *testing.T) {
	ctx := context.Background()
	client := newClient(t)
	coll := client.Database("db").Collection("snap")
	_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: 1}})
	require.NoError(t, err)

	sess, err := client.StartSession(options.Session().SetSnapshot(true))
	require.NoError(t, err)
	defer sess.EndSession(ctx)
	sctx := mongo.NewSessionContext(ctx, sess)
	value := func(ctx context.Context) int32 {
		var d struct{ V int32 }
		require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&d))
		return d.V
	}
	require.Equal(t, int32(1), value(sctx))

	_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 2}}}})
	require.NoError(t, err)
	_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 2}, {Key: "v", Value: 2}})
	require.NoError(t, err)

	require.Equal(t, int32(1), value(sctx), "the snapshot session still reads its first point in time")
	n, err := coll.CountDocuments(sctx, bson.D{})
	require.NoError(t, err)
	require.Equal(t, int64(1), n, "aggregate reads the same snapshot")
	var vals []int32
	require.NoError(t, coll.Distinct(sctx, "v", bson.D{}).Decode(&vals))
	require.Equal(t, []int32{1}, vals, "distinct reads the same snapshot")
	require.Equal(t, int32(2), value(ctx), "others read the latest data")
}

func TestTransactionAtClusterTime(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRawSession(t, srv)
	requireOK(t, s.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: 1}})))
	reply := s.run("db", bson.D{{Key: "find", Value: "c"}, {Key: "readConcern", Value: bson.D{{Key: "level", Value: "snapshot"}}}})
	requireOK(t, reply)
	at, ok := replyField(replyField(reply, "cursor").(bson.D), "atClusterTime").(bson.Timestamp)
	require.True(t, ok, "a snapshot find reports atClusterTime: %v", reply)

	requireOK(t, s.run("db", bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 2}}}}}}}}}))

	reply = s.run("db", append(txnCmd(bson.D{{Key: "find", Value: "c"}}, 1, true), bson.E{Key: "readConcern", Value: bson.D{{Key: "level", Value: "snapshot"}, {Key: "atClusterTime", Value: at}}}))
	requireOK(t, reply)
	doc := replyField(replyField(reply, "cursor").(bson.D), "firstBatch").(bson.A)[0].(bson.D)
	require.EqualValues(t, 1, replyField(doc, "v"), "the transaction reads at atClusterTime")
	// Writing what changed after that time is a conflict.
	inc := bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "u", Value: bson.D{{Key: "$inc", Value: bson.D{{Key: "v", Value: 1}}}}}}}}}
	requireCode(t, s.run("db", txnCmd(inc, 1, false)), 112, "WriteConflict", "TransientTransactionError")

	future := bson.Timestamp{T: at.T + 3600, I: 1}
	requireCode(t, s.run("db", bson.D{{Key: "find", Value: "c"}, {Key: "readConcern", Value: bson.D{{Key: "level", Value: "snapshot"}, {Key: "atClusterTime", Value: future}}}}), 72, "InvalidOptions")
}

func TestSnapshotTooOldAfterTheHistoryWindow(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRawSession(t, srv)
	requireOK(t, s.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: 0}})))
	reply := s.run("db", bson.D{{Key: "find", Value: "c"}, {Key: "readConcern", Value: bson.D{{Key: "level", Value: "snapshot"}}}})
	at := replyField(replyField(reply, "cursor").(bson.D), "atClusterTime").(bson.Timestamp)
	snapFind := bson.D{{Key: "find", Value: "c"}, {Key: "readConcern", Value: bson.D{{Key: "level", Value: "snapshot"}, {Key: "atClusterTime", Value: at}}}}
	inc := bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "u", Value: bson.D{{Key: "$inc", Value: bson.D{{Key: "v", Value: 1}}}}}}}}}

	requireOK(t, s.run("db", inc))
	requireOK(t, s.run("db", snapFind)) // within the window the history is kept

	requireOK(t, s.run("admin", bson.D{{Key: "setParameter", Value: 1}, {Key: "minSnapshotHistoryWindowInSeconds", Value: 0}}))
	require.Eventually(t, func() bool {
		requireOK(t, s.run("db", inc))
		return replyField(s.run("db", snapFind), "code") == int32(239)
	}, 10*time.Second, 50*time.Millisecond)
	requireCode(t, s.run("db", snapFind), 239, "SnapshotTooOld")
}

// MongoDB keeps minSnapshotHistoryWindowInSeconds (300 by default) of
// history, so a snapshot read at a cluster time a few writes ago sees the
// data as it was then, although no reader held that point in time open
// (the server parameter's documentation: "the minimum time window in
// seconds for which the storage engine keeps the snapshot history").
func TestSnapshotReadAtARecentClusterTimeSeesThatTime(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRawSession(t, srv)
	requireOK(t, s.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: 1}})))
	reply := s.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 2}, {Key: "v", Value: 1}}))
	requireOK(t, reply)
	then := replyField(reply, "operationTime").(bson.Timestamp)
	for v := 2; v <= 4; v++ {
		requireOK(t, s.run("db", bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{
			bson.D{{Key: "q", Value: bson.D{}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: v}}}}}, {Key: "multi", Value: true}}}}}))
	}
	requireOK(t, s.run("db", bson.D{{Key: "delete", Value: "c"}, {Key: "deletes", Value: bson.A{
		bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "limit", Value: 1}}}}}))

	reply = s.run("db", bson.D{{Key: "find", Value: "c"}, {Key: "sort", Value: bson.D{{Key: "_id", Value: 1}}},
		{Key: "readConcern", Value: bson.D{{Key: "level", Value: "snapshot"}, {Key: "atClusterTime", Value: then}}}})
	requireOK(t, reply)
	docs := replyField(replyField(reply, "cursor").(bson.D), "firstBatch").(bson.A)
	require.Len(t, docs, 2, "both documents as they were: %v", docs)
	for _, d := range docs {
		require.EqualValues(t, 1, replyField(d.(bson.D), "v"))
	}
}
