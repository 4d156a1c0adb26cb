package main

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/mongotest"
)

func TestDatabaseUnreachableIs503(t *testing.T) {
	if testenv.Real() {
		t.Skip("needs a server the test can stop")
	}
	srv := mongotest.Start(t)
	ta := startApp(t, func(c *Config) {
		c.MongoURI = srv.URI()
		c.MongoTimeout = 500 * time.Millisecond
		c.RequestTimeout = 2 * time.Second // bounds the runner's retries of network errors
	})
	ta.credit("ursula", 10)
	require.NoError(t, srv.Close())

	res := ta.mustStatus(http.StatusServiceUnavailable, req{Method: "GET", Path: "/readyz", NoAuth: true})
	assert.Equal(t, "database_unavailable", res.code())
	res = ta.mustStatus(http.StatusServiceUnavailable, req{Method: "GET", Path: "/v1/accounts/ursula"})
	assert.Equal(t, "database_unavailable", res.code())
	res = ta.mustStatus(http.StatusServiceUnavailable, req{Method: "POST", Path: "/v1/accounts/ursula/debits", Body: `{"amount":1}`, Key: "down-1"})
	assert.Equal(t, "database_unavailable", res.code())
	ta.mustStatus(http.StatusOK, req{Method: "GET", Path: "/healthz", NoAuth: true}) // alive, not ready
}

// TestGracefulShutdownDrainsInFlightRequests stops the application while a
// debit is held up in the database: the debit still gets its 201, and what
// it wrote is there after the stop.
func TestGracefulShutdownDrainsInFlightRequests(t *testing.T) {
	uri := testenv.URI(t) // outlives the app, so the data can be checked after it stops
	ta := startApp(t, func(c *Config) { c.MongoURI = uri })
	ta.credit("sam", 10)

	testenv.FailCommand(t, ta.client, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
		{Key: "data", Value: bson.D{
			{Key: "failCommands", Value: bson.A{"commitTransaction"}},
			{Key: "blockConnection", Value: true},
			{Key: "blockTimeMS", Value: 700},
			{Key: "appName", Value: "txkit"},
		}},
	})

	var wg sync.WaitGroup
	var res response
	wg.Go(func() {
		res = ta.do(req{Method: "POST", Path: "/v1/accounts/sam/debits", Body: `{"amount":4}`, Key: "in-flight"})
	})
	time.Sleep(200 * time.Millisecond) // the debit is now blocked in its commit
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, ta.app.Stop(ctx))
	wg.Wait()
	require.Equal(t, http.StatusCreated, res.Status, "%s", res.Raw)

	check := testenv.Connect(t, uri)
	var acc struct {
		Balance int64 `bson:"balance"`
	}
	require.NoError(t, check.Database(ta.cfg.DB).Collection("credit_accounts").FindOne(ctx, bson.D{{Key: "_id", Value: "sam"}}).Decode(&acc))
	assert.Equal(t, int64(6), acc.Balance, "the answered debit is durable")
}
