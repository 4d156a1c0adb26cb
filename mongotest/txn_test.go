package mongotest_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/txkit/txkit/mongotest"
)

// rawSession speaks to the server with hand-built commands, so a test can
// send exactly the lsid/txnNumber/autocommit fields a driver would.
type rawSession struct {
	t     *testing.T
	nc    net.Conn
	lsid  bson.D
	reqID int32
}

func newRawSession(t *testing.T, srv *mongotest.Server) *rawSession {
	id := make([]byte, 16)
	for i := range id {
		id[i] = byte(i + 1)
	}
	id[0] = byte(time.Now().UnixNano())
	return &rawSession{t: t, nc: dial(t, srv), lsid: bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: id}}}}
}

// run sends cmd (with $db and the session's lsid) and returns the reply.
func (r *rawSession) run(db string, cmd bson.D) bson.D {
	r.t.Helper()
	cmd = append(cmd, bson.E{Key: "lsid", Value: r.lsid}, bson.E{Key: "$db", Value: db})
	raw, err := bson.Marshal(cmd)
	require.NoError(r.t, err)
	r.reqID++
	write(r.t, r.nc, opMsg(r.reqID, 0, bsoncore.Document(raw)))
	reply := readMsgReply(r.t, r.nc, r.reqID)
	var out bson.D
	require.NoError(r.t, bson.Unmarshal(reply, &out))
	return out
}

func txnCmd(cmd bson.D, txnNumber int64, start bool) bson.D {
	cmd = append(cmd, bson.E{Key: "txnNumber", Value: txnNumber}, bson.E{Key: "autocommit", Value: false})
	if start {
		cmd = append(cmd, bson.E{Key: "startTransaction", Value: true})
	}
	return cmd
}

func replyField(d bson.D, key string) any {
	for _, e := range d {
		if e.Key == key {
			return e.Value
		}
	}
	return nil
}

func requireOK(t *testing.T, reply bson.D) {
	t.Helper()
	require.EqualValues(t, 1, replyField(reply, "ok"), "reply: %v", reply)
}

func requireCode(t *testing.T, reply bson.D, code int32, codeName string, labels ...string) {
	t.Helper()
	require.EqualValues(t, 0, replyField(reply, "ok"), "reply: %v", reply)
	require.Equal(t, code, replyField(reply, "code"), "reply: %v", reply)
	require.Equal(t, codeName, replyField(reply, "codeName"))
	got := []string{}
	if arr, ok := replyField(reply, "errorLabels").(bson.A); ok {
		for _, l := range arr {
			got = append(got, l.(string))
		}
	}
	if len(labels) == 0 {
		labels = []string{}
	}
	require.ElementsMatch(t, labels, got, "reply: %v", reply)
}

func insertCmd(coll string, docs ...bson.D) bson.D {
	arr := bson.A{}
	for _, d := range docs {
		arr = append(arr, d)
	}
	return bson.D{{Key: "insert", Value: coll}, {Key: "documents", Value: arr}}
}

func countDocs(t *testing.T, coll *mongo.Collection, filter bson.D) int64 {
	t.Helper()
	n, err := coll.CountDocuments(context.Background(), filter)
	require.NoError(t, err)
	return n
}

func TestTransactionStateMachine(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRawSession(t, srv)

	t.Run("a repeated commit succeeds again", func(t *testing.T) {
		requireOK(t, s.run("db", txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: 1}}), 1, true)))
		requireOK(t, s.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 1, false)))
		requireOK(t, s.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 1, false)))
	})
	t.Run("abort after commit fails", func(t *testing.T) {
		requireCode(t, s.run("admin", txnCmd(bson.D{{Key: "abortTransaction", Value: 1}}, 1, false)), 256, "TransactionCommitted")
	})
	t.Run("an older txnNumber is too old", func(t *testing.T) {
		requireCode(t, s.run("db", txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: 2}}), 0, true)), 225, "TransactionTooOld")
	})
	t.Run("an unknown txnNumber is no such transaction", func(t *testing.T) {
		requireCode(t, s.run("db", txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: 3}}), 7, false)), 251, "NoSuchTransaction", "TransientTransactionError")
	})
	t.Run("after abort the transaction is gone", func(t *testing.T) {
		requireOK(t, s.run("db", txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: 4}}), 2, true)))
		requireOK(t, s.run("admin", txnCmd(bson.D{{Key: "abortTransaction", Value: 1}}, 2, false)))
		requireCode(t, s.run("db", txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: 5}}), 2, false)), 251, "NoSuchTransaction", "TransientTransactionError")
		requireCode(t, s.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 2, false)), 251, "NoSuchTransaction", "TransientTransactionError")
	})
	t.Run("readConcern only on the first operation", func(t *testing.T) {
		requireOK(t, s.run("db", append(txnCmd(bson.D{{Key: "find", Value: "c"}}, 3, true), bson.E{Key: "readConcern", Value: bson.D{{Key: "level", Value: "snapshot"}}})))
		requireCode(t, s.run("db", append(txnCmd(bson.D{{Key: "find", Value: "c"}}, 3, false), bson.E{Key: "readConcern", Value: bson.D{{Key: "level", Value: "snapshot"}}})), 72, "InvalidOptions")
	})
	t.Run("writeConcern inside a transaction is rejected", func(t *testing.T) {
		requireCode(t, s.run("db", append(txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: 6}}), 4, true), bson.E{Key: "writeConcern", Value: bson.D{{Key: "w", Value: 1}}})), 72, "InvalidOptions")
	})
	t.Run("commands not allowed in a transaction", func(t *testing.T) {
		tests := []struct {
			give string
			cmd  bson.D
		}{
			{give: "count", cmd: bson.D{{Key: "count", Value: "c"}}},
			{give: "listCollections", cmd: bson.D{{Key: "listCollections", Value: 1}}},
			{give: "createIndexes on an existing collection", cmd: bson.D{{Key: "createIndexes", Value: "c"}, {Key: "indexes", Value: bson.A{bson.D{{Key: "key", Value: bson.D{{Key: "x", Value: 1}}}, {Key: "name", Value: "x_1"}}}}}},
		}
		for i, tt := range tests {
			t.Run(tt.give, func(t *testing.T) {
				requireCode(t, s.run("db", txnCmd(tt.cmd, int64(10+i), true)), 263, "OperationNotSupportedInTransaction")
			})
		}
	})
	t.Run("nothing uncommitted was kept", func(t *testing.T) {
		reply := s.run("db", bson.D{{Key: "find", Value: "c"}})
		batch := replyField(replyField(reply, "cursor").(bson.D), "firstBatch").(bson.A)
		require.Len(t, batch, 1, "only the committed _id 1")
	})
}

func TestSnapshotIsolation(t *testing.T) {
	ctx := context.Background()
	client := newClient(t)
	coll := client.Database("db").Collection("iso")
	_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "a"}, {Key: "v", Value: 1}})
	require.NoError(t, err)

	sess, err := client.StartSession()
	require.NoError(t, err)
	defer sess.EndSession(ctx)
	require.NoError(t, sess.StartTransaction())
	sctx := mongo.NewSessionContext(ctx, sess)

	var first bson.M
	require.NoError(t, coll.FindOne(sctx, bson.D{{Key: "_id", Value: "a"}}).Decode(&first))

	// Another client changes the document and adds one after the snapshot.
	_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: "a"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 2}}}})
	require.NoError(t, err)
	_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "b"}, {Key: "v", Value: 1}})
	require.NoError(t, err)

	var again bson.M
	require.NoError(t, coll.FindOne(sctx, bson.D{{Key: "_id", Value: "a"}}).Decode(&again))
	require.EqualValues(t, 1, again["v"], "repeatable read")
	require.Equal(t, int64(1), countDocs(t, coll.Database().Collection("iso"), bson.D{{Key: "v", Value: 99}})+1)
	cur, err := coll.Find(sctx, bson.D{})
	require.NoError(t, err)
	var inTxn []bson.M
	require.NoError(t, cur.All(sctx, &inTxn))
	require.Len(t, inTxn, 1, "no phantom")

	// The transaction's own write is visible to it, not to others.
	_, err = coll.InsertOne(sctx, bson.D{{Key: "_id", Value: "c"}})
	require.NoError(t, err)
	require.Equal(t, int64(2), countDocs(t, coll, bson.D{}), "no dirty read")
	require.NoError(t, coll.FindOne(sctx, bson.D{{Key: "_id", Value: "c"}}).Err())
	require.NoError(t, sess.AbortTransaction(ctx))
	require.Equal(t, int64(2), countDocs(t, coll, bson.D{}))
}

func TestCommitIsAtomic(t *testing.T) {
	ctx := context.Background()
	client := newClient(t)
	coll := client.Database("db").Collection("atomic")
	sess, err := client.StartSession()
	require.NoError(t, err)
	defer sess.EndSession(ctx)
	require.NoError(t, sess.StartTransaction())
	sctx := mongo.NewSessionContext(ctx, sess)
	for i := 0; i < 50; i++ {
		_, err := coll.InsertOne(sctx, bson.D{{Key: "_id", Value: i}})
		require.NoError(t, err)
	}
	require.Zero(t, countDocs(t, coll, bson.D{}))
	require.NoError(t, sess.CommitTransaction(ctx))
	require.Equal(t, int64(50), countDocs(t, coll, bson.D{}))
}

func TestWriteConflictBetweenTransactions(t *testing.T) {
	srv := mongotest.Start(t)
	a, b := newRawSession(t, srv), newRawSession(t, srv)
	b.lsid[0].Value.(bson.Binary).Data[15] ^= 0xff
	requireOK(t, a.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 0}})))

	inc := bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "u", Value: bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}}}}}}
	requireOK(t, a.run("db", txnCmd(inc, 1, true)))
	requireCode(t, b.run("db", txnCmd(inc, 1, true)), 112, "WriteConflict", "TransientTransactionError")
	// The loser's transaction is aborted by the conflict.
	requireCode(t, b.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 1, false)), 251, "NoSuchTransaction", "TransientTransactionError")
	requireOK(t, a.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 1, false)))
	// A transaction whose snapshot predates a commit also conflicts.
	requireOK(t, b.run("db", txnCmd(bson.D{{Key: "find", Value: "c"}}, 2, true)))
	requireOK(t, a.run("db", inc))
	requireCode(t, b.run("db", txnCmd(inc, 2, false)), 112, "WriteConflict", "TransientTransactionError")
}

func TestPlainWriteWaitsForTransaction(t *testing.T) {
	ctx := context.Background()
	client := newClient(t)
	coll := client.Database("db").Collection("wait")
	_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 0}})
	require.NoError(t, err)
	sess, err := client.StartSession()
	require.NoError(t, err)
	defer sess.EndSession(ctx)
	require.NoError(t, sess.StartTransaction())
	sctx := mongo.NewSessionContext(ctx, sess)
	inc := bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}
	_, err = coll.UpdateOne(sctx, bson.D{{Key: "_id", Value: 1}}, inc)
	require.NoError(t, err)

	// A plain write with a time limit gives up while the transaction holds the document.
	limited := client.Database("db").RunCommand(ctx, bson.D{{Key: "update", Value: "wait"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "u", Value: inc}}}}, {Key: "maxTimeMS", Value: 50}})
	var ce mongo.CommandError
	require.ErrorAs(t, limited.Err(), &ce)
	require.Equal(t, int32(50), ce.Code)

	done := make(chan error, 1)
	go func() {
		_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, inc)
		done <- err
	}()
	require.NoError(t, sess.CommitTransaction(ctx))
	require.NoError(t, <-done)
	var got struct{ N int32 }
	require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&got))
	require.Equal(t, int32(2), got.N, "the waiting write applied to the committed version")
}

func TestTransactionLifetimeLimit(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRawSession(t, srv)
	requireOK(t, s.run("admin", bson.D{{Key: "setParameter", Value: 1}, {Key: "transactionLifetimeLimitSeconds", Value: 1}}))
	requireOK(t, s.run("db", txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: 1}}), 1, true)))
	require.Eventually(t, func() bool {
		reply := s.run("db", txnCmd(bson.D{{Key: "find", Value: "c"}}, 1, false))
		return replyField(reply, "code") == int32(251)
	}, 10*time.Second, 100*time.Millisecond)
	reply := s.run("db", bson.D{{Key: "find", Value: "c"}})
	require.Empty(t, replyField(replyField(reply, "cursor").(bson.D), "firstBatch"), "the expired transaction's insert was aborted")
}

func TestRetryableWriteIsAppliedOnce(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRawSession(t, srv)
	retryable := func(cmd bson.D, n int64) bson.D { return append(cmd, bson.E{Key: "txnNumber", Value: n}) }
	ins := insertCmd("c", bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 0}}, bson.D{{Key: "_id", Value: 2}, {Key: "n", Value: 0}})
	requireOK(t, s.run("db", retryable(ins, 1)))
	again := s.run("db", retryable(ins, 1))
	requireOK(t, again)
	require.EqualValues(t, 2, replyField(again, "n"), "the retry reports the first result")
	require.Nil(t, replyField(again, "writeErrors"))

	inc := bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "u", Value: bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}}}}}}
	requireOK(t, s.run("db", retryable(inc, 2)))
	requireOK(t, s.run("db", retryable(inc, 2)))
	requireOK(t, s.run("db", retryable(inc, 3)))
	requireCode(t, s.run("db", retryable(inc, 2)), 225, "TransactionTooOld")

	reply := s.run("db", bson.D{{Key: "find", Value: "c"}, {Key: "filter", Value: bson.D{{Key: "_id", Value: 1}}}})
	doc := replyField(replyField(reply, "cursor").(bson.D), "firstBatch").(bson.A)[0].(bson.D)
	require.EqualValues(t, 2, replyField(doc, "n"), "txnNumber 2 applied once, 3 once")
}

func TestFailCommandModes(t *testing.T) {
	ctx := context.Background()
	srv := mongotest.Start(t)
	client := connect(t, srv)
	admin := client.Database("admin")
	coll := client.Database("db").Collection("fp")
	configure := func(mode any, data bson.D) {
		t.Helper()
		require.NoError(t, admin.RunCommand(ctx, bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: mode}, {Key: "data", Value: data}}).Err())
	}
	ping := func() error { return client.Database("db").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err() }
	code := func(err error) int32 {
		var ce mongo.CommandError
		if errors.As(err, &ce) {
			return ce.Code
		}
		return 0
	}

	t.Run("times fails n commands", func(t *testing.T) {
		configure(bson.D{{Key: "times", Value: 2}}, bson.D{{Key: "failCommands", Value: bson.A{"ping"}}, {Key: "errorCode", Value: 2}})
		require.Equal(t, int32(2), code(ping()))
		require.Equal(t, int32(2), code(ping()))
		require.NoError(t, ping())
	})
	t.Run("skip lets n commands pass first", func(t *testing.T) {
		configure(bson.D{{Key: "skip", Value: 1}}, bson.D{{Key: "failCommands", Value: bson.A{"ping"}}, {Key: "errorCode", Value: 2}})
		require.NoError(t, ping())
		require.Equal(t, int32(2), code(ping()))
		configure("off", bson.D{})
		require.NoError(t, ping())
	})
	t.Run("alwaysOn until off, only the named commands", func(t *testing.T) {
		configure("alwaysOn", bson.D{{Key: "failCommands", Value: bson.A{"ping"}}, {Key: "errorCode", Value: 2}})
		require.Equal(t, int32(2), code(ping()))
		require.Equal(t, int32(2), code(ping()))
		require.NoError(t, client.Database("db").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Err())
		configure("off", bson.D{})
		require.NoError(t, ping())
	})
	t.Run("errorLabels are sent as given", func(t *testing.T) {
		configure(bson.D{{Key: "times", Value: 1}}, bson.D{{Key: "failCommands", Value: bson.A{"ping"}}, {Key: "errorCode", Value: 112}, {Key: "errorLabels", Value: bson.A{"TransientTransactionError"}}})
		err := ping()
		var ce mongo.CommandError
		require.ErrorAs(t, err, &ce)
		require.True(t, ce.HasErrorLabel("TransientTransactionError"))
	})
	t.Run("appName limits the fail point to one client", func(t *testing.T) {
		configure(bson.D{{Key: "times", Value: 1}}, bson.D{{Key: "failCommands", Value: bson.A{"ping"}}, {Key: "errorCode", Value: 2}, {Key: "appName", Value: "other"}})
		require.NoError(t, ping())
		configure("off", bson.D{})
	})
	t.Run("closeConnection drops the socket", func(t *testing.T) {
		configure(bson.D{{Key: "times", Value: 1}}, bson.D{{Key: "failCommands", Value: bson.A{"find"}}, {Key: "closeConnection", Value: true}})
		err := coll.FindOne(ctx, bson.D{}).Err()
		require.Error(t, err)
		require.True(t, mongo.IsNetworkError(err) || errors.Is(err, mongo.ErrNoDocuments), "got %v", err)
	})
	t.Run("writeConcernError is added after the write applies", func(t *testing.T) {
		configure(bson.D{{Key: "times", Value: 1}}, bson.D{{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "writeConcernError", Value: bson.D{{Key: "code", Value: 100}, {Key: "errmsg", Value: "wc failed"}}}})
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "wce"}})
		var we mongo.WriteException
		require.ErrorAs(t, err, &we)
		require.NotNil(t, we.WriteConcernError)
		require.Equal(t, 100, we.WriteConcernError.Code)
		require.Equal(t, int64(1), countDocs(t, coll, bson.D{{Key: "_id", Value: "wce"}}))
	})
	t.Run("blockConnection delays the command", func(t *testing.T) {
		configure(bson.D{{Key: "times", Value: 1}}, bson.D{{Key: "failCommands", Value: bson.A{"ping"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 100}})
		start := time.Now()
		require.NoError(t, ping())
		require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
	})
	t.Run("retryable writes are retried past a RetryableWriteError", func(t *testing.T) {
		configure(bson.D{{Key: "times", Value: 1}}, bson.D{{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "errorCode", Value: 91}})
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "retried"}})
		require.NoError(t, err)
		require.Equal(t, int64(1), countDocs(t, coll, bson.D{{Key: "_id", Value: "retried"}}))
	})
	t.Run("Server.FailCommand uses the same path", func(t *testing.T) {
		require.NoError(t, srv.FailCommand(bson.D{{Key: "times", Value: 1}}, bson.D{{Key: "failCommands", Value: bson.A{"ping"}}, {Key: "errorCode", Value: 2}}))
		require.Equal(t, int32(2), code(ping()))
		require.NoError(t, ping())
	})
}

func TestWithTransactionUnderInjectedFaults(t *testing.T) {
	tests := []struct {
		give string
		fp   bson.D
	}{
		{give: "transient error on insert", fp: bson.D{{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "errorCode", Value: 112}}},
		{give: "unknown commit result", fp: bson.D{{Key: "failCommands", Value: bson.A{"commitTransaction"}}, {Key: "errorCode", Value: 91}}},
		{give: "connection closed on commit", fp: bson.D{{Key: "failCommands", Value: bson.A{"commitTransaction"}}, {Key: "closeConnection", Value: true}}},
		{give: "write concern error on commit", fp: bson.D{{Key: "failCommands", Value: bson.A{"commitTransaction"}}, {Key: "writeConcernError", Value: bson.D{{Key: "code", Value: 91}, {Key: "errmsg", Value: "shutting down"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			ctx := context.Background()
			srv := mongotest.Start(t)
			client := connect(t, srv)
			coll := client.Database("db").Collection("faults")
			require.NoError(t, srv.FailCommand(bson.D{{Key: "times", Value: 1}}, tt.fp))
			sess, err := client.StartSession()
			require.NoError(t, err)
			defer sess.EndSession(ctx)
			var calls atomic.Int32
			_, err = sess.WithTransaction(ctx, func(ctx context.Context) (any, error) {
				calls.Add(1)
				_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}, options.UpdateOne().SetUpsert(true))
				return nil, err
			})
			require.NoError(t, err)
			var got struct{ N int32 }
			require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&got))
			require.Equal(t, int32(1), got.N, "committed exactly once after %d callback runs", calls.Load())
		})
	}
}

func TestUniqueIndexHoldsAcrossConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	client := newClient(t)
	coll := client.Database("db").Collection("uniq")
	_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "k", Value: 1}}, Options: options.Index().SetUnique(true)})
	require.NoError(t, err)
	var wg sync.WaitGroup
	var wins atomic.Int32
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sess, err := client.StartSession()
			if err != nil {
				return
			}
			defer sess.EndSession(ctx)
			_, err = sess.WithTransaction(ctx, func(ctx context.Context) (any, error) {
				_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: i}, {Key: "k", Value: "same"}})
				return nil, err
			})
			if err == nil {
				wins.Add(1)
			}
		}(i)
	}
	wg.Wait()
	require.Equal(t, int32(1), wins.Load())
	require.Equal(t, int64(1), countDocs(t, coll, bson.D{{Key: "k", Value: "same"}}))
}

func TestFailPointMeetsARetriedCommit(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRawSession(t, srv)
	requireOK(t, s.run("db", txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: 1}}), 1, true)))
	require.NoError(t, srv.FailCommand(bson.D{{Key: "times", Value: 2}}, bson.D{{Key: "failCommands", Value: bson.A{"commitTransaction"}}, {Key: "writeConcernError", Value: bson.D{{Key: "code", Value: 64}, {Key: "errmsg", Value: "x"}}}}))
	for i := 0; i < 2; i++ {
		reply := s.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 1, false))
		requireOK(t, reply)
		require.NotNil(t, replyField(reply, "writeConcernError"), "commit %d: %v", i, reply)
	}
	requireOK(t, s.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 1, false)))
}

func TestCursorsOfATransactionEndWithIt(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRawSession(t, srv)
	requireOK(t, s.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 2}}, bson.D{{Key: "_id", Value: 3}})))
	reply := s.run("db", append(txnCmd(bson.D{{Key: "find", Value: "c"}}, 1, true), bson.E{Key: "batchSize", Value: 1}))
	requireOK(t, reply)
	id := replyField(replyField(reply, "cursor").(bson.D), "id").(int64)
	require.NotZero(t, id)
	more := txnCmd(bson.D{{Key: "getMore", Value: id}, {Key: "collection", Value: "c"}, {Key: "batchSize", Value: 1}}, 1, false)
	requireOK(t, s.run("db", more))
	requireOK(t, s.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 1, false)))
	requireCode(t, s.run("db", bson.D{{Key: "getMore", Value: id}, {Key: "collection", Value: "c"}}), 43, "CursorNotFound")
}
