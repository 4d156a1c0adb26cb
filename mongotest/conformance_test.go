package mongotest_test

// Behaviours found by running MongoDB's unified driver specification tests
// (transactions, retryable-writes, sessions) against mongotest.

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/txkit/txkit/mongotest"
)

func TestKillAllSessionsOnASession(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := newClient(t)
	coll := client.Database("db").Collection("c")

	sess, err := client.StartSession()
	require.NoError(t, err)
	defer sess.EndSession(ctx)
	require.NoError(t, sess.StartTransaction())
	sctx := mongo.NewSessionContext(ctx, sess)
	_, err = coll.InsertOne(sctx, bson.D{{Key: "_id", Value: 1}})
	require.NoError(t, err)

	// The driver sends killAllSessions with an implicit lsid of its own:
	// the command must not wait for its own session.
	require.NoError(t, client.Database("admin").RunCommand(ctx, bson.D{{Key: "killAllSessions", Value: bson.A{}}}).Err())

	err = sess.CommitTransaction(ctx)
	var se mongo.ServerError
	require.ErrorAs(t, err, &se)
	assert.True(t, se.HasErrorCode(251), "commit after killAllSessions: %v", err) // NoSuchTransaction
	n, err := coll.CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestUnsatisfiableWriteConcern(t *testing.T) {
	ctx := context.Background()
	client := newClient(t)

	tests := []struct {
		name     string
		give     *writeconcern.WriteConcern
		wantCode int
	}{
		{name: "w greater than the members is applied and reported", give: &writeconcern.WriteConcern{W: 2}, wantCode: 100},
		{name: "an unknown tag is applied and reported", give: &writeconcern.WriteConcern{W: "dc1"}, wantCode: 79},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			coll := client.Database("db").Collection("wc", options.Collection().SetWriteConcern(tt.give))
			_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: i}})
			var we mongo.WriteException
			require.ErrorAs(t, err, &we)
			require.NotNil(t, we.WriteConcernError)
			assert.Equal(t, tt.wantCode, we.WriteConcernError.Code)
			n, err := client.Database("db").Collection("wc").CountDocuments(ctx, bson.D{{Key: "_id", Value: i}})
			require.NoError(t, err)
			assert.EqualValues(t, 1, n, "the write is applied")
		})
	}

	t.Run("a commit with w greater than the members commits and reports", func(t *testing.T) {
		coll := client.Database("db").Collection("wctxn")
		sess, err := client.StartSession()
		require.NoError(t, err)
		defer sess.EndSession(ctx)
		require.NoError(t, sess.StartTransaction(options.Transaction().SetWriteConcern(&writeconcern.WriteConcern{W: 10})))
		_, err = coll.InsertOne(mongo.NewSessionContext(ctx, sess), bson.D{{Key: "_id", Value: 1}})
		require.NoError(t, err)
		err = sess.CommitTransaction(ctx)
		var wce mongo.WriteConcernError
		var ce mongo.CommandError
		if !errors.As(err, &ce) {
			var we mongo.WriteException
			require.ErrorAs(t, err, &we, "commit: %v", err)
			require.NotNil(t, we.WriteConcernError)
			wce = *we.WriteConcernError
		} else {
			wce.Code = int(ce.Code)
		}
		assert.Equal(t, 100, wce.Code)
		n, err := coll.CountDocuments(ctx, bson.D{})
		require.NoError(t, err)
		assert.EqualValues(t, 1, n)
	})
}

func TestOnPrimaryTransactionalWrite(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	tests := []struct {
		name    string
		give    bson.D // the fail point's mode and data
		wantErr bool
		wantN   int64
	}{
		{
			name:  "a write whose reply is lost is not applied twice on retry",
			give:  bson.D{{Key: "mode", Value: bson.D{{Key: "times", Value: 1}}}},
			wantN: 1,
		},
		{
			name: "a write failed before commit is applied by the retry",
			give: bson.D{
				{Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
				{Key: "data", Value: bson.D{{Key: "failBeforeCommitExceptionCode", Value: 1}}},
			},
			wantN: 1,
		},
		{
			name: "a write failed on both attempts is not applied",
			give: bson.D{
				{Key: "mode", Value: bson.D{{Key: "times", Value: 2}}},
				{Key: "data", Value: bson.D{{Key: "failBeforeCommitExceptionCode", Value: 1}}},
			},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newClient(t)
			coll := client.Database("db").Collection("c")
			cmd := append(bson.D{{Key: "configureFailPoint", Value: "onPrimaryTransactionalWrite"}}, tt.give...)
			require.NoError(t, client.Database("admin").RunCommand(ctx, cmd).Err())

			// No deadline: with one the driver retries until it passes
			// instead of once.
			_, err := coll.InsertOne(context.Background(), bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 1}})
			if tt.wantErr {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
			}
			n, err := coll.CountDocuments(ctx, bson.D{{Key: "n", Value: 1}})
			require.NoError(t, err)
			assert.Equal(t, tt.wantN, n)
		})
	}
}

func TestCommitFailCommandLabels(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name          string
		give          bson.D // failCommand data
		wantTransient bool
	}{
		{
			name:          "NoSuchTransaction is transient",
			give:          bson.D{{Key: "errorCode", Value: 251}},
			wantTransient: true,
		},
		{
			name:          "WriteConflict is transient",
			give:          bson.D{{Key: "errorCode", Value: 112}},
			wantTransient: true,
		},
		{
			name: "Interrupted is not transient",
			give: bson.D{{Key: "errorCode", Value: 11601}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newClient(t)
			data := append(bson.D{{Key: "failCommands", Value: bson.A{"commitTransaction"}}}, tt.give...)
			require.NoError(t, client.Database("admin").RunCommand(ctx, bson.D{
				{Key: "configureFailPoint", Value: "failCommand"},
				{Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
				{Key: "data", Value: data},
			}).Err())
			sess, err := client.StartSession()
			require.NoError(t, err)
			defer sess.EndSession(ctx)
			require.NoError(t, sess.StartTransaction())
			_, err = client.Database("db").Collection("c").InsertOne(mongo.NewSessionContext(ctx, sess), bson.D{{Key: "_id", Value: 1}})
			require.NoError(t, err)

			err = sess.CommitTransaction(ctx)
			var se mongo.ServerError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tt.wantTransient, se.HasErrorLabel("TransientTransactionError"), "labels of %v", err)
		})
	}
}

func TestSnapshotReadConcernOutsideTransaction(t *testing.T) {
	ctx := context.Background()
	client := newClient(t)
	db := client.Database("db")
	_, err := db.Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	require.NoError(t, err)
	snapshot := bson.D{{Key: "level", Value: "snapshot"}}

	tests := []struct {
		name    string
		give    bson.D
		wantErr bool
	}{
		{name: "insert is refused", give: bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 2}}}}}, wantErr: true},
		{name: "findAndModify is refused", give: bson.D{{Key: "findAndModify", Value: "c"}, {Key: "query", Value: bson.D{}}, {Key: "remove", Value: true}}, wantErr: true},
		{name: "listCollections is refused", give: bson.D{{Key: "listCollections", Value: 1}}, wantErr: true},
		{name: "find is a snapshot read", give: bson.D{{Key: "find", Value: "c"}}},
		{name: "distinct is a snapshot read", give: bson.D{{Key: "distinct", Value: "c"}, {Key: "key", Value: "_id"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := append(tt.give, bson.E{Key: "readConcern", Value: snapshot})
			err := db.RunCommand(ctx, cmd).Err()
			if !tt.wantErr {
				require.NoError(t, err)
				return
			}
			var se mongo.ServerError
			require.ErrorAs(t, err, &se)
			assert.True(t, se.HasErrorCode(72), "want InvalidOptions, got %v", err)
		})
	}
	n, err := db.Collection("c").CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "a refused write must not be applied")
}

func TestCollectionCreatedInTransaction(t *testing.T) {
	ctx := context.Background()
	client := newClient(t)
	db := client.Database("ddltxn")

	names := func(t *testing.T) []string {
		got, err := db.ListCollectionNames(ctx, bson.D{})
		require.NoError(t, err)
		return got
	}
	indexNames := func(t *testing.T, coll string) []string {
		specs, err := db.Collection(coll).Indexes().ListSpecifications(ctx)
		if err != nil {
			return nil
		}
		var out []string
		for _, s := range specs {
			out = append(out, s.Name)
		}
		return out
	}

	tests := []struct {
		name      string
		give      func(sctx context.Context, coll string) error
		commit    bool
		wantColl  bool
		wantIndex bool
	}{
		{
			name:     "a create command commits with the transaction",
			give:     func(sctx context.Context, coll string) error { return db.CreateCollection(sctx, coll) },
			commit:   true,
			wantColl: true,
		},
		{
			name: "an implicit create by insert commits with the transaction",
			give: func(sctx context.Context, coll string) error {
				_, err := db.Collection(coll).InsertOne(sctx, bson.D{{Key: "_id", Value: 1}})
				return err
			},
			commit:   true,
			wantColl: true,
		},
		{
			name: "an index on a collection created in the transaction commits with it",
			give: func(sctx context.Context, coll string) error {
				if err := db.CreateCollection(sctx, coll); err != nil {
					return err
				}
				_, err := db.Collection(coll).Indexes().CreateOne(sctx, mongo.IndexModel{Keys: bson.D{{Key: "x", Value: 1}}, Options: options.Index().SetName("t_1")})
				return err
			},
			commit:    true,
			wantColl:  true,
			wantIndex: true,
		},
		{
			name:   "an aborted transaction leaves no collection behind",
			give:   func(sctx context.Context, coll string) error { return db.CreateCollection(sctx, coll) },
			commit: false,
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			coll := "c" + string(rune('a'+i))
			sess, err := client.StartSession()
			require.NoError(t, err)
			defer sess.EndSession(ctx)
			require.NoError(t, sess.StartTransaction())
			require.NoError(t, tt.give(mongo.NewSessionContext(ctx, sess), coll))

			assert.NotContains(t, names(t), coll, "invisible before commit")
			assert.NotContains(t, indexNames(t, coll), "t_1", "index invisible before commit")

			if tt.commit {
				require.NoError(t, sess.CommitTransaction(ctx))
			} else {
				require.NoError(t, sess.AbortTransaction(ctx))
			}
			if tt.wantColl {
				assert.Contains(t, names(t), coll)
			} else {
				assert.NotContains(t, names(t), coll)
			}
			if tt.wantIndex {
				assert.Contains(t, indexNames(t, coll), "t_1")
			}
		})
	}
}

// TestRetriesSurviveClosedConnections repeats what the retryable-writes
// specification tests do: the server closes the connection of a write,
// and the driver's single retry must succeed. A server that woke the
// driver's monitor on its own closes raced the driver's pool clearing and
// failed the retry now and then. Each closed connection costs the driver
// most of a second, as against MongoDB: it cancels its monitor's
// awaitable hello and waits out its minimum heartbeat interval (500 ms)
// before it checks the server again; so 15 rounds, not more.
func TestRetriesSurviveClosedConnections(t *testing.T) {
	ctx := context.Background()
	srv := mongotest.Start(t)
	client := connect(t, srv)
	admin := client.Database("admin")
	coll := client.Database("db").Collection("closed")
	const rounds = 15
	for i := range rounds {
		require.NoError(t, admin.RunCommand(ctx, bson.D{{Key: "configureFailPoint", Value: "onPrimaryTransactionalWrite"}, {Key: "mode", Value: bson.D{{Key: "times", Value: 1}}}}).Err())
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: i}})
		require.NoError(t, err, "write %d committed before its connection closed", i)
		require.NoError(t, srv.FailCommand(bson.D{{Key: "times", Value: 1}}, bson.D{{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "closeConnection", Value: true}}))
		_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1000 + i}})
		require.NoError(t, err, "write %d whose connection closed first", i)
	}
	n, err := coll.CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	require.Equal(t, int64(2*rounds), n, "every write applied exactly once")
}
