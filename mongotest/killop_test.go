package mongotest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/mongotest"
)

// killOp with an opid from $currentOp interrupts that command: a find
// held by blockConnection fails at once with Interrupted, as MongoDB's
// interruptible sleep in evaluateFailCommandFailPoint does.
func TestKillOpInterruptsABlockedCommand(t *testing.T) {
	srv := mongotest.Start(t)
	client := connect(t, srv)
	ctx := testContext(t)
	require.NoError(t, srv.FailCommand(bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"find"}},
		{Key: "blockConnection", Value: true},
		{Key: "blockTimeMS", Value: 8000},
	}))
	done := make(chan error, 1)
	go func() {
		done <- client.Database("db").Collection("c").FindOne(ctx, bson.D{{Key: "x", Value: "kill me"}}).Err()
	}()
	var ops []bson.D
	require.Eventually(t, func() bool {
		ops = currentOp(t, client, bson.D{}, bson.D{{Key: "$match", Value: bson.D{{Key: "command.filter.x", Value: "kill me"}}}})
		return len(ops) == 1
	}, 5*time.Second, 5*time.Millisecond)
	start := time.Now()
	var reply bson.D
	require.NoError(t, client.Database("admin").RunCommand(ctx, bson.D{{Key: "killOp", Value: 1}, {Key: "op", Value: replyField(ops[0], "opid")}}).Decode(&reply))
	assert.Equal(t, "attempting to kill op", replyField(reply, "info"))

	err := <-done
	var se mongo.ServerError
	require.ErrorAs(t, err, &se)
	assert.True(t, se.HasErrorCode(11601), "want Interrupted, got %v", err)
	assert.Less(t, time.Since(start), 4*time.Second, "the block was cut short")
}

func TestKillOpErrors(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRawSession(t, srv)
	tests := []struct {
		name     string
		db       string
		give     any
		code     int32
		codeName string
		msg      string
	}{
		{"not on admin", "db", int32(1), 13, "Unauthorized", "killOp may only be run against the admin database."},
		{"no op", "admin", nil, 4, "NoSuchKey", `Missing expected field "op"`},
		{"op not a number", "admin", "x", 14, "TypeMismatch", `Expected field "op" to have numeric type, but found string`},
		{"op not integral", "admin", 1.5, 2, "BadValue", `Expected field "op" to have a value exactly representable as a 64-bit integer, but found op: 1.5`},
		{"op out of range", "admin", int64(1) << 40, 2, "BadValue", "opid out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := bson.D{{Key: "killOp", Value: 1}}
			if tt.give != nil {
				cmd = append(cmd, bson.E{Key: "op", Value: tt.give})
			}
			reply := runWithoutLsid(t, s, tt.db, cmd)
			requireCode(t, reply, tt.code, tt.codeName)
			assert.Equal(t, tt.msg, replyField(reply, "errmsg"))
		})
	}
	reply := runWithoutLsid(t, s, "admin", bson.D{{Key: "killOp", Value: 1}, {Key: "op", Value: int32(123456)}})
	requireOK(t, reply)
	assert.Equal(t, "attempting to kill op", replyField(reply, "info"))
}

// An awaitable hello waits interruptibly on MongoDB (awaitHelloResponse's
// futureGetNoThrowWithDeadline): killOp of it ends it at once with
// Interrupted, which a driver's monitor then sees as a failed check.
func TestKillOpInterruptsAnAwaitableHello(t *testing.T) {
	srv := mongotest.Start(t)
	client := connect(t, srv)
	s := newRawSession(t, srv)
	first := runWithoutLsid(t, s, "admin", bson.D{{Key: "hello", Value: 1}})
	requireOK(t, first)
	done := make(chan bson.D, 1)
	go func() {
		done <- runWithoutLsid(t, s, "admin", bson.D{{Key: "hello", Value: 1}, {Key: "topologyVersion", Value: replyField(first, "topologyVersion")}, {Key: "maxAwaitTimeMS", Value: int64(4321)}})
	}()
	var ops []bson.D
	require.Eventually(t, func() bool {
		ops = currentOp(t, client, bson.D{}, bson.D{{Key: "$match", Value: bson.D{{Key: "command.maxAwaitTimeMS", Value: int64(4321)}}}})
		return len(ops) == 1
	}, 3*time.Second, 5*time.Millisecond)
	start := time.Now()
	requireOK(t, runWithoutLsid(t, newRawSession(t, srv), "admin", bson.D{{Key: "killOp", Value: 1}, {Key: "op", Value: replyField(ops[0], "opid")}}))
	reply := <-done
	requireCode(t, reply, 11601, "Interrupted")
	assert.Less(t, time.Since(start), 2*time.Second, "the wait was cut short")
}

// A retryable write killed while a statement waits for a document a
// transaction holds fails the whole batch with Interrupted (MongoDB's
// handleError rethrows an interruption), the statements before it applied
// and recorded: its retry applies only the rest, none twice. A killed
// multi-document update outside a transaction stays partial, as MongoDB's.
func TestKillOpOfAWaitingWrite(t *testing.T) {
	srv := mongotest.Start(t)
	client := connect(t, srv)
	holder, writer := otherSession(t, srv, 0), otherSession(t, srv, 0xff)
	requireOK(t, writer.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 0}}, bson.D{{Key: "_id", Value: 2}, {Key: "n", Value: 0}}, bson.D{{Key: "_id", Value: 3}, {Key: "n", Value: 0}})))
	requireOK(t, holder.run("db", txnCmd(incCmd(2), 1, true)))
	kill := func(match bson.D) {
		t.Helper()
		var ops []bson.D
		require.Eventually(t, func() bool {
			ops = currentOp(t, client, bson.D{}, bson.D{{Key: "$match", Value: match}})
			return len(ops) == 1
		}, 5*time.Second, 5*time.Millisecond)
		requireOK(t, runWithoutLsid(t, newRawSession(t, srv), "admin", bson.D{{Key: "killOp", Value: 1}, {Key: "op", Value: replyField(ops[0], "opid")}}))
	}
	n := func(id int) int {
		var doc struct {
			N int `bson:"n"`
		}
		require.NoError(t, client.Database("db").Collection("c").FindOne(testContext(t), bson.D{{Key: "_id", Value: id}}).Decode(&doc))
		return doc.N
	}

	both := bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{
		bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "u", Value: bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}}},
		bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 2}}}, {Key: "u", Value: bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}}},
	}}, {Key: "txnNumber", Value: int64(7)}}
	done := make(chan bson.D, 1)
	go func() { done <- writer.run("db", both) }()
	kill(bson.D{{Key: "command.txnNumber", Value: int64(7)}})
	requireCode(t, <-done, 11601, "Interrupted")
	assert.Equal(t, 1, n(1), "the statement before the wait is applied")

	multi := bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{
		bson.D{{Key: "q", Value: bson.D{}}, {Key: "u", Value: bson.D{{Key: "$inc", Value: bson.D{{Key: "m", Value: 1}}}}}, {Key: "multi", Value: true}},
	}}}
	go func() { done <- writer.run("db", multi) }()
	kill(bson.D{{Key: "command.updates.multi", Value: true}})
	requireCode(t, <-done, 11601, "Interrupted")

	requireOK(t, holder.run("admin", txnCmd(bson.D{{Key: "abortTransaction", Value: 1}}, 1, false)))
	reply := writer.run("db", both)
	requireOK(t, reply)
	assert.EqualValues(t, 2, replyField(reply, "nModified"))
	assert.Equal(t, 1, n(1), "the retry does not apply the first statement again")
	assert.Equal(t, 1, n(2), "the retry applies the statement that was killed")
	var docs []bson.D
	cur, err := client.Database("db").Collection("c").Find(testContext(t), bson.D{{Key: "m", Value: 1}})
	require.NoError(t, err)
	require.NoError(t, cur.All(testContext(t), &docs))
	assert.Len(t, docs, 1, "the killed multi-document update is partial: %v", docs)
}
