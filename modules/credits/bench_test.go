package credits_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/tx"
)

const hotCallers = 32

var optUpsert = options.UpdateOne().SetUpsert(true)

// BenchmarkDeductHotAccount measures deductions of 1 credit from one
// account by 32 concurrent callers, against the same server:
//
//   - txkit: Deduct, which takes the fast path (one guarded
//     single-document write that embeds the entry);
//   - txkit-keyed: Deduct with an idempotency key, which takes the same
//     path after claiming its key (its claim shares one insert with
//     concurrent claims);
//   - naive: the seed's design, in one transaction: read the account,
//     check, save it, insert the entry.
//
// Each checks afterwards that the balance and the ledger are exact.
func BenchmarkDeductHotAccount(b *testing.B) {
	db := testenv.DB(b)
	runner := tx.NewRunner(db.Client())

	b.Run("txkit", func(b *testing.B) {
		e := newEnvOn(b, db, "bench_fast_")
		benchHot(b, e, func(ctx context.Context, i int64) error {
			_, err := e.svc.Deduct(ctx, "hot", 1)
			return err
		})
	})
	b.Run("txkit-keyed", func(b *testing.B) {
		e := newEnvOn(b, db, "bench_keyed_")
		run := bson.NewObjectID().Hex() // b.Run calls this more than once
		benchHot(b, e, func(ctx context.Context, i int64) error {
			_, err := e.svc.Deduct(ctx, "hot", 1, credits.IdempotencyKey(fmt.Sprintf("%s-%d", run, i)))
			return err
		})
	})
	b.Run("naive", func(b *testing.B) {
		e := newEnvOn(b, db, "bench_naive_")
		accounts, entries := db.Collection("seed_accounts"), db.Collection("seed_entries")
		benchHot(b, e, func(ctx context.Context, _ int64) error {
			return runner.Run(ctx, func(ctx context.Context) error { return naiveDeduct(ctx, accounts, entries, "hot", 1) })
		})
	})
}

// naiveDeduct is the seed's deduct_credits: read, check, save, log.
func naiveDeduct(ctx context.Context, accounts, entries *mongo.Collection, account string, amount int64) error {
	var acc struct {
		Balance int64 `bson:"balance"`
	}
	if err := accounts.FindOne(ctx, bson.D{{Key: "_id", Value: account}}).Decode(&acc); err != nil {
		return err
	}
	if acc.Balance < amount {
		return credits.ErrInsufficientCredits
	}
	if _, err := accounts.UpdateOne(ctx, bson.D{{Key: "_id", Value: account}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "balance", Value: acc.Balance - amount}}}}); err != nil {
		return err
	}
	_, err := entries.InsertOne(ctx, bson.D{{Key: "account", Value: account}, {Key: "amount", Value: -amount}})
	return err
}

// benchHot runs b.N calls of deduct on one account from hotCallers
// goroutines, then checks that exactly b.N credits were deducted.
func benchHot(b *testing.B, e *env, deduct func(ctx context.Context, i int64) error) {
	ctx := context.Background()
	start := int64(b.N)
	naive := e.db.Collection("seed_accounts")
	_, err := e.svc.Add(ctx, "hot", start)
	require.NoError(b, err)
	_, before := e.ledgerSum(b, "hot") // b.Run may call us again on the same account
	_, err = naive.UpdateOne(ctx, bson.D{{Key: "_id", Value: "hot"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "balance", Value: start}}}}, optUpsert)
	require.NoError(b, err)

	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ResetTimer()
	for range hotCallers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := deduct(ctx, i); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deducts/s")

	if strings.HasSuffix(b.Name(), "/naive") {
		var acc struct {
			Balance int64 `bson:"balance"`
		}
		require.NoError(b, naive.FindOne(ctx, bson.D{{Key: "_id", Value: "hot"}}).Decode(&acc))
		require.Zero(b, acc.Balance, "naive final balance")
		n, err := e.db.Collection("seed_entries").CountDocuments(ctx, bson.D{})
		require.NoError(b, err)
		require.Equal(b, int64(b.N), n, "naive entries")
		_, err = e.db.Collection("seed_entries").DeleteMany(ctx, bson.D{})
		require.NoError(b, err)
		_, err = e.svc.Deduct(ctx, "hot", start) // keep the service's own ledger consistent
		require.NoError(b, err)
		return
	}
	require.Equal(b, credits.Balance{Account: "hot"}, e.balance(b, "hot"), "final balance")
	sum, n := e.ledgerSum(b, "hot")
	require.Zero(b, sum)
	require.Equal(b, b.N, n-before, "entries written")
}
