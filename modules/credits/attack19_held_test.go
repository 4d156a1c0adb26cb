package credits_test

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

// applied once with exactly one first success.
func TestTwoProcessesCreatingTheSameAccountsAtOnce(t *testing.T) {
	uri := testenv.URI(t)
	c1, c2 := testenv.Connect(t, uri), testenv.Connect(t, uri)
	name := "attack19_create"
	e := newEnvOn(t, c1.Database(name), "credit_", credits.WithFlushEvery(3))
	other := credits.NewService(c2.Database(name), tx.NewRunner(c2), credits.WithClock(e.clock.Now), credits.WithCollectionPrefix("credit_"), credits.WithFlushEvery(3))
	ctx := context.Background()
	const accounts = 20
	type res struct {
		account  string
		amount   int64
		key      string
		err      error
		replayed bool
	}
	var (
		mu  sync.Mutex
		all []res
		wg  sync.WaitGroup
	)
	for a := range accounts {
		acct := fmt.Sprintf("new-%d", a)
		for i := range 6 {
			wg.Go(func() {
				svc := e.svc
				if i%2 == 1 {
					svc = other
				}
				r := res{account: acct}
				switch i % 3 {
				case 0: // unkeyed Add
					r.amount = 5
					_, r.err = svc.Add(ctx, acct, 5)
				case 1: // keyed Add, the same key from both processes
					r.amount, r.key = 7, acct+"-k"
					_, r.err = svc.Add(ctx, acct, 7, credits.IdempotencyKey(r.key), credits.Replayed(&r.replayed))
				case 2: // a Deduct that may find no account yet
					r.amount = -1
					_, r.err = svc.Deduct(ctx, acct, 1)
				}
				mu.Lock()
				all = append(all, r)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	for a := range accounts {
		acct := fmt.Sprintf("new-%d", a)
		var want int64
		firsts := 0
		keyed := false
		for _, r := range all {
			if r.account != acct {
				continue
			}
			if r.err != nil {
				if r.amount < 0 && (errors.Is(r.err, credits.ErrAccountNotFound) || errors.Is(r.err, credits.ErrInsufficientCredits)) {
					continue
				}
				t.Fatalf("%s: %v", acct, r.err)
			}
			if r.key != "" {
				if !r.replayed {
					firsts++
				}
				if !keyed {
					want += r.amount
					keyed = true
				}
				continue
			}
			want += r.amount
		}
		assert.Equal(t, 1, firsts, "%s: first successes of its key", acct)
		assert.EqualValues(t, want, e.balance(t, acct).Balance, acct)
		sum, _ := e.ledgerSum(t, acct)
		assert.EqualValues(t, want, sum, "%s ledger", acct)
		doc := e.stored(t, acct)
		_, ok := doc["incarnation"].(bson.ObjectID)
		assert.True(t, ok, "%s has an incarnation: %v", acct, doc["incarnation"])
	}
}

// out applies it once, and the held call replays it.
func TestAnOldAccountWithoutIncarnationKeepsAKeyOnce(t *testing.T) {
	if testenv.Real() {
		t.Skip("fail points")
	}
	uri := testenv.URI(t)
	c1, c2 := testenv.Connect(t, uri), testenv.Connect(t, uri)
	name := "attack19_old"
	e := newEnvOn(t, c1.Database(name), "credit_")
	other := credits.NewService(c2.Database(name), tx.NewRunner(c2), credits.WithClock(e.clock.Now), credits.WithCollectionPrefix("credit_"))
	ctx := context.Background()
	now := e.clock.Now()
	_, err := e.db.Collection("credit_accounts").InsertOne(ctx, bson.D{
		{Key: "_id", Value: "old"}, {Key: "balance", Value: int64(100)}, {Key: "held", Value: int64(0)}, {Key: "available", Value: int64(100)},
		{Key: "createdAt", Value: now}, {Key: "updatedAt", Value: now},
	})
	require.NoError(t, err)
	_, err = e.db.Collection("credit_entries").InsertOne(ctx, credits.Entry{ID: "seed", Account: "old", Amount: 100, Kind: credits.KindCredit, CreatedAt: now})
	require.NoError(t, err)

	testenv.FailCommand(t, c1, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"update"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 500}}},
	})
	var (
		wg       sync.WaitGroup
		got      credits.Entry
		replayed bool
	)
	wg.Go(func() {
		got, err = e.svc.Deduct(ctx, "old", 30, credits.IdempotencyKey("buy-1"), credits.Replayed(&replayed))
	})
	time.Sleep(100 * time.Millisecond)
	var otherReplayed bool
	otherGot, otherErr := other.Deduct(ctx, "old", 30, credits.IdempotencyKey("buy-1"), credits.Replayed(&otherReplayed))
	require.NoError(t, otherErr)
	require.False(t, otherReplayed)
	require.NoError(t, other.Flush(ctx))
	wg.Wait()
	require.NoError(t, err)
	assert.Equal(t, otherGot, got)
	assert.True(t, replayed)
	assert.EqualValues(t, 70, e.balance(t, "old").Balance)
	sum, _ := e.ledgerSum(t, "old")
	assert.EqualValues(t, 70, sum)
}

// definitely, and the balances are the sum of what applied.
func TestATransferIntoAMissingAccountRacedByAnotherProcessCreatingIt(t *testing.T) {
	uri := testenv.URI(t)
	c1, c2 := testenv.Connect(t, uri), testenv.Connect(t, uri)
	name := "attack19_transfer"
	e := newEnvOn(t, c1.Database(name), "credit_")
	other := credits.NewService(c2.Database(name), tx.NewRunner(c2), credits.WithClock(e.clock.Now), credits.WithCollectionPrefix("credit_"))
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "src", 1000)
	require.NoError(t, err)
	const n = 10
	var (
		wg    sync.WaitGroup
		terrs [n]error
		aerrs [n]error
	)
	for i := range n {
		to := fmt.Sprintf("dst-%d", i)
		wg.Go(func() { _, terrs[i] = e.svc.Transfer(ctx, "src", to, 10) })
		wg.Go(func() { _, aerrs[i] = other.Add(ctx, to, 3) })
	}
	wg.Wait()
	var moved int64
	for i := range n {
		to := fmt.Sprintf("dst-%d", i)
		require.NoError(t, aerrs[i], to)
		if terrs[i] != nil {
			t.Errorf("transfer to %s: %v", to, terrs[i])
		} else {
			moved += 10
		}
		want := int64(3)
		if terrs[i] == nil {
			want += 10
		}
		assert.EqualValues(t, want, e.balance(t, to).Balance, to)
	}
	assert.EqualValues(t, 1000-moved, e.balance(t, "src").Balance)
}

// entry a second time, and the held call replays it.
func TestAKeyFinishedInATransactionThatCreatesTheAccountAppliesOnce(t *testing.T) {
	if testenv.Real() {
		t.Skip("fail points")
	}
	uri := testenv.URI(t)
	c1, c2 := testenv.Connect(t, uri), testenv.Connect(t, uri)
	name := "attack19_txcreate"
	e := newEnvOn(t, c1.Database(name), "credit_")
	r2 := tx.NewRunner(c2)
	other := credits.NewService(c2.Database(name), r2, credits.WithClock(e.clock.Now), credits.WithCollectionPrefix("credit_"))
	ctx := context.Background()
	_, err := e.svc.Deduct(ctx, "fresh", 1) // caches the account as missing
	require.ErrorIs(t, err, credits.ErrAccountNotFound)

	testenv.FailCommand(t, c1, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"update"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 500}}},
	})
	var (
		wg       sync.WaitGroup
		got      credits.Entry
		replayed bool
	)
	wg.Go(func() {
		got, err = e.svc.Add(ctx, "fresh", 30, credits.IdempotencyKey("gift-1"), credits.Replayed(&replayed))
	})
	time.Sleep(100 * time.Millisecond)
	var txReplayed bool
	txGot, txErr := tx.Do(ctx, r2, func(ctx context.Context) (credits.Entry, error) {
		return other.Add(ctx, "fresh", 30, credits.IdempotencyKey("gift-1"), credits.Replayed(&txReplayed))
	})
	require.NoError(t, txErr)
	require.False(t, txReplayed, "the other process's transaction applied it")
	wg.Wait()
	require.NoError(t, err)
	assert.Equal(t, txGot, got)
	assert.True(t, replayed, "the held call says it applied the key's entry")
	assert.EqualValues(t, 30, e.balance(t, "fresh").Balance, "the key's credit applied twice")
	sum, _ := e.ledgerSum(t, "fresh")
	assert.EqualValues(t, 30, sum)
}
