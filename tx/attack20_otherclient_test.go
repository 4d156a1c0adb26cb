package tx_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/tx"
)

// docs/transactions.md: a transaction the caller started with the driver
// is a transaction that "RequiresNew, NotSupported and Never treat as they
// treat txkit's own". Inside a transaction of client a that a Runner
// started, a scope of client b that runs apart (RequiresNew), and in it a
// scope of client a, the last joins a's transaction
// (TestRunnerOfAnotherClientNeverJoins). With a's transaction started with
// the driver instead, the same scope of a fails with ErrOtherClient: the
// driver session is no longer ctx's session once b's scope put its own
// there, so only b's transaction is found, and it is another client's.
// The caller's composition works or fails depending on who started the
// outer transaction.
func TestAttack20AScopeOfTheClientOfADriverTransactionJoinsItFromInsideAnotherClientsRequiresNew(t *testing.T) {
	a := newEnv(t)
	b := newEnvAt(t, a.uri)
	sess, err := a.client.StartSession()
	require.NoError(t, err)
	defer sess.EndSession(context.Background())
	require.NoError(t, sess.StartTransaction())
	ctx := mongo.NewSessionContext(ctxTimeout(t), sess)

	_, err = a.coll.InsertOne(ctx, doc("a1"))
	require.NoError(t, err)
	err = b.runner.Run(ctx, func(ctx context.Context) error {
		if _, err := b.coll.InsertOne(ctx, doc("b")); err != nil {
			return err
		}
		// Back to client a inside b's scope: a's transaction is in ctx.
		return a.runner.Run(ctx, func(ctx context.Context) error {
			_, err := a.coll.InsertOne(ctx, doc("a2"))
			return err
		})
	}, tx.WithPropagation(tx.RequiresNew))
	require.NoError(t, err, "a's scope does not join a's transaction")
	require.NoError(t, sess.AbortTransaction(context.Background()))

	assert.Zero(t, a.count(t, nil), "a's writes, including the one made inside b's scope, aborted with a's transaction")
	assert.EqualValues(t, 1, b.count(t, doc("b")), "b committed independently")
}

// c337c30's rule: a scope that would join another client's transaction
// in ctx fails with ErrOtherClient rather than run a transaction of its
// own that commits apart. Inside a NotSupported scope nested in a
// transaction (a method that asked to run without it), code that starts a
// transaction of client a with the driver and calls a service of client b
// gets neither: find stops at the NotSupported marker before it looks at
// ctx's session, so the driver transaction is invisible
// (tx.InTransaction is false although collection calls with ctx are in
// it), b's scope starts a transaction of its own and commits it, and when
// a's transaction then aborts, b's write stays applied.
func TestAttack20AScopeOfAnotherClientInsideADriverTransactionStartedInANotSupportedScopeAppliesNothing(t *testing.T) {
	a := newEnv(t)
	b := newEnvAt(t, a.uri)

	// A transaction of a runs; a method asks to run without it
	// (NotSupported), and starts one of a with the driver.
	err := a.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		if _, err := a.coll.InsertOne(ctx, doc("outer")); err != nil {
			return err
		}
		return a.runner.Run(ctx, func(ctx context.Context) error {
			sess, err := a.client.StartSession()
			if err != nil {
				return err
			}
			defer sess.EndSession(context.Background())
			if err := sess.StartTransaction(); err != nil {
				return err
			}
			ctx = mongo.NewSessionContext(ctx, sess)
			if _, err := a.coll.InsertOne(ctx, doc("a")); err != nil {
				return err
			}
			assert.True(t, tx.InTransaction(ctx), "collection calls with ctx are in a's transaction")
			err = b.runner.Run(ctx, func(ctx context.Context) error {
				_, err := b.coll.InsertOne(ctx, doc("b"))
				return err
			})
			assert.ErrorIs(t, err, tx.ErrOtherClient, "b's scope ran apart from a's transaction")
			return sess.AbortTransaction(context.Background()) // a's transaction fails
		}, tx.WithPropagation(tx.NotSupported))
	})
	require.NoError(t, err)

	assert.Zero(t, a.count(t, doc("a")))
	assert.Zero(t, b.count(t, nil), "b's write, made inside a's failed transaction, is applied")
}
