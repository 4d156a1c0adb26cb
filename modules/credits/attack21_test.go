package credits_test

// Tests from attack21 (38bcd72) and of their fix: the placeholder account
// that the fence of a credit's unknown outcome inserts (d797336), written
// to by an instance of the previous release (finding
// credits-placeholder-credited-by-previous-release).

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/modules/credits"
)

// prevWrite replays hotWriter.write of the previous release (a06a00d,
// before placeholders) of entry id, a credit (amount > 0) or a debit
// (amount < 0) of account, with the epoch it reads, exactly as it sends
// it: it knows no placeholder mark and leaves it. It requires the write
// to apply.
func prevWrite(t *testing.T, e *env, account, id string, amount int64) {
	t.Helper()
	bg := context.Background()
	var acc struct {
		Incarnation bson.ObjectID `bson:"incarnation"`
		Flushes     int64         `bson:"flushes"`
	}
	accounts := e.db.Collection(e.prefix + "accounts")
	require.NoError(t, accounts.FindOne(bg, bson.D{{Key: "_id", Value: account}}).Decode(&acc))
	now := e.clock.Now()
	kind := credits.KindCredit
	if amount < 0 {
		kind = credits.KindDebit
	}
	en := credits.Entry{ID: id, Account: account, Amount: amount, Kind: kind, CreatedAt: now}
	filter := bson.D{
		{Key: "_id", Value: account},
		{Key: "pending._id", Value: bson.D{{Key: "$ne", Value: en.ID}}},
		{Key: "pending.511", Value: bson.D{{Key: "$exists", Value: false}}},
		{Key: "incarnation", Value: acc.Incarnation},
		{Key: "flushes", Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$gt", Value: acc.Flushes}}}}},
	}
	update := bson.D{
		{Key: "$inc", Value: bson.D{{Key: "balance", Value: amount}, {Key: "available", Value: amount}}},
		{Key: "$push", Value: bson.D{{Key: "pending", Value: en}}},
		{Key: "$set", Value: bson.D{{Key: "updatedAt", Value: now}}},
		{Key: "$min", Value: bson.D{{Key: "pendingSince", Value: now}}},
	}
	if amount > 0 {
		filter = append(filter, bson.E{Key: "balance", Value: bson.D{{Key: "$lte", Value: int64(1<<63-1) - amount}}})
		update = append(update, bson.E{Key: "$setOnInsert", Value: bson.D{
			{Key: "held", Value: int64(0)}, {Key: "flushes", Value: int64(0)}, {Key: "createdAt", Value: now},
			{Key: "incarnation", Value: bson.NewObjectID()},
		}})
	} else {
		filter = append(filter, bson.E{Key: "available", Value: bson.D{{Key: "$gte", Value: -amount}}})
	}
	res, err := accounts.UpdateOne(bg, filter, update, options.UpdateOne().SetUpsert(amount > 0))
	require.NoError(t, err)
	require.EqualValues(t, 1, res.MatchedCount, "the previous release's write applies (and reports success)")
}

// prevTransfer replays a Transfer of the previous release from one
// existing account to another: debitTx's and creditTx's updates and the
// entries, in a transaction. creditTx matches the receiving document on
// its _id and knows no placeholder mark.
func prevTransfer(t *testing.T, e *env, id, from, to string, amount int64) {
	t.Helper()
	now := e.clock.Now()
	err := e.runner.Run(context.Background(), func(ctx context.Context) error {
		accounts := e.db.Collection(e.prefix + "accounts")
		res, err := accounts.UpdateOne(ctx, bson.D{{Key: "_id", Value: from}, {Key: "available", Value: bson.D{{Key: "$gte", Value: amount}}}},
			bson.D{{Key: "$inc", Value: bson.D{{Key: "balance", Value: -amount}, {Key: "available", Value: -amount}}}, {Key: "$set", Value: bson.D{{Key: "updatedAt", Value: now}}}})
		if err != nil {
			return err
		}
		require.EqualValues(t, 1, res.MatchedCount, "the previous release's Transfer debits the document")
		res, err = accounts.UpdateOne(ctx, bson.D{{Key: "_id", Value: to}, {Key: "balance", Value: bson.D{{Key: "$lte", Value: int64(1<<63-1) - amount}}}},
			bson.D{{Key: "$inc", Value: bson.D{{Key: "balance", Value: amount}, {Key: "available", Value: amount}}}, {Key: "$set", Value: bson.D{{Key: "updatedAt", Value: now}}}})
		if err != nil {
			return err
		}
		require.EqualValues(t, 1, res.MatchedCount, "the previous release's Transfer credits the document")
		_, err = e.db.Collection(e.prefix+"entries").InsertMany(ctx, []any{
			credits.Entry{ID: id + "-out", Account: from, Amount: -amount, Kind: credits.KindTransferOut, TransferID: id, CreatedAt: now},
			credits.Entry{ID: id + "-in", Account: to, Amount: amount, Kind: credits.KindTransferIn, TransferID: id, CreatedAt: now},
		})
		return err
	})
	require.NoError(t, err)
}

// During a rolling upgrade an instance of the previous release (a06a00d,
// before placeholders) runs next to this one on the same database, as
// docs/payments.md plans for. A placeholder that this release's fence
// left is, to that instance, an empty account: its credit (a hot-path Add,
// or a Transfer into it) matches the document and applies, and reports
// success, but does not clear the mark it does not know. The account then
// holds that instance's credit, and this release must not take it for a
// missing account: Balance and History answer ErrAccountNotFound for money
// that a successful call put there, while a Deduct from it succeeds (no
// debit can match a placeholder, says docs/credits.md: this one does), and
// Reconcile reports the ledger inconsistent.
func TestA21APlaceholderCreditedByThePreviousReleaseIsAnAccount(t *testing.T) {
	if testenv.Real() {
		t.Skip("fail points")
	}
	bg := context.Background()
	prev := []struct {
		name   string
		credit func(t *testing.T, e *env, account string, amount int64)
	}{
		// hotWriter.write of a06a00d, with the epoch it reads.
		{"its Add", func(t *testing.T, e *env, account string, amount int64) {
			prevWrite(t, e, account, "prev-add", amount)
		}},
		// A Transfer of a06a00d (the debit side is on another account).
		{"a Transfer into it", func(t *testing.T, e *env, account string, amount int64) {
			_, err := e.svc.Add(bg, "payer", amount)
			require.NoError(t, err)
			prevTransfer(t, e, "prev-t", "payer", account, amount)
		}},
	}
	for _, tt := range prev {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			failCutAdd(t, e, "p")
			time.Sleep(500 * time.Millisecond) // the held write was refused
			require.Equal(t, true, e.stored(t, "p")["placeholder"], "this release's fence left a placeholder")

			tt.credit(t, e, "p", 50)

			b, err := e.svc.Balance(bg, "p")
			if assert.NoError(t, err, "Balance of an account holding a credit that applied and succeeded") {
				assert.Equal(t, credits.Balance{Account: "p", Balance: 50, Available: 50}, b)
			}
			es, _, err := e.svc.History(bg, "p", credits.HistoryQuery{})
			if assert.NoError(t, err, "History") {
				assert.Len(t, es, 1)
			}
			_, err = e.svc.Deduct(bg, "p", 10)
			require.NoError(t, err, "a Deduct from it")
			b, err = e.svc.Balance(bg, "p")
			if assert.NoError(t, err, "Balance after a Deduct from it succeeded") {
				assert.EqualValues(t, 40, b.Balance)
			}
			r, err := e.svc.Reconcile(bg)
			require.NoError(t, err)
			assert.Empty(t, r.Mismatches, "Reconcile")
		})
	}
}

// An account that the previous release credited while it was a
// placeholder, and then debited back to exactly 0, still carries the mark
// (that release never clears it) and holds what the fence left: balance,
// held and available 0, no embedded entry once a copy ran. But it has
// entries: a credit made it an account, and nothing makes it missing
// again. Balance answers 0, History its entries, a Deduct
// ErrInsufficientCredits, and Reconcile counts it, consistent.
func TestAPlaceholderThatTheOlderReleaseCreditedAndEmptiedStaysAnAccount(t *testing.T) {
	if testenv.Real() {
		t.Skip("fail points")
	}
	bg := context.Background()
	tests := []struct {
		name     string
		give     func(t *testing.T, e *env)
		accounts int // Reconcile's count, p among them
	}{
		{"its Add, then its Deduct, copied out", func(t *testing.T, e *env) {
			prevWrite(t, e, "p", "prev-add", 50)
			prevWrite(t, e, "p", "prev-deduct", -50)
			require.NoError(t, e.svc.Flush(bg))
			require.Empty(t, e.stored(t, "p")["pending"], "no entry embedded")
		}, 1},
		{"its Add, then its Deduct, still embedded", func(t *testing.T, e *env) {
			prevWrite(t, e, "p", "prev-add", 50)
			prevWrite(t, e, "p", "prev-deduct", -50)
		}, 1},
		{"a Transfer into it, then one out of it", func(t *testing.T, e *env) {
			_, err := e.svc.Add(bg, "payer", 50)
			require.NoError(t, err)
			prevTransfer(t, e, "prev-t1", "payer", "p", 50)
			prevTransfer(t, e, "prev-t2", "p", "payer", 50)
			require.NotContains(t, e.stored(t, "p"), "pending", "no entry was ever embedded")
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			failCutAdd(t, e, "p")
			time.Sleep(500 * time.Millisecond) // the held write was refused
			tt.give(t, e)
			doc := e.stored(t, "p")
			require.Equal(t, true, doc["placeholder"], "the previous release left the mark")
			require.EqualValues(t, 0, doc["balance"])

			b, err := e.svc.Balance(bg, "p")
			if assert.NoError(t, err, "Balance") {
				assert.Equal(t, credits.Balance{Account: "p"}, b)
			}
			sum, n := e.ledgerSum(t, "p")
			assert.Equal(t, int64(0), sum)
			assert.Equal(t, 2, n, "History: the credit and the debit")
			_, err = e.svc.Deduct(bg, "p", 1)
			assert.ErrorIs(t, err, credits.ErrInsufficientCredits, "a Deduct from it")
			err = e.runner.Run(bg, func(ctx context.Context) error {
				_, err := e.svc.Deduct(ctx, "p", 1)
				return err
			})
			assert.ErrorIs(t, err, credits.ErrInsufficientCredits, "a Deduct from it in a transaction")
			_, err = e.svc.Reserve(bg, "p", 1, time.Minute)
			assert.ErrorIs(t, err, credits.ErrInsufficientCredits, "Reserve")
			r, err := e.svc.Reconcile(bg)
			require.NoError(t, err)
			assert.Equal(t, tt.accounts, r.Accounts, "Reconcile counts it")
			assert.Empty(t, r.Mismatches, "Reconcile")

			_, err = e.svc.Add(bg, "p", 5)
			require.NoError(t, err)
			assert.Equal(t, credits.Balance{Account: "p", Balance: 5, Available: 5}, e.balance(t, "p"))
			assert.NotContains(t, e.stored(t, "p"), "placeholder", "this release's credit clears the mark")
		})
	}
}
