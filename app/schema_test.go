package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/mongotest"
)

// The database replaced under the running service (here: dropped) loses
// every index until the next start. A provider reference is still used
// once, and the next start (which builds the unique index again) does not
// meet duplicates.
func TestPaymentsStayUniqueWhenTheDatabaseIsDroppedUnderTheService(t *testing.T) {
	if testenv.Real() {
		t.Skip("needs a server of its own to restart the service on")
	}
	srv := mongotest.Start(t)
	db := "txkit_dropped_" + randomHex(4)
	first := startApp(t, func(c *Config) { c.MongoURI, c.DB = srv.URI(), db })
	require.NoError(t, first.db.Drop(context.Background()))

	body := `{"account":"lee","amount_minor":100,"currency":"USD","credits":100,"provider":"psp","provider_ref":"r-dropped"}`
	first.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/payments", Key: "drop-1", Body: body})
	res := first.mustStatus(http.StatusConflict, req{Method: "POST", Path: "/v1/payments", Key: "drop-2", Body: body})
	assert.Equal(t, "duplicate_provider_ref", res.code())
	assert.Equal(t, 1, first.count("payments", bson.D{{Key: "providerRef", Value: "r-dropped"}}))
	first.app.RequireStop()

	second := startApp(t, func(c *Config) { c.MongoURI, c.DB = srv.URI(), db })
	assert.Equal(t, 1, second.count("payments", bson.D{{Key: "providerRef", Value: "r-dropped"}}))
}

// A start that finds payments sharing a provider reference (left by an
// older version on a database that had lost its indexes) fails naming the
// collection, the reference, the payments and where the remedy is.
func TestStartWithDuplicatePaymentsSaysWhatToDo(t *testing.T) {
	if testenv.Real() {
		t.Skip("needs a server of its own")
	}
	srv := mongotest.Start(t)
	db := "txkit_dups_" + randomHex(4)
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	require.NoError(t, err)
	defer func() { _ = client.Disconnect(context.Background()) }()
	ctx := context.Background()
	for _, id := range []string{"65a000000000000000000001", "65a000000000000000000002"} {
		_, err := client.Database(db).Collection("payments").InsertOne(ctx, bson.D{
			{Key: "_id", Value: id}, {Key: "account", Value: "lee"}, {Key: "amountMinor", Value: int64(100)}, {Key: "currency", Value: "USD"},
			{Key: "credits", Value: int64(100)}, {Key: "provider", Value: "psp"}, {Key: "providerRef", Value: "r-twice"},
			{Key: "status", Value: "pending"}, {Key: "createdAt", Value: time.Now()}, {Key: "updatedAt", Value: time.Now()},
		})
		require.NoError(t, err)
	}

	cfg := Config{Addr: "127.0.0.1:0", MongoURI: srv.URI(), DB: db, APIToken: testToken, WebhookSecret: testSecret,
		LogFormat: "json", ShutdownTimeout: 5 * time.Second, RequestTimeout: 5 * time.Second, MongoTimeout: 5 * time.Second}
	require.NoError(t, cfg.validate())
	app := fx.New(appOptions(cfg), fx.WithLogger(func() fxevent.Logger { return fxevent.NopLogger }))
	startCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err = app.Start(startCtx)
	require.Error(t, err)
	defer func() { _ = app.Stop(context.Background()) }()
	msg := err.Error()
	for _, want := range []string{`"payments"`, "psp/r-twice", "65a000000000000000000001", "65a000000000000000000002", "docs/payments.md"} {
		assert.Contains(t, msg, want)
	}
	assert.NotContains(t, msg, "E11000")
}
