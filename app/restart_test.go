package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/mongotest"
)

// A restart right after kill -9 finds the killed process's transactions
// still open on the server (until its transaction lifetime). Start must
// not wait for them: the schema exists, so there is nothing to build.
func TestRestartDoesNotWaitForAKilledProcessesTransactions(t *testing.T) {
	if testenv.Real() {
		t.Skip("needs a server whose transaction lifetime the test sets")
	}
	srv := mongotest.Start(t, mongotest.WithTransactionLifetimeLimit(time.Hour))
	db := "txkit_restart_" + randomHex(4)
	first := startApp(t, func(c *Config) { c.MongoURI, c.DB = srv.URI(), db })
	first.credit("kim", 100)
	first.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/payments", Key: "p1",
		Body: `{"account":"kim","amount_minor":100,"currency":"USD","credits":100,"provider":"psp","provider_ref":"r1"}`})
	first.app.RequireStop()

	// The "killed" process: transactions that wrote to every collection
	// and will never commit or abort.
	killed, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	require.NoError(t, err)
	ctx := context.Background()
	names, err := killed.Database(db).ListCollectionNames(ctx, bson.D{})
	require.NoError(t, err)
	require.NotEmpty(t, names)
	for _, name := range names {
		sess, err := killed.StartSession()
		require.NoError(t, err)
		require.NoError(t, sess.StartTransaction())
		sctx := mongo.NewSessionContext(ctx, sess)
		_, err = killed.Database(db).Collection(name).InsertOne(sctx, bson.D{{Key: "_id", Value: "left-behind-" + name}, {Key: "created_at", Value: time.Now()}})
		require.NoError(t, err, name)
	}

	second := startApp(t, func(c *Config) { c.MongoURI, c.DB = srv.URI(), db })
	require.Equal(t, float64(100), second.balance("kim")["balance"])
	_ = killed.Disconnect(ctx) // ends the sessions, as the server's reaper would
}
