package mongofx_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/mongofx"
	"github.com/txkit/txkit/tx"
)

func TestEmbeddedMode(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	var (
		client *mongo.Client
		emb    *mongofx.Embedded
	)
	app := fxtest.New(t,
		fx.Supply(zap.New(core)),
		fx.Supply(mongofx.Config{Embedded: true, AppName: "mongofx-test"}),
		mongofx.Module,
		fx.Populate(&client, &emb),
	)
	app.RequireStart()

	ctx := context.Background()
	_, err := client.Database("app").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	require.NoError(t, err, "the embedded server serves")

	warnings := logs.FilterLevelExact(zapcore.WarnLevel).FilterMessageSnippet("in memory only").All()
	require.Len(t, warnings, 1, "embedded mode says loudly where the data lives")
	assert.Equal(t, false, warnings[0].ContextMap()["network_port"])

	// No port is open: the server is reachable in memory only.
	require.NotNil(t, emb.Server, "tests and demos get the embedded server")
	assert.NotContains(t, emb.Server.Addr(), "127.0.0.1")
	_, err = net.DialTimeout("tcp", emb.Server.Addr(), time.Second)
	assert.Error(t, err, "nothing listens at %s", emb.Server.Addr())

	app.RequireStop()
	err = client.Ping(ctx, nil)
	assert.ErrorIs(t, err, mongo.ErrClientDisconnected, "stopped: the client is disconnected")
	// goleak (TestMain) checks that the embedded server's goroutines are gone.
}

func TestURIMode(t *testing.T) {
	uri := testenv.URI(t)
	var client *mongo.Client
	app := fxtest.New(t,
		fx.Supply(mongofx.Config{URI: uri, AppName: "mongofx-test", ConnectTimeout: 5 * time.Second, ServerSelectionTimeout: 5 * time.Second}),
		mongofx.Module,
		fx.Populate(&client),
	)
	app.RequireStart()
	require.NoError(t, client.Ping(context.Background(), nil))
	app.RequireStop()
	assert.ErrorIs(t, client.Ping(context.Background(), nil), mongo.ErrClientDisconnected)
}

func TestStartFailsWhenTheServerIsUnreachable(t *testing.T) {
	app := fx.New(
		fx.NopLogger,
		fx.Supply(mongofx.Config{URI: "mongodb://127.0.0.1:1/?connect=direct", ServerSelectionTimeout: 200 * time.Millisecond}),
		mongofx.Module,
		fx.Invoke(func(*mongo.Client) {}),
	)
	require.NoError(t, app.Err())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := app.Start(ctx)
	require.Error(t, err, "the start-up ping fails")
	assert.Contains(t, err.Error(), "mongofx: ping")
	require.NoError(t, app.Stop(ctx))
}

func TestNoURIWithoutEmbeddedIsAnError(t *testing.T) {
	app := fx.New(
		fx.NopLogger,
		fx.Supply(mongofx.Config{}),
		mongofx.Module,
		fx.Invoke(func(*mongo.Client) {}),
	)
	require.ErrorIs(t, app.Err(), mongofx.ErrNoURI)
}

func TestWithTxModule(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	var runner *tx.Runner
	var client *mongo.Client
	app := fxtest.New(t,
		fx.Supply(zap.New(core)),
		fx.Supply(mongofx.Config{Embedded: true}),
		mongofx.Module,
		tx.Module,
		tx.Defaults(tx.WithName("fx")),
		fx.Populate(&runner, &client),
	)
	app.RequireStart()
	defer app.RequireStop()

	assert.Same(t, client, runner.Client(), "the runner uses the module's client")
	ctx := context.Background()
	require.NoError(t, runner.Run(ctx, func(ctx context.Context) error {
		_, err := client.Database("app").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
		return err
	}))
	commits := logs.FilterMessage("transaction committed").All()
	require.Len(t, commits, 1, "the runner logs with the application's logger")
	assert.Equal(t, "fx", commits[0].ContextMap()["tx"], "Defaults apply")
	assert.Equal(t, "tx", commits[0].LoggerName)
}

func TestRedactedURIInErrors(t *testing.T) {
	app := fx.New(
		fx.NopLogger,
		fx.Supply(mongofx.Config{URI: "mongodb://user:s3cret@127.0.0.1:1/?connect=direct", ServerSelectionTimeout: 100 * time.Millisecond}),
		mongofx.Module,
		fx.Invoke(func(*mongo.Client) {}),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := app.Start(ctx)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cret")
	assert.Contains(t, err.Error(), "user:xxxxx@127.0.0.1:1")
	require.NoError(t, app.Stop(ctx))
}

func TestDatabase(t *testing.T) {
	t.Run("the module provides the database Config.Database names", func(t *testing.T) {
		var db *mongo.Database
		app := fxtest.New(t, fx.Supply(mongofx.Config{Embedded: true, Database: "ledger"}), mongofx.Module, fx.Populate(&db))
		app.RequireStart()
		defer app.RequireStop()
		_, err := db.Collection("c").InsertOne(context.Background(), bson.D{{Key: "_id", Value: 1}})
		require.NoError(t, err)
		n, err := db.Client().Database("ledger").Collection("c").CountDocuments(context.Background(), bson.D{})
		require.NoError(t, err)
		assert.Equal(t, int64(1), n, "the write went to the named database")
	})

	client, err := mongo.Connect()
	require.NoError(t, err)
	defer func() { _ = client.Disconnect(context.Background()) }()
	tests := []struct {
		name    string
		give    mongofx.Config
		want    string
		wantErr error
	}{
		{name: "Config.Database wins over the URI", give: mongofx.Config{URI: "mongodb://h/fromuri", Database: "ledger"}, want: "ledger"},
		{name: "the URI's path names it when Database is empty", give: mongofx.Config{URI: "mongodb://h/fromuri?replicaSet=rs0"}, want: "fromuri"},
		{name: "no name anywhere is an error", give: mongofx.Config{Embedded: true}, wantErr: mongofx.ErrNoDatabase},
		{name: "a URI without a path is no name", give: mongofx.Config{URI: "mongodb://h/?replicaSet=rs0"}, wantErr: mongofx.ErrNoDatabase},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := mongofx.NewDatabase(mongofx.DatabaseParams{Client: client, Config: tt.give})
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, db.Name())
		})
	}
}
