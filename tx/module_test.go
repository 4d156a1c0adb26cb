package tx_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
	"github.com/txkit/txkit/tx/txtest"
)

func TestModule(t *testing.T) {
	client := testenv.Client(t)

	t.Run("with a logger it logs through zap", func(t *testing.T) {
		core, logs := observer.New(zapcore.DebugLevel)
		var runner *tx.Runner
		fxtest.New(t,
			fx.Supply(client, zap.New(core)),
			tx.Module,
			fx.Populate(&runner),
		).RequireStart().RequireStop()

		require.NoError(t, runner.Run(context.Background(), func(context.Context) error { return nil }))
		assert.Equal(t, 1, logs.FilterMessage("transaction committed").Len())
	})

	t.Run("without a logger, with default options", func(t *testing.T) {
		var runner *tx.Runner
		rec := &txtest.Recorder{}
		fxtest.New(t,
			fx.Supply(client),
			tx.Module,
			tx.Defaults(tx.WithObserver(rec), tx.WithName("from defaults")),
			fx.Populate(&runner),
		).RequireStart().RequireStop()

		require.NoError(t, runner.Run(context.Background(), func(context.Context) error { return nil }))
		require.NotEmpty(t, rec.Events())
		assert.Equal(t, "from defaults", rec.Events()[0].Name)
	})

	t.Run("WithObserver in Defaults wins over the logger", func(t *testing.T) {
		core, logs := observer.New(zapcore.DebugLevel)
		var runner *tx.Runner
		rec := &txtest.Recorder{}
		fxtest.New(t,
			fx.Supply(client, zap.New(core)),
			tx.Module,
			tx.Defaults(tx.WithObserver(rec)),
			fx.Populate(&runner),
		).RequireStart().RequireStop()

		require.NoError(t, runner.Run(context.Background(), func(context.Context) error { return nil }))
		assert.NotEmpty(t, rec.Events())
		assert.Zero(t, logs.Len())
	})
}

func TestNewWithoutFx(t *testing.T) {
	client := testenv.Client(t)
	r := tx.New(tx.Params{Client: client})
	assert.Same(t, client, r.Client())
	var _ *mongo.Client = r.Client()
}
