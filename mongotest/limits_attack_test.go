package mongotest_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest"
)

// Tests filed by attack15b (findings mongotest-command-body-over-16mb,
// -write-batch-over-max, -namespace-too-long, -getmore-maxtimems-accepted,
// -failcommand-aliases, -index-ddl-ignores-reading-transaction). Each pins a
// case where mongotest answered differently from MongoDB.

// A command body is a BSON object, and MongoDB refuses one larger than
// BSONObjMaxInternalSize (16 MB + 16 KB) with BSONObjectTooLarge (10334),
// although the wire message may be up to maxMessageSizeBytes (48 MB).
func TestCommandBodyOver16MBIsRefused(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	big := strings.Repeat("x", 17<<20)
	r := runWithoutLsid(t, s, "db", bson.D{{Key: "find", Value: "c"}, {Key: "filter", Value: bson.D{{Key: "a", Value: big}}}})
	require.EqualValues(t, 0, replyField(r, "ok"), "MongoDB refuses a 17 MB command body")
	assert.EqualValues(t, 10334, replyField(r, "code"))
}

// failCommand's failCommands names a command as MongoDB's command registry
// does: a command's alias ("findandmodify" for findAndModify) is the same
// command, so a fail point on one fires on the other.
func TestFailCommandMatchesCommandAliases(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	requireOK(t, runWithoutLsid(t, s, "db", insertCmd("c", bson.D{{Key: "_id", Value: 1}})))
	failCommand(t, srv, bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"findAndModify"}}, {Key: "errorCode", Value: 2},
	})
	r := runWithoutLsid(t, s, "db", fromJSON(t, `{"findandmodify":"c","query":{"_id":1},"update":{"$set":{"x":1}}}`))
	requireCode(t, r, 2, "BadValue")
	assert.Equal(t, bson.A{bson.D{{Key: "_id", Value: int32(1)}}}, rawFindAll(t, s, "c"), "the failed command changed nothing")

	// dropIndexes has the alias deleteIndexes (drop_indexes.idl): either
	// name selects the command, whichever name it is sent under.
	requireOK(t, runWithoutLsid(t, s, "db", fromJSON(t, `{"createIndexes":"c","indexes":[{"key":{"j":1},"name":"j"}]}`)))
	failCommand(t, srv, bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"deleteIndexes"}}, {Key: "errorCode", Value: 2},
	})
	requireCode(t, runWithoutLsid(t, s, "db", fromJSON(t, `{"dropIndexes":"c","index":"j"}`)), 2, "BadValue")
	requireOK(t, runWithoutLsid(t, s, "db", fromJSON(t, `{"deleteIndexes":"c","index":"j"}`)))

	// isMaster is a command of its own (CmdIsMaster), not an alias of
	// hello: a fail point on hello leaves it alone.
	failCommand(t, srv, bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"hello"}}, {Key: "errorCode", Value: 2},
	})
	requireOK(t, runWithoutLsid(t, s, "admin", bson.D{{Key: "ismaster", Value: 1}}))
	requireCode(t, runWithoutLsid(t, s, "admin", bson.D{{Key: "hello", Value: 1}}), 2, "BadValue")
}

// maxTimeMS on a getMore is the await time of a tailable awaitData cursor;
// on any other cursor MongoDB refuses it: BadValue (2) "cannot set
// maxTimeMS on getMore command for a non-awaitData cursor"
// (src/mongo/db/commands/getmore_cmd.cpp). Drivers with a client-side
// timeout have sent it (Node.js driver 7.1 with timeoutMS; DRIVERS-2953),
// failing every multi-batch read on MongoDB while passing on mongotest,
// which accepted it.
func TestGetMoreRefusesMaxTimeMSOnANonAwaitDataCursor(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	requireOK(t, s.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 2}})))
	r := s.run("db", bson.D{{Key: "find", Value: "c"}, {Key: "batchSize", Value: 1}})
	requireOK(t, r)
	id := replyField(replyField(r, "cursor").(bson.D), "id")
	requireCode(t, s.run("db", bson.D{{Key: "getMore", Value: id}, {Key: "collection", Value: "c"}, {Key: "maxTimeMS", Value: 1000}}), 2, "BadValue")
	r = s.run("db", bson.D{{Key: "getMore", Value: id}, {Key: "collection", Value: "c"}})
	requireOK(t, r)
	assert.Equal(t, bson.A{bson.D{{Key: "_id", Value: int32(2)}}}, replyField(replyField(r, "cursor").(bson.D), "nextBatch"), "the refusal leaves the cursor open, as MongoDB's check comes before its cursorFreer")
}

// A write command carries at most maxWriteBatchSize (100,000) statements,
// the limit mongotest's own hello advertises: more is InvalidLength (16)
// "Write batch sizes must be between 1 and 100000. Got 100001
// operations." and nothing is written (write_ops.cpp
// checkOpCountForCommand). mongotest checked only the lower bound and
// applied all 100,001.
func TestWriteBatchOverMaxWriteBatchSizeIsRefused(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	docs := make(bson.A, 0, 100001)
	for i := range 100001 {
		docs = append(docs, bson.D{{Key: "_id", Value: int32(i)}})
	}
	requireCode(t, runWithoutLsid(t, s, "db", bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: docs}}), 16, "InvalidLength")
	assert.Empty(t, rawFindAll(t, s, "c"))
}

// A namespace ("db.collection") is at most 255 bytes on MongoDB 7.0
// (userAllowedCreateNS, NamespaceString::MaxNsCollectionLen); a longer one
// is InvalidNamespace (73), for an insert (performInserts checks
// userAllowedWriteNS first) as for create.
func TestNamespaceLongerThan255BytesIsRefused(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	requireCode(t, runWithoutLsid(t, s, "db", insertCmd(strings.Repeat("c", 300), bson.D{{Key: "_id", Value: 1}})), 73, "InvalidNamespace")
	requireCode(t, runWithoutLsid(t, s, "db", bson.D{{Key: "create", Value: strings.Repeat("c", 253)}}), 73, "InvalidNamespace")
	requireOK(t, runWithoutLsid(t, s, "db", bson.D{{Key: "create", Value: strings.Repeat("c", 252)}}))
}

// A multi-document transaction keeps the collection locks it took until
// it ends (its Locker is stashed with the transaction's resources between
// statements), reads included; createIndexes (to commit the build) and
// dropIndexes need the collection exclusively, so both wait for an open
// transaction that read the collection — here until their maxTimeMS.
// docs/mongotest.md says index builds wait for transactions that use the
// collection, and drop does wait for a transaction that only read it, but
// createIndexes and dropIndexes went through at once.
func TestIndexDDLWaitsForATransactionThatReadTheCollection(t *testing.T) {
	srv := mongotest.Start(t)
	a, b := newRandomSession(t, srv), newRandomSession(t, srv)
	requireOK(t, b.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}})))
	requireOK(t, b.run("db", fromJSON(t, `{"createIndexes":"c","indexes":[{"key":{"j":1},"name":"j"}]}`)))
	requireOK(t, a.run("db", txnCmd(fromJSON(t, `{"find":"c"}`), 1, true)))
	requireCode(t, b.run("db", fromJSON(t, `{"createIndexes":"c","indexes":[{"key":{"k":1},"name":"k"}],"maxTimeMS":200}`)), 50, "MaxTimeMSExpired")
	requireCode(t, b.run("db", fromJSON(t, `{"dropIndexes":"c","index":"j","maxTimeMS":200}`)), 50, "MaxTimeMSExpired")
}
