package mongotest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/mongotest"
)

// currentOp runs db.getSiblingDB("admin").aggregate([{$currentOp: spec}, rest...]).
func currentOp(t *testing.T, client *mongo.Client, spec bson.D, rest ...bson.D) []bson.D {
	t.Helper()
	pipeline := append([]bson.D{{{Key: "$currentOp", Value: spec}}}, rest...)
	cur, err := client.Database("admin").Aggregate(testContext(t), pipeline)
	require.NoError(t, err)
	var out []bson.D
	require.NoError(t, cur.All(testContext(t), &out))
	return out
}

// path follows a dotted path through documents of d.
func path(d bson.D, p string) any {
	var v any = d
	for _, k := range strings.Split(p, ".") {
		doc, ok := v.(bson.D)
		if !ok {
			return nil
		}
		v = replyField(doc, k)
	}
	return v
}

// isoTime parses MongoDB's dateToISOStringLocal form.
func isoTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, ok := v.(string)
	require.True(t, ok, "want an ISO-8601 string, got %T %v", v, v)
	tm, err := time.Parse("2006-01-02T15:04:05.000-07:00", s)
	require.NoError(t, err)
	return tm
}

func idleSessions(t *testing.T, client *mongo.Client) []bson.D {
	return currentOp(t, client, bson.D{}, bson.D{{Key: "$match", Value: bson.D{{Key: "type", Value: "idleSession"}}}})
}

// A session with a transaction in progress and no command running is
// listed as MongoDB's TransactionParticipant::reportStashedState lists
// it: an idleSession with the session's lsid, its txnNumber, how long it
// has been open and when the lifetime limit ends it.
func TestCurrentOpListsAnIdleTransaction(t *testing.T) {
	const limit = 90 * time.Second
	srv := mongotest.Start(t, mongotest.WithTransactionLifetimeLimit(limit))
	client := connect(t, srv)
	ctx := testContext(t)
	coll := client.Database("db").Collection("c")

	sess, err := client.StartSession()
	require.NoError(t, err)
	defer sess.EndSession(ctx)
	require.NoError(t, sess.StartTransaction())
	sctx := mongo.NewSessionContext(ctx, sess)
	_, err = coll.InsertOne(sctx, bson.D{{Key: "_id", Value: 1}})
	require.NoError(t, err)

	idle := idleSessions(t, client)
	require.Len(t, idle, 1, "idle sessions: %v", idle)
	got := idle[0]
	assert.Equal(t, "idleSession", replyField(got, "type"))
	assert.Equal(t, false, replyField(got, "active"))
	assert.Equal(t, "inactive transaction", replyField(got, "desc"))
	assert.Equal(t, "mongotest-test", replyField(got, "appName"))
	_, sessID := sess.ID().Lookup("id").Binary()
	assert.Equal(t, sessID, path(got, "lsid.id").(bson.Binary).Data)
	assert.Equal(t, byte(4), path(got, "lsid.id").(bson.Binary).Subtype)
	assert.IsType(t, bson.Binary{}, path(got, "lsid.uid"))
	assert.Equal(t, int64(1), path(got, "transaction.parameters.txnNumber"))
	assert.Equal(t, false, path(got, "transaction.parameters.autocommit"))
	open := path(got, "transaction.timeOpenMicros")
	require.IsType(t, int64(0), open)
	start := isoTime(t, path(got, "transaction.startWallClockTime"))
	expiry := isoTime(t, path(got, "transaction.expiryTime"))
	assert.Equal(t, start.Add(limit), expiry)
	assert.IsType(t, int64(0), path(got, "transaction.timeActiveMicros"))
	assert.IsType(t, int64(0), path(got, "transaction.timeInactiveMicros"))

	time.Sleep(20 * time.Millisecond)
	again := idleSessions(t, client)
	require.Len(t, again, 1)
	assert.Greater(t, path(again[0], "transaction.timeOpenMicros").(int64), open.(int64)+20_000-1)

	require.NoError(t, sess.CommitTransaction(ctx))
	assert.Empty(t, idleSessions(t, client), "a committed transaction is not listed")

	require.NoError(t, sess.StartTransaction())
	_, err = coll.InsertOne(sctx, bson.D{{Key: "_id", Value: 2}})
	require.NoError(t, err)
	idle = idleSessions(t, client)
	require.Len(t, idle, 1)
	assert.Equal(t, int64(2), path(idle[0], "transaction.parameters.txnNumber"))
	require.NoError(t, sess.AbortTransaction(ctx))
	assert.Empty(t, idleSessions(t, client), "an aborted transaction is not listed")

	require.NoError(t, sess.StartTransaction())
	_, err = coll.InsertOne(sctx, bson.D{{Key: "_id", Value: 3}})
	require.NoError(t, err)
	require.Len(t, idleSessions(t, client), 1)
	require.NoError(t, client.Database("admin").RunCommand(ctx, bson.D{{Key: "killSessions", Value: bson.A{bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: sessID}}}}}}).Err())
	_ = sess.AbortTransaction(ctx)
	assert.Empty(t, idleSessions(t, client), "a killed session's transaction is not listed")
}

// idleSessions: false hides idle sessions; ops are still listed.
func TestCurrentOpIdleSessionsFalseHidesThem(t *testing.T) {
	srv := mongotest.Start(t)
	client := connect(t, srv)
	ctx := testContext(t)
	sess, err := client.StartSession()
	require.NoError(t, err)
	defer sess.EndSession(ctx)
	require.NoError(t, sess.StartTransaction())
	_, err = client.Database("db").Collection("c").InsertOne(mongo.NewSessionContext(ctx, sess), bson.D{{Key: "_id", Value: 1}})
	require.NoError(t, err)

	require.Len(t, idleSessions(t, client), 1)
	all := currentOp(t, client, bson.D{{Key: "idleSessions", Value: false}})
	for _, d := range all {
		assert.NotEqual(t, "idleSession", replyField(d, "type"), "listed: %v", d)
	}
	require.NotEmpty(t, all, "the $currentOp command itself is an op")
}

// The $currentOp command is itself a running op, listed with its command
// and namespace as MongoDB lists it; $match filters the stage's output.
func TestCurrentOpListsItself(t *testing.T) {
	srv := mongotest.Start(t)
	client := connect(t, srv)
	pipeline := []bson.D{
		{{Key: "$currentOp", Value: bson.D{}}},
		{{Key: "$match", Value: bson.D{{Key: "command.comment", Value: "find me"}}}},
	}
	cur, err := client.Database("admin").Aggregate(testContext(t), pipeline, options.Aggregate().SetComment("find me"))
	require.NoError(t, err)
	var ops []bson.D
	require.NoError(t, cur.All(testContext(t), &ops))
	require.Len(t, ops, 1, "ops: %v", ops)
	self := ops[0]
	assert.Equal(t, "op", replyField(self, "type"))
	assert.Equal(t, true, replyField(self, "active"))
	assert.Equal(t, "command", replyField(self, "op"))
	assert.Equal(t, "admin.$cmd.aggregate", replyField(self, "ns"))
	assert.EqualValues(t, 1, path(self, "command.aggregate"))
	assert.Equal(t, "admin", path(self, "command.$db"))
	assert.IsType(t, int32(0), replyField(self, "opid"))
	assert.Equal(t, "mongotest-test", replyField(self, "appName"))
	assert.NotNil(t, path(self, "lsid.id"), "the driver's implicit session")
	assert.Nil(t, replyField(self, "transaction"))

	none := currentOp(t, client, bson.D{}, bson.D{{Key: "$match", Value: bson.D{{Key: "command.comment", Value: "nobody"}}}})
	assert.Empty(t, none)
}

// A command held by failCommand's blockConnection is an active op, with
// its namespace, command, appName and opid, on every connection (not
// only those with a session); the op that lists it has an opid of its
// own.
func TestCurrentOpShowsABlockedCommand(t *testing.T) {
	srv := mongotest.Start(t)
	client := connect(t, srv)
	ctx := testContext(t)
	require.NoError(t, srv.FailCommand(bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"find"}},
		{Key: "blockConnection", Value: true},
		{Key: "blockTimeMS", Value: 1500},
	}))
	done := make(chan error, 1)
	go func() {
		done <- client.Database("db").Collection("c").FindOne(ctx, bson.D{{Key: "x", Value: "blocked"}}).Err()
	}()

	match := bson.D{{Key: "$match", Value: bson.D{{Key: "command.find", Value: "c"}}}}
	var ops []bson.D
	require.Eventually(t, func() bool {
		ops = currentOp(t, client, bson.D{}, match)
		return len(ops) == 1
	}, 5*time.Second, 5*time.Millisecond)
	got := ops[0]
	assert.Equal(t, "op", replyField(got, "type"))
	assert.Equal(t, true, replyField(got, "active"))
	assert.Equal(t, "query", replyField(got, "op"))
	assert.Equal(t, "db.c", replyField(got, "ns"))
	assert.Equal(t, "blocked", path(got, "command.filter.x"))
	assert.Equal(t, "db", path(got, "command.$db"))
	assert.Equal(t, "mongotest-test", replyField(got, "appName"))
	assert.Equal(t, "mongo-go-driver", path(got, "clientMetadata.driver.name"))
	assert.IsType(t, int32(0), replyField(got, "opid"))
	assert.True(t, strings.HasPrefix(replyField(got, "desc").(string), "conn"), "desc: %v", replyField(got, "desc"))
	assert.NotEmpty(t, replyField(got, "client"))
	assert.IsType(t, int64(0), replyField(got, "secs_running"))
	assert.IsType(t, int64(0), replyField(got, "microsecs_running"))
	assert.Equal(t, false, replyField(got, "waitingForLock"))

	self := currentOp(t, client, bson.D{}, bson.D{{Key: "$match", Value: bson.D{{Key: "command.aggregate", Value: 1}}}})
	require.Len(t, self, 1)
	assert.NotEqual(t, replyField(got, "opid"), replyField(self[0], "opid"))

	require.ErrorIs(t, <-done, mongo.ErrNoDocuments, "the blocked find ran")
}

// A retryable write waiting for a document another transaction holds
// runs with its session checked out: its op carries the transaction
// sub-document of a retryable write, the txnNumber alone
// (SingleTransactionStats::report).
func TestCurrentOpShowsTheTxnNumberOfARunningRetryableWrite(t *testing.T) {
	srv := mongotest.Start(t)
	client := connect(t, srv)
	holder := newRawSession(t, srv)
	requireOK(t, holder.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 0}})))
	update := func(n int) bson.D {
		return bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{
			{Key: "q", Value: bson.D{{Key: "_id", Value: 1}}},
			{Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: n}}}}},
		}}}}
	}
	requireOK(t, holder.run("db", txnCmd(update(1), 1, true)))

	waiter := newRawSession(t, srv)
	waiter.lsid[0].Value.(bson.Binary).Data[1] ^= 0xff
	done := make(chan bson.D, 1)
	go func() { done <- waiter.run("db", append(update(2), bson.E{Key: "txnNumber", Value: int64(5)})) }()

	match := bson.D{{Key: "$match", Value: bson.D{{Key: "command.update", Value: "c"}, {Key: "command.txnNumber", Value: int64(5)}}}}
	var ops []bson.D
	require.Eventually(t, func() bool {
		ops = currentOp(t, client, bson.D{}, match)
		return len(ops) == 1 && path(ops[0], "transaction") != nil
	}, 5*time.Second, 5*time.Millisecond, "ops: %v", ops)
	assert.Equal(t, "update", replyField(ops[0], "op"))
	assert.Equal(t, bson.D{{Key: "parameters", Value: bson.D{{Key: "txnNumber", Value: int64(5)}}}}, replyField(ops[0], "transaction"))

	requireOK(t, holder.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 1, false)))
	requireOK(t, <-done)
}

func TestCurrentOpErrors(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRawSession(t, srv)
	agg := func(coll any, pipeline ...bson.D) bson.D {
		p := bson.A{}
		for _, st := range pipeline {
			p = append(p, st)
		}
		return bson.D{{Key: "aggregate", Value: coll}, {Key: "pipeline", Value: p}, {Key: "cursor", Value: bson.D{}}}
	}
	stage := func(spec any) bson.D { return bson.D{{Key: "$currentOp", Value: spec}} }
	tests := []struct {
		name     string
		db       string
		give     bson.D
		code     int32
		codeName string
		msg      string
	}{
		{"not on admin", "db", agg(1, stage(bson.D{})), 73, "InvalidNamespace", "$currentOp must be run against the 'admin' database with {aggregate: 1}"},
		{"on a collection", "admin", agg("c", stage(bson.D{})), 73, "InvalidNamespace", "$currentOp must be run against the 'admin' database with {aggregate: 1}"},
		{"not the first stage", "admin", agg(1, stage(bson.D{}), stage(bson.D{})), 40602, "Location40602", "$currentOp is only valid as the first stage in a pipeline."},
		// MongoDB checks the first stage against {aggregate: 1}
		// (validateTopLevelPipeline) before any stage's position
		// (validateCommon): src/mongo/db/pipeline/pipeline.cpp parseCommon.
		{"after a stage that needs a collection", "admin", agg(1, bson.D{{Key: "$match", Value: bson.D{}}}, stage(bson.D{})), 73, "InvalidNamespace", "{aggregate: 1} is not valid for '$match'; a collection is required."},
		{"after a stage, on a collection", "admin", agg("c", bson.D{{Key: "$match", Value: bson.D{}}}, stage(bson.D{})), 73, "InvalidNamespace", "$currentOp must be run against the 'admin' database with {aggregate: 1}"},
		{"an empty pipeline", "admin", agg(1), 73, "InvalidNamespace", "{aggregate: 1} is not valid for an empty pipeline."},
		{"options not an object", "admin", agg(1, stage("x")), 14, "TypeMismatch", "$currentOp options must be specified in an object, but found: string"},
		{"allUsers not a boolean", "admin", agg(1, stage(bson.D{{Key: "allUsers", Value: 1}})), 14, "TypeMismatch", "The 'allUsers' parameter of the $currentOp stage must be a boolean value, but found: int"},
		{"localOps not a boolean", "admin", agg(1, stage(bson.D{{Key: "localOps", Value: "yes"}})), 14, "TypeMismatch", "The 'localOps' parameter of the $currentOp stage must be a boolean value, but found: string"},
		{"idleSessions not a boolean", "admin", agg(1, stage(bson.D{{Key: "idleSessions", Value: 1}})), 9, "FailedToParse", "The 'idleSessions' parameter of the $currentOp stage must be a boolean value, but found: int"},
		{"idleConnections not a boolean", "admin", agg(1, stage(bson.D{{Key: "idleConnections", Value: 1.0}})), 9, "FailedToParse", "The 'idleConnections' parameter of the $currentOp stage must be a boolean value, but found: double"},
		{"an unknown option", "admin", agg(1, stage(bson.D{{Key: "bogus", Value: true}})), 9, "FailedToParse", "Unrecognized option 'bogus' in $currentOp stage."},
		{"targetAllNodes, which 7.0 does not know", "admin", agg(1, stage(bson.D{{Key: "targetAllNodes", Value: false}})), 9, "FailedToParse", "Unrecognized option 'targetAllNodes' in $currentOp stage."},
		{"idleCursors, which mongotest does not list", "admin", agg(1, stage(bson.D{{Key: "idleCursors", Value: true}})), 20, "IllegalOperation", "$currentOp with idleCursors: true is not supported by mongotest"},
		{"truncateOps, which mongotest does not do", "admin", agg(1, stage(bson.D{{Key: "truncateOps", Value: true}})), 20, "IllegalOperation", "$currentOp with truncateOps: true is not supported by mongotest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply := runWithoutLsid(t, s, tt.db, tt.give)
			requireCode(t, reply, tt.code, tt.codeName)
			assert.Equal(t, tt.msg, replyField(reply, "errmsg"))
		})
	}

	for _, ok := range []bson.D{
		{{Key: "allUsers", Value: true}, {Key: "idleSessions", Value: true}, {Key: "idleConnections", Value: false}, {Key: "localOps", Value: true}, {Key: "backtrace", Value: true}, {Key: "idleCursors", Value: false}, {Key: "truncateOps", Value: false}},
	} {
		requireOK(t, runWithoutLsid(t, s, "admin", agg(1, stage(ok))))
	}
	for _, one := range []any{int32(1), int64(1), 1.0} {
		requireOK(t, runWithoutLsid(t, s, "admin", agg(one, stage(bson.D{}))))
	}
}

// idleConnections: true lists each connection with no command running
// as an inactive op, as MongoDB does for its idle clients.
func TestCurrentOpIdleConnections(t *testing.T) {
	srv := mongotest.Start(t)
	client := connect(t, srv)
	idle := newRawSession(t, srv)
	requireOK(t, idle.run("db", bson.D{{Key: "ping", Value: 1}}))

	inactive := bson.D{{Key: "$match", Value: bson.D{{Key: "active", Value: false}}}}
	assert.Empty(t, currentOp(t, client, bson.D{}, inactive), "idle connections are not listed by default")
	got := currentOp(t, client, bson.D{{Key: "idleConnections", Value: true}}, inactive)
	require.NotEmpty(t, got)
	for _, d := range got {
		assert.Equal(t, "op", replyField(d, "type"))
		assert.Nil(t, replyField(d, "opid"))
		assert.True(t, strings.HasPrefix(replyField(d, "desc").(string), "conn"))
	}
}

// A transaction's expiry is fixed when it starts, at start +
// transactionLifetimeLimitSeconds, as MongoDB's transactionExpireDate
// (TransactionParticipant::Observer::expiredAsOf): lowering the limit
// later does not reap the transactions already open, and $currentOp's
// expiryTime says when each really ends.
func TestTheLifetimeLimitOfATransactionIsFixedAtItsStart(t *testing.T) {
	srv := mongotest.Start(t)
	client := connect(t, srv)
	old, young := newRawSession(t, srv), newRawSession(t, srv)
	young.lsid[0].Value.(bson.Binary).Data[1] ^= 0xff
	requireOK(t, old.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 0}})))
	requireOK(t, old.run("db", txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: 1}}), 1, true)))
	requireOK(t, old.run("admin", bson.D{{Key: "setParameter", Value: 1}, {Key: "transactionLifetimeLimitSeconds", Value: 1}}))
	requireOK(t, young.run("db", txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: 2}}), 1, true)))

	idle := idleSessions(t, client)
	require.Len(t, idle, 2)
	limits := []time.Duration{60 * time.Second, time.Second} // oldest first
	for i, d := range idle {
		start := isoTime(t, path(d, "transaction.startWallClockTime"))
		assert.Equal(t, start.Add(limits[i]), isoTime(t, path(d, "transaction.expiryTime")))
	}

	require.Eventually(t, func() bool {
		return replyField(young.run("db", txnCmd(bson.D{{Key: "find", Value: "c"}}, 1, false)), "code") == int32(251)
	}, 10*time.Second, 100*time.Millisecond, "the transaction started under the 1 s limit is reaped")
	requireOK(t, old.run("db", txnCmd(bson.D{{Key: "find", Value: "c"}}, 1, false)))
	require.Len(t, idleSessions(t, client), 1, "the one started under the 60 s limit is still open")
	requireOK(t, old.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 1, false)))
}

// $currentOp is not allowed in a transaction: its lite parse refuses it
// (LiteParsedDocumentSource::assertSupportsMultiDocumentTransaction).
func TestCurrentOpInATransactionIsRefused(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRawSession(t, srv)
	agg := bson.D{
		{Key: "aggregate", Value: 1},
		{Key: "pipeline", Value: bson.A{bson.D{{Key: "$currentOp", Value: bson.D{}}}}},
		{Key: "cursor", Value: bson.D{}},
	}
	reply := s.run("admin", txnCmd(agg, 1, true))
	requireCode(t, reply, 263, "OperationNotSupportedInTransaction")
	assert.Equal(t, "Operation not permitted in transaction :: caused by :: Aggregation stage $currentOp cannot run within a multi-document transaction.", replyField(reply, "errmsg"))
}
