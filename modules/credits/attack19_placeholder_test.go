package credits_test

// Tests of finding credits-failed-add-creates-empty-account, from attack19
// (commits ba0ca86, 16ce1e9).

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/tx"
)

// An Add to an account that does not exist, whose write the deadline
// cuts (held on the server past it), returns its ctx's error: docs say a
// context error is a definite failure that applied nothing. Yet the
// fence of the outcome's resolution created the account: it exists with
// balance 0 and no entry, Balance answers 0 instead of
// ErrAccountNotFound, and a Deduct of it fails with
// ErrInsufficientCredits instead of ErrAccountNotFound.
func TestAnAddThatFailsDefinitelyCreatesNoAccount(t *testing.T) {
	if testenv.Real() {
		t.Skip("fail points")
	}
	e := newEnv(t)
	testenv.FailCommand(t, e.db.Client(), bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"update"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 400}}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	_, err := e.svc.Add(ctx, "ghost", 10)
	require.Error(t, err)
	t.Logf("Add: %v", err)
	require.NotErrorIs(t, err, credits.ErrOutcomeUnknown, "the test wants a definite failure")
	time.Sleep(500 * time.Millisecond) // the held write has run (or been refused)

	bg := context.Background()
	b, err := e.svc.Balance(bg, "ghost")
	assert.ErrorIs(t, err, credits.ErrAccountNotFound, "the failed Add created the account (balance %+v)", b)
	_, err = e.svc.Deduct(bg, "ghost", 1)
	assert.ErrorIs(t, err, credits.ErrAccountNotFound, "a Deduct of an account no call created")
	// The fence leaves a placeholder document behind, on purpose: its
	// incarnation keeps the held send (which demands a missing one) from
	// ever applying. It is no account: nothing lists or counts it.
	n, err := e.db.Collection(e.prefix+"accounts").CountDocuments(bg, bson.D{{Key: "_id", Value: "ghost"}, {Key: "placeholder", Value: bson.D{{Key: "$ne", Value: true}}}})
	require.NoError(t, err)
	assert.Zero(t, n, "account documents (other than a placeholder) after a failed Add")
	r, err := e.svc.Reconcile(bg)
	require.NoError(t, err)
	assert.Zero(t, r.Accounts, "accounts Reconcile counts after a failed Add")
}

// The same fence seen by another process: while an Add that creates an
// account learns the outcome of its cut write (and then succeeds), Deducts
// of 1 from another process must find the account missing
// (ErrAccountNotFound, before the Add) or credited (after it): no serial
// order of these calls has the account existing with less than 1.
func TestADeductNeverSeesTheEmptyAccountOfACreditBeingResolved(t *testing.T) {
	if testenv.Real() {
		t.Skip("fail points")
	}
	uri := testenv.URI(t)
	c1, c2 := testenv.Connect(t, uri), testenv.Connect(t, uri)
	name := "attack19_window"
	e := newEnvOn(t, c1.Database(name), "credit_")
	other := credits.NewService(c2.Database(name), tx.NewRunner(c2), credits.WithClock(e.clock.Now), credits.WithCollectionPrefix("credit_"))
	ctx := context.Background()
	insufficient := 0
	for round := range 10 {
		acct := fmt.Sprintf("ghost-%d", round)
		testenv.FailCommand(t, c1, bson.D{
			{Key: "configureFailPoint", Value: "failCommand"},
			{Key: "mode", Value: bson.D{{Key: "times", Value: 2}}}, // the write and the driver's retry
			{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"update"}}, {Key: "closeConnection", Value: true}}},
		})
		done := make(chan error, 1)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := other.Deduct(ctx, acct, 1)
				switch {
				case err == nil:
					return // after the Add
				case errors.Is(err, credits.ErrInsufficientCredits):
					insufficient++
					t.Logf("%s: %v", acct, err)
				case !errors.Is(err, credits.ErrAccountNotFound):
					t.Errorf("%s: %v", acct, err)
					return
				}
			}
		})
		time.Sleep(5 * time.Millisecond)
		go func() {
			_, err := e.svc.Add(ctx, acct, 1000)
			done <- err
		}()
		require.NoError(t, <-done)
		time.Sleep(20 * time.Millisecond)
		close(stop)
		wg.Wait()
	}
	assert.Zero(t, insufficient, "Deducts that saw an account no call had credited")
}

// failCutAdd makes an Add of 10 to account, which does not exist, fail
// definitely: its write is held on the server past the Add's deadline, the
// outcome is resolved (the fence leaves a placeholder), and the deadline
// has passed before the Add could send again. It returns while the held
// write is still held (mongotest refuses it at its maxTimeMS, as MongoDB
// does; were it to run, it would demand no incarnation and could neither
// match the placeholder nor insert the account).
func failCutAdd(t *testing.T, e *env, account string) {
	t.Helper()
	testenv.FailCommand(t, e.db.Client(), bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"update"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 400}}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	_, err := e.svc.Add(ctx, account, 10)
	require.Error(t, err)
	require.NotErrorIs(t, err, credits.ErrOutcomeUnknown, "the test wants a definite failure")
}

// The placeholder a failed credit leaves reads as a missing account
// everywhere, and becomes a normal account when a credit applies to it,
// with that credit only: the failed Add's held write never applies.
func TestAPlaceholderIsMissingUntilACreditMakesItAnAccount(t *testing.T) {
	if testenv.Real() {
		t.Skip("fail points")
	}
	bg := context.Background()
	credit := []struct {
		name   string
		credit func(e *env, account string) error
	}{
		{"an Add", func(e *env, account string) error {
			_, err := e.svc.Add(bg, account, 5)
			return err
		}},
		{"a keyed Add", func(e *env, account string) error {
			_, err := e.svc.Add(bg, account, 5, credits.IdempotencyKey("make-"+account))
			return err
		}},
		{"an Add in a transaction", func(e *env, account string) error {
			return e.runner.Run(bg, func(ctx context.Context) error {
				_, err := e.svc.Add(ctx, account, 5)
				return err
			})
		}},
		{"a Transfer into it", func(e *env, account string) error {
			_, err := e.svc.Add(bg, "payer", 5)
			if err == nil {
				_, err = e.svc.Transfer(bg, "payer", account, 5)
			}
			return err
		}},
	}
	for _, tt := range credit {
		t.Run(tt.name+" makes it an account with that credit only", func(t *testing.T) {
			e := newEnv(t)
			failCutAdd(t, e, "p")
			require.NoError(t, tt.credit(e, "p"))
			time.Sleep(500 * time.Millisecond) // the held write has run (or been refused)
			assert.Equal(t, credits.Balance{Account: "p", Balance: 5, Available: 5}, e.balance(t, "p"))
			assert.NotContains(t, e.stored(t, "p"), "placeholder")
			_, err := e.svc.Deduct(bg, "p", 5)
			require.NoError(t, err)
			sum, n := e.ledgerSum(t, "p")
			assert.Equal(t, int64(0), sum)
			assert.Equal(t, 2, n, "entries: the credit and the Deduct")
		})
	}

	t.Run("every read and debit finds it missing", func(t *testing.T) {
		e := newEnv(t)
		failCutAdd(t, e, "p")
		time.Sleep(500 * time.Millisecond)
		_, err := e.svc.Add(bg, "funded", 7)
		require.NoError(t, err)

		_, err = e.svc.Balance(bg, "p")
		assert.ErrorIs(t, err, credits.ErrAccountNotFound, "Balance")
		_, _, err = e.svc.History(bg, "p", credits.HistoryQuery{})
		assert.ErrorIs(t, err, credits.ErrAccountNotFound, "History")
		_, err = e.svc.Deduct(bg, "p", 1)
		assert.ErrorIs(t, err, credits.ErrAccountNotFound, "Deduct")
		_, err = e.svc.Deduct(bg, "p", 1, credits.IdempotencyKey("deduct-p"))
		assert.ErrorIs(t, err, credits.ErrAccountNotFound, "keyed Deduct")
		err = e.runner.Run(bg, func(ctx context.Context) error {
			_, err := e.svc.Deduct(ctx, "p", 1)
			return err
		})
		assert.ErrorIs(t, err, credits.ErrAccountNotFound, "Deduct in a transaction")
		err = e.runner.Run(bg, func(ctx context.Context) error {
			_, err := e.svc.Balance(ctx, "p")
			return err
		})
		assert.ErrorIs(t, err, credits.ErrAccountNotFound, "Balance in a transaction")
		_, err = e.svc.Transfer(bg, "p", "funded", 1)
		assert.ErrorIs(t, err, credits.ErrAccountNotFound, "Transfer from it")
		_, err = e.svc.Reserve(bg, "p", 1, time.Minute)
		assert.ErrorIs(t, err, credits.ErrAccountNotFound, "Reserve")
		r, err := e.svc.Reconcile(bg)
		require.NoError(t, err)
		assert.Equal(t, 1, r.Accounts, "Reconcile counts the funded account only")
		assert.Empty(t, r.Mismatches)
	})
}
