package mongotest_test

import (
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest"
)

// newRandomSession is newRawSession with a random lsid, for tests that
// need several sessions.
func newRandomSession(t *testing.T, srv *mongotest.Server) *rawSession {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	return &rawSession{t: t, nc: dial(t, srv), lsid: bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: id}}}}
}

func findAll(t *testing.T, s *rawSession, coll string, filter bson.D) bson.A {
	t.Helper()
	if filter == nil {
		filter = bson.D{}
	}
	r := s.run("db", bson.D{{Key: "find", Value: coll}, {Key: "filter", Value: filter}})
	requireOK(t, r)
	return replyField(replyField(r, "cursor").(bson.D), "firstBatch").(bson.A)
}

// runAsync sends cmd on s in the background; the reply arrives on the channel.
func runAsync(s *rawSession, db string, cmd bson.D) <-chan bson.D {
	out := make(chan bson.D, 1)
	go func() { out <- s.run(db, cmd) }()
	return out
}

// A unique index build waits for the transactions writing the collection,
// then covers their writes: no duplicate gets in, and index lookups find
// what the transaction committed.
func TestIndexBuildWaitsForOpenTransactions(t *testing.T) {
	srv := mongotest.Start(t)
	a, b := newRandomSession(t, srv), newRandomSession(t, srv)
	requireOK(t, b.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 0}, {Key: "k", Value: 0}})))
	requireOK(t, a.run("db", txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: 1}, {Key: "k", Value: 1}}), 1, true)))

	uniqueK := bson.A{bson.D{{Key: "key", Value: bson.D{{Key: "k", Value: 1}}}, {Key: "name", Value: "k_1"}, {Key: "unique", Value: true}}}
	requireCode(t, b.run("db", bson.D{{Key: "createIndexes", Value: "c"}, {Key: "indexes", Value: uniqueK}, {Key: "maxTimeMS", Value: 100}}), 50, "MaxTimeMSExpired")

	build := runAsync(b, "db", bson.D{{Key: "createIndexes", Value: "c"}, {Key: "indexes", Value: uniqueK}})
	requireOK(t, a.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 1, false)))
	requireOK(t, <-build)

	require.Len(t, findAll(t, b, "c", bson.D{{Key: "k", Value: 1}}), 1, "the index finds the committed write")
	dup := b.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 2}, {Key: "k", Value: 1}}))
	require.NotNil(t, replyField(dup, "writeErrors"), "the unique index refuses k=1 again: %v", dup)
	require.Len(t, findAll(t, b, "c", nil), 2)
}

// drop and dropDatabase wait for the transactions using the collection, so
// a transaction's snapshot never loses a collection, nor a commit its writes.
func TestDropWaitsForOpenTransactions(t *testing.T) {
	srv := mongotest.Start(t)
	a, b := newRandomSession(t, srv), newRandomSession(t, srv)
	requireOK(t, b.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}})))
	requireOK(t, a.run("db", txnCmd(bson.D{{Key: "find", Value: "c"}}, 1, true)))

	requireCode(t, b.run("db", bson.D{{Key: "drop", Value: "c"}, {Key: "maxTimeMS", Value: 100}}), 50, "MaxTimeMSExpired")
	requireCode(t, b.run("db", bson.D{{Key: "dropDatabase", Value: 1}, {Key: "maxTimeMS", Value: 100}}), 50, "MaxTimeMSExpired")
	r := a.run("db", txnCmd(bson.D{{Key: "find", Value: "c"}}, 1, false))
	require.Len(t, replyField(replyField(r, "cursor").(bson.D), "firstBatch").(bson.A), 1, "the snapshot still has the collection")
	requireOK(t, a.run("db", txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: 2}}), 1, false)))

	drop := runAsync(b, "db", bson.D{{Key: "dropDatabase", Value: 1}})
	requireOK(t, a.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 1, false)))
	requireOK(t, <-drop)
	require.Empty(t, findAll(t, b, "c", nil), "dropped after the commit, not before")
}

// A transaction whose snapshot cannot be opened is aborted: its next
// statements get NoSuchTransaction and write nothing.
func TestFailedStartAbortsTheTransaction(t *testing.T) {
	srv := mongotest.Start(t)
	a, other := newRandomSession(t, srv), newRandomSession(t, srv)
	future := bson.Timestamp{T: uint32(time.Now().Unix()) + 3600, I: 1}
	requireCode(t, a.run("db", txnCmd(bson.D{{Key: "find", Value: "c"},
		{Key: "readConcern", Value: bson.D{{Key: "level", Value: "snapshot"}, {Key: "atClusterTime", Value: future}}}}, 1, true)), 72, "InvalidOptions")
	requireCode(t, a.run("db", txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: 1}}), 1, false)), 251, "NoSuchTransaction", "TransientTransactionError")
	requireCode(t, a.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 1, false)), 251, "NoSuchTransaction", "TransientTransactionError")
	require.Empty(t, findAll(t, other, "c", nil))
	// The session goes on with its next transaction.
	requireOK(t, a.run("db", txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: 1}}), 2, true)))
	requireOK(t, a.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 2, false)))
	require.Len(t, findAll(t, other, "c", nil), 1)
}

// serverStatus reads no session's state while commands change it (run
// with -race).
func TestServerStatusWhileTransactionsRun(t *testing.T) {
	srv := mongotest.Start(t)
	a, b := newRandomSession(t, srv), newRandomSession(t, srv)
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 100 {
			b.run("admin", bson.D{{Key: "serverStatus", Value: 1}})
		}
	})
	for i := int64(1); i <= 100; i++ {
		requireOK(t, a.run("db", txnCmd(bson.D{{Key: "find", Value: "c"}}, i, true)))
		requireOK(t, a.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, i, false)))
	}
	wg.Wait()
	stats := replyField(b.run("admin", bson.D{{Key: "serverStatus", Value: 1}}), "transactions").(bson.D)
	require.EqualValues(t, 0, replyField(stats, "currentOpen"))
	require.EqualValues(t, 100, replyField(stats, "totalCommitted"))
}

// As on MongoDB, createIndexes for indexes that all exist already answers
// at once ("all indexes already exist"), even while a transaction holds
// writes on the collection: an app's schema set-up at start must not wait
// for transactions a killed process left open (issue 13).
func TestCreateExistingIndexDoesNotWaitForTransactions(t *testing.T) {
	srv := mongotest.Start(t)
	a, b := newRandomSession(t, srv), newRandomSession(t, srv)
	uniqueK := bson.A{bson.D{{Key: "key", Value: bson.D{{Key: "k", Value: 1}}}, {Key: "name", Value: "k_1"}, {Key: "unique", Value: true}}}
	requireOK(t, b.run("db", bson.D{{Key: "createIndexes", Value: "c"}, {Key: "indexes", Value: uniqueK}}))
	requireOK(t, a.run("db", txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: 1}, {Key: "k", Value: 1}}), 1, true)))

	r := b.run("db", bson.D{{Key: "createIndexes", Value: "c"}, {Key: "indexes", Value: uniqueK}, {Key: "maxTimeMS", Value: 2000}})
	requireOK(t, r)
	require.EqualValues(t, 2, replyField(r, "numIndexesBefore"))
	require.EqualValues(t, 2, replyField(r, "numIndexesAfter"))
	require.Equal(t, "all indexes already exist", replyField(r, "note"))

	// A new index still waits for the transaction.
	other := bson.A{bson.D{{Key: "key", Value: bson.D{{Key: "j", Value: 1}}}, {Key: "name", Value: "j_1"}}}
	requireCode(t, b.run("db", bson.D{{Key: "createIndexes", Value: "c"}, {Key: "indexes", Value: other}, {Key: "maxTimeMS", Value: 100}}), 50, "MaxTimeMSExpired")
}
