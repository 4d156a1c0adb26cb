package credits_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/tx"
)

// goroutineClock dates each goroutine's calls by its id (base + id ms),
// so that an entry's date names the call that made it.
type goroutineClock struct{ base time.Time }

func (c goroutineClock) Now() time.Time {
	return c.base.Add(time.Duration(goroutineID()) * time.Millisecond)
}

func goroutineID() int64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	id, _ := strconv.ParseInt(string(b[:bytes.IndexByte(b, ' ')]), 10, 64)
	return id
}

// keyedCall is one call of a keyed operation and what it reported.
type keyedCall struct {
	key      string
	date     time.Time // its entry's, by goroutineClock
	err      error
	replayed bool
	got      credits.Entry
	how      string
}

// Keyed Adds and Deducts of a few hot keys on one hot account, from two
// processes (two clients, two services), some inside a transaction of
// their caller, cancelled at random, while the database blocks, loses
// replies, fails and closes connections. Then every key is repeated once
// without faults. For every key: its entry is applied at most once; the
// call whose date it carries (the call whose write applied it) reported
// success as the key's first success (not replayed) or
// ErrOutcomeUnknown, never a definite failure nor a replay; every other
// call that succeeded replayed that entry; the balance is the sum of
// what was applied.
func TestAStormOnHotKeysFromTwoProcessesKeepsTheKeyContracts(t *testing.T) {
	if testenv.Real() {
		t.Skip("fail points")
	}
	uri := testenv.URI(t)
	c1, c2 := testenv.Connect(t, uri), testenv.Connect(t, uri)
	name := "attack16_storm"
	clk := goroutineClock{base: time.Now().UTC().Truncate(time.Millisecond)}
	e := newEnvOn(t, c1.Database(name), "credit_", credits.WithClock(clk.Now), credits.WithFlushEvery(4))
	r2 := tx.NewRunner(c2)
	svc2 := credits.NewService(c2.Database(name), r2, credits.WithClock(clk.Now), credits.WithCollectionPrefix("credit_"), credits.WithFlushEvery(4))
	ctx := context.Background()
	const start = 1_000_000
	_, err := e.svc.Add(ctx, "hot", start)
	require.NoError(t, err)

	phases := []struct {
		name string
		fps  []bson.D
	}{
		{"blocked", []bson.D{{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: bson.D{{Key: "times", Value: 60}}},
			{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"update", "insert", "findAndModify", "commitTransaction", "find"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 30}}}}}},
		{"write concern errors", []bson.D{{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: bson.D{{Key: "times", Value: 60}}},
			{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"update", "insert", "findAndModify", "commitTransaction"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 20},
				{Key: "writeConcernError", Value: bson.D{{Key: "code", Value: int32(64)}, {Key: "codeName", Value: "WriteConcernFailed"}, {Key: "errmsg", Value: "injected"}}}}}}}},
		{"closed connections and lost replies", []bson.D{
			{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: bson.D{{Key: "times", Value: 12}}},
				{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"update", "insert", "findAndModify", "commitTransaction"}}, {Key: "closeConnection", Value: true}}}},
			{{Key: "configureFailPoint", Value: "onPrimaryTransactionalWrite"}, {Key: "mode", Value: bson.D{{Key: "times", Value: 12}}},
				{Key: "data", Value: bson.D{{Key: "closeConnection", Value: true}}}},
		}},
		{"errors", []bson.D{{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: bson.D{{Key: "times", Value: 30}}},
			{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"update", "insert", "findAndModify", "commitTransaction"}}, {Key: "errorCode", Value: int32(11600)}}}}}},
	}
	var (
		mu    sync.Mutex
		calls []keyedCall
	)
	op := func(ctx context.Context, svc *credits.Service, runner *tx.Runner, key string, inTx bool) keyedCall {
		c := keyedCall{key: key, date: clk.Now()}
		opts := []credits.OpOption{credits.IdempotencyKey(key), credits.Replayed(&c.replayed)}
		do := func(ctx context.Context) (credits.Entry, error) {
			if key[len(key)-1]%2 == 0 {
				return svc.Deduct(ctx, "hot", 2, opts...)
			}
			return svc.Add(ctx, "hot", 3, opts...)
		}
		c.how = fmt.Sprintf("svc%d tx=%v", map[bool]int{true: 1, false: 2}[svc == e.svc], inTx)
		if inTx {
			c.got, c.err = tx.Do(ctx, runner, do)
		} else {
			c.got, c.err = do(ctx)
		}
		return c
	}
	var keys []string
	for p, ph := range phases {
		for _, fp := range ph.fps {
			require.NoError(t, c1.Database("admin").RunCommand(ctx, fp).Err(), ph.name) // every client
		}
		var wg sync.WaitGroup
		for k := range 10 {
			key := fmt.Sprintf("p%d-k%d", p, k)
			keys = append(keys, key)
			for i := range 6 {
				wg.Go(func() {
					svc, runner := e.svc, e.runner
					if i%2 == 1 {
						svc, runner = svc2, r2
					}
					cctx, cancel := context.WithCancel(ctx)
					defer cancel()
					if i%3 != 0 {
						time.AfterFunc(time.Duration(rand.IntN(60))*time.Millisecond, cancel)
					}
					c := op(cctx, svc, runner, key, i == 4)
					mu.Lock()
					calls = append(calls, c)
					mu.Unlock()
				})
			}
		}
		wg.Wait()
		for _, fp := range ph.fps {
			require.NoError(t, c1.Database("admin").RunCommand(ctx, bson.D{{Key: "configureFailPoint", Value: fp[0].Value}, {Key: "mode", Value: "off"}}).Err())
		}
	}
	time.Sleep(500 * time.Millisecond) // writes held on the server land
	// Every key once more, without faults.
	var wg sync.WaitGroup
	for i, key := range keys {
		wg.Go(func() {
			svc, runner := e.svc, e.runner
			if i%2 == 1 {
				svc, runner = svc2, r2
			}
			c := op(ctx, svc, runner, key, i%3 == 0)
			mu.Lock()
			calls = append(calls, c)
			mu.Unlock()
		})
	}
	wg.Wait()

	stored := map[string][]credits.Entry{}
	q := credits.HistoryQuery{Limit: 1000}
	var sum int64
	for {
		es, next, err := e.svc.History(ctx, "hot", q)
		require.NoError(t, err)
		for _, en := range es {
			if en.IdempotencyKey != "" {
				stored[en.IdempotencyKey] = append(stored[en.IdempotencyKey], en)
			}
			sum += en.Amount
		}
		if next == "" {
			break
		}
		q.Cursor = next
	}
	assert.EqualValues(t, sum, e.balance(t, "hot").Balance, "balance is its ledger")
	var ok, failed, unknown int
	for _, key := range keys {
		s := stored[key]
		if !assert.Len(t, s, 1, "key %s applied once (its last repeat succeeded)", key) {
			continue
		}
		firsts := 0
		for _, c := range calls {
			if c.key != key {
				continue
			}
			unk := errors.Is(c.err, credits.ErrOutcomeUnknown) || errors.Is(c.err, tx.ErrCommitUnknown)
			switch {
			case c.err == nil:
				ok++
			case unk:
				unknown++
			default:
				failed++
				if !errors.Is(c.err, context.Canceled) {
					t.Logf("key %s (%s): %v", key, c.how, c.err)
				}
			}
			if c.date.Equal(s[0].CreatedAt) {
				assert.True(t, c.err == nil && !c.replayed || unk,
					"key %s: the call (%s) whose write applied its entry reported err=%v replayed=%v", key, c.how, c.err, c.replayed)
			} else if c.err == nil {
				assert.True(t, c.replayed, "key %s: a call (%s) that did not apply its entry says it did", key, c.how)
			}
			if c.err == nil {
				assert.Equal(t, s[0], c.got, "key %s: a call (%s) returned another entry than the one stored", key, c.how)
				if !c.replayed {
					firsts++
				}
			}
		}
		assert.LessOrEqual(t, firsts, 1, "key %s: first successes", key)
	}
	t.Logf("calls: ok %d, failed %d, unknown %d", ok, failed, unknown)
}

// Keys are values, never operators or paths: keys that look like query
// operators, paths, that hold NUL or invalid UTF-8, or are 256 bytes long
// are keys like any other (each its own, a repeat replays, other
// parameters conflict); a key of 257 bytes is refused with a typed error
// and records nothing.
func TestHostileKeysAreKeysLikeAnyOther(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	keys := []string{"$gt", "$where", "a.b", "pending.0", "_id", "a\x00b", "a\x00c", "\x00", "\xff\xfe", strings.Repeat("k", 256), "{\"$ne\": 1}", " ", "$"}
	for i, key := range keys {
		amount := int64(i + 1)
		en, err := e.svc.Add(ctx, "alice", amount, credits.IdempotencyKey(key))
		require.NoError(t, err, "key %q", key)
		var replayed bool
		again, err := e.svc.Add(ctx, "alice", amount, credits.IdempotencyKey(key), credits.Replayed(&replayed))
		require.NoError(t, err, "repeat of key %q", key)
		assert.True(t, replayed, "repeat of key %q", key)
		assert.Equal(t, en, again, "repeat of key %q", key)
		_, err = e.svc.Add(ctx, "alice", amount+1000, credits.IdempotencyKey(key))
		assert.ErrorIs(t, err, credits.ErrIdempotencyConflict, "key %q with other parameters", key)
	}
	want := int64(len(keys) * (len(keys) + 1) / 2)
	assert.Equal(t, want, e.balance(t, "alice").Balance)
	n, err := e.db.Collection(e.prefix+"idempotency").CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, len(keys), n, "one record per key")

	_, err = e.svc.Add(ctx, "alice", 1, credits.IdempotencyKey(strings.Repeat("k", 257)))
	require.ErrorIs(t, err, credits.ErrInvalidOption)
	_, err = e.svc.Deduct(ctx, "alice", 1, credits.IdempotencyKey("ok"), credits.Reason(strings.Repeat("r", 513)))
	require.ErrorIs(t, err, credits.ErrInvalidOption)
	_, err = e.svc.Transfer(ctx, "alice", "$gt", 1, credits.IdempotencyKey("ok2"))
	require.ErrorIs(t, err, credits.ErrInvalidAccount)
	_, err = e.svc.Add(ctx, "a\x00b", 1, credits.IdempotencyKey("ok3"))
	require.ErrorIs(t, err, credits.ErrInvalidAccount)
	n2, err := e.db.Collection(e.prefix+"idempotency").CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.Equal(t, n, n2, "refused input records no key")
	assert.Equal(t, want, e.balance(t, "alice").Balance, "refused input changes nothing")
}

// entriesOf returns account's entries as History reads them.
func entriesOf(t *testing.T, e *env, account string) []credits.Entry {
	t.Helper()
	var all []credits.Entry
	q := credits.HistoryQuery{Limit: 1000}
	for {
		es, next, err := e.svc.History(context.Background(), account, q)
		require.NoError(t, err)
		all = append(all, es...)
		if next == "" {
			return all
		}
		q.Cursor = next
	}
}

// One key raced by Add, Deduct, Transfer and Reserve from two processes,
// cancelled at random while the database holds writes: each key applies
// one operation, once; every call that succeeded did that operation (the
// others conflict); and at most one call says it applied it.
func TestAKeyRacedAcrossOperationsAppliesOneOfThemOnce(t *testing.T) {
	if testenv.Real() {
		t.Skip("fail points")
	}
	uri := testenv.URI(t)
	c1, c2 := testenv.Connect(t, uri), testenv.Connect(t, uri)
	name := "attack16_crossop"
	e := newEnvOn(t, c1.Database(name), "credit_", credits.WithFlushEvery(3))
	svc2 := credits.NewService(c2.Database(name), tx.NewRunner(c2), credits.WithClock(e.clock.Now), credits.WithCollectionPrefix("credit_"), credits.WithFlushEvery(3))
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "hot", 1_000_000)
	require.NoError(t, err)
	_, err = e.svc.Add(ctx, "cold", 1)
	require.NoError(t, err)
	require.NoError(t, c1.Database("admin").RunCommand(ctx, bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: bson.D{{Key: "times", Value: 80}}},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"update", "insert", "findAndModify", "commitTransaction"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 25}}}}).Err())
	type result struct {
		op       int
		err      error
		replayed bool
	}
	const keys, callsPerKey = 16, 8
	results := make([][callsPerKey]result, keys)
	var wg sync.WaitGroup
	for k := range keys {
		for i := range callsPerKey {
			wg.Go(func() {
				svc := []*credits.Service{e.svc, svc2}[i%2]
				cctx, cancel := context.WithCancel(ctx)
				defer cancel()
				if i >= 4 {
					time.AfterFunc(time.Duration(rand.IntN(50))*time.Millisecond, cancel)
				}
				r := result{op: (i + k) % 4}
				opts := []credits.OpOption{credits.IdempotencyKey(fmt.Sprintf("x-%d", k)), credits.Replayed(&r.replayed)}
				switch r.op {
				case 0:
					_, r.err = svc.Add(cctx, "hot", 3, opts...)
				case 1:
					_, r.err = svc.Deduct(cctx, "hot", 2, opts...)
				case 2:
					_, r.err = svc.Transfer(cctx, "hot", "cold", 5, opts...)
				default:
					_, r.err = svc.Reserve(cctx, "hot", 7, time.Hour, opts...)
				}
				results[k][i] = r
			})
		}
	}
	wg.Wait()
	require.NoError(t, c1.Database("admin").RunCommand(ctx, bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "off"}}).Err())
	time.Sleep(300 * time.Millisecond)

	applied := map[string]map[int]int{} // key → op → applications
	note := func(key string, op int) {
		if applied[key] == nil {
			applied[key] = map[int]int{}
		}
		applied[key][op]++
	}
	for _, en := range entriesOf(t, e, "hot") {
		switch {
		case en.IdempotencyKey == "":
		case en.Kind == credits.KindCredit:
			note(en.IdempotencyKey, 0)
		case en.Kind == credits.KindDebit:
			note(en.IdempotencyKey, 1)
		case en.Kind == credits.KindTransferOut:
			note(en.IdempotencyKey, 2)
		}
	}
	cur, err := e.db.Collection("credit_holds").Find(ctx, bson.D{})
	require.NoError(t, err)
	var holds []credits.Hold
	require.NoError(t, cur.All(ctx, &holds))
	for _, h := range holds {
		note(h.IdempotencyKey, 3)
	}
	var ok, conflicts, failed int
	for k := range keys {
		key := fmt.Sprintf("x-%d", k)
		assert.LessOrEqual(t, len(applied[key]), 1, "key %s applied several operations: %v", key, applied[key])
		firsts := 0
		for _, r := range results[k] {
			switch {
			case r.err == nil:
				ok++
				assert.Equal(t, 1, applied[key][r.op], "key %s: op %d succeeded; applications %v", key, r.op, applied[key])
				if !r.replayed {
					firsts++
				}
			case errors.Is(r.err, credits.ErrIdempotencyConflict):
				conflicts++
			default:
				failed++
				if !errors.Is(r.err, context.Canceled) {
					t.Logf("key %s op %d: %v", key, r.op, r.err)
				}
			}
		}
		for op, n := range applied[key] {
			assert.Equal(t, 1, n, "key %s: op %d applied %d times", key, op, n)
		}
		assert.LessOrEqual(t, firsts, 1, "key %s: calls that say they applied it", key)
	}
	t.Logf("ok %d, conflicts %d, failed %d", ok, conflicts, failed)
}

// Amounts at the int64 edge with keys: an Add or a Transfer that would
// pass math.MaxInt64 fails with ErrOverflow and applies nothing; its key's
// retry after room was made is the key's first success; concurrent keyed
// Adds combined in one write never overflow.
func TestKeyedWritesAtTheInt64Edge(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "a", math.MaxInt64-1)
	require.NoError(t, err)
	_, err = e.svc.Add(ctx, "a", 2, credits.IdempotencyKey("edge-add"))
	require.ErrorIs(t, err, credits.ErrOverflow)
	assert.EqualValues(t, int64(math.MaxInt64-1), e.balance(t, "a").Balance)
	_, err = e.svc.Deduct(ctx, "a", 5)
	require.NoError(t, err)
	var replayed bool
	_, err = e.svc.Add(ctx, "a", 2, credits.IdempotencyKey("edge-add"), credits.Replayed(&replayed))
	require.NoError(t, err)
	assert.False(t, replayed, "the retry that applied is the key's first success")
	assert.EqualValues(t, int64(math.MaxInt64-4), e.balance(t, "a").Balance)

	_, err = e.svc.Add(ctx, "b", 5)
	require.NoError(t, err)
	_, err = e.svc.Transfer(ctx, "a", "b", math.MaxInt64-4, credits.IdempotencyKey("edge-transfer"))
	require.ErrorIs(t, err, credits.ErrOverflow)
	assert.EqualValues(t, int64(math.MaxInt64-4), e.balance(t, "a").Balance)
	assert.EqualValues(t, 5, e.balance(t, "b").Balance)
	_, err = e.svc.Deduct(ctx, "b", 5)
	require.NoError(t, err)
	_, err = e.svc.Transfer(ctx, "a", "b", math.MaxInt64-4, credits.IdempotencyKey("edge-transfer"), credits.Replayed(&replayed))
	require.NoError(t, err)
	assert.False(t, replayed)
	assert.EqualValues(t, int64(math.MaxInt64-4), e.balance(t, "b").Balance)
	_, err = e.svc.Deduct(ctx, "b", math.MaxInt64-4, credits.IdempotencyKey("edge-deduct"))
	require.NoError(t, err)
	_, err = e.svc.Deduct(ctx, "b", 1, credits.IdempotencyKey("edge-deduct-2"))
	require.ErrorIs(t, err, credits.ErrInsufficientCredits)

	// Concurrent keyed Adds of a third of the range on an empty account:
	// two fit, the others overflow.
	const third = math.MaxInt64/3 + 1
	var wg sync.WaitGroup
	var oks, overflows atomic.Int64
	for i := range 8 {
		wg.Go(func() {
			_, err := e.svc.Add(ctx, "c", third, credits.IdempotencyKey(fmt.Sprintf("third-%d", i)))
			switch {
			case err == nil:
				oks.Add(1)
			case errors.Is(err, credits.ErrOverflow):
				overflows.Add(1)
			default:
				t.Errorf("add: %v", err)
			}
		})
	}
	wg.Wait()
	assert.EqualValues(t, 2, oks.Load())
	assert.EqualValues(t, 6, overflows.Load())
	assert.EqualValues(t, int64(2*third), e.balance(t, "c").Balance)
	sum, n := e.ledgerSum(t, "c")
	assert.EqualValues(t, int64(2*third), sum)
	assert.Equal(t, 2, n)
}

// A claimed key finished in a caller's transaction, raced by single-
// document retries of the key from two processes: the entry applies once,
// at most one call says it applied it, and every success returns the entry
// stored. A caller's transaction that finished the key and then aborted
// left nothing: a later call is the key's first success.
func TestAClaimFinishedInACallersTransactionRacedBySingleDocumentRetries(t *testing.T) {
	if testenv.Real() {
		t.Skip("fail points")
	}
	uri := testenv.URI(t)
	c1, c2 := testenv.Connect(t, uri), testenv.Connect(t, uri)
	name := "attack16_txclaim"
	e := newEnvOn(t, c1.Database(name), "credit_", credits.WithFlushEvery(2))
	r2 := tx.NewRunner(c2)
	other := credits.NewService(c2.Database(name), r2, credits.WithClock(e.clock.Now), credits.WithCollectionPrefix("credit_"), credits.WithFlushEvery(2))
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "hot", 100)
	require.NoError(t, err)
	for round := range 6 {
		key := fmt.Sprintf("r-%d", round)
		// The key is claimed by a refused debit.
		_, err := e.svc.Deduct(ctx, "hot", 1000, credits.IdempotencyKey(key))
		require.ErrorIs(t, err, credits.ErrInsufficientCredits)
		_, err = e.svc.Add(ctx, "hot", 1000)
		require.NoError(t, err)
		// Aborted: nothing stays.
		err = e.runner.Run(ctx, func(ctx context.Context) error {
			if _, err := e.svc.Deduct(ctx, "hot", 1000, credits.IdempotencyKey(key)); err != nil {
				return err
			}
			return context.Canceled
		})
		require.ErrorIs(t, err, context.Canceled)
		e.clock.Advance(time.Millisecond) // every call below is dated apart
		const n = 6
		var wg sync.WaitGroup
		got := make([]credits.Entry, n)
		errs := make([]error, n)
		replayed := make([]bool, n)
		for i := range n {
			wg.Go(func() {
				svc, runner := []*credits.Service{e.svc, other}[i%2], []*tx.Runner{e.runner, r2}[i%2]
				opts := []credits.OpOption{credits.IdempotencyKey(key), credits.Replayed(&replayed[i])}
				if i < 2 {
					got[i], errs[i] = tx.Do(ctx, runner, func(ctx context.Context) (credits.Entry, error) {
						return svc.Deduct(ctx, "hot", 1000, opts...)
					})
					return
				}
				got[i], errs[i] = svc.Deduct(ctx, "hot", 1000, opts...)
			})
		}
		wg.Wait()
		firsts := 0
		for i := range n {
			require.NoError(t, errs[i], "call %d", i)
			assert.Equal(t, got[0], got[i], "call %d returns the entry stored", i)
			if !replayed[i] {
				firsts++
			}
		}
		assert.Equal(t, 1, firsts, "round %d: calls that say they applied the key", round)
		assert.EqualValues(t, 100, e.balance(t, "hot").Balance, "round %d", round)
	}
}

// A commit that applied but whose reply carries a write concern error (or
// whose reply is lost): a keyed Transfer, Reserve or Capture reports
// success, not replayed, applied once, or ErrOutcomeUnknown; never a
// definite failure, never a replay of itself.
func TestAnAppliedCommitWithAFaultyReplyIsTheKeysFirstSuccess(t *testing.T) {
	if testenv.Real() {
		t.Skip("fail points")
	}
	faults := []struct {
		name string
		data bson.D
	}{
		{"write concern error", bson.D{{Key: "writeConcernError", Value: bson.D{{Key: "code", Value: int32(64)}, {Key: "codeName", Value: "WriteConcernFailed"}, {Key: "errmsg", Value: "injected"}}}}},
		{"retryable write concern error", bson.D{{Key: "writeConcernError", Value: bson.D{{Key: "code", Value: int32(91)}, {Key: "codeName", Value: "ShutdownInProgress"}, {Key: "errmsg", Value: "injected"}}}}},
	}
	ops := []struct {
		name string
		do   func(e *env, replayed *bool) (int64, error) // the account's balance change it reports
	}{
		{"transfer", func(e *env, replayed *bool) (int64, error) {
			_, err := e.svc.Transfer(context.Background(), "a", "b", 10, credits.IdempotencyKey("op-1"), credits.Replayed(replayed))
			return -10, err
		}},
		{"reserve", func(e *env, replayed *bool) (int64, error) {
			_, err := e.svc.Reserve(context.Background(), "a", 10, time.Hour, credits.IdempotencyKey("op-1"), credits.Replayed(replayed))
			return 0, err
		}},
		{"deduct in a transaction", func(e *env, replayed *bool) (int64, error) {
			_, err := tx.Do(context.Background(), e.runner, func(ctx context.Context) (credits.Entry, error) {
				return e.svc.Deduct(ctx, "a", 10, credits.IdempotencyKey("op-1"), credits.Replayed(replayed))
			})
			return -10, err
		}},
	}
	for _, f := range faults {
		for _, op := range ops {
			t.Run(f.name+" on "+op.name, func(t *testing.T) {
				e := newEnv(t)
				ctx := context.Background()
				_, err := e.svc.Add(ctx, "a", 100)
				require.NoError(t, err)
				testenv.FailCommand(t, e.db.Client(), bson.D{
					{Key: "configureFailPoint", Value: "failCommand"},
					{Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
					{Key: "data", Value: append(bson.D{{Key: "failCommands", Value: bson.A{"commitTransaction"}}}, f.data...)},
				})
				replayed := true
				delta, err := op.do(e, &replayed)
				if errors.Is(err, credits.ErrOutcomeUnknown) || errors.Is(err, tx.ErrCommitUnknown) {
					t.Logf("unknown: %v", err)
				} else {
					require.NoError(t, err, "the commit applied")
					assert.False(t, replayed, "the call that applied it says it replayed")
				}
				assert.EqualValues(t, 100+delta, e.balance(t, "a").Balance, "applied once")
				again := false
				_, err = op.do(e, &again)
				require.NoError(t, err)
				assert.True(t, again, "the repeat replays")
				assert.EqualValues(t, 100+delta, e.balance(t, "a").Balance, "applied once")
			})
		}
	}
}
