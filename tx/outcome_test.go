package tx_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/tx"
)

// wce is a commit reply's write concern error.
func wce(code int) bson.D {
	return bson.D{{Key: "code", Value: int32(code)}, {Key: "errmsg", Value: "injected"}}
}

func TestACommitInFlightWhenTheCallersCtxEndsIsCarriedToItsOutcome(t *testing.T) {
	e := newEnv(t, fastBackoff)
	// Two commits are held, then answer "unknown" (they applied: a write
	// concern error); the caller's deadline passes meanwhile.
	e.failCommand(t, 2, bson.D{
		{Key: "failCommands", Value: bson.A{"commitTransaction"}},
		{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 150},
		{Key: "writeConcernError", Value: wce(codeWriteConcernFailed)},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var hooked atomic.Bool
	err := e.runner.Run(ctx, func(ctx context.Context) error {
		tx.AfterCommit(ctx, func(context.Context) { hooked.Store(true) })
		_, err := e.coll.InsertOne(ctx, doc(1))
		return err
	})
	require.NoError(t, err, "the transaction committed: it is reported so")
	assert.EqualValues(t, 1, e.count(t, nil))
	assert.True(t, hooked.Load(), "a committed transaction runs its hooks")
	assert.Empty(t, e.mon.named("abortTransaction"))
}

func TestACommitWithAMaxTimeMSWriteConcernErrorIsUnknownNotFailed(t *testing.T) {
	e := newEnv(t, fastBackoff)
	e.failCommand(t, 1, bson.D{
		{Key: "failCommands", Value: bson.A{"commitTransaction"}},
		{Key: "writeConcernError", Value: wce(codeMaxTimeMSExpired)},
	})
	err := e.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		_, err := e.coll.InsertOne(ctx, doc(1))
		return err
	})
	n := e.count(t, nil)
	require.Error(t, err)
	assert.EqualValues(t, 1, n, "the commit applied on the server")
	assert.ErrorIs(t, err, tx.ErrCommitUnknown, "applied, so never a plain failure")
}

func TestWithTimeoutThatCutsACommitSendsNoAbort(t *testing.T) {
	// The server may answer the held commit at its maxTimeMS, just before
	// the client gives up: then it committed and says so. Either way the
	// outcome is told truthfully and no abort follows the commit.
	for i := range 4 {
		e := newEnv(t, fastBackoff)
		e.failCommand(t, 1, bson.D{
			{Key: "failCommands", Value: bson.A{"commitTransaction"}},
			{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 400},
		})
		var outcome atomic.Value
		err := e.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
			tx.AfterCompletion(ctx, func(_ context.Context, o tx.Outcome) { outcome.Store(o) })
			_, err := e.coll.InsertOne(ctx, doc(i))
			return err
		}, tx.WithTimeout(200*time.Millisecond))
		if err == nil {
			assert.Equal(t, tx.Committed, outcome.Load())
			assert.EqualValues(t, 1, e.count(t, nil))
		} else {
			require.ErrorIs(t, err, tx.ErrCommitUnknown)
			assert.True(t, mongo.IsTimeout(err))
			assert.Equal(t, tx.Unknown, outcome.Load())
		}
		assert.Empty(t, e.mon.named("abortTransaction"), "a commit that may have applied is not aborted")
	}
}

func TestWithMaxAttemptsCountsCommitCallsNotTheDriversResend(t *testing.T) {
	e := newEnv(t, fastBackoff)
	e.failCommand(t, -1, bson.D{{Key: "failCommands", Value: bson.A{"commitTransaction"}}, {Key: "closeConnection", Value: true}})
	err := e.runner.Run(ctxTimeout(t), insertAndUpdate(e.coll, 1), tx.WithMaxAttempts(2))
	require.ErrorIs(t, err, tx.ErrCommitUnknown)
	// Two commit calls, each sent twice: once, and once more by the driver.
	assert.Len(t, e.mon.named("commitTransaction"), 4)
	assert.Len(t, e.rec.Of(tx.EventRetry), 1)
}

func TestExhaustedRetriesAreATimeoutThatKeepsTheLastError(t *testing.T) {
	e := newEnv(t)
	e.failCommand(t, -1, failData("insert", codeWriteConflict, "TransientTransactionError"))
	err := e.runner.Run(ctxTimeout(t), insertAndUpdate(e.coll, 1),
		tx.WithTimeout(300*time.Millisecond),
		tx.WithBackoff(tx.Backoff{Initial: 20 * time.Millisecond, Multiplier: 1.5, Max: 50 * time.Millisecond}))
	require.Error(t, err)
	assert.True(t, mongo.IsTimeout(err), "recognisable as a timeout: %v", err)
	var le mongo.LabeledError
	require.ErrorAs(t, err, &le)
	assert.True(t, le.HasErrorLabel("TransientTransactionError"), "the last error's labels")
	var ce mongo.CommandError
	require.ErrorAs(t, err, &ce)
	assert.EqualValues(t, codeWriteConflict, ce.Code)

	t.Run("but the attempt limit is not a timeout", func(t *testing.T) {
		err := e.runner.Run(ctxTimeout(t), insertAndUpdate(e.coll, 1), tx.WithMaxAttempts(2), fastBackoff)
		require.ErrorIs(t, err, tx.ErrRetriesExhausted)
		assert.False(t, mongo.IsTimeout(err))
	})
}

type ctxKey struct{}

func TestHooksRunOnTheCallersValuesWithoutDeadlineOrSession(t *testing.T) {
	e := newEnv(t)
	ctx := context.WithValue(ctxTimeout(t), ctxKey{}, "request-42")

	var hookCtx context.Context
	require.NoError(t, e.runner.Run(ctx, func(ctx context.Context) error {
		tx.AfterCommit(ctx, func(ctx context.Context) { hookCtx = ctx })
		_, err := e.coll.InsertOne(ctx, doc(1))
		return err
	}, tx.WithTimeout(5*time.Second)))
	require.NotNil(t, hookCtx)
	assert.Equal(t, "request-42", hookCtx.Value(ctxKey{}))
	_, has := hookCtx.Deadline()
	assert.False(t, has, "none of the runner's deadlines")
	assert.Nil(t, mongo.SessionFromContext(hookCtx))
	assert.False(t, tx.InTransaction(hookCtx))
	// I/O after the scope returned.
	_, err := e.coll.InsertOne(hookCtx, doc(2))
	require.NoError(t, err)
	assert.EqualValues(t, 2, e.count(t, nil))
}

func TestARequiresNewScopesHookDoesNotJoinTheOuterTransaction(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	err := e.runner.Run(ctx, func(ctx context.Context) error {
		if err := e.runner.Run(ctx, func(ctx context.Context) error {
			tx.AfterCommit(ctx, func(ctx context.Context) {
				_, err := e.coll.InsertOne(ctx, doc("audit"))
				assert.NoError(t, err)
			})
			_, err := e.coll.InsertOne(ctx, doc("inner"))
			return err
		}, tx.WithPropagation(tx.RequiresNew)); err != nil {
			return err
		}
		return errBusiness // the outer transaction aborts
	})
	require.ErrorIs(t, err, errBusiness)
	assert.EqualValues(t, 1, e.count(t, doc("inner")))
	assert.EqualValues(t, 1, e.count(t, doc("audit")), "the hook's write is its own, not the aborted outer transaction's")
}

func TestACallbackThatEndsTheTransactionItselfIsNotCommittedAgain(t *testing.T) {
	t.Run("it committed", func(t *testing.T) {
		e := newEnv(t)
		hooked := false
		err := e.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
			tx.AfterCommit(ctx, func(context.Context) { hooked = true })
			if _, err := e.coll.InsertOne(ctx, doc(1)); err != nil {
				return err
			}
			return mongo.SessionFromContext(ctx).CommitTransaction(ctx)
		})
		require.NoError(t, err)
		assert.Len(t, e.mon.named("commitTransaction"), 1, "committed once")
		assert.EqualValues(t, 1, e.count(t, nil))
		assert.True(t, hooked)
	})
	t.Run("it aborted", func(t *testing.T) {
		e := newEnv(t)
		hooked := false
		err := e.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
			tx.AfterCommit(ctx, func(context.Context) { hooked = true })
			if _, err := e.coll.InsertOne(ctx, doc(1)); err != nil {
				return err
			}
			return mongo.SessionFromContext(ctx).AbortTransaction(ctx)
		})
		require.NoError(t, err)
		assert.Empty(t, e.mon.named("commitTransaction"))
		assert.Zero(t, e.count(t, nil))
		assert.False(t, hooked)
	})
}

var errHook = errors.New("hook says no")

func TestBeforeCommitAndAfterCompletion(t *testing.T) {
	t.Run("a before-commit hook writes inside the transaction", func(t *testing.T) {
		e := newEnv(t)
		var got []tx.Outcome
		require.NoError(t, e.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
			require.NoError(t, tx.BeforeCommit(ctx, func(ctx context.Context) error {
				assert.True(t, tx.InTransaction(ctx))
				_, err := e.coll.InsertOne(ctx, doc("summary"))
				return err
			}))
			tx.AfterCompletion(ctx, func(_ context.Context, o tx.Outcome) { got = append(got, o) })
			_, err := e.coll.InsertOne(ctx, doc(1))
			return err
		}))
		assert.EqualValues(t, 2, e.count(t, nil))
		assert.Equal(t, []tx.Outcome{tx.Committed}, got)
	})
	t.Run("a before-commit hook's error aborts", func(t *testing.T) {
		e := newEnv(t)
		var got []tx.Outcome
		committed := false
		err := e.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
			require.NoError(t, tx.BeforeCommit(ctx, func(context.Context) error { return errHook }))
			tx.AfterCommit(ctx, func(context.Context) { committed = true })
			tx.AfterCompletion(ctx, func(_ context.Context, o tx.Outcome) { got = append(got, o) })
			_, err := e.coll.InsertOne(ctx, doc(1))
			return err
		})
		require.ErrorIs(t, err, errHook)
		assert.Zero(t, e.count(t, nil))
		assert.False(t, committed)
		assert.Equal(t, []tx.Outcome{tx.RolledBack}, got)
		assert.Empty(t, e.mon.named("commitTransaction"))
	})
	t.Run("hooks of a retried attempt are dropped", func(t *testing.T) {
		e := newEnv(t, fastBackoff)
		e.failCommand(t, 1, failData("insert", codeWriteConflict, "TransientTransactionError"))
		before, after := 0, 0
		require.NoError(t, e.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
			require.NoError(t, tx.BeforeCommit(ctx, func(context.Context) error { before++; return nil })) //txcheck:ignore counts the attempts
			tx.AfterCompletion(ctx, func(context.Context, tx.Outcome) { after++ })
			_, err := e.coll.InsertOne(ctx, doc(1))
			return err
		}))
		assert.Equal(t, 1, before)
		assert.Equal(t, 1, after)
	})
	t.Run("a manual scope runs them too", func(t *testing.T) {
		e := newEnv(t)
		ctx, txn, err := e.runner.Begin(ctxTimeout(t))
		require.NoError(t, err)
		require.NoError(t, tx.BeforeCommit(ctx, func(ctx context.Context) error {
			_, err := e.coll.InsertOne(ctx, doc("summary"))
			return err
		}))
		var got tx.Outcome
		tx.AfterCompletion(ctx, func(_ context.Context, o tx.Outcome) { got = o })
		require.NoError(t, txn.Commit(ctx))
		assert.EqualValues(t, 1, e.count(t, nil))
		assert.Equal(t, tx.Committed, got)
	})
}

func TestNoRollbackForCommitsAndReturnsTheError(t *testing.T) {
	e := newEnv(t)
	err := e.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		if _, err := e.coll.InsertOne(ctx, doc("attempt")); err != nil {
			return err
		}
		return errBusiness
	}, tx.WithNoRollbackFor(errBusiness))
	require.ErrorIs(t, err, errBusiness)
	assert.EqualValues(t, 1, e.count(t, nil), "the attempt record committed")

	t.Run("in a joined scope it does not mark the transaction", func(t *testing.T) {
		err := e.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
			inner := e.runner.Run(ctx, func(ctx context.Context) error {
				_, err := e.coll.InsertOne(ctx, doc("inner"))
				if err != nil {
					return err
				}
				return &businessError{Account: "a"}
			}, tx.WithNoRollbackIf(func(err error) bool { var be *businessError; return errors.As(err, &be) }))
			var be *businessError
			require.ErrorAs(t, inner, &be)
			return nil
		})
		require.NoError(t, err)
		assert.EqualValues(t, 1, e.count(t, doc("inner")))
	})
}
