package tx_test

import (
	"context"
	"encoding/hex"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/tx"
)

func lsidOf(t *testing.T, sess *mongo.Session) string {
	t.Helper()
	_, data := sess.ID().Lookup("id").Binary()
	return hex.EncodeToString(data)
}

func TestATransactionStartedWithTheDriverIsJoinedNotEnded(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	sess, err := e.client.StartSession()
	require.NoError(t, err)
	defer sess.EndSession(context.Background())
	require.NoError(t, sess.StartTransaction())
	sctx := mongo.NewSessionContext(ctx, sess)

	for _, p := range []tx.Propagation{tx.Required, tx.Mandatory, tx.Supports} {
		require.NoError(t, e.runner.Run(sctx, func(ctx context.Context) error {
			assert.True(t, tx.InTransaction(ctx))
			_, err := e.coll.InsertOne(ctx, doc(p.String()))
			return err
		}, tx.WithPropagation(p)), p.String())
	}
	err = e.runner.Run(sctx, func(context.Context) error { return nil }, tx.WithPropagation(tx.Never))
	require.ErrorIs(t, err, tx.ErrTransactionExists)
	require.NoError(t, e.runner.Run(sctx, func(ctx context.Context) error {
		_, err := e.coll.InsertOne(ctx, doc("own"))
		return err
	}, tx.WithPropagation(tx.RequiresNew)))

	assert.Empty(t, e.mon.named("abortTransaction"))
	assert.Len(t, e.mon.named("commitTransaction"), 1, "only RequiresNew's own commit")
	assert.EqualValues(t, 1, e.count(t, nil), "the joined writes wait for the caller's commit")

	require.NoError(t, sess.CommitTransaction(ctx))
	assert.EqualValues(t, 4, e.count(t, nil))
}

func TestAJoinedFailureInADriverTransactionIsReturnedNotAborted(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	sess, err := e.client.StartSession()
	require.NoError(t, err)
	defer sess.EndSession(context.Background())
	require.NoError(t, sess.StartTransaction())
	sctx := mongo.NewSessionContext(ctx, sess)

	err = e.runner.Run(sctx, func(ctx context.Context) error {
		if _, err := e.coll.InsertOne(ctx, doc(1)); err != nil {
			return err
		}
		return errBusiness
	})
	require.ErrorIs(t, err, errBusiness)
	assert.True(t, sess.TransactionRunning(), "the caller's to abort")
	assert.Empty(t, e.mon.named("abortTransaction"))

	t.Run("hooks cannot be registered in it", func(t *testing.T) {
		err := e.runner.Run(sctx, func(ctx context.Context) error {
			tx.AfterCommit(ctx, func(context.Context) {})
			return nil
		})
		require.ErrorIs(t, err, tx.ErrForeignTransaction)
		require.ErrorIs(t, tx.BeforeCommit(sctx, func(context.Context) error { return nil }), tx.ErrForeignTransaction)
	})
	require.NoError(t, sess.AbortTransaction(ctx))
	assert.Zero(t, e.count(t, nil))
}

func TestAnIdleSessionInCtxIsUsedAndLeftOpen(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	sess, err := e.client.StartSession()
	require.NoError(t, err)
	sctx := mongo.NewSessionContext(ctx, sess)

	for i := range 2 {
		require.NoError(t, e.runner.Run(sctx, func(ctx context.Context) error {
			assert.Same(t, sess, mongo.SessionFromContext(ctx))
			_, err := e.coll.InsertOne(ctx, doc(i))
			return err
		}))
	}
	assert.EqualValues(t, 2, e.count(t, nil))
	for _, name := range []string{"insert", "commitTransaction"} {
		cmds := e.mon.named(name)
		require.Len(t, cmds, 2)
		for _, c := range cmds {
			assert.Equal(t, lsidOf(t, sess), c.LSID, "%s ran on the caller's session", name)
		}
	}
	// The caller's session is still usable: it was not ended.
	_, err = e.coll.InsertOne(sctx, doc("after"))
	require.NoError(t, err)
	sess.EndSession(context.Background())
}

func TestOneTransactionCtxUsedFromSeveralGoroutines(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	const n = 8
	require.NoError(t, e.runner.Run(ctx, func(ctx context.Context) error {
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				errs[i] = e.runner.Run(ctx, func(ctx context.Context) error {
					if _, err := e.coll.InsertOne(ctx, doc(i)); err != nil {
						return err
					}
					_, err := e.coll.CountDocuments(ctx, doc(i))
					return err
				})
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	}))
	assert.EqualValues(t, n, e.count(t, nil))
}

func TestTheOwnerWaitsForJoinedScopesItDidNotWaitFor(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	started := make(chan struct{})
	var wg sync.WaitGroup
	var innerErr error
	require.NoError(t, e.runner.Run(ctx, func(ctx context.Context) error {
		wg.Go(func() {
			innerErr = e.runner.Run(ctx, func(ctx context.Context) error {
				close(started)
				_, err := e.coll.InsertOne(ctx, doc("late"))
				return err
			})
		})
		<-started
		return nil // returns while the joined scope still runs
	}))
	wg.Wait()
	require.NoError(t, innerErr)
	assert.EqualValues(t, 1, e.count(t, nil), "the commit waited for the joined scope")
}
