package mongotest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest"
)

// incCmd is an update of _id id by $inc n: 1.
func incCmd(id int) bson.D {
	return bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{
		{Key: "q", Value: bson.D{{Key: "_id", Value: id}}},
		{Key: "u", Value: bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}},
	}}}}
}

// A command with a txnNumber waits while another command has its session
// checked out; MongoDB's wait (SessionCatalog::checkOutSession,
// waitForConditionOrInterrupt) ends at a killOp of the waiting command, at
// a killSessions of its session and at its maxTimeMS, and the command then
// fails unapplied. Here the session is held by a retryable write that
// itself waits for a document an open transaction holds.
func TestAWaitForASessionCheckOutIsInterruptible(t *testing.T) {
	tests := []struct {
		name     string
		give     func(t *testing.T, srv *mongotest.Server, waiter *rawSession, opid any)
		maxTime  bool
		code     int32
		codeName string
	}{
		{name: "killOp", code: 11601, codeName: "Interrupted", give: func(t *testing.T, srv *mongotest.Server, _ *rawSession, opid any) {
			requireOK(t, runWithoutLsid(t, newRawSession(t, srv), "admin", bson.D{{Key: "killOp", Value: 1}, {Key: "op", Value: opid}}))
		}},
		{name: "killSessions", code: 11601, codeName: "Interrupted", give: func(t *testing.T, srv *mongotest.Server, waiter *rawSession, _ any) {
			requireOK(t, runWithoutLsid(t, newRawSession(t, srv), "admin", bson.D{{Key: "killSessions", Value: bson.A{waiter.lsid}}}))
		}},
		{name: "maxTimeMS", maxTime: true, code: 50, codeName: "MaxTimeMSExpired", give: func(*testing.T, *mongotest.Server, *rawSession, any) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mongotest.Start(t)
			client := connect(t, srv)
			holder, other := otherSession(t, srv, 0), otherSession(t, srv, 0xff)
			requireOK(t, holder.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 0}}, bson.D{{Key: "_id", Value: 2}, {Key: "n", Value: 0}})))
			// other's transaction holds document 1.
			requireOK(t, other.run("db", txnCmd(incCmd(1), 1, true)))
			// holder's retryable write waits for document 1, its session
			// checked out.
			held := make(chan bson.D, 1)
			go func() { held <- holder.run("db", append(incCmd(1), bson.E{Key: "txnNumber", Value: int64(1)})) }()
			require.Eventually(t, func() bool {
				return len(currentOp(t, client, bson.D{}, bson.D{{Key: "$match", Value: bson.D{{Key: "command.txnNumber", Value: int64(1)}, {Key: "command.autocommit", Value: bson.D{{Key: "$exists", Value: false}}}}}})) == 1
			}, 5*time.Second, 5*time.Millisecond)

			// The same session's next retryable write, on another
			// connection, waits to check the session out.
			waiter := newRawSession(t, srv)
			waiter.lsid = holder.lsid
			cmd := append(incCmd(2), bson.E{Key: "txnNumber", Value: int64(2)})
			if tt.maxTime {
				cmd = append(cmd, bson.E{Key: "maxTimeMS", Value: int32(300)})
			}
			waited := make(chan bson.D, 1)
			go func() { waited <- waiter.run("db", cmd) }()
			var ops []bson.D
			require.Eventually(t, func() bool {
				ops = currentOp(t, client, bson.D{}, bson.D{{Key: "$match", Value: bson.D{{Key: "command.txnNumber", Value: int64(2)}}}})
				return len(ops) == 1
			}, 5*time.Second, 5*time.Millisecond)
			tt.give(t, srv, waiter, replyField(ops[0], "opid"))

			answered := false
			select {
			case reply := <-waited:
				answered = true
				requireCode(t, reply, tt.code, tt.codeName)
			case <-time.After(3 * time.Second):
				t.Error("the waiting command was not interrupted while the session stayed checked out")
			}
			// other's transaction ends: the holder's write goes through.
			requireOK(t, other.run("admin", txnCmd(bson.D{{Key: "abortTransaction", Value: 1}}, 1, false)))
			<-held
			if !answered {
				<-waited
			}
			var doc struct {
				N int `bson:"n"`
			}
			require.NoError(t, client.Database("db").Collection("c").FindOne(testContext(t), bson.D{{Key: "_id", Value: 2}}).Decode(&doc))
			assert.Zero(t, doc.N, "the interrupted write is not applied")
		})
	}
}
