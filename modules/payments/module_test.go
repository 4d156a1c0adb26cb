package payments_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/modules/payments"
	"github.com/txkit/txkit/tx"
)

func TestModulesStartEnsureTheSchemaAndStopCleanly(t *testing.T) {
	db := testenv.DB(t)
	var ps *payments.Service
	app := fxtest.New(t,
		fx.Supply(db.Client(), db),
		fx.Provide(func(c *mongo.Client) *tx.Runner { return tx.NewRunner(c) }),
		credits.Module,
		payments.Module,
		fx.Populate(&ps),
	)
	app.RequireStart()
	p, err := ps.Create(context.Background(), payments.NewPayment{
		Account: "u", AmountMinor: 1, Currency: "EUR", Credits: 1, Provider: "p", ProviderRef: "r",
	})
	require.NoError(t, err)
	_, err = ps.Complete(context.Background(), p.ID)
	require.NoError(t, err)
	app.RequireStop() // stops the credits sweeper; goleak checks it is gone
}

// Options reach the Service that Module provides through Defaults, as in
// credits.
func TestDefaultsConfigureTheModulesService(t *testing.T) {
	db := testenv.DB(t)
	var ps *payments.Service
	app := fxtest.New(t,
		fx.Supply(db.Client(), db),
		fx.Provide(func(c *mongo.Client) *tx.Runner { return tx.NewRunner(c) }),
		credits.Module,
		credits.Defaults(credits.WithCollectionPrefix("shop_")),
		payments.Module,
		payments.Defaults(payments.WithCollectionPrefix("shop_")),
		fx.Populate(&ps),
	)
	app.RequireStart()
	defer app.RequireStop()
	p, err := ps.Create(context.Background(), payments.NewPayment{
		Account: "u", AmountMinor: 1, Currency: "EUR", Credits: 1, Provider: "p", ProviderRef: "r",
	})
	require.NoError(t, err)
	n, err := db.Collection("shop_payments").CountDocuments(context.Background(), bson.D{{Key: "_id", Value: p.ID}})
	require.NoError(t, err)
	require.Equal(t, int64(1), n, "stored in the prefixed collection")
}
