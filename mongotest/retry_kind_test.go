package mongotest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest"
)

// A write re-sent with a txnNumber whose statement 0 was another kind of
// write is answered from that statement's oplog entry on MongoDB
// (src/mongo/db/ops/write_ops_retryability.cpp): a delete retry reports
// n: 1 (makeWriteResultForInsertOrDeleteRetry); an update retry over an
// insert entry reports the upsert of that document, over a delete entry
// fails with 40638. Nothing is applied again. Filed by attack15b: mongotest
// answered InternalError (a failed type assertion).
func TestRetryWithAnotherWriteKindOnTheSameTxnNumberIsNotAnInternalError(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	requireOK(t, s.run("db", append(insertCmd("c", bson.D{{Key: "_id", Value: 4}}), bson.E{Key: "txnNumber", Value: int64(10)})))

	upd := func(txn int64) bson.D {
		return bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{
			bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 4}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}}}},
		}}, {Key: "txnNumber", Value: txn}}
	}
	r := s.run("db", upd(10))
	requireOK(t, r)
	assert.EqualValues(t, 1, replyField(r, "n"))
	assert.Equal(t, bson.A{bson.D{{Key: "index", Value: int32(0)}, {Key: "_id", Value: int32(4)}}}, replyField(r, "upserted"),
		"an update retried over an insert reports the upsert of that document")

	del := bson.D{{Key: "delete", Value: "c"}, {Key: "deletes", Value: bson.A{
		bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 4}}}, {Key: "limit", Value: 1}},
	}}, {Key: "txnNumber", Value: int64(10)}}
	r = s.run("db", del)
	requireOK(t, r)
	assert.EqualValues(t, 1, replyField(r, "n"), "a retried delete reports its recorded statement, n: 1")
	assert.Equal(t, bson.A{bson.D{{Key: "_id", Value: int32(4)}}}, rawFindAll(t, s, "c"), "a retry applies nothing")

	// An update retried over a delete is refused as a write error.
	del[2].Value = int64(11)
	r = s.run("db", del)
	requireOK(t, r)
	assert.EqualValues(t, 1, replyField(r, "n"))
	r = s.run("db", upd(11))
	requireOK(t, r)
	werrs, _ := replyField(r, "writeErrors").(bson.A)
	if assert.Len(t, werrs, 1, "reply: %v", r) {
		assert.EqualValues(t, 40638, replyField(werrs[0].(bson.D), "code"))
	}
	assert.Empty(t, rawFindAll(t, s, "c"))
}
