package credits_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/tx"
)

func TestAddCreatesTheAccountAndItsEntry(t *testing.T) {
	tests := []struct {
		name string
		opts []credits.OpOption
	}{
		{name: "fast path, no key"},
		{name: "transaction, with a key", opts: []credits.OpOption{credits.IdempotencyKey("k1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			opts := append([]credits.OpOption{credits.Reason("welcome bonus"), credits.Ref("promo", "p-1")}, tt.opts...)
			en, err := e.svc.Add(ctx, "user-1", 100, opts...)
			require.NoError(t, err)
			assert.NotEmpty(t, en.ID)
			assert.Equal(t, int64(100), en.Amount)
			assert.Equal(t, credits.KindCredit, en.Kind)
			assert.Equal(t, "welcome bonus", en.Reason)
			assert.Equal(t, "promo", en.RefKind)

			assert.Equal(t, credits.Balance{Account: "user-1", Balance: 100, Available: 100}, e.balance(t, "user-1"))
			hist, next, err := e.svc.History(ctx, "user-1", credits.HistoryQuery{})
			require.NoError(t, err)
			assert.Empty(t, next)
			require.Len(t, hist, 1)
			assert.Equal(t, en, hist[0])

			m := e.stored(t, "user-1")
			assert.Equal(t, int64(100), m["balance"])
			assert.Equal(t, int64(100), m["available"])
			assert.Equal(t, int64(0), m["held"])
		})
	}
}

func TestDeductIsGuarded(t *testing.T) {
	tests := []struct {
		name    string
		give    int64
		opts    []credits.OpOption
		want    int64 // balance after
		wantErr error
	}{
		{name: "deducts what is available", give: 30, want: 70},
		{name: "deducts everything", give: 100, want: 0},
		{name: "refuses to overdraw", give: 101, want: 100, wantErr: credits.ErrInsufficientCredits},
		{name: "refuses to overdraw with a key", give: 101, opts: []credits.OpOption{credits.IdempotencyKey("d")}, want: 100, wantErr: credits.ErrInsufficientCredits},
		{name: "deducts with a key", give: 60, opts: []credits.OpOption{credits.IdempotencyKey("d")}, want: 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			_, err := e.svc.Add(ctx, "a", 100)
			require.NoError(t, err)
			en, err := e.svc.Deduct(ctx, "a", tt.give, tt.opts...)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Zero(t, en)
			} else {
				require.NoError(t, err)
				assert.Equal(t, -tt.give, en.Amount)
				assert.Equal(t, credits.KindDebit, en.Kind)
			}
			assert.Equal(t, tt.want, e.balance(t, "a").Balance)
			sum, _ := e.ledgerSum(t, "a")
			assert.Equal(t, tt.want, sum)
		})
	}
}

func TestInputIsValidated(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "ok", 10)
	require.NoError(t, err)
	_, err = e.svc.Reserve(ctx, "ok", 5, time10m)
	require.NoError(t, err)

	tests := []struct {
		name string
		give func() error
		want error
	}{
		{name: "empty account", give: func() error { _, err := e.svc.Add(ctx, "", 1); return err }, want: credits.ErrInvalidAccount},
		{name: "operator as account", give: func() error { _, err := e.svc.Deduct(ctx, "$gt", 1); return err }, want: credits.ErrInvalidAccount},
		{name: "JSON as account", give: func() error { _, err := e.svc.Balance(ctx, `{"$ne":null}`); return err }, want: credits.ErrInvalidAccount},
		{name: "spaces in account", give: func() error { _, err := e.svc.Add(ctx, "a b", 1); return err }, want: credits.ErrInvalidAccount},
		{name: "too long account", give: func() error { _, err := e.svc.Add(ctx, strings.Repeat("x", 129), 1); return err }, want: credits.ErrInvalidAccount},
		{name: "bad transfer target", give: func() error { _, err := e.svc.Transfer(ctx, "ok", "$where", 1); return err }, want: credits.ErrInvalidAccount},
		{name: "transfer to itself", give: func() error { _, err := e.svc.Transfer(ctx, "ok", "ok", 1); return err }, want: credits.ErrInvalidAccount},
		{name: "zero amount", give: func() error { _, err := e.svc.Add(ctx, "ok", 0); return err }, want: credits.ErrInvalidAmount},
		{name: "negative amount", give: func() error { _, err := e.svc.Deduct(ctx, "ok", -5); return err }, want: credits.ErrInvalidAmount},
		{name: "negative transfer", give: func() error { _, err := e.svc.Transfer(ctx, "ok", "b", -1); return err }, want: credits.ErrInvalidAmount},
		{name: "zero reserve", give: func() error { _, err := e.svc.Reserve(ctx, "ok", 0, time10m); return err }, want: credits.ErrInvalidAmount},
		{name: "zero capture", give: func() error { _, err := e.svc.Capture(ctx, "nohold", 0); return err }, want: credits.ErrInvalidAmount},
		{name: "non-positive TTL", give: func() error { _, err := e.svc.Reserve(ctx, "ok", 1, 0); return err }, want: credits.ErrInvalidOption},
		{name: "too long key", give: func() error {
			_, err := e.svc.Add(ctx, "ok", 1, credits.IdempotencyKey(strings.Repeat("k", 257)))
			return err
		}, want: credits.ErrInvalidOption},
		{name: "operator as reference", give: func() error { _, err := e.svc.Add(ctx, "ok", 1, credits.Ref("$x", "1")); return err }, want: credits.ErrInvalidOption},
		{name: "bad cursor", give: func() error { _, _, err := e.svc.History(ctx, "ok", credits.HistoryQuery{Cursor: "!!"}); return err }, want: credits.ErrInvalidOption},
		{name: "bad limit", give: func() error { _, _, err := e.svc.History(ctx, "ok", credits.HistoryQuery{Limit: 5000}); return err }, want: credits.ErrInvalidOption},
		{name: "unknown account balance", give: func() error { _, err := e.svc.Balance(ctx, "nobody"); return err }, want: credits.ErrAccountNotFound},
		{name: "unknown account history", give: func() error { _, _, err := e.svc.History(ctx, "nobody", credits.HistoryQuery{}); return err }, want: credits.ErrAccountNotFound},
		{name: "deduct from unknown account", give: func() error { _, err := e.svc.Deduct(ctx, "nobody", 1); return err }, want: credits.ErrAccountNotFound},
		{name: "keyed deduct from unknown account", give: func() error { _, err := e.svc.Deduct(ctx, "nobody", 1, credits.IdempotencyKey("x")); return err }, want: credits.ErrAccountNotFound},
		{name: "transfer from unknown account", give: func() error { _, err := e.svc.Transfer(ctx, "nobody", "ok", 1); return err }, want: credits.ErrAccountNotFound},
		{name: "reserve on unknown account", give: func() error { _, err := e.svc.Reserve(ctx, "nobody", 1, time10m); return err }, want: credits.ErrAccountNotFound},
		{name: "deduct of held credits", give: func() error { _, err := e.svc.Deduct(ctx, "ok", 6); return err }, want: credits.ErrInsufficientCredits},
		{name: "capture of no hold", give: func() error { _, err := e.svc.Capture(ctx, "nohold", 1); return err }, want: credits.ErrHoldNotFound},
		{name: "capture of a malformed hold id", give: func() error { _, err := e.svc.Capture(ctx, "{$ne:1}", 1); return err }, want: credits.ErrHoldNotFound},
		{name: "release of no hold", give: func() error { _, err := e.svc.Release(ctx, "nohold"); return err }, want: credits.ErrHoldNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorIs(t, tt.give(), tt.want)
		})
	}
	assert.Equal(t, credits.Balance{Account: "ok", Balance: 10, Held: 5, Available: 5}, e.balance(t, "ok"))
	n, err := e.db.Collection("credit_accounts").CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "no account was created by a failed call")
}

func TestAddRefusesToOverflow(t *testing.T) {
	tests := []struct {
		name string
		opts []credits.OpOption
	}{
		{name: "fast path"},
		{name: "transaction", opts: []credits.OpOption{credits.IdempotencyKey("big")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			_, err := e.svc.Add(ctx, "rich", math.MaxInt64-1)
			require.NoError(t, err)
			_, err = e.svc.Add(ctx, "rich", 2, tt.opts...)
			require.ErrorIs(t, err, credits.ErrOverflow)
			_, err = e.svc.Transfer(ctx, "rich", "poor", 10)
			require.NoError(t, err)
			_, err = e.svc.Add(ctx, "poor", math.MaxInt64)
			require.ErrorIs(t, err, credits.ErrOverflow)
			assert.Equal(t, int64(math.MaxInt64-11), e.balance(t, "rich").Balance)
			assert.Equal(t, int64(10), e.balance(t, "poor").Balance)
		})
	}
}

func TestIdempotencyKeys(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	first, err := e.svc.Add(ctx, "a", 50, credits.IdempotencyKey("pay-1"), credits.Reason("top-up"))
	require.NoError(t, err)

	t.Run("the same key and parameters return the first result", func(t *testing.T) {
		again, err := e.svc.Add(ctx, "a", 50, credits.IdempotencyKey("pay-1"), credits.Reason("top-up"))
		require.NoError(t, err)
		assert.Equal(t, first, again)
		assert.Equal(t, int64(50), e.balance(t, "a").Balance)
	})

	tests := []struct {
		name string
		give func() error
	}{
		{name: "another amount", give: func() error {
			_, err := e.svc.Add(ctx, "a", 51, credits.IdempotencyKey("pay-1"), credits.Reason("top-up"))
			return err
		}},
		{name: "another account", give: func() error {
			_, err := e.svc.Add(ctx, "b", 50, credits.IdempotencyKey("pay-1"), credits.Reason("top-up"))
			return err
		}},
		{name: "another reason", give: func() error { _, err := e.svc.Add(ctx, "a", 50, credits.IdempotencyKey("pay-1")); return err }},
		{name: "another operation", give: func() error {
			_, err := e.svc.Deduct(ctx, "a", 50, credits.IdempotencyKey("pay-1"), credits.Reason("top-up"))
			return err
		}},
		{name: "a transfer", give: func() error { _, err := e.svc.Transfer(ctx, "a", "b", 5, credits.IdempotencyKey("pay-1")); return err }},
		{name: "a hold", give: func() error {
			_, err := e.svc.Reserve(ctx, "a", 5, time10m, credits.IdempotencyKey("pay-1"))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run("the same key with "+tt.name+" is a conflict", func(t *testing.T) {
			require.ErrorIs(t, tt.give(), credits.ErrIdempotencyConflict)
		})
	}
	assert.Equal(t, int64(50), e.balance(t, "a").Balance)
	_, n := e.ledgerSum(t, "a")
	assert.Equal(t, 1, n)

	t.Run("a keyed deduct, transfer and hold apply once", func(t *testing.T) {
		for range 3 {
			_, err := e.svc.Deduct(ctx, "a", 5, credits.IdempotencyKey("d-1"))
			require.NoError(t, err)
			_, err = e.svc.Transfer(ctx, "a", "b", 7, credits.IdempotencyKey("t-1"))
			require.NoError(t, err)
			_, err = e.svc.Reserve(ctx, "a", 3, time10m, credits.IdempotencyKey("h-1"))
			require.NoError(t, err)
		}
		assert.Equal(t, credits.Balance{Account: "a", Balance: 38, Held: 3, Available: 35}, e.balance(t, "a"))
		assert.Equal(t, int64(7), e.balance(t, "b").Balance)
	})
}

func TestTransferIsAtomic(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "from", 100)
	require.NoError(t, err)

	tr, err := e.svc.Transfer(ctx, "from", "to", 40, credits.Reason("gift"))
	require.NoError(t, err)
	assert.Equal(t, int64(-40), tr.Debit.Amount)
	assert.Equal(t, int64(40), tr.Credit.Amount)
	assert.Equal(t, tr.ID, tr.Debit.TransferID)
	assert.Equal(t, tr.ID, tr.Credit.TransferID)

	_, err = e.svc.Transfer(ctx, "from", "to", 61)
	require.ErrorIs(t, err, credits.ErrInsufficientCredits)

	assert.Equal(t, int64(60), e.balance(t, "from").Balance)
	assert.Equal(t, int64(40), e.balance(t, "to").Balance)
	hist, _, err := e.svc.History(ctx, "to", credits.HistoryQuery{})
	require.NoError(t, err)
	require.Len(t, hist, 1)
	assert.Equal(t, tr.Credit, hist[0])
}

// The seed's rollback test, done right: a transaction that fails after
// crediting leaves neither a balance change nor an entry.
func TestAFailingTransactionLeavesBalanceAndLedgerUntouched(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		give func(ctx context.Context, s *credits.Service) error
	}{
		{name: "add", give: func(ctx context.Context, s *credits.Service) error { _, err := s.Add(ctx, "a", 100); return err }},
		{name: "keyed add", give: func(ctx context.Context, s *credits.Service) error {
			_, err := s.Add(ctx, "a", 100, credits.IdempotencyKey("k"))
			return err
		}},
		{name: "deduct", give: func(ctx context.Context, s *credits.Service) error { _, err := s.Deduct(ctx, "a", 10); return err }},
		{name: "transfer", give: func(ctx context.Context, s *credits.Service) error {
			_, err := s.Transfer(ctx, "a", "b", 10)
			return err
		}},
		{name: "reserve", give: func(ctx context.Context, s *credits.Service) error {
			_, err := s.Reserve(ctx, "a", 10, time10m)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			_, err := e.svc.Add(ctx, "a", 50)
			require.NoError(t, err)

			err = e.runner.Run(ctx, func(ctx context.Context) error {
				if err := tt.give(ctx, e.svc); err != nil {
					return err
				}
				return boom
			})
			require.ErrorIs(t, err, boom)

			assert.Equal(t, credits.Balance{Account: "a", Balance: 50, Available: 50}, e.balance(t, "a"))
			sum, n := e.ledgerSum(t, "a")
			assert.Equal(t, int64(50), sum)
			assert.Equal(t, 1, n)
			_, err = e.svc.Balance(ctx, "b")
			require.ErrorIs(t, err, credits.ErrAccountNotFound)

			t.Run("and the key stays unused", func(t *testing.T) {
				_, err := e.svc.Deduct(ctx, "a", 1, credits.IdempotencyKey("k"))
				require.NoError(t, err)
			})
		})
	}
}

func TestAJoinedMutationCommitsWithItsCaller(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	err := e.runner.Run(ctx, func(ctx context.Context) error {
		require.True(t, tx.InTransaction(ctx))
		if _, err := e.svc.Add(ctx, "a", 10); err != nil {
			return err
		}
		_, err := e.svc.Deduct(ctx, "a", 4)
		return err
	})
	require.NoError(t, err)
	assert.Equal(t, int64(6), e.balance(t, "a").Balance)
}

func TestHistoryPagesNewestFirstAcrossEmbeddedAndCopiedEntries(t *testing.T) {
	e := newEnv(t, credits.WithFlushEvery(1000))
	ctx := context.Background()
	var want []string
	for i := range 25 {
		en, err := e.svc.Add(ctx, "a", int64(i+1))
		require.NoError(t, err)
		want = append([]string{en.ID}, want...)
		if i == 11 {
			require.NoError(t, e.svc.Flush(ctx)) // half copied out, half embedded
		}
		if i%3 == 0 {
			e.clock.Advance(time1ms)
		}
	}
	var got []string
	q := credits.HistoryQuery{Limit: 7}
	for {
		es, next, err := e.svc.History(ctx, "a", q)
		require.NoError(t, err)
		for _, en := range es {
			got = append(got, en.ID)
		}
		if next == "" {
			break
		}
		q.Cursor = next
	}
	assert.Equal(t, want, got)
}

func TestReconcileReportsEveryMismatch(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "a", 10)
	require.NoError(t, err)
	_, err = e.svc.Add(ctx, "b", 10, credits.IdempotencyKey("k"))
	require.NoError(t, err)
	_, err = e.svc.Reserve(ctx, "b", 4, time10m)
	require.NoError(t, err)

	r, err := e.svc.Reconcile(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, r.Accounts)
	assert.Empty(t, r.Mismatches)

	accounts := e.db.Collection("credit_accounts")
	_, err = accounts.UpdateOne(ctx, bson.D{{Key: "_id", Value: "a"}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "balance", Value: 5}}}})
	require.NoError(t, err)
	_, err = accounts.UpdateOne(ctx, bson.D{{Key: "_id", Value: "b"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "held", Value: 0}}}})
	require.NoError(t, err)

	r, err = e.svc.Reconcile(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, r.Accounts)
	got := map[string]bool{}
	for _, m := range r.Mismatches {
		got[m.Account+"."+m.Field] = true
	}
	assert.Equal(t, map[string]bool{"a.balance": true, "a.available": true, "b.held": true, "b.available": true}, got)

	// Put it back, for the cleanup's check.
	_, err = accounts.UpdateOne(ctx, bson.D{{Key: "_id", Value: "a"}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "balance", Value: -5}}}})
	require.NoError(t, err)
	_, err = accounts.UpdateOne(ctx, bson.D{{Key: "_id", Value: "b"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "held", Value: 4}}}})
	require.NoError(t, err)
}
