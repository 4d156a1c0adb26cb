package payments_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/modules/payments"
	"github.com/txkit/txkit/tx"
)

type env struct {
	retries  *retryCounter
	db       *mongo.Database
	credits  *credits.Service
	payments *payments.Service
}

func newEnv(t testing.TB) *env {
	t.Helper()
	db := testenv.DB(t)
	rc := &retryCounter{}
	r := tx.NewRunner(db.Client(), tx.WithObserver(rc))
	c := credits.NewService(db, r)
	p := payments.NewService(db, r, c)
	ctx := context.Background()
	require.NoError(t, c.EnsureSchema(ctx))
	require.NoError(t, p.EnsureSchema(ctx))
	e := &env{db: db, credits: c, payments: p, retries: rc}
	t.Cleanup(func() {
		rep, err := c.Reconcile(context.Background())
		require.NoError(t, err)
		assert.Empty(t, rep.Mismatches, "reconcile")
	})
	return e
}

var n int

// retryCounter counts the runner's retries, to prove a fault was hit.
type retryCounter struct{ n atomic.Int32 }

func (c *retryCounter) Observe(ev tx.Event) {
	if ev.Kind == tx.EventRetry {
		c.n.Add(1)
	}
}

func (e *env) create(t *testing.T, credits int64) payments.Payment {
	t.Helper()
	n++
	p, err := e.payments.Create(context.Background(), payments.NewPayment{
		Account: "user-1", AmountMinor: 999, Currency: "EUR", Credits: credits, Provider: "stripe", ProviderRef: fmt.Sprintf("pi_%d", n),
	})
	require.NoError(t, err)
	require.Equal(t, payments.StatusPending, p.Status)
	return p
}

func (e *env) balance(t *testing.T) int64 {
	t.Helper()
	b, err := e.credits.Balance(context.Background(), "user-1")
	if errors.Is(err, credits.ErrAccountNotFound) {
		return 0
	}
	require.NoError(t, err)
	return b.Balance
}

// entries returns how many ledger entries refer to payment id.
func (e *env) entries(t *testing.T, id string) int64 {
	t.Helper()
	n, err := e.db.Collection("credit_entries").CountDocuments(context.Background(), bson.D{{Key: "refKind", Value: "payment"}, {Key: "refId", Value: id}})
	require.NoError(t, err)
	return n
}

func TestCompleteCreditsOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := e.create(t, 100)

	done, err := e.payments.Complete(ctx, p.ID)
	require.NoError(t, err)
	assert.Equal(t, payments.StatusCompleted, done.Status)
	assert.NotEmpty(t, done.CreditEntryID)

	again, err := e.payments.CompleteByRef(ctx, "stripe", p.ProviderRef)
	require.NoError(t, err)
	assert.Equal(t, done, again, "a repeated completion returns the payment unchanged")
	got, err := e.payments.GetPayment(ctx, p.ID)
	require.NoError(t, err)
	assert.Equal(t, done, got)
	assert.Equal(t, int64(100), e.balance(t))
	assert.Equal(t, int64(1), e.entries(t, p.ID))
}

func TestFailByRefFailsThePendingPayment(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := e.create(t, 100)

	failed, err := e.payments.FailByRef(ctx, "stripe", p.ProviderRef, "card declined")
	require.NoError(t, err)
	assert.Equal(t, payments.StatusFailed, failed.Status)
	got, err := e.payments.GetPayment(ctx, p.ID)
	require.NoError(t, err)
	assert.Equal(t, payments.StatusFailed, got.Status, "stored as failed")
	assert.Equal(t, int64(0), e.balance(t))
	assert.Equal(t, int64(0), e.entries(t, p.ID))

	// The customer retries with another card: the provider's success wins.
	done, err := e.payments.CompleteByRef(ctx, "stripe", p.ProviderRef)
	require.NoError(t, err)
	assert.Equal(t, payments.StatusCompleted, done.Status)
	assert.Equal(t, int64(100), e.balance(t), "money that arrived is credited")
	assert.Equal(t, int64(1), e.entries(t, p.ID))

	_, err = e.payments.FailByRef(ctx, "stripe", p.ProviderRef, "late failure")
	require.ErrorIs(t, err, payments.ErrInvalidTransition, "a late failure never undoes a completion")
	assert.Equal(t, int64(100), e.balance(t))
}

func TestTransitions(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, e *env, p payments.Payment)
		give    func(e *env, id string) (payments.Payment, error)
		want    payments.Status
		wantErr error
		balance int64
	}{
		{name: "pending fails", give: fail, want: payments.StatusFailed},
		{name: "failed fails again unchanged", setup: failed, give: fail, want: payments.StatusFailed},
		{name: "failed completes when the provider reports success after all", setup: failed, give: complete, want: payments.StatusCompleted, balance: 100},
		{name: "failed cannot be refunded", setup: failed, give: refund, wantErr: payments.ErrInvalidTransition},
		{name: "pending cannot be refunded", give: refund, wantErr: payments.ErrInvalidTransition},
		{name: "completed cannot fail", setup: completed, give: fail, wantErr: payments.ErrInvalidTransition, balance: 100},
		{name: "completed is refunded", setup: completed, give: refund, want: payments.StatusRefunded},
		{name: "refunded is refunded again unchanged", setup: refunded, give: refund, want: payments.StatusRefunded},
		{name: "refunded cannot complete", setup: refunded, give: complete, wantErr: payments.ErrInvalidTransition},
		{name: "spent credits cannot be refunded", setup: func(t *testing.T, e *env, p payments.Payment) {
			completed(t, e, p)
			_, err := e.credits.Deduct(context.Background(), "user-1", 30)
			require.NoError(t, err)
		}, give: refund, wantErr: credits.ErrInsufficientCredits, balance: 70},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			p := e.create(t, 100)
			before := p
			if tt.setup != nil {
				tt.setup(t, e, p)
				var err error
				before, err = e.payments.Get(context.Background(), p.ID)
				require.NoError(t, err)
			}
			got, err := tt.give(e, p.ID)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				after, err := e.payments.Get(context.Background(), p.ID)
				require.NoError(t, err)
				assert.Equal(t, before, after, "nothing changed")
			} else {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got.Status)
			}
			assert.Equal(t, tt.balance, e.balance(t))
		})
	}
}

func complete(e *env, id string) (payments.Payment, error) {
	return e.payments.Complete(context.Background(), id)
}
func fail(e *env, id string) (payments.Payment, error) {
	return e.payments.Fail(context.Background(), id, "card declined")
}
func refund(e *env, id string) (payments.Payment, error) {
	return e.payments.Refund(context.Background(), id)
}
func completed(t *testing.T, e *env, p payments.Payment) {
	_, err := complete(e, p.ID)
	require.NoError(t, err)
}
func failed(t *testing.T, e *env, p payments.Payment) {
	_, err := fail(e, p.ID)
	require.NoError(t, err)
}
func refunded(t *testing.T, e *env, p payments.Payment) {
	completed(t, e, p)
	_, err := refund(e, p.ID)
	require.NoError(t, err)
}

func TestCreateValidates(t *testing.T) {
	e := newEnv(t)
	ok := payments.NewPayment{Account: "user-1", AmountMinor: 500, Currency: "USD", Credits: 50, Provider: "stripe", ProviderRef: "pi_1"}
	_, err := e.payments.Create(context.Background(), ok)
	require.NoError(t, err)
	tests := []struct {
		name string
		give func(p *payments.NewPayment)
		want error
	}{
		{name: "duplicate provider reference", give: func(*payments.NewPayment) {}, want: payments.ErrDuplicateProviderRef},
		{name: "lower-case currency", give: func(p *payments.NewPayment) { p.Currency = "usd" }, want: payments.ErrInvalidPayment},
		{name: "long currency", give: func(p *payments.NewPayment) { p.Currency = "EURO" }, want: payments.ErrInvalidPayment},
		{name: "zero amount", give: func(p *payments.NewPayment) { p.AmountMinor = 0 }, want: payments.ErrInvalidPayment},
		{name: "negative credits", give: func(p *payments.NewPayment) { p.Credits = -1 }, want: payments.ErrInvalidPayment},
		{name: "operator as account", give: func(p *payments.NewPayment) { p.Account = "$gt" }, want: credits.ErrInvalidAccount},
		{name: "empty provider", give: func(p *payments.NewPayment) { p.Provider = "" }, want: payments.ErrInvalidPayment},
		{name: "bad provider reference", give: func(p *payments.NewPayment) { p.ProviderRef = "a b" }, want: payments.ErrInvalidPayment},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ok
			tt.give(&p)
			_, err := e.payments.Create(context.Background(), p)
			require.ErrorIs(t, err, tt.want)
		})
	}
	t.Run("unknown payments are not found", func(t *testing.T) {
		_, err := e.payments.Complete(context.Background(), "nope")
		require.ErrorIs(t, err, payments.ErrPaymentNotFound)
		_, err = e.payments.CompleteByRef(context.Background(), "stripe", "nope")
		require.ErrorIs(t, err, payments.ErrPaymentNotFound)
		_, err = e.payments.FailByRef(context.Background(), "stripe", "nope", "declined")
		require.ErrorIs(t, err, payments.ErrPaymentNotFound)
		_, err = e.payments.FailByRef(context.Background(), "stripe", `{"$gt":""}`, "declined")
		require.ErrorIs(t, err, payments.ErrPaymentNotFound)
		_, err = e.payments.Get(context.Background(), "{$ne:1}")
		require.ErrorIs(t, err, payments.ErrPaymentNotFound)
	})
}

func TestConcurrentCompletionsCreditOnce(t *testing.T) {
	e := newEnv(t)
	p := e.create(t, 100)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				_, err = e.payments.Complete(context.Background(), p.ID)
			} else {
				_, err = e.payments.CompleteByRef(context.Background(), "stripe", p.ProviderRef)
			}
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.Equal(t, int64(100), e.balance(t))
	assert.Equal(t, int64(1), e.entries(t, p.ID))
}

func TestListPagesNewestFirst(t *testing.T) {
	e := newEnv(t)
	var want []string
	for range 5 {
		want = append([]string{e.create(t, 1).ID}, want...)
	}
	var got []string
	q := payments.ListQuery{Limit: 2}
	for {
		ps, next, err := e.payments.List(context.Background(), "user-1", q)
		require.NoError(t, err)
		for _, p := range ps {
			got = append(got, p.ID)
		}
		if next == "" {
			break
		}
		q.Cursor = next
	}
	assert.Equal(t, want, got)
	ps, _, err := e.payments.List(context.Background(), "user-1", payments.ListQuery{Status: payments.StatusCompleted})
	require.NoError(t, err)
	assert.Empty(t, ps)
}

func TestFailKeepsALongReasonValidUTF8(t *testing.T) {
	e := newEnv(t)
	p := e.create(t, 100)
	reason := strings.Repeat("é", 400) // 800 bytes: a byte cut at 512 would split a rune
	failed, err := e.payments.Fail(context.Background(), p.ID, reason)
	require.NoError(t, err)
	got, err := e.payments.Get(context.Background(), failed.ID)
	require.NoError(t, err)
	assert.True(t, utf8.ValidString(got.FailureReason), "stored reason is valid UTF-8")
	assert.LessOrEqual(t, len(got.FailureReason), 512)
	assert.True(t, strings.HasPrefix(reason, got.FailureReason))
}
