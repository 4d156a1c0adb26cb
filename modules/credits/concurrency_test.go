package credits_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/modules/credits"
)

// The seed's race test, done right: concurrent deductions never lose an
// update and never overdraw.
func TestConcurrentDeductions(t *testing.T) {
	tests := []struct {
		name      string
		callers   int
		keyed     bool
		wantShort int
	}{
		{name: "10 deductions of 10 from 100 leave 0", callers: 10},
		{name: "11 deductions of 10 from 100: exactly one is short", callers: 11, wantShort: 1},
		{name: "10 keyed deductions of 10 from 100 leave 0", callers: 10, keyed: true},
		{name: "11 keyed deductions of 10 from 100: exactly one is short", callers: 11, keyed: true, wantShort: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			_, err := e.svc.Add(ctx, "a", 100)
			require.NoError(t, err)

			var short, other atomic.Int32
			var wg sync.WaitGroup
			for i := range tt.callers {
				wg.Go(func() {
					var opts []credits.OpOption
					if tt.keyed {
						opts = append(opts, credits.IdempotencyKey(fmt.Sprintf("msg-%d", i)))
					}
					_, err := e.svc.Deduct(ctx, "a", 10, opts...)
					switch {
					case errors.Is(err, credits.ErrInsufficientCredits):
						short.Add(1)
					case err != nil:
						other.Add(1)
						t.Errorf("deduct: %v", err)
					}
				})
			}
			wg.Wait()
			assert.Equal(t, int32(tt.wantShort), short.Load())
			assert.Zero(t, other.Load())
			assert.Equal(t, credits.Balance{Account: "a"}, e.balance(t, "a"))
			sum, n := e.ledgerSum(t, "a")
			assert.Zero(t, sum)
			assert.Equal(t, 1+tt.callers-tt.wantShort, n)
		})
	}
}

func TestConcurrentRepeatsOfOneKeyApplyOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	got := make([]credits.Entry, 20)
	replayed := make([]bool, len(got))
	for i := range got {
		wg.Go(func() {
			en, err := e.svc.Add(ctx, "a", 7, credits.IdempotencyKey("webhook-1"), credits.Replayed(&replayed[i]))
			if assert.NoError(t, err) {
				got[i] = en
			}
		})
	}
	wg.Wait()
	first := 0
	for i, en := range got {
		assert.Equal(t, got[0], en, "every repeat returns the entry applied")
		if !replayed[i] {
			first++
		}
	}
	assert.Equal(t, 1, first, "one call is the key's first success")
	assert.Equal(t, int64(7), e.balance(t, "a").Balance)
}

// 1,000 concurrent mixed operations over a few accounts: every balance
// equals its ledger, none is ever negative, and the credits in the system
// are exactly those added minus those spent.
func TestConcurrentMixedOperationsKeepTheLedgerExact(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	e := newEnv(t, credits.WithFlushEvery(8))
	ctx := context.Background()
	accounts := []string{"a", "b", "c", "d"}
	for _, a := range accounts {
		_, err := e.svc.Add(ctx, a, 1000)
		require.NoError(t, err)
	}
	e.svc.Start()
	defer e.svc.Stop()

	var added, spent atomic.Int64
	added.Store(4000)
	var seen sync.Map // entry id → struct{}: a keyed repeat returns the first entry
	first := func(en credits.Entry) bool { _, dup := seen.LoadOrStore(en.ID, struct{}{}); return !dup }
	var wg sync.WaitGroup
	for i := range 1000 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 1))
			acct := accounts[r.IntN(len(accounts))]
			other := accounts[(r.IntN(len(accounts)-1)+1+indexOf(accounts, acct))%len(accounts)]
			amount := int64(r.IntN(50) + 1)
			var opts []credits.OpOption
			if r.IntN(2) == 0 {
				// A few keys are shared, so some calls are repeats.
				opts = append(opts, credits.IdempotencyKey(fmt.Sprintf("op-%d", i%900)))
			}
			var err error
			switch op := i % 6; op {
			case 0:
				var en credits.Entry
				if en, err = e.svc.Add(ctx, acct, amount, opts...); err == nil && first(en) {
					added.Add(amount)
				}
			case 1, 2:
				var en credits.Entry
				if en, err = e.svc.Deduct(ctx, acct, amount, opts...); err == nil && first(en) {
					spent.Add(amount)
				}
			case 3:
				_, err = e.svc.Transfer(ctx, acct, other, amount, opts...)
			case 4:
				var h credits.Hold
				if h, err = e.svc.Reserve(ctx, acct, amount, time10m, opts...); err == nil {
					if _, err = e.svc.Capture(ctx, h.ID, amount/2+1); err == nil {
						spent.Add(amount/2 + 1)
					}
				}
			case 5:
				var h credits.Hold
				if h, err = e.svc.Reserve(ctx, acct, amount, time10m, opts...); err == nil {
					_, err = e.svc.Release(ctx, h.ID)
				}
			}
			switch {
			case err == nil, errors.Is(err, credits.ErrInsufficientCredits):
			case errors.Is(err, credits.ErrIdempotencyConflict):
				// A shared key reused for another operation: refused, as it must be.
			default:
				t.Errorf("op %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	var total int64
	for _, a := range accounts {
		b := e.balance(t, a)
		assert.GreaterOrEqual(t, b.Available, int64(0))
		assert.Zero(t, b.Held, "every hold was closed")
		sum, _ := e.ledgerSum(t, a)
		assert.Equal(t, b.Balance, sum, "balance of %s equals its ledger", a)
		total += b.Balance
	}
	r, err := e.svc.Reconcile(ctx)
	require.NoError(t, err)
	assert.Empty(t, r.Mismatches)
	assert.Equal(t, len(accounts), r.Accounts)
	assert.Equal(t, added.Load()-spent.Load(), total, "credits added minus credits spent")
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

// A fast-path write that waits behind another transaction on its account
// holds up writes to that account only, and a queued write whose caller
// gives up leaves without being applied.
func TestAWaitingWriteBlocksOnlyItsAccount(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "x", 100)
	require.NoError(t, err)

	inTx, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	txDone := make(chan error, 1)
	go func() {
		txDone <- e.runner.Run(ctx, func(ctx context.Context) error {
			if _, err := e.svc.Add(ctx, "x", 1); err != nil { // x is written, uncommitted
				return err
			}
			once.Do(func() { close(inTx) })
			<-release
			return nil
		})
	}()
	<-inTx
	xDone := make(chan error, 1)
	go func() { _, err := e.svc.Add(ctx, "x", 10); xDone <- err }() // leads x's lane, waits on the transaction

	// Another write to x queues behind it; its caller gives up while queued.
	queued, cancel := context.WithCancel(ctx)
	qDone := make(chan error, 1)
	go func() { _, err := e.svc.Add(queued, "x", 1000); qDone <- err }()
	cancel()

	// Every other account is served meanwhile (enough of them that any
	// grouping of accounts other than one per account would catch one).
	for i := range 300 {
		_, err := e.svc.Add(ctx, fmt.Sprintf("y%d", i), 1)
		require.NoError(t, err, "write to y%d while x waits", i)
	}
	assert.Equal(t, int64(1), e.balance(t, "y299").Balance)

	close(release)
	require.NoError(t, <-txDone)
	require.NoError(t, <-xDone)
	if err := <-qDone; err != nil {
		require.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, int64(111), e.balance(t, "x").Balance, "the abandoned write was not applied")
	} else {
		assert.Equal(t, int64(1111), e.balance(t, "x").Balance, "the write was sent before its caller gave up")
	}
}
