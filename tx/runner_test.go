package tx_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
)

// insertAndUpdate is the unit of work most tests run: two writes that must
// commit together.
func insertAndUpdate(coll *mongo.Collection, id int) func(context.Context) error {
	return func(ctx context.Context) error {
		if _, err := coll.InsertOne(ctx, doc(id, "v", 1)); err != nil {
			return err
		}
		_, err := coll.UpdateOne(ctx, doc(id), bson.D{{Key: "$inc", Value: bson.D{{Key: "v", Value: 1}}}})
		return err
	}
}

func TestCommit(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)

	require.NoError(t, e.runner.Run(ctx, insertAndUpdate(e.coll, 1)))

	var got bson.M
	require.NoError(t, e.coll.FindOne(ctx, doc(1)).Decode(&got))
	assert.EqualValues(t, 2, got["v"], "both writes committed")

	inserts, updates := e.mon.named("insert"), e.mon.named("update")
	require.Len(t, inserts, 1)
	require.Len(t, updates, 1)
	assert.True(t, inserts[0].StartTxn, "the first write starts the transaction")
	for _, c := range []command{inserts[0], updates[0]} {
		require.NotNil(t, c.Autocommit, "%s runs in a transaction", c.Name)
		assert.False(t, *c.Autocommit)
		assert.Equal(t, inserts[0].LSID, c.LSID)
		assert.Equal(t, inserts[0].TxnNumber, c.TxnNumber)
	}
	commits := e.mon.named("commitTransaction")
	require.Len(t, commits, 1)
	assert.False(t, commits[0].Failed)
	assert.Empty(t, e.mon.named("abortTransaction"))
}

func TestCommitUsesDefaultTransactionOptions(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	require.NoError(t, e.runner.Run(ctx, insertAndUpdate(e.coll, 1)))

	insert := e.mon.named("insert")[0]
	level, err := insert.Body.LookupErr("readConcern", "level")
	require.NoError(t, err, "the first command carries the read concern")
	assert.Equal(t, "snapshot", level.StringValue())

	commit := e.mon.named("commitTransaction")[0]
	w, err := commit.Body.LookupErr("writeConcern", "w")
	require.NoError(t, err, "commit carries the write concern")
	assert.Equal(t, "majority", w.StringValue())
}

func TestAbortOnError(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)

	frozen := &businessError{Account: "a1"}
	tests := []struct {
		name string
		give error
	}{
		{name: "a sentinel comes back for errors.Is", give: errBusiness},
		{name: "a wrapped sentinel comes back wrapped", give: fmt.Errorf("deduct 5: %w", errBusiness)},
		{name: "an error type comes back for errors.As", give: frozen},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.mon.reset()
			err := e.runner.Run(ctx, func(ctx context.Context) error {
				if err := insertAndUpdate(e.coll, i)(ctx); err != nil {
					return err
				}
				return tt.give
			})
			assert.Same(t, tt.give, err, "fn's error is returned unchanged")
			var be *businessError
			assert.Equal(t, errors.As(tt.give, &be), errors.As(err, &be))
			assert.Equal(t, errors.Is(tt.give, errBusiness), errors.Is(err, errBusiness))

			assert.Zero(t, e.count(t, doc(i)), "nothing committed")
			assert.Empty(t, e.mon.named("commitTransaction"))
			aborts := e.mon.named("abortTransaction")
			require.Len(t, aborts, 1)
			assert.False(t, aborts[0].Failed)
			assert.Len(t, e.rec.Of(tx.EventAbort), i+1)
		})
	}
}

func TestAbortOnPanic(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)

	assert.PanicsWithValue(t, "boom", func() {
		_ = e.runner.Run(ctx, func(ctx context.Context) error {
			if err := insertAndUpdate(e.coll, 1)(ctx); err != nil {
				return err
			}
			panic("boom")
		})
	}, "the panic goes on after the cleanup")

	assert.Zero(t, e.count(t, nil))
	aborts := e.mon.named("abortTransaction")
	require.Len(t, aborts, 1)
	assert.False(t, aborts[0].Failed)
	assert.Zero(t, e.client.NumberSessionsInProgress(), "session ended")

	// The document is not locked by a forgotten transaction.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := e.coll.InsertOne(wctx, doc(1))
	require.NoError(t, err)

	aborted := e.rec.Of(tx.EventAbort)
	require.Len(t, aborted, 1)
	assert.True(t, aborted[0].Infrastructure, "a panic is a failure, not a business decision")
}

func TestAbortOnGoexit(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)

	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.runner.Run(ctx, func(ctx context.Context) error {
			if err := insertAndUpdate(e.coll, 1)(ctx); err != nil {
				return err
			}
			runtime.Goexit()
			return nil
		})
	}()
	<-done

	assert.Zero(t, e.count(t, nil))
	assert.Len(t, e.mon.named("abortTransaction"), 1)
	assert.Zero(t, e.client.NumberSessionsInProgress())
}

func TestAbortWhenContextIsCancelled(t *testing.T) {
	tests := []struct {
		name string
		// fn runs in the transaction and cancels it with cancel.
		fn func(ctx context.Context, coll *mongo.Collection, cancel context.CancelFunc) error
	}{
		{
			name: "a callback that notices returns the cancellation",
			fn: func(ctx context.Context, coll *mongo.Collection, cancel context.CancelFunc) error {
				if _, err := coll.InsertOne(ctx, doc(1)); err != nil {
					return err
				}
				cancel()
				_, err := coll.InsertOne(ctx, doc(2))
				return err
			},
		},
		{
			name: "a callback that does not notice still does not commit",
			fn: func(ctx context.Context, coll *mongo.Collection, cancel context.CancelFunc) error {
				if _, err := coll.InsertOne(ctx, doc(1)); err != nil {
					return err
				}
				cancel()
				return nil
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()

			err := e.runner.Run(ctx, func(ctx context.Context) error { return tt.fn(ctx, e.coll, cancel) })
			require.ErrorIs(t, err, context.Canceled)

			assert.Zero(t, e.count(t, nil), "nothing committed")
			assert.Empty(t, e.mon.named("commitTransaction"))
			aborts := e.mon.named("abortTransaction")
			require.Len(t, aborts, 1, "abort is sent on a context that survived the cancellation")
			assert.False(t, aborts[0].Failed)

			// Proof on the server: had the transaction stayed open, this
			// insert of the same _id would wait for it or conflict.
			wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer wcancel()
			_, err = e.coll.InsertOne(wctx, doc(1))
			require.NoError(t, err)
		})
	}
}

func TestSessionsAreEndedAndReused(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)

	for i := range 12 {
		switch i % 3 {
		case 0:
			require.NoError(t, e.runner.Run(ctx, insertAndUpdate(e.coll, i)))
		case 1:
			err := e.runner.Run(ctx, func(ctx context.Context) error {
				_ = insertAndUpdate(e.coll, i)(ctx)
				return errBusiness
			})
			require.ErrorIs(t, err, errBusiness)
		case 2:
			require.Panics(t, func() {
				_ = e.runner.Run(ctx, func(ctx context.Context) error {
					_ = insertAndUpdate(e.coll, i)(ctx)
					panic("boom")
				})
			})
		}
		assert.Zero(t, e.client.NumberSessionsInProgress(), "run %d left its session checked out", i)
	}
	// Every Run ended its session, so the driver handed the same server
	// session to the next one: the server saw a single lsid, not twelve.
	assert.Len(t, e.mon.sessions(), 1, "server-side sessions used")
	assert.EqualValues(t, 4, e.count(t, nil))
	if !testenv.Real() { // MongoDB refreshes its session cache lazily
		open, sessions := serverStatus(t, e.client)
		assert.Zero(t, open, "no transaction left open")
		assert.LessOrEqual(t, sessions, int64(2), "the server knows the one session (and the count's own)")
	}
}

func TestRunnerIsSafeForConcurrentUse(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)

	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				errs <- e.runner.Run(ctx, insertAndUpdate(e.coll, w*each+i))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.EqualValues(t, workers*each, e.count(t, bson.D{{Key: "v", Value: 2}}))
	assert.Zero(t, e.client.NumberSessionsInProgress())
	assert.LessOrEqual(t, len(e.mon.sessions()), workers, "sessions are pooled, not leaked")
}

func TestDo(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)

	id, err := tx.Do(ctx, e.runner, func(ctx context.Context) (any, error) {
		res, err := e.coll.InsertOne(ctx, bson.D{{Key: "v", Value: 1}})
		if err != nil {
			return nil, err
		}
		return res.InsertedID, nil
	})
	require.NoError(t, err)
	assert.EqualValues(t, 1, e.count(t, bson.D{{Key: "_id", Value: id}}))

	n, err := tx.Do(ctx, e.runner, func(ctx context.Context) (int, error) {
		return 42, errBusiness
	})
	assert.ErrorIs(t, err, errBusiness)
	assert.Zero(t, n, "the zero value on error")
}

func TestZeroRunner(t *testing.T) {
	var r tx.Runner
	err := r.Run(context.Background(), func(context.Context) error { return nil })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "NewRunner")

	_, _, err = r.Begin(context.Background())
	require.Error(t, err)
}

func TestWithTimeoutBoundsTheCallback(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)

	err := e.runner.Run(ctx, func(ctx context.Context) error {
		dl, ok := ctx.Deadline()
		require.True(t, ok, "the callback's ctx carries the deadline")
		assert.WithinDuration(t, time.Now().Add(time.Second), dl, 500*time.Millisecond)
		return nil
	}, tx.WithTimeout(time.Second))
	require.NoError(t, err)
}
