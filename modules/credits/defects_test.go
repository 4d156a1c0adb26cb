package credits_test

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/tx"
)

// A write made in a transaction that the caller started with the driver
// belongs to that transaction alone: it is never combined with other
// callers' writes, so they neither commit nor vanish with it, and it does
// not survive its abort.
func TestAWriteInADriverStartedTransactionIsNeverSharedWithOthers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const start = 100000
	_, err := e.svc.Add(ctx, "a", start)
	require.NoError(t, err)

	var ok atomic.Int64
	for round := range 10 {
		sess, err := e.db.Client().StartSession()
		require.NoError(t, err)
		require.NoError(t, sess.StartTransaction())
		sctx := mongo.NewSessionContext(ctx, sess)

		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if _, err := e.svc.Deduct(ctx, "a", 1); err == nil {
					ok.Add(1)
				}
			})
		}
		// Its outcome does not matter: the transaction is aborted.
		_, _ = e.svc.Deduct(sctx, "a", 1000, credits.Reason(fmt.Sprint("round ", round)))
		require.NoError(t, sess.AbortTransaction(ctx))
		sess.EndSession(ctx)
		wg.Wait()
	}
	assert.Equal(t, start-ok.Load(), e.balance(t, "a").Balance,
		"exactly the deducts reported done were applied, and none of the aborted transaction's")
	assert.Equal(t, int64(80), ok.Load(), "every deduct outside the transaction was done")
}

// failAppliedAfter lets skip writes run, then makes the next retryable write apply and then lose its
// connection before the reply, and every later command named in cmds
// (the driver's single resend of that write among them) fail with a
// closed connection, until the returned function is called.
func failAppliedAfter(t *testing.T, client *mongo.Client, skip int, cmds ...string) (off func()) {
	t.Helper()
	sub := &onlyCleanup{T: t}
	mode := bson.D{{Key: "times", Value: 1}}
	if skip > 0 {
		mode = bson.D{{Key: "skip", Value: skip}} // then on, but failCommand stops every later one first
	}
	testenv.FailCommand(sub, client, bson.D{
		{Key: "configureFailPoint", Value: "onPrimaryTransactionalWrite"},
		{Key: "mode", Value: mode},
		{Key: "data", Value: bson.D{{Key: "closeConnection", Value: true}}},
	})
	cmdList := bson.A{}
	for _, c := range cmds {
		cmdList = append(cmdList, c)
	}
	testenv.FailCommand(sub, client, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: bson.D{{Key: "skip", Value: skip + 1}}},
		{Key: "data", Value: bson.D{
			{Key: "failCommands", Value: cmdList},
			{Key: "closeConnection", Value: true},
		}},
	})
	t.Cleanup(sub.run) // in case the test stops early; running twice is harmless
	return sub.run
}

// A write that was applied is never reported as failed: an error whose
// outcome is unknown is resolved by the entry's id.
func TestAnAppliedWriteWhoseReplyIsLostIsReportedDone(t *testing.T) {
	tests := []struct {
		name  string
		keyed bool
		give  func(e *env, replayed *bool) (credits.Entry, error)
		want  int64
	}{
		{name: "deduct", give: func(e *env, _ *bool) (credits.Entry, error) { return e.svc.Deduct(context.Background(), "a", 30) }, want: 70},
		{name: "add", give: func(e *env, _ *bool) (credits.Entry, error) { return e.svc.Add(context.Background(), "a", 30) }, want: 130},
		{name: "keyed deduct whose first attempt failed", keyed: true, give: func(e *env, replayed *bool) (credits.Entry, error) {
			return e.svc.Deduct(context.Background(), "a", 30, credits.IdempotencyKey("lost-reply"), credits.Replayed(replayed))
		}, want: 70},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			_, err := e.svc.Add(ctx, "a", 10)
			require.NoError(t, err)
			if tt.keyed {
				// The key is claimed by a first attempt that is refused:
				// the retry below finds the claim's entry unapplied and
				// writes it.
				_, err := tt.give(e, nil)
				require.ErrorIs(t, err, credits.ErrInsufficientCredits)
			}
			_, err = e.svc.Add(ctx, "a", 90)
			require.NoError(t, err)

			off := failAppliedAfter(t, e.db.Client(), 0, "update")
			replayed := true
			en, err := tt.give(e, &replayed)
			off()
			require.NoError(t, err)
			if tt.keyed {
				assert.False(t, replayed, "its write applied: the key's first success")
			}
			assert.Equal(t, tt.want, e.balance(t, "a").Balance)
			hist, _, err := e.svc.History(ctx, "a", credits.HistoryQuery{})
			require.NoError(t, err)
			require.Len(t, hist, 3)
			assert.Contains(t, hist, en, "the entry returned is the one written")
		})
	}
}

// When the outcome cannot be learned either, the error says so, and a
// retry with the same key applies the operation exactly once.
func TestAnUnresolvableOutcomeSaysSoAndTheSameKeyFinishesIt(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "a", 10)
	require.NoError(t, err)
	_, err = e.svc.Deduct(ctx, "a", 30, credits.IdempotencyKey("unknown-1"))
	require.ErrorIs(t, err, credits.ErrInsufficientCredits)
	_, err = e.svc.Add(ctx, "a", 90)
	require.NoError(t, err)

	off := failAppliedAfter(t, e.db.Client(), 0, "update", "findAndModify")
	_, err = e.svc.Deduct(ctx, "a", 30, credits.IdempotencyKey("unknown-1"))
	off()
	require.ErrorIs(t, err, credits.ErrOutcomeUnknown)
	require.ErrorIs(t, err, tx.ErrCommitUnknown, "one check catches both")

	en, err := e.svc.Deduct(ctx, "a", 30, credits.IdempotencyKey("unknown-1"))
	require.NoError(t, err)
	again, err := e.svc.Deduct(ctx, "a", 30, credits.IdempotencyKey("unknown-1"))
	require.NoError(t, err)
	assert.Equal(t, en, again)
	assert.Equal(t, int64(70), e.balance(t, "a").Balance, "charged once")
	_, n := e.ledgerSum(t, "a")
	assert.Equal(t, 3, n)
}

// onlyCleanup is a testing.TB whose Cleanup functions run when run is
// called, so that a fail point can be turned off in the middle of a test.
type onlyCleanup struct {
	*testing.T
	fns []func()
}

func (o *onlyCleanup) Cleanup(fn func()) { o.fns = append(o.fns, fn) }

func (o *onlyCleanup) run() {
	fns := o.fns
	o.fns = nil
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

// Writers waiting on one account held by a transaction hold up that
// account only, however many of them there are: writes to other accounts
// go through, and the transaction itself can write another account and
// commit.
func TestWritersWaitingOnOneAccountHoldUpOnlyIt(t *testing.T) {
	e := newEnv(t, credits.WithMaxFastWrites(4))
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "x", 100)
	require.NoError(t, err)

	inTx, release := make(chan struct{}), make(chan struct{})
	txDone := make(chan error, 1)
	var once sync.Once
	go func() {
		txDone <- e.runner.Run(ctx, func(ctx context.Context) error {
			if _, err := e.svc.Add(ctx, "x", 1); err != nil {
				return err
			}
			once.Do(func() { close(inTx) })
			<-release
			_, err := e.svc.Add(ctx, "z", 5) // another account, from inside
			return err
		})
	}()
	<-inTx
	var waiting sync.WaitGroup
	for range 16 {
		waiting.Go(func() {
			_, err := e.svc.Add(ctx, "x", 10)
			assert.NoError(t, err)
		})
	}
	time.Sleep(50 * time.Millisecond) // let them queue on x

	for i := range 20 {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := e.svc.Add(wctx, fmt.Sprintf("y%d", i), 1)
		cancel()
		require.NoError(t, err, "write to y%d while x is held", i)
	}
	close(release)
	select {
	case err := <-txDone:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("the transaction holding x never finished")
	}
	waiting.Wait()
	assert.Equal(t, int64(100+1+160), e.balance(t, "x").Balance)
	assert.Equal(t, int64(5), e.balance(t, "z").Balance)
}

// Reconcile is exact for every ledger whose balances are valid int64s,
// whatever order or place its entries are summed in.
func TestReconcileIsExactNearTheInt64Boundary(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "a", math.MaxInt64)
	require.NoError(t, err)
	require.NoError(t, e.svc.Flush(ctx)) // the credit is in the entries collection
	_, err = e.svc.Deduct(ctx, "a", 10)  // embedded in the account
	require.NoError(t, err)
	_, err = e.svc.Add(ctx, "a", 10, credits.IdempotencyKey("in-a-tx")) // straight to the entries collection
	require.NoError(t, err)
	r, err := e.svc.Reconcile(ctx)
	require.NoError(t, err)
	assert.Empty(t, r.Mismatches)
	assert.Equal(t, int64(math.MaxInt64), e.balance(t, "a").Balance)

	// A real mismatch there is still reported.
	_, err = e.db.Collection("credit_accounts").UpdateOne(ctx, bson.D{{Key: "_id", Value: "a"}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "balance", Value: int64(-1)}, {Key: "available", Value: int64(-1)}}}})
	require.NoError(t, err)
	r, err = e.svc.Reconcile(ctx)
	require.NoError(t, err)
	require.Len(t, r.Mismatches, 1)
	assert.Equal(t, "balance", r.Mismatches[0].Field)
	_, err = e.db.Collection("credit_accounts").UpdateOne(ctx, bson.D{{Key: "_id", Value: "a"}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "balance", Value: int64(1)}, {Key: "available", Value: int64(1)}}}})
	require.NoError(t, err)
}

// A write whose reply carries a write concern error was applied on the
// primary: it is reported done (finding credits-fastpath-wce-reported-failed).
func TestAWriteConcernErrorOnAnAppliedWriteIsNotAFailure(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "a", 100)
	require.NoError(t, err)
	testenv.FailCommand(t, e.db.Client(), bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
		{Key: "data", Value: bson.D{
			{Key: "failCommands", Value: bson.A{"update"}},
			{Key: "writeConcernError", Value: bson.D{{Key: "code", Value: int32(64)}, {Key: "codeName", Value: "WriteConcernFailed"}, {Key: "errmsg", Value: "injected"}}},
		}},
	})
	_, err = e.svc.Deduct(ctx, "a", 10)
	require.NoError(t, err)
	assert.Equal(t, int64(90), e.balance(t, "a").Balance)
}
