package mongotest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest"
)

// As on MongoDB, killSessions kills the operations running on the killed
// sessions: a write waiting for a document that another transaction holds
// is interrupted (not applied), and the kill does not wait for it.
func TestKillSessionsInterruptsARunningOperation(t *testing.T) {
	srv := mongotest.Start(t)
	holder := newRawSession(t, srv)
	waiter := newRawSession(t, srv)
	waiter.lsid = bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: []byte("waiter-session-1")}}}

	reply := holder.run("db", bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: 0}}}}})
	require.Equal(t, 1.0, okOf(reply), "%v", reply)
	reply = holder.run("db", txnCmd(bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{
		{Key: "q", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 1}}}}},
	}}}}, 1, true))
	require.Equal(t, 1.0, okOf(reply), "%v", reply)

	waited := make(chan bson.D, 1)
	go func() {
		waited <- waiter.run("db", bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{
			{Key: "q", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 2}}}}},
		}}}})
	}()
	client := connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	id, _ := waiter.lsid[0].Value.(bson.Binary)
	require.Eventually(t, func() bool { // the waiter's session exists: its update runs
		cur, err := client.Database("admin").Aggregate(ctx, bson.A{
			bson.D{{Key: "$listLocalSessions", Value: bson.D{}}},
			bson.D{{Key: "$match", Value: bson.D{{Key: "_id.id", Value: id}}}},
		})
		require.NoError(t, err)
		defer cur.Close(ctx)
		return cur.RemainingBatchLength() == 1
	}, 5*time.Second, 10*time.Millisecond)
	time.Sleep(50 * time.Millisecond) // and waits for the document
	kerr := client.Database("admin").RunCommand(ctx, bson.D{{Key: "killSessions", Value: bson.A{bson.D{{Key: "id", Value: id}}}}}).Err()
	assert.NoError(t, kerr, "killSessions waited for the operation it kills")

	reply = holder.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 1, false))
	require.Equal(t, 1.0, okOf(reply), "%v", reply)
	w := <-waited
	var doc struct{ V int }
	require.NoError(t, client.Database("db").Collection("c").FindOne(context.Background(), bson.D{{Key: "_id", Value: 1}}).Decode(&doc))
	assert.Equal(t, 1, doc.V, "the killed write was applied")
	assert.Equal(t, 0.0, okOf(w), "%v", w)
}

// okOf returns a reply's ok field as a number.
func okOf(reply bson.D) float64 {
	for _, e := range reply {
		if e.Key == "ok" {
			switch v := e.Value.(type) {
			case float64:
				return v
			case int32:
				return float64(v)
			case int64:
				return float64(v)
			}
		}
	}
	return -1
}
