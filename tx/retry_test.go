package tx_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/tx"
)

// fastBackoff keeps retry tests quick.
var fastBackoff = tx.WithBackoff(tx.Backoff{Initial: time.Millisecond, Multiplier: 1.5, Max: 5 * time.Millisecond})

func TestTransientErrorRerunsTheWholeCallback(t *testing.T) {
	e := newEnv(t, fastBackoff)
	ctx := ctxTimeout(t)
	e.failCommand(t, 2, failData("insert", codeWriteConflict, "TransientTransactionError"))

	runs := 0
	err := e.runner.Run(ctx, func(ctx context.Context) error {
		runs++ //txcheck:ignore counts the attempts
		if err := insertAndUpdate(e.coll, 1)(ctx); err != nil {
			return fmt.Errorf("deduct: %w", err) // labels are found through wrapping
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 3, runs)
	assert.EqualValues(t, 1, e.count(t, doc(1, "v", 2)), "committed once")
	assert.Len(t, e.mon.named("commitTransaction"), 1)
	assert.Len(t, e.mon.named("abortTransaction"), 2, "each failed attempt is aborted")

	retries := e.rec.Of(tx.EventRetry)
	require.Len(t, retries, 2)
	for i, r := range retries {
		assert.Equal(t, i+1, r.Attempt)
		assert.False(t, r.CommitOnly)
		assert.Contains(t, r.Labels, "TransientTransactionError")
		var ce mongo.CommandError
		require.ErrorAs(t, r.Err, &ce, "the retry event carries the cause")
		assert.EqualValues(t, codeWriteConflict, ce.Code)
	}
	commits := e.rec.Of(tx.EventCommit)
	require.Len(t, commits, 1)
	assert.Equal(t, 3, commits[0].Attempt)
}

func TestUnknownCommitResultRetriesTheCommitOnly(t *testing.T) {
	tests := []struct {
		name  string
		give  bson.D
		times int
	}{
		{
			name:  "a labelled command error",
			give:  failData("commitTransaction", codeWriteConcernFailed, "UnknownTransactionCommitResult"),
			times: 2,
		},
		{
			name:  "a write concern error, labelled by the driver",
			times: 1,
			give: bson.D{
				{Key: "failCommands", Value: bson.A{"commitTransaction"}},
				{Key: "writeConcernError", Value: bson.D{{Key: "code", Value: codeWriteConcernFailed}, {Key: "errmsg", Value: "waiting for replication timed out"}}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, fastBackoff)
			ctx := ctxTimeout(t)
			e.failCommand(t, tt.times, tt.give)

			runs := 0
			err := e.runner.Run(ctx, func(ctx context.Context) error {
				runs++ //txcheck:ignore counts the attempts
				return insertAndUpdate(e.coll, 1)(ctx)
			})
			require.NoError(t, err)
			assert.Equal(t, 1, runs, "the callback is not re-run")
			commits := e.mon.named("commitTransaction")
			require.Len(t, commits, tt.times+1)
			assert.Equal(t, commits[0].TxnNumber, commits[tt.times].TxnNumber, "the same transaction's commit")
			assert.EqualValues(t, 1, e.count(t, doc(1, "v", 2)))

			retries := e.rec.Of(tx.EventRetry)
			require.Len(t, retries, tt.times)
			for _, r := range retries {
				assert.True(t, r.CommitOnly)
				assert.Contains(t, r.Labels, "UnknownTransactionCommitResult")
			}
		})
	}
}

func TestMaxTimeMSExpiredCommitIsNotRetried(t *testing.T) {
	e := newEnv(t, fastBackoff)
	ctx := ctxTimeout(t)
	// The driver labels a MaxTimeMSExpired commit UnknownTransactionCommitResult;
	// the convenient-transaction rules still say not to retry it.
	e.failCommand(t, 1, failData("commitTransaction", codeMaxTimeMSExpired))

	err := e.runner.Run(ctx, insertAndUpdate(e.coll, 1))
	require.Error(t, err)
	var ce mongo.CommandError
	require.ErrorAs(t, err, &ce)
	assert.EqualValues(t, codeMaxTimeMSExpired, ce.Code)
	assert.ErrorIs(t, err, tx.ErrCommitUnknown, "a commit cut by its time limit may have applied")
	assert.Len(t, e.mon.named("commitTransaction"), 1)
	assert.Empty(t, e.mon.named("abortTransaction"), "never abort after a commit was sent")
	assert.Empty(t, e.rec.Of(tx.EventRetry))
	unknown := e.rec.Of(tx.EventCommitUnknown)
	require.Len(t, unknown, 1)
	assert.True(t, unknown[0].Infrastructure)
}

func TestTransientCommitErrorRerunsTheCallback(t *testing.T) {
	e := newEnv(t, fastBackoff)
	ctx := ctxTimeout(t)
	e.failCommand(t, 1, failData("commitTransaction", codeNoSuchTransaction, "TransientTransactionError"))

	runs := 0
	require.NoError(t, e.runner.Run(ctx, func(ctx context.Context) error {
		runs++ //txcheck:ignore counts the attempts
		return insertAndUpdate(e.coll, 1)(ctx)
	}))
	assert.Equal(t, 2, runs)
	commits := e.mon.named("commitTransaction")
	require.Len(t, commits, 2)
	assert.NotEqual(t, commits[0].TxnNumber, commits[1].TxnNumber, "a new transaction")
	assert.EqualValues(t, 1, e.count(t, doc(1, "v", 2)))
}

func TestBusinessErrorsAreNotRetried(t *testing.T) {
	e := newEnv(t, fastBackoff)
	ctx := ctxTimeout(t)
	runs := 0
	err := e.runner.Run(ctx, func(ctx context.Context) error {
		runs++ //txcheck:ignore counts the attempts
		return errBusiness
	})
	require.ErrorIs(t, err, errBusiness)
	assert.Equal(t, 1, runs)
	assert.Empty(t, e.rec.Of(tx.EventRetry))
}

func TestNonTransientServerErrorsAreNotRetried(t *testing.T) {
	e := newEnv(t, fastBackoff)
	ctx := ctxTimeout(t)
	e.failCommand(t, 1, failData("insert", codeInternalError))
	runs := 0
	err := e.runner.Run(ctx, func(ctx context.Context) error {
		runs++ //txcheck:ignore counts the attempts
		return insertAndUpdate(e.coll, 1)(ctx)
	})
	require.Error(t, err)
	assert.Equal(t, 1, runs)
	aborts := e.rec.Of(tx.EventAbort)
	require.Len(t, aborts, 1)
	assert.True(t, aborts[0].Infrastructure)
}

func TestRetriesStop(t *testing.T) {
	t.Run("at the attempt limit", func(t *testing.T) {
		e := newEnv(t, fastBackoff)
		ctx := ctxTimeout(t)
		e.failCommand(t, -1, failData("insert", codeWriteConflict, "TransientTransactionError"))

		runs := 0
		err := e.runner.Run(ctx, func(ctx context.Context) error {
			runs++ //txcheck:ignore counts the attempts
			return insertAndUpdate(e.coll, 1)(ctx)
		}, tx.WithMaxAttempts(3), tx.WithName("credits.Deduct"))
		require.ErrorIs(t, err, tx.ErrRetriesExhausted)
		assert.Equal(t, 3, runs)

		var re *tx.RetryError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, 3, re.Attempts)
		assert.Equal(t, "credits.Deduct", re.Name)
		assert.Contains(t, err.Error(), "attempt limit 3")
		var ce mongo.CommandError
		require.ErrorAs(t, err, &ce, "the last cause is wrapped")
		assert.EqualValues(t, codeWriteConflict, ce.Code)
		assert.Zero(t, e.count(t, nil))
	})

	t.Run("at the attempt limit of a commit", func(t *testing.T) {
		e := newEnv(t, fastBackoff)
		ctx := ctxTimeout(t)
		e.failCommand(t, -1, failData("commitTransaction", codeWriteConcernFailed, "UnknownTransactionCommitResult"))

		err := e.runner.Run(ctx, insertAndUpdate(e.coll, 1), tx.WithMaxAttempts(4))
		require.ErrorIs(t, err, tx.ErrRetriesExhausted)
		assert.Len(t, e.mon.named("commitTransaction"), 4)
		assert.True(t, errors.Is(err, tx.ErrRetriesExhausted))
		var ce mongo.CommandError
		require.ErrorAs(t, err, &ce)
		assert.True(t, ce.HasErrorLabel("UnknownTransactionCommitResult"))
	})

	t.Run("when the time budget runs out", func(t *testing.T) {
		e := newEnv(t)
		ctx := ctxTimeout(t)
		e.failCommand(t, -1, failData("insert", codeWriteConflict, "TransientTransactionError"))

		start := time.Now()
		err := e.runner.Run(ctx, insertAndUpdate(e.coll, 1),
			tx.WithTimeout(500*time.Millisecond),
			tx.WithBackoff(tx.Backoff{Initial: 20 * time.Millisecond, Multiplier: 1.5, Max: 50 * time.Millisecond}))
		require.ErrorIs(t, err, tx.ErrRetriesExhausted)
		assert.Contains(t, err.Error(), "time budget 500ms")
		assert.Less(t, time.Since(start), 2*time.Second)
		var re *tx.RetryError
		require.ErrorAs(t, err, &re)
		assert.Greater(t, re.Attempts, 1)
	})

	t.Run("when ctx is cancelled during the backoff", func(t *testing.T) {
		e := newEnv(t, tx.WithBackoff(tx.Backoff{Initial: time.Minute, Max: time.Minute}))
		// No deadline: with one, the runner would not even start a wait
		// that cannot end before it.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		e.rec.OnObserve(func(ev tx.Event) {
			if ev.Kind == tx.EventRetry {
				cancel()
			}
		})
		e.failCommand(t, -1, failData("insert", codeWriteConflict, "TransientTransactionError"))

		start := time.Now()
		err := e.runner.Run(ctx, insertAndUpdate(e.coll, 1))
		require.ErrorIs(t, err, context.Canceled)
		var ce mongo.CommandError
		require.ErrorAs(t, err, &ce, "the last cause is wrapped")
		assert.Less(t, time.Since(start), 10*time.Second)
	})
}

func TestBackoffIsJitteredAndCapped(t *testing.T) {
	e := newEnv(t, tx.WithBackoff(tx.Backoff{Initial: 4 * time.Millisecond, Multiplier: 2, Max: 10 * time.Millisecond}))
	ctx := ctxTimeout(t)
	e.failCommand(t, 5, failData("insert", codeWriteConflict, "TransientTransactionError"))
	require.NoError(t, e.runner.Run(ctx, insertAndUpdate(e.coll, 1)))

	bounds := []time.Duration{4, 8, 10, 10, 10} // ms: ×2 from 4, capped at 10
	retries := e.rec.Of(tx.EventRetry)
	require.Len(t, retries, len(bounds))
	for i, r := range retries {
		assert.GreaterOrEqual(t, r.Backoff, time.Duration(0))
		assert.Less(t, r.Backoff, bounds[i]*time.Millisecond, "retry %d", i+1)
	}
}

// TestRealWriteConflictIsRetried makes two transactions genuinely conflict:
// A holds a write to a document while B writes it too. MongoDB fails B at
// once with WriteConflict, labelled TransientTransactionError; B must back
// off and retry until A has committed, and both increments must land.
func TestRealWriteConflictIsRetried(t *testing.T) {
	a := newEnv(t)
	b := newEnvAt(t, a.uri, tx.WithBackoff(tx.Backoff{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond}))
	ctx := ctxTimeout(t)
	aColl := a.db.Collection("counters")
	bColl := b.client.Database(a.db.Name()).Collection("counters") // the same collection, through b's client
	_, err := aColl.InsertOne(ctx, doc("c", "n", 0))
	require.NoError(t, err)

	inc := func(coll *mongo.Collection) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := coll.UpdateOne(ctx, doc("c"), bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}})
			return err
		}
	}
	aWrote, bConflicted := make(chan struct{}), make(chan struct{})
	var once sync.Once
	b.rec.OnObserve(func(ev tx.Event) {
		if ev.Kind == tx.EventRetry {
			once.Do(func() { close(bConflicted) })
		}
	})

	var wg sync.WaitGroup
	wg.Go(func() {
		err := a.runner.Run(ctx, func(ctx context.Context) error {
			if err := inc(aColl)(ctx); err != nil {
				return err
			}
			close(aWrote)
			select { // hold the write until B has hit it
			case <-bConflicted:
			case <-time.After(10 * time.Second):
				return errors.New("B never conflicted")
			}
			return nil
		})
		assert.NoError(t, err)
	})
	<-aWrote
	err = b.runner.Run(ctx, inc(bColl))
	wg.Wait()
	require.NoError(t, err)

	var got struct{ N int }
	require.NoError(t, aColl.FindOne(ctx, doc("c")).Decode(&got))
	assert.Equal(t, 2, got.N, "no lost update")

	retries := b.rec.Of(tx.EventRetry)
	require.NotEmpty(t, retries)
	var ce mongo.CommandError
	require.ErrorAs(t, retries[0].Err, &ce)
	assert.EqualValues(t, codeWriteConflict, ce.Code)
	assert.Contains(t, retries[0].Labels, "TransientTransactionError")
}

// TestConcurrentIncrementsLoseNothing runs many read-modify-write
// transactions on one document at once: conflicts are certain, and the
// runner's retries must turn them into serial increments.
func TestConcurrentIncrementsLoseNothing(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	coll := e.db.Collection("counters")
	_, err := coll.InsertOne(ctx, doc("c", "n", 0))
	require.NoError(t, err)

	const workers, each = 6, 5
	var retried atomic.Int64
	r := tx.NewRunner(e.client, tx.WithObserver(observerFunc(func(ev tx.Event) {
		if ev.Kind == tx.EventRetry {
			retried.Add(1)
		}
	})))
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				err := r.Run(ctx, func(ctx context.Context) error {
					var cur struct{ N int }
					if err := coll.FindOne(ctx, doc("c")).Decode(&cur); err != nil {
						return err
					}
					_, err := coll.UpdateOne(ctx, doc("c"), bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: cur.N + 1}}}})
					return err
				})
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()

	var got struct{ N int }
	require.NoError(t, coll.FindOne(ctx, doc("c")).Decode(&got))
	assert.Equal(t, workers*each, got.N)
	t.Logf("%d retries", retried.Load())
}

type observerFunc func(tx.Event)

func (f observerFunc) Observe(e tx.Event) { f(e) }
