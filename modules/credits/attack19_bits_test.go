package credits_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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

// Adds of distinct powers of two to fresh accounts, from two processes,
// some in transactions, every command held 15-45 ms on the server and
// each call cut by a random deadline: the balance's bits name the calls
// that applied, and every call that succeeded applied, every call that
// failed definitely (anything but ErrOutcomeUnknown) did not.
func TestCutAddsOfDistinctBitsApplyExactlyAsReported(t *testing.T) {
	if testenv.Real() {
		t.Skip("fail points")
	}
	uri := testenv.URI(t)
	c1, c2 := testenv.Connect(t, uri), testenv.Connect(t, uri)
	name := "attack19_bits"
	e := newEnvOn(t, c1.Database(name), "credit_", credits.WithFlushEvery(2))
	other := credits.NewService(c2.Database(name), tx.NewRunner(c2), credits.WithClock(e.clock.Now), credits.WithCollectionPrefix("credit_"), credits.WithFlushEvery(2))
	ctx := context.Background()
	for round := range 12 {
		acct := fmt.Sprintf("bits-%d", round)
		require.NoError(t, c1.Database("admin").RunCommand(ctx, bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: bson.D{{Key: "times", Value: 30}}},
			{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"update", "findAndModify", "find", "insert"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 15 + rand.IntN(30)}}}}).Err())
		var wg sync.WaitGroup
		errs := make([]error, 20)
		for i := range 20 {
			wg.Go(func() {
				svc, client := e.svc, c1
				if i%2 == 1 {
					svc, client = other, c2
				}
				c, cancel := context.WithTimeout(ctx, time.Duration(5+rand.IntN(80))*time.Millisecond)
				defer cancel()
				if i%5 == 4 {
					// The caller's transaction is on the service's client:
					// a service of another client refuses to run in it
					// (tx.ErrOtherClient; TestAServiceOfAnotherClient-
					// InsideATransactionAppliesNothing).
					_, errs[i] = tx.Do(c, tx.NewRunner(client), func(c context.Context) (credits.Entry, error) { return svc.Add(c, acct, 1<<i) })
					return
				}
				_, errs[i] = svc.Add(c, acct, 1<<i)
			})
		}
		wg.Wait()
		c1.Database("admin").RunCommand(ctx, bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "off"}})
		time.Sleep(200 * time.Millisecond)
		b, err := e.svc.Balance(ctx, acct)
		var bal int64
		if err == nil {
			bal = b.Balance
		} else {
			require.ErrorIs(t, err, credits.ErrAccountNotFound)
		}
		definite := 0
		for i, err := range errs {
			set := bal&(1<<i) != 0
			switch {
			case err == nil:
				assert.True(t, set, "%s: call %d succeeded, not applied", acct, i)
			case errors.Is(err, credits.ErrOutcomeUnknown):
			default:
				definite++
				assert.False(t, set, "%s: call %d failed (%v), applied", acct, i, err)
			}
		}
		allFailed := true
		for _, err := range errs {
			if err == nil || errors.Is(err, credits.ErrOutcomeUnknown) {
				allFailed = false
			}
		}
		if allFailed {
			t.Logf("%s: all %d failed definitely; balance err %v", acct, definite, err)
		}
		t.Logf("%s: balance %b, definite failures %d", acct, bal, definite)
	}
}

// Keyed Deducts of distinct powers of two from accounts holding their
// sum, three calls of each key from two processes (one in a
// transaction), every command held on the server and each call cut by a
// random deadline; then each key once more without faults: every key
// applies once (balance and ledger 0), with at most one first success.
func TestCutKeyedDeductsOfDistinctBitsApplyEachKeyOnce(t *testing.T) {
	if testenv.Real() {
		t.Skip("fail points")
	}
	uri := testenv.URI(t)
	c1, c2 := testenv.Connect(t, uri), testenv.Connect(t, uri)
	name := "attack19_keybits"
	e := newEnvOn(t, c1.Database(name), "credit_", credits.WithFlushEvery(2))
	r2 := tx.NewRunner(c2)
	other := credits.NewService(c2.Database(name), r2, credits.WithClock(e.clock.Now), credits.WithCollectionPrefix("credit_"), credits.WithFlushEvery(2))
	ctx := context.Background()
	const n = 16
	for round := range 8 {
		acct := fmt.Sprintf("kb-%d", round)
		_, err := e.svc.Add(ctx, acct, 1<<n-1)
		require.NoError(t, err)
		require.NoError(t, c1.Database("admin").RunCommand(ctx, bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: bson.D{{Key: "times", Value: 40}}},
			{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"update", "findAndModify", "find", "insert", "commitTransaction"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 10 + rand.IntN(30)}}}}).Err())
		var wg sync.WaitGroup
		var mu sync.Mutex
		firsts := map[int]int{}
		for i := range n {
			for j := range 3 {
				wg.Go(func() {
					svc, runner := e.svc, e.runner
					if j%2 == 1 {
						svc, runner = other, r2
					}
					c, cancel := context.WithTimeout(ctx, time.Duration(5+rand.IntN(80))*time.Millisecond)
					defer cancel()
					var rep bool
					opts := []credits.OpOption{credits.IdempotencyKey(fmt.Sprintf("%s-%d", acct, i)), credits.Replayed(&rep)}
					var err error
					if j == 2 {
						_, err = tx.Do(c, runner, func(c context.Context) (credits.Entry, error) { return svc.Deduct(c, acct, 1<<i, opts...) })
					} else {
						_, err = svc.Deduct(c, acct, 1<<i, opts...)
					}
					mu.Lock()
					if err == nil && !rep {
						firsts[i]++
					}
					mu.Unlock()
				})
			}
		}
		wg.Wait()
		c1.Database("admin").RunCommand(ctx, bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "off"}})
		time.Sleep(100 * time.Millisecond)
		for i := range n {
			var rep bool
			_, err := other.Deduct(ctx, acct, 1<<i, credits.IdempotencyKey(fmt.Sprintf("%s-%d", acct, i)), credits.Replayed(&rep))
			if !assert.NoError(t, err, "%s key %d retry", acct, i) {
				continue
			}
			if !rep {
				firsts[i]++
			}
			if errors.Is(err, credits.ErrOutcomeUnknown) {
				t.Log(err)
			}
		}
		for i := range n {
			assert.LessOrEqual(t, firsts[i], 1, "%s key %d first successes", acct, i)
		}
		assert.EqualValues(t, 0, e.balance(t, acct).Balance, acct)
		sum, _ := e.ledgerSum(t, acct)
		assert.EqualValues(t, 0, sum, acct)
	}
}
