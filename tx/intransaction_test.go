package tx_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/tx"
)

func TestInTransactionSeesATransactionStartedWithTheDriver(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)

	sess, err := e.client.StartSession()
	require.NoError(t, err)
	defer sess.EndSession(context.Background())

	sctx := mongo.NewSessionContext(ctx, sess)
	assert.False(t, tx.InTransaction(sctx), "an idle session is no transaction")

	require.NoError(t, sess.StartTransaction())
	assert.True(t, tx.InTransaction(sctx), "started, before its first command")
	_, err = e.coll.InsertOne(sctx, doc(1))
	require.NoError(t, err)
	assert.True(t, tx.InTransaction(sctx), "in progress")

	require.NoError(t, e.runner.Run(sctx, func(ctx context.Context) error {
		assert.False(t, tx.InTransaction(ctx), "hidden inside NotSupported")
		return nil
	}, tx.WithPropagation(tx.NotSupported)))

	require.NoError(t, sess.CommitTransaction(ctx))
	assert.False(t, tx.InTransaction(sctx), "committed")
	assert.EqualValues(t, 1, e.count(t, nil))
}
