package mongotest_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/txkit/txkit/mongotest"
)

func failCommand(t *testing.T, srv *mongotest.Server, mode any, data bson.D) {
	t.Helper()
	require.NoError(t, srv.FailCommand(mode, data))
	t.Cleanup(func() { _ = srv.FailCommand("off", nil) })
}

func txnStats(t *testing.T, srv *mongotest.Server) bson.D {
	t.Helper()
	r := newRandomSession(t, srv).run("admin", bson.D{{Key: "serverStatus", Value: 1}})
	requireOK(t, r)
	return replyField(r, "transactions").(bson.D)
}

// failCommand is evaluated before the command touches its session, as on
// MongoDB: an error injected into a statement of a transaction leaves the
// transaction open, so the next statements and the commit succeed
// (MongoDB's backpressure tests rely on this).
func TestInjectedErrorDoesNotAbortTheTransaction(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	requireOK(t, s.run("db", txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: "a"}}), 1, true)))

	failCommand(t, srv, bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"insert"}},
		{Key: "errorCode", Value: 112},
	})
	requireCode(t, s.run("db", txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: "b"}}), 1, false)),
		112, "WriteConflict", "TransientTransactionError")

	requireOK(t, s.run("db", txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: "c"}}), 1, false)))
	requireOK(t, s.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 1, false)))
	assert.Equal(t, bson.A{bson.D{{Key: "_id", Value: "a"}}, bson.D{{Key: "_id", Value: "c"}}},
		findAll(t, newRandomSession(t, srv), "c", nil))
}

// A closeConnection on a transaction's first statement leaves no
// transaction behind: the session can start the same txnNumber afresh.
func TestClosedConnectionOnFirstStatementStartsNoTransaction(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	failCommand(t, srv, bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"insert"}},
		{Key: "closeConnection", Value: true},
	})
	requireNoReply(t, s, "db", txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: "a"}}), 1, true))

	stats := txnStats(t, srv)
	assert.EqualValues(t, 0, replyField(stats, "totalStarted"), "stats: %v", stats)
	assert.EqualValues(t, 0, replyField(stats, "currentOpen"), "stats: %v", stats)

	// The same session (a new connection) starts transaction 1 normally.
	again := &rawSession{t: t, nc: dial(t, srv), lsid: s.lsid}
	requireOK(t, again.run("db", txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: "a"}}), 1, true)))
	requireOK(t, again.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 1, false)))
	assert.Len(t, findAll(t, newRandomSession(t, srv), "c", nil), 1)
}

// closeConnection sends nothing at all, even for a write whose write
// concern this one-member set cannot satisfy (a reply would carry a
// writeConcernError).
func TestCloseConnectionSendsNothingEvenWithAWriteConcernError(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	failCommand(t, srv, bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"insert"}},
		{Key: "closeConnection", Value: true},
	})
	cmd := append(insertCmd("c", bson.D{{Key: "_id", Value: 1}}), bson.E{Key: "writeConcern", Value: bson.D{{Key: "w", Value: 2}}})
	requireNoReply(t, s, "db", cmd)
	assert.Empty(t, findAll(t, newRandomSession(t, srv), "c", nil))
}

// blockConnection sleeps as MongoDB's fail point does, interruptibly: a
// maxTimeMS shorter than the block ends the command with MaxTimeMSExpired
// and it never runs.
func TestBlockConnectionHonoursMaxTimeMS(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	failCommand(t, srv, bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"insert"}},
		{Key: "blockConnection", Value: true},
		{Key: "blockTimeMS", Value: 2000},
	})
	cmd := append(insertCmd("c", bson.D{{Key: "_id", Value: 1}}), bson.E{Key: "maxTimeMS", Value: 50})
	requireCode(t, s.run("db", cmd), 50, "MaxTimeMSExpired")
	assert.Empty(t, findAll(t, newRandomSession(t, srv), "c", nil), "the blocked insert did not run")
}

// requireNoReply sends cmd and requires the server to close the connection
// without a byte of reply.
func requireNoReply(t *testing.T, s *rawSession, db string, cmd bson.D) {
	t.Helper()
	cmd = append(cmd, bson.E{Key: "lsid", Value: s.lsid}, bson.E{Key: "$db", Value: db})
	raw, err := bson.Marshal(cmd)
	require.NoError(t, err)
	write(t, s.nc, opMsg(1, 0, bsoncore.Document(raw)))
	require.NoError(t, s.nc.SetReadDeadline(time.Now().Add(10*time.Second)))
	n, err := io.ReadFull(s.nc, make([]byte, 1))
	assert.Zero(t, n, "the server replied")
	require.ErrorIs(t, err, io.EOF)
}

// A fail point in random mode with activationProbability 0 never fires:
// MongoDB stores p × INT32_MAX and fires when a draw in [0, INT32_MAX] is
// below it (FailPoint::parseBSON and the random case of
// _slowShouldFailOpenBlockWithoutIncrementingTimesEntered,
// src/mongo/util/fail_point.cpp); at 1 it always fires.
func TestActivationProbabilityZeroNeverFiresAndOneAlwaysDoes(t *testing.T) {
	ctx, db := newTestDB(t)
	admin := db.Client().Database("admin")
	configure := func(p float64) {
		require.NoError(t, admin.RunCommand(ctx, bson.D{
			{Key: "configureFailPoint", Value: "failCommand"},
			{Key: "mode", Value: bson.D{{Key: "activationProbability", Value: p}}},
			{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "errorCode", Value: 2}}},
		}).Err())
	}
	t.Cleanup(func() {
		_ = admin.RunCommand(context.Background(), bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "off"}}).Err()
	})
	configure(0)
	for i := range 5 {
		_, err := db.Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: i}})
		require.NoError(t, err, "insert %d", i)
	}
	configure(1)
	for i := range 5 {
		_, err := db.Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 10 + i}})
		require.Error(t, err, "insert %d", i)
	}
	n, err := db.Collection("c").CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, 5, n)
}
