package tx_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/tx"
)

// hookLog records hook runs, safely.
type hookLog struct {
	mu   sync.Mutex
	runs []string
}

func (l *hookLog) add(s string) func(context.Context) {
	return func(context.Context) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.runs = append(l.runs, s)
	}
}

func (l *hookLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.runs...)
}

func TestAfterCommitRunsOnceInOrderAfterTheCommit(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	var log hookLog

	err := e.runner.Run(ctx, func(ctx context.Context) error {
		if err := insertAndUpdate(e.coll, 1)(ctx); err != nil {
			return err
		}
		tx.AfterCommit(ctx, log.add("first"))
		tx.AfterCommit(ctx, func(hctx context.Context) {
			// Runs after the commit: the write is visible to everyone.
			n, err := e.coll.CountDocuments(hctx, doc(1))
			assert.NoError(t, err)
			assert.EqualValues(t, 1, n, "the hook runs after the commit")
			assert.False(t, tx.InTransaction(hctx), "and outside the transaction")
			log.add("second")(hctx)
		})
		return e.runner.Run(ctx, func(ctx context.Context) error {
			tx.AfterCommit(ctx, log.add("inner"))
			assert.Empty(t, log.get(), "a joined scope's hook waits for the outermost commit")
			return nil
		})
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"first", "second", "inner"}, log.get())
}

func TestAfterCommitNeverRunsAfterAnAbort(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	var log hookLog

	err := e.runner.Run(ctx, func(ctx context.Context) error {
		tx.AfterCommit(ctx, log.add("hook"))
		return errBusiness
	})
	require.ErrorIs(t, err, errBusiness)

	err = e.runner.Run(ctx, func(ctx context.Context) error {
		_ = e.runner.Run(ctx, func(ctx context.Context) error {
			tx.AfterCommit(ctx, log.add("inner"))
			return errBusiness
		})
		return nil
	})
	require.ErrorIs(t, err, tx.ErrUnexpectedRollback)

	// A commit that the server refused as transient (an unlabelled
	// failure is sent again: it may hide an applied send).
	e.failCommand(t, -1, failData("commitTransaction", codeNoSuchTransaction, "TransientTransactionError"))
	err = e.runner.Run(ctx, func(ctx context.Context) error {
		if err := insertAndUpdate(e.coll, 1)(ctx); err != nil {
			return err
		}
		tx.AfterCommit(ctx, log.add("failed commit"))
		return nil
	}, tx.WithMaxAttempts(1))
	require.Error(t, err)
	assert.Zero(t, e.count(t, doc(1)))
	assert.Empty(t, log.get())
}

func TestAfterCommitDropsHooksOfRetriedAttempts(t *testing.T) {
	e := newEnv(t, fastBackoff)
	ctx := ctxTimeout(t)
	e.failCommand(t, 2, failData("commitTransaction", codeNoSuchTransaction, "TransientTransactionError"))
	var log hookLog

	attempt := 0
	err := e.runner.Run(ctx, func(ctx context.Context) error {
		attempt++ //txcheck:ignore counts the attempts
		if err := insertAndUpdate(e.coll, 1)(ctx); err != nil {
			return err
		}
		tx.AfterCommit(ctx, log.add("attempt "+string(rune('0'+attempt))))
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 3, attempt)
	assert.Equal(t, []string{"attempt 3"}, log.get())
}

func TestAfterCommitOutsideATransactionRunsAtOnce(t *testing.T) {
	var log hookLog
	tx.AfterCommit(context.Background(), log.add("now"))
	assert.Equal(t, []string{"now"}, log.get())
}

func TestAfterCommitOfRequiresNewRunsAfterItsOwnCommit(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	var log hookLog

	err := e.runner.Run(ctx, func(ctx context.Context) error {
		tx.AfterCommit(ctx, log.add("outer"))
		err := e.runner.Run(ctx, func(ctx context.Context) error {
			tx.AfterCommit(ctx, log.add("new"))
			return nil
		}, tx.WithPropagation(tx.RequiresNew))
		assert.Equal(t, []string{"new"}, log.get(), "ran when the new transaction committed")
		return err
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"new", "outer"}, log.get())
}

func TestPanickingHookDoesNotUncommit(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	var log hookLog

	err := e.runner.Run(ctx, func(ctx context.Context) error {
		if err := insertAndUpdate(e.coll, 1)(ctx); err != nil {
			return err
		}
		tx.AfterCommit(ctx, func(context.Context) { panic("mail server down") })
		tx.AfterCommit(ctx, log.add("after the panic"))
		return nil
	})
	require.NoError(t, err, "the transaction committed")
	assert.EqualValues(t, 1, e.count(t, nil))
	assert.Equal(t, []string{"after the panic"}, log.get(), "later hooks still run")

	panics := e.rec.Of(tx.EventHookPanic)
	require.Len(t, panics, 1)
	var pe *tx.PanicError
	require.ErrorAs(t, panics[0].Err, &pe)
	assert.Equal(t, "mail server down", pe.Value)
	assert.NotEmpty(t, pe.Stack)
	assert.True(t, panics[0].Infrastructure)
}
