package credits_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/modules/credits"
)

// A key stays known while the entry it names moves out of the account
// document: a repeat after the copy returns the same entry, applies
// nothing, and other parameters are still a conflict.
func TestAKeySurvivesTheCopyOfItsEntry(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	first, err := e.svc.Add(ctx, "a", 40, credits.IdempotencyKey("k"))
	require.NoError(t, err)
	require.NoError(t, e.svc.Flush(ctx))
	assert.NotContains(t, e.stored(t, "a"), "pendingSince", "the entry left the document")

	var replayed bool
	again, err := e.svc.Add(ctx, "a", 40, credits.IdempotencyKey("k"), credits.Replayed(&replayed))
	require.NoError(t, err)
	assert.Equal(t, first, again)
	assert.True(t, replayed)
	_, err = e.svc.Add(ctx, "a", 41, credits.IdempotencyKey("k"))
	require.ErrorIs(t, err, credits.ErrIdempotencyConflict)
	assert.Equal(t, int64(40), e.balance(t, "a").Balance)
}

// Many callers with one key, some while the account's entries are being
// copied out: one effect, one entry, every caller gets it.
func TestOneKeyUnderConcurrentCopiesHasOneEffect(t *testing.T) {
	e := newEnv(t, credits.WithFlushEvery(1))
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "a", 1000)
	require.NoError(t, err)
	for round := range 5 {
		key := credits.IdempotencyKey("round-" + string(rune('a'+round)))
		var wg sync.WaitGroup
		ids := make([]string, 16)
		for i := range ids {
			wg.Go(func() {
				if i%4 == 0 {
					_ = e.svc.Flush(ctx)
				}
				en, err := e.svc.Deduct(ctx, "a", 10, key)
				if assert.NoError(t, err) {
					ids[i] = en.ID
				}
			})
		}
		wg.Wait()
		for _, id := range ids {
			assert.Equal(t, ids[0], id)
		}
	}
	assert.Equal(t, int64(950), e.balance(t, "a").Balance, "five keys, five deducts")
	_, n := e.ledgerSum(t, "a")
	assert.Equal(t, 6, n)
}

// Keys are remembered for their retention, then name new operations; a
// TTL index deletes their records.
func TestAKeyIsRememberedForItsRetention(t *testing.T) {
	e := newEnv(t, credits.WithKeyRetention(time.Hour))
	ctx := context.Background()
	first, err := e.svc.Add(ctx, "a", 5, credits.IdempotencyKey("daily"))
	require.NoError(t, err)

	e.clock.Advance(59 * time.Minute)
	again, err := e.svc.Add(ctx, "a", 5, credits.IdempotencyKey("daily"))
	require.NoError(t, err)
	assert.Equal(t, first, again, "within the retention: the first result")

	e.clock.Advance(2 * time.Minute)
	later, err := e.svc.Add(ctx, "a", 5, credits.IdempotencyKey("daily"))
	require.NoError(t, err)
	assert.NotEqual(t, first.ID, later.ID, "after the retention: a new operation")
	assert.Equal(t, int64(10), e.balance(t, "a").Balance)
	// …with other parameters too, and in a transaction.
	e.clock.Advance(2 * time.Hour)
	_, err = e.svc.Transfer(ctx, "a", "b", 3, credits.IdempotencyKey("daily"))
	require.NoError(t, err)

	cur, err := e.db.Collection("credit_idempotency").Indexes().List(ctx)
	require.NoError(t, err)
	var ixs []bson.M
	require.NoError(t, cur.All(ctx, &ixs))
	var ttl bson.M
	for _, ix := range ixs {
		if _, ok := ix["expireAfterSeconds"]; ok {
			ttl = ix
		}
	}
	require.NotNil(t, ttl, "a TTL index on the records")
	assert.Equal(t, bson.D{{Key: "expiresAt", Value: int32(1)}}, ttl["key"])

	var rec bson.M
	require.NoError(t, e.db.Collection("credit_idempotency").FindOne(ctx, bson.D{{Key: "_id", Value: "daily"}}).Decode(&rec))
	assert.Equal(t, "transfer", rec["op"])
	assert.Equal(t, e.clock.Now().Add(time.Hour), rec["expiresAt"].(bson.DateTime).Time().UTC())
}

// A key whose first attempt failed can be used again with the same
// parameters — also inside a transaction, which then finishes the claimed
// operation — but not with others.
func TestAFailedKeyedAttemptCanBeRetried(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "a", 10)
	require.NoError(t, err)
	_, err = e.svc.Deduct(ctx, "a", 30, credits.IdempotencyKey("buy"))
	require.ErrorIs(t, err, credits.ErrInsufficientCredits)
	_, err = e.svc.Deduct(ctx, "a", 31, credits.IdempotencyKey("buy"))
	require.ErrorIs(t, err, credits.ErrIdempotencyConflict)
	_, err = e.svc.Add(ctx, "a", 90)
	require.NoError(t, err)

	var inTx credits.Entry
	require.NoError(t, e.runner.Run(ctx, func(ctx context.Context) error {
		inTx, err = e.svc.Deduct(ctx, "a", 30, credits.IdempotencyKey("buy"))
		return err
	}))
	var replayed bool
	again, err := e.svc.Deduct(ctx, "a", 30, credits.IdempotencyKey("buy"), credits.Replayed(&replayed))
	require.NoError(t, err)
	assert.Equal(t, inTx, again)
	assert.True(t, replayed)
	assert.Equal(t, int64(70), e.balance(t, "a").Balance, "charged once")
}

// A keyed deduct refused for want of credits applied nothing and told its
// caller so: the same request repeated after a top-up is the first
// success, not a replay, and its entry is dated when it applied, after the
// top-up (finding credits-refused-claim-replayed-and-backdated). Both
// paths: the single-document one, and a transaction's.
func TestARefusedKeyedDeductRepeatedAfterATopUpIsAFirstSuccess(t *testing.T) {
	for _, inTx := range []bool{false, true} {
		t.Run(map[bool]string{false: "single document", true: "in a transaction"}[inTx], func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			_, err := e.svc.Add(ctx, "a", 10)
			require.NoError(t, err)
			key := credits.IdempotencyKey("buy-1")
			deduct := func(replayed *bool) (credits.Entry, error) {
				if !inTx {
					return e.svc.Deduct(ctx, "a", 50, key, credits.Replayed(replayed))
				}
				var en credits.Entry
				err := e.runner.Run(ctx, func(ctx context.Context) error {
					var err error
					en, err = e.svc.Deduct(ctx, "a", 50, key, credits.Replayed(replayed))
					return err
				})
				return en, err
			}
			_, err = e.svc.Deduct(ctx, "a", 50, key) // refused, on the single-document path
			require.ErrorIs(t, err, credits.ErrInsufficientCredits)

			e.clock.Advance(time.Minute)
			topUp, err := e.svc.Add(ctx, "a", 100)
			require.NoError(t, err)
			e.clock.Advance(time.Minute)

			var replayed bool
			got, err := deduct(&replayed)
			require.NoError(t, err)
			assert.False(t, replayed, "no earlier call succeeded: this one applied it")
			assert.Equal(t, int64(60), e.balance(t, "a").Balance)
			assert.True(t, got.CreatedAt.After(topUp.CreatedAt), "dated %v, before the top-up at %v", got.CreatedAt, topUp.CreatedAt)

			hist, _, err := e.svc.History(ctx, "a", credits.HistoryQuery{})
			require.NoError(t, err)
			for _, h := range hist {
				if h.ID == got.ID {
					assert.Equal(t, got.CreatedAt, h.CreatedAt, "the stored entry is the one returned")
				}
			}

			again, err := deduct(&replayed)
			require.NoError(t, err)
			assert.True(t, replayed, "a repeat of the success is a replay")
			assert.Equal(t, got.ID, again.ID)
			assert.Equal(t, int64(60), e.balance(t, "a").Balance)
		})
	}
}
