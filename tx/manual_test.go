package tx_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/tx"
)

func TestManualScopeCommits(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	var log hookLog

	tctx, txn, err := e.runner.Begin(ctx)
	require.NoError(t, err)
	defer func() { assert.NoError(t, txn.Rollback(tctx), "a no-op after Commit") }()
	assert.True(t, tx.InTransaction(tctx))
	require.NoError(t, insertAndUpdate(e.coll, 1)(tctx))
	tx.AfterCommit(tctx, log.add("hook"))
	assert.Zero(t, e.count(t, nil), "not visible before the commit")
	assert.Empty(t, log.get())

	require.NoError(t, txn.Commit(tctx))
	assert.EqualValues(t, 1, e.count(t, doc(1, "v", 2)))
	assert.Equal(t, []string{"hook"}, log.get())
	assert.False(t, tx.InTransaction(tctx), "the ctx no longer looks transactional")
	assert.ErrorIs(t, txn.Commit(tctx), tx.ErrTxDone)
	assert.Zero(t, e.client.NumberSessionsInProgress())
}

func TestManualScopeRollsBack(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)

	tctx, txn, err := e.runner.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, insertAndUpdate(e.coll, 1)(tctx))
	require.NoError(t, txn.Rollback(tctx))
	assert.Zero(t, e.count(t, nil))
	assert.Len(t, e.mon.named("abortTransaction"), 1)
	assert.ErrorIs(t, txn.Commit(tctx), tx.ErrTxDone)
	assert.Zero(t, e.client.NumberSessionsInProgress())
}

func TestManualCommitRetriesAnUnknownResult(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	e.failCommand(t, 1, failData("commitTransaction", codeWriteConcernFailed, "UnknownTransactionCommitResult"))

	tctx, txn, err := e.runner.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, insertAndUpdate(e.coll, 1)(tctx))
	require.NoError(t, txn.Commit(tctx))
	assert.Len(t, e.mon.named("commitTransaction"), 2)
	assert.EqualValues(t, 1, e.count(t, nil))
}

func TestManualCommitCannotRerunYourCode(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	e.failCommand(t, 1, failData("commitTransaction", codeNoSuchTransaction, "TransientTransactionError"))

	tctx, txn, err := e.runner.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, insertAndUpdate(e.coll, 1)(tctx))
	err = txn.Commit(tctx)
	require.ErrorIs(t, err, tx.ErrTransient, "says clearly that the work must run again")
	var ce mongo.CommandError
	require.ErrorAs(t, err, &ce)
	assert.True(t, ce.HasErrorLabel("TransientTransactionError"))
	assert.Zero(t, e.count(t, nil))
	// Refused before it ran, the transaction was still open on the server
	// (the driver allows no abort after a commit): the session went to the
	// reaper, which kills it (finding chaos-hot-accounts-held-ten-seconds).
	open := int64(-1)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if open, _ = serverStatus(t, e.client); open == 0 {
			break
		}
	}
	assert.Zero(t, open, "the transaction the refused commit left open is killed")
}

func TestManualScopeJoinsAndMarksRollbackOnly(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)

	err := e.runner.Run(ctx, func(ctx context.Context) error {
		if _, err := e.coll.InsertOne(ctx, doc(1)); err != nil {
			return err
		}
		ictx, inner, err := e.runner.Begin(ctx)
		require.NoError(t, err)
		defer inner.Rollback(ictx) // a no-op once ended
		if _, err := e.coll.InsertOne(ictx, doc(2)); err != nil {
			return err
		}
		return inner.Rollback(ictx)
	})
	require.ErrorIs(t, err, tx.ErrUnexpectedRollback)
	assert.Zero(t, e.count(t, nil))
	inserts := e.mon.named("insert")
	require.Len(t, inserts, 2)
	assert.Equal(t, inserts[0].TxnNumber, inserts[1].TxnNumber, "the manual scope joined")

	err = e.runner.Run(ctx, func(ctx context.Context) error {
		ictx, inner, err := e.runner.Begin(ctx)
		require.NoError(t, err)
		defer inner.Rollback(ictx) // a no-op once ended
		if _, err := e.coll.InsertOne(ictx, doc(3)); err != nil {
			return err
		}
		return inner.Commit(ictx) // leaves the commit to the owner
	})
	require.NoError(t, err)
	assert.EqualValues(t, 1, e.count(t, nil))
}

func TestManualScopePropagation(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)

	_, txn, err := e.runner.Begin(ctx, tx.WithPropagation(tx.Mandatory))
	require.ErrorIs(t, err, tx.ErrNoTransaction)
	assert.Nil(t, txn)
	assert.NoError(t, txn.Rollback(ctx), "nil-safe")

	sctx, txn, err := e.runner.Begin(ctx, tx.WithPropagation(tx.Supports), tx.WithTimeout(time.Second))
	require.NoError(t, err)
	assert.False(t, tx.InTransaction(sctx))
	_, hasDeadline := sctx.Deadline()
	assert.True(t, hasDeadline)
	_, err = e.coll.InsertOne(sctx, doc(1))
	require.NoError(t, err)
	require.NoError(t, txn.Rollback(sctx))
	assert.EqualValues(t, 1, e.count(t, nil), "nothing to roll back without a transaction")
	assert.ErrorIs(t, sctx.Err(), context.Canceled, "the scope's timeout is released")
}
