package mongotest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest"
)

// Session findings filed by attack15b (/work/findings/mongotest-*.md):
// each test pins a case where mongotest answered differently from MongoDB,
// with the source of MongoDB's behaviour.

// Retryable-write history is durable on MongoDB: it lives in
// config.transactions and the oplog, not in the in-memory session, so
// killSessions (which aborts open transactions and kills running
// operations) does not forget it: when the killed session is checked out
// again its state is refreshed from config.transactions
// (TransactionParticipant::refreshFromStorageIfNeeded). A retry of an
// applied write after killSessions returns the recorded result and applies
// nothing; an older txnNumber is still TransactionTooOld. mongotest dropped
// the session record with its history, so the retry applied the $inc a
// second time, and an old txnNumber was accepted as new.
func TestRetryableWriteHistorySurvivesKillSessions(t *testing.T) {
	srv := mongotest.Start(t)
	s, admin := newRandomSession(t, srv), newRandomSession(t, srv)
	requireOK(t, runWithoutLsid(t, s, "db", insertCmd("c", bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 0}})))
	inc := func(txn int64) bson.D {
		return bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{
			{Key: "q", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "u", Value: bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}},
		}}}, {Key: "txnNumber", Value: txn}}
	}
	requireOK(t, s.run("db", inc(5)))
	requireOK(t, admin.run("admin", bson.D{{Key: "killSessions", Value: bson.A{s.lsid}}}))

	r := s.run("db", inc(5)) // the retry of a write whose reply was lost
	requireOK(t, r)
	assert.EqualValues(t, 1, replyField(r, "nModified"))
	requireCode(t, s.run("db", inc(4)), 225, "TransactionTooOld")
	assert.Equal(t, bson.A{bson.D{{Key: "_id", Value: int32(1)}, {Key: "n", Value: int32(1)}}}, rawFindAll(t, admin, "c"),
		"the write was applied once")
}

// A committed transaction's outcome is durable on MongoDB
// (config.transactions state "committed"), so commitTransaction retried
// after killSessions answers ok again — the retry a driver sends when the
// first commit's reply was lost. mongotest forgot the session and answered
// NoSuchTransaction with TransientTransactionError, which makes a driver's
// WithTransaction run the whole transaction again: applied twice.
func TestCommitRetryAfterKillSessionsReportsTheCommit(t *testing.T) {
	srv := mongotest.Start(t)
	s, admin := newRandomSession(t, srv), newRandomSession(t, srv)
	requireOK(t, s.run("db", txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: 1}}), 3, true)))
	requireOK(t, s.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 3, false)))
	requireOK(t, admin.run("admin", bson.D{{Key: "killSessions", Value: bson.A{s.lsid}}}))
	requireOK(t, s.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 3, false)))
}

// "Killing a session kills any in-progress operations in the session and
// closes any open cursors associated with these operations" (manual,
// reference/command/killSessions; killSessionsLocalKillCursors in
// src/mongo/db/kill_sessions_local.cpp kills every cursor whose lsid
// matches). So a getMore on a killed session's cursor fails with
// CursorNotFound (43). mongotest kept the cursor and returned the rest of
// its documents.
func TestKillSessionsClosesTheSessionsCursors(t *testing.T) {
	srv := mongotest.Start(t)
	a, b := newRandomSession(t, srv), newRandomSession(t, srv)
	requireOK(t, a.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 2}})))
	r := a.run("db", bson.D{{Key: "find", Value: "c"}, {Key: "batchSize", Value: 1}})
	requireOK(t, r)
	id := replyField(replyField(r, "cursor").(bson.D), "id")
	requireOK(t, b.run("admin", bson.D{{Key: "killSessions", Value: bson.A{a.lsid}}}))
	requireCode(t, a.run("db", bson.D{{Key: "getMore", Value: id}, {Key: "collection", Value: "c"}}), 43, "CursorNotFound")
}

// endSessions does not end anything at once on MongoDB: it only records the
// ids (LogicalSessionCacheImpl::endSessions inserts them into
// _endingSessions); they are removed and their cursors killed at the next
// session-cache refresh (logicalSessionRefreshMillis, 5 minutes), and an
// open transaction lives on until then or its transactionLifetimeLimit.
// So a transaction left open by a client that ended its session (the
// driver's Disconnect sends endSessions) still holds its documents — a
// plain write to them waits (here until its maxTimeMS) — and can still be
// committed. mongotest aborted it at once: the write went through and the
// commit answered NoSuchTransaction.
func TestEndSessionsLeavesAnOpenTransactionToItsLifetime(t *testing.T) {
	srv := mongotest.Start(t)
	s, other := newRandomSession(t, srv), newRandomSession(t, srv)
	requireOK(t, other.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: 0}})))
	set := func(v int) bson.D {
		return bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{
			{Key: "q", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: v}}}}},
		}}}}
	}
	requireOK(t, s.run("db", txnCmd(set(1), 1, true)))
	requireOK(t, s.run("admin", bson.D{{Key: "endSessions", Value: bson.A{s.lsid}}}))

	requireCode(t, other.run("db", append(set(2), bson.E{Key: "maxTimeMS", Value: 300})), 50, "MaxTimeMSExpired")
	requireOK(t, s.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 1, false)))
	assert.Equal(t, bson.A{bson.D{{Key: "_id", Value: int32(1)}, {Key: "v", Value: int32(1)}}}, rawFindAll(t, other, "c"))
}

// validateSessionOptions (src/mongo/db/service_entry_point_common.cpp):
// a txnNumber without autocommit on a command that is not a retryable
// write (find, commitTransaction, abortTransaction) is
// NotARetryableWriteCommand (50768) "txnNumber may only be provided for
// multi-document transactions and retryable write commands. autocommit:
// false was not provided, and find is not a retryable write command.";
// a transaction may not start with killCursors or commitTransaction:
// OperationNotSupportedInTransaction (263). mongotest answered
// InvalidOptions (72) for the first three and started a transaction with
// killCursors.
func TestSessionOptionsValidatedWithMongoDBsCodes(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	for _, cmd := range []bson.D{
		{{Key: "find", Value: "c"}, {Key: "txnNumber", Value: int64(1)}},
		{{Key: "commitTransaction", Value: 1}, {Key: "txnNumber", Value: int64(1)}},
		{{Key: "abortTransaction", Value: 1}, {Key: "txnNumber", Value: int64(1)}},
	} {
		db := "db"
		if cmd[0].Key != "find" {
			db = "admin"
		}
		t.Run(cmd[0].Key, func(t *testing.T) {
			r := s.run(db, cmd)
			require.EqualValues(t, 0, replyField(r, "ok"), "reply: %v", r)
			assert.EqualValues(t, 50768, replyField(r, "code"), "reply: %v", r)
		})
	}
	t.Run("killCursors starts a transaction", func(t *testing.T) {
		requireCode(t, s.run("db", txnCmd(bson.D{{Key: "killCursors", Value: "c"}, {Key: "cursors", Value: bson.A{int64(1)}}}, 5, true)),
			263, "OperationNotSupportedInTransaction")
	})
}

// A getMore on a snapshot cursor (outside a transaction) reports the
// cursor's atClusterTime like the first batch did: getmore_cmd.cpp sets
// CursorResponseBuilder::Options::atClusterTime from the read concern the
// cursor restores. mongotest's nextBatch reply had no atClusterTime.
func TestSnapshotGetMoreReportsAtClusterTime(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	requireOK(t, s.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 2}})))
	r := s.run("db", fromJSON(t, `{"find":"c","batchSize":1,"readConcern":{"level":"snapshot"}}`))
	requireOK(t, r)
	cur := replyField(r, "cursor").(bson.D)
	at := replyField(cur, "atClusterTime")
	require.NotNil(t, at)
	r = s.run("db", bson.D{{Key: "getMore", Value: replyField(cur, "id")}, {Key: "collection", Value: "c"}})
	requireOK(t, r)
	assert.Equal(t, at, replyField(replyField(r, "cursor").(bson.D), "atClusterTime"), "reply: %v", r)
}

// Inside a multi-document transaction MongoDB reports no atClusterTime,
// even when the transaction reads at readConcern snapshot: find_cmd.cpp,
// getmore_cmd.cpp and distinct set it only when
// !opCtx->inMultiDocumentTransaction().
func TestATransactionsSnapshotReadReportsNoAtClusterTime(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	requireOK(t, s.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 2}})))
	for i, first := range []string{
		`{"find":"c","batchSize":1,"readConcern":{"level":"snapshot"}}`,
		`{"distinct":"c","key":"_id","readConcern":{"level":"snapshot"}}`,
	} {
		r := s.run("db", txnCmd(fromJSON(t, first), int64(i+1), true))
		requireOK(t, r)
		if cur, ok := replyField(r, "cursor").(bson.D); ok {
			assert.Nil(t, replyField(cur, "atClusterTime"), "reply: %v", r)
			r = s.run("db", txnCmd(bson.D{{Key: "getMore", Value: replyField(cur, "id")}, {Key: "collection", Value: "c"}}, int64(i+1), false))
			requireOK(t, r)
			assert.Nil(t, replyField(replyField(r, "cursor").(bson.D), "atClusterTime"), "reply: %v", r)
		} else {
			assert.Nil(t, replyField(r, "atClusterTime"), "reply: %v", r)
		}
		requireOK(t, s.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, int64(i+1), false)))
	}
}
