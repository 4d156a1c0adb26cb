package tx_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/tx"
)

// A scope of a Runner on client c2, inside a transaction of client c1,
// cannot join it (c1's session is not c2's). Were it to run a transaction
// of its own, that one would commit whatever the outer transaction then
// does: the caller, told its transaction failed, would find the inner
// write applied. Joining propagations refuse with ErrOtherClient and
// write nothing; RequiresNew and NotSupported, which ask to run apart, do.
func TestAScopeOfAnotherClientDoesNotRunApartFromTheTransactionInContext(t *testing.T) {
	e1 := newEnv(t)
	e2 := newEnvAt(t, e1.uri)
	insert := func(id string) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := e2.coll.InsertOne(ctx, doc(id))
			return err
		}
	}
	for _, p := range []tx.Propagation{tx.Required, tx.Mandatory, tx.Supports} {
		err := e1.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
			err := e2.runner.Run(ctx, insert(p.String()), tx.WithPropagation(p))
			require.ErrorIs(t, err, tx.ErrOtherClient, p.String())
			return errBusiness // the outer transaction fails
		})
		require.ErrorIs(t, err, errBusiness)
		assert.Zero(t, e2.count(t, nil), "%v: nothing of the failed transaction is applied", p)
	}

	err := e1.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		return e2.runner.Run(ctx, insert("never"), tx.WithPropagation(tx.Never))
	})
	require.ErrorIs(t, err, tx.ErrTransactionExists)

	for _, p := range []tx.Propagation{tx.RequiresNew, tx.NotSupported} {
		err := e1.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
			require.NoError(t, e2.runner.Run(ctx, insert(p.String()), tx.WithPropagation(p)), p.String())
			return errBusiness
		})
		require.ErrorIs(t, err, errBusiness)
	}
	assert.EqualValues(t, 2, e2.count(t, nil), "RequiresNew and NotSupported run apart, as asked")
	assert.Zero(t, e2.count(t, bson.D{{Key: "_id", Value: "never"}}))
}

// The same holds for a transaction the caller started with the driver on
// another client.
func TestAScopeOfAnotherClientRefusesADriverTransactionInContext(t *testing.T) {
	e1 := newEnv(t)
	e2 := newEnvAt(t, e1.uri)
	sess, err := e1.client.StartSession()
	require.NoError(t, err)
	defer sess.EndSession(context.Background())
	require.NoError(t, sess.StartTransaction())
	ctx := mongo.NewSessionContext(ctxTimeout(t), sess)

	err = e2.runner.Run(ctx, func(ctx context.Context) error {
		_, err := e2.coll.InsertOne(ctx, doc(1))
		return err
	})
	require.ErrorIs(t, err, tx.ErrOtherClient)
	require.NoError(t, sess.AbortTransaction(ctx))
	assert.Zero(t, e2.count(t, nil))
}
