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

// wceOnUpdates makes the next times updates of client wait blockMS on
// the server, then run, then carry a write concern error (code 64, not
// retryable): applied or not, their sender cannot tell from the reply.
func wceOnUpdates(t *testing.T, e *env, times, blockMS int) {
	t.Helper()
	data := bson.D{
		{Key: "failCommands", Value: bson.A{"update"}},
		{Key: "writeConcernError", Value: bson.D{{Key: "code", Value: int32(64)}, {Key: "codeName", Value: "WriteConcernFailed"}, {Key: "errmsg", Value: "injected"}}},
	}
	if blockMS > 0 {
		data = append(data, bson.E{Key: "blockConnection", Value: true}, bson.E{Key: "blockTimeMS", Value: blockMS})
	}
	testenv.FailCommand(t, e.db.Client(), bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: bson.D{{Key: "times", Value: times}}},
		{Key: "data", Value: data},
	})
}

// Two calls of one key, dated the same millisecond (a frozen or coarse
// clock; two goroutines of one process), the second one's send of the
// key's entry answered with a write concern error after the first's
// applied it: docs/credits.md says Replayed is "false for exactly one call
// of a key, the one that applied it". Both calls say they applied it.
func TestOnlyOneCallOfAKeyDatedTheSameMillisecondIsItsFirstSuccess(t *testing.T) {
	if testenv.Real() {
		t.Skip("fail points")
	}
	e := newEnv(t) // its clock stands still: both calls are dated alike
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "alice", 100)
	require.NoError(t, err)

	// Both sends of the entry wait 300 ms on the server, then run (the
	// first applies it, the second's guard refuses it) and carry a write
	// concern error.
	wceOnUpdates(t, e, 4, 300) // block and error each take an activation
	var wg sync.WaitGroup
	var got [2]credits.Entry
	var errs [2]error
	replayed := [2]bool{true, true}
	for i := range 2 {
		wg.Go(func() {
			got[i], errs[i] = e.svc.Deduct(ctx, "alice", 30, credits.IdempotencyKey("buy-1"), credits.Replayed(&replayed[i]))
		})
		time.Sleep(100 * time.Millisecond) // the second finds the key claimed, its entry not applied yet
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	assert.EqualValues(t, 70, e.balance(t, "alice").Balance, "applied once")
	assert.Equal(t, got[0], got[1], "both return the entry stored")
	t.Logf("replayed %v, entries %+v", replayed, got)
	assert.True(t, replayed[0] || replayed[1], "both calls say they are the key's first success (Replayed false)")
}

// A Deduct from an account that does not exist fails with
// ErrAccountNotFound and changes nothing, even when its write's
// connection closes (its outcome is then resolved): "a call that failed
// with a definite error applied nothing".
func TestADeductFromAMissingAccountCreatesNothingWhenItsWriteIsCut(t *testing.T) {
	if testenv.Real() {
		t.Skip("fail points")
	}
	for _, keyed := range []bool{false, true} {
		t.Run(fmt.Sprintf("keyed %v", keyed), func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			var opts []credits.OpOption
			if keyed {
				opts = append(opts, credits.IdempotencyKey("ghost-1"))
			}
			testenv.FailCommand(t, e.db.Client(), bson.D{
				{Key: "configureFailPoint", Value: "failCommand"},
				{Key: "mode", Value: bson.D{{Key: "times", Value: 2}}}, // the write and the driver's retry
				{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"update"}}, {Key: "closeConnection", Value: true}}},
			})
			_, err := e.svc.Deduct(ctx, "ghost", 10, opts...)
			assert.ErrorIs(t, err, credits.ErrAccountNotFound, "the account does not exist")
			_, err = e.svc.Balance(ctx, "ghost")
			assert.ErrorIs(t, err, credits.ErrAccountNotFound, "the failed Deduct created the account")
			n, err := e.db.Collection(e.prefix+"accounts").CountDocuments(ctx, bson.D{{Key: "_id", Value: "ghost"}})
			require.NoError(t, err)
			assert.Zero(t, n, "account documents")
		})
	}
}

// A caller's transaction that finishes two claimed keys of one account
// raises the account's flush count twice (the fence of each) and reads it
// in between; when that transaction aborts, the count read must not be
// taken for one observed on the server. Afterwards a keyed Deduct whose
// write is held on the server while another process applies the key's
// entry and copies it out must still apply it at most once: "a retry of a
// key applies at most once ever".
func TestAnAbortedTransactionCannotLetAKeysEntryApplyTwice(t *testing.T) {
	if testenv.Real() {
		t.Skip("fail points")
	}
	uri := testenv.URI(t)
	c1, c2 := testenv.Connect(t, uri), testenv.Connect(t, uri)
	name := "attack16_abort"
	e := newEnvOn(t, c1.Database(name), "credit_")
	other := credits.NewService(c2.Database(name), tx.NewRunner(c2), credits.WithClock(e.clock.Now), credits.WithCollectionPrefix("credit_"))
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "hot", 100)
	require.NoError(t, err)
	// Two keys claimed by refused debits: their entries are not applied.
	for _, k := range []string{"k1", "k2"} {
		_, err := e.svc.Deduct(ctx, "hot", 1000, credits.IdempotencyKey(k))
		require.ErrorIs(t, err, credits.ErrInsufficientCredits)
	}
	// A caller's transaction tops the account up and finishes both keys,
	// then gives up: nothing of it stays.
	errGiveUp := errors.New("give up")
	err = e.runner.Run(ctx, func(ctx context.Context) error {
		if _, err := e.svc.Add(ctx, "hot", 10_000); err != nil {
			return err
		}
		for _, k := range []string{"k1", "k2"} {
			if _, err := e.svc.Deduct(ctx, "hot", 1000, credits.IdempotencyKey(k)); err != nil {
				return err
			}
		}
		return errGiveUp
	})
	require.ErrorIs(t, err, errGiveUp)
	require.EqualValues(t, 100, e.balance(t, "hot").Balance, "the aborted transaction left nothing")

	// A keyed Deduct in this process: its write waits 500 ms on the
	// server. Meanwhile the other process repeats the key (it applies the
	// entry: the key's first success) and copies the entry out.
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
		got, err = e.svc.Deduct(ctx, "hot", 30, credits.IdempotencyKey("buy-1"), credits.Replayed(&replayed))
	})
	time.Sleep(100 * time.Millisecond)
	var otherReplayed bool
	otherGot, otherErr := other.Deduct(ctx, "hot", 30, credits.IdempotencyKey("buy-1"), credits.Replayed(&otherReplayed))
	require.NoError(t, otherErr)
	require.False(t, otherReplayed, "the other process applied it")
	require.NoError(t, other.Flush(ctx))
	wg.Wait()
	require.NoError(t, err)
	assert.Equal(t, otherGot, got)
	assert.True(t, replayed, "the held call says it applied the key's entry, which the other process had applied")
	assert.EqualValues(t, 70, e.balance(t, "hot").Balance, "the key's debit applied twice")
	sum, _ := e.ledgerSum(t, "hot")
	assert.EqualValues(t, 70, sum, "ledger")
}

// The ledger's keys hold with the database dropped under the running
// service (TestKeysHoldAfterTheDatabaseIsDropped), so its epoch cache
// must not outlive the counts it caches: after a drop, an account starts
// again at flush count 0 while this process remembers 2. A keyed Deduct
// whose write is held on the server while another process applies the
// key's entry and copies it out must still apply it once.
func TestAKeysEntryAppliesOnceAfterTheDatabaseIsDropped(t *testing.T) {
	if testenv.Real() {
		t.Skip("fail points")
	}
	uri := testenv.URI(t)
	c1, c2 := testenv.Connect(t, uri), testenv.Connect(t, uri)
	name := "attack16_drop"
	e := newEnvOn(t, c1.Database(name), "credit_")
	ctx := context.Background()
	for range 2 { // two copies: this process has seen flush count 2
		_, err := e.svc.Add(ctx, "hot", 100)
		require.NoError(t, err)
		require.NoError(t, e.svc.Flush(ctx))
	}
	require.NoError(t, e.db.Drop(ctx))
	other := credits.NewService(c2.Database(name), tx.NewRunner(c2), credits.WithClock(e.clock.Now), credits.WithCollectionPrefix("credit_"))
	_, err := e.svc.Add(ctx, "hot", 100)
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
		got, err = e.svc.Deduct(ctx, "hot", 30, credits.IdempotencyKey("buy-1"), credits.Replayed(&replayed))
	})
	time.Sleep(100 * time.Millisecond)
	otherGot, otherErr := other.Deduct(ctx, "hot", 30, credits.IdempotencyKey("buy-1"))
	require.NoError(t, otherErr)
	require.NoError(t, other.Flush(ctx))
	wg.Wait()
	require.NoError(t, err)
	assert.Equal(t, otherGot, got)
	assert.True(t, replayed, "the held call says it applied the key's entry, which the other process had applied")
	assert.EqualValues(t, 70, e.balance(t, "hot").Balance, "the key's debit applied twice")
}

// The same double application in ONE process: after the aborted
// transaction, the key's entry is applied by the same process's caller
// transaction (which finishes the claim, fence included) while the
// single-document write of the first call is held on the server.
func TestAnAbortedTransactionCannotLetAKeysEntryApplyTwiceInOneProcess(t *testing.T) {
	if testenv.Real() {
		t.Skip("fail points")
	}
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "hot", 100)
	require.NoError(t, err)
	for _, k := range []string{"k1", "k2"} {
		_, err := e.svc.Deduct(ctx, "hot", 1000, credits.IdempotencyKey(k))
		require.ErrorIs(t, err, credits.ErrInsufficientCredits)
	}
	errGiveUp := errors.New("give up")
	err = e.runner.Run(ctx, func(ctx context.Context) error {
		if _, err := e.svc.Add(ctx, "hot", 10_000); err != nil {
			return err
		}
		for _, k := range []string{"k1", "k2"} {
			if _, err := e.svc.Deduct(ctx, "hot", 1000, credits.IdempotencyKey(k)); err != nil {
				return err
			}
		}
		return errGiveUp
	})
	require.ErrorIs(t, err, errGiveUp)

	testenv.FailCommand(t, e.db.Client(), bson.D{
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
		got, err = e.svc.Deduct(ctx, "hot", 30, credits.IdempotencyKey("buy-1"), credits.Replayed(&replayed))
	})
	time.Sleep(100 * time.Millisecond)
	var txReplayed bool
	txGot, txErr := tx.Do(ctx, e.runner, func(ctx context.Context) (credits.Entry, error) {
		return e.svc.Deduct(ctx, "hot", 30, credits.IdempotencyKey("buy-1"), credits.Replayed(&txReplayed))
	})
	require.NoError(t, txErr)
	require.False(t, txReplayed, "the caller's transaction applied it")
	wg.Wait()
	require.NoError(t, err)
	assert.Equal(t, txGot, got)
	assert.True(t, replayed, "the held call says it applied the key's entry, which the transaction had applied")
	assert.EqualValues(t, 70, e.balance(t, "hot").Balance, "the key's debit applied twice")
}

// A flush run in a caller's transaction (Flush called with its ctx)
// raises the account's flush count there; when the transaction aborts,
// that count must not be taken for one observed on the server: a key's
// entry, applied by a caller's transaction while the first call's write
// is held on the server, still applies once.
func TestAFlushInAnAbortedTransactionCannotLetAKeysEntryApplyTwice(t *testing.T) {
	if testenv.Real() {
		t.Skip("fail points")
	}
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "hot", 100)
	require.NoError(t, err)
	errGiveUp := errors.New("give up")
	err = e.runner.Run(ctx, func(ctx context.Context) error {
		if err := e.svc.Flush(ctx); err != nil {
			return err
		}
		return errGiveUp
	})
	require.ErrorIs(t, err, errGiveUp)

	testenv.FailCommand(t, e.db.Client(), bson.D{
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
		got, err = e.svc.Deduct(ctx, "hot", 30, credits.IdempotencyKey("buy-1"), credits.Replayed(&replayed))
	})
	time.Sleep(100 * time.Millisecond)
	var txReplayed bool
	txGot, txErr := tx.Do(ctx, e.runner, func(ctx context.Context) (credits.Entry, error) {
		return e.svc.Deduct(ctx, "hot", 30, credits.IdempotencyKey("buy-1"), credits.Replayed(&txReplayed))
	})
	require.NoError(t, txErr)
	require.False(t, txReplayed, "the caller's transaction applied it")
	wg.Wait()
	require.NoError(t, err)
	assert.Equal(t, txGot, got)
	assert.True(t, replayed, "the held call says it applied the key's entry, which the transaction had applied")
	assert.EqualValues(t, 70, e.balance(t, "hot").Balance, "the key's debit applied twice")
}
