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

// Keyed operations on one hot account, cancelled (not only timed out) at
// random points while the database holds writes: a call that reported a
// definite failure did not apply, which its repeat shows (the repeat is
// the key's first success, not a replay); a call that reported success
// applied, and its repeat is a replay.
func TestCancelledKeyedOpsOnAHotAccountReportWhatHappened(t *testing.T) {
	if testenv.Real() {
		t.Skip("fail points")
	}
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "hot", 1_000_000)
	require.NoError(t, err)
	_, err = e.svc.Add(ctx, "cold", 1_000_000)
	require.NoError(t, err)
	type call struct {
		key  string
		kind int
		err  error
	}
	const n = 96
	calls := make([]call, n)
	testenv.FailCommand(t, e.db.Client(), bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: bson.D{{Key: "times", Value: 30}}},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"update", "findAndModify", "insert", "commitTransaction"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 40}}}})
	op := func(ctx context.Context, kind int, key string, replayed *bool) error {
		opts := []credits.OpOption{credits.IdempotencyKey(key), credits.Replayed(replayed)}
		var err error
		switch kind {
		case 0:
			_, err = e.svc.Add(ctx, "hot", 3, opts...)
		case 1:
			_, err = e.svc.Deduct(ctx, "hot", 2, opts...)
		default:
			_, err = e.svc.Transfer(ctx, "hot", "cold", 5, opts...)
		}
		return err
	}
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			c, cancel := context.WithCancel(ctx)
			defer cancel()
			time.AfterFunc(time.Duration(rand.IntN(80))*time.Millisecond, cancel)
			key := fmt.Sprintf("k-%d", i)
			var rep bool
			calls[i] = call{key: key, kind: i % 3, err: op(c, i%3, key, &rep)}
		})
	}
	wg.Wait()
	testenv.FailCommand(t, e.db.Client(), bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "off"}})
	time.Sleep(time.Second)
	// Before any repeat: the balance holds the effects of the calls that
	// reported success, and of no call that reported failure.
	want := int64(1_000_000)
	for _, c := range calls {
		if c.err == nil {
			want += []int64{3, -2, -5}[c.kind]
		}
	}
	b, err := e.svc.Balance(ctx, "hot")
	require.NoError(t, err)
	assert.Equal(t, want, b.Balance, "the balance before the repeats is not the sum of the reported successes")
	var ok, failed, unknown int
	for _, c := range calls {
		var rep bool
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := op(rctx, c.kind, c.key, &rep)
		cancel()
		require.NoError(t, err, "repeat of %s", c.key)
		switch {
		case c.err == nil:
			ok++
			assert.True(t, rep, "%s (kind %d) reported success; its repeat applied it", c.key, c.kind)
		case errors.Is(c.err, credits.ErrOutcomeUnknown) || errors.Is(c.err, tx.ErrCommitUnknown):
			unknown++
		default:
			failed++
			assert.False(t, rep, "%s (kind %d) reported failure (%v); its repeat says it had applied", c.key, c.kind, c.err)
		}
	}
	t.Logf("ok %d failed %d unknown %d", ok, failed, unknown)
}

// A keyed Deduct whose ctx ends while its claim of the key is on the wire
// fails with the ctx's error: nothing applied (docs/credits.md: "context
// errors, network errors before the write | nothing applied | retry: yes").
// The retry that applies it is the key's first success: not replayed,
// and its entry dated when it applied (as after a refusal).
func TestARetryAfterACutClaimIsTheKeysFirstSuccess(t *testing.T) {
	if testenv.Real() {
		t.Skip("fail points")
	}
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "alice", 100)
	require.NoError(t, err)
	cutClaim(t, e, "alice", 30, "buy-1")

	e.clock.Advance(time.Minute)
	before := e.clock.Now()
	var replayed bool
	entry, err := e.svc.Deduct(ctx, "alice", 30, credits.IdempotencyKey("buy-1"), credits.Replayed(&replayed))
	require.NoError(t, err)
	b, err := e.svc.Balance(ctx, "alice")
	require.NoError(t, err)
	assert.EqualValues(t, 70, b.Balance)
	assert.False(t, replayed, "the retry applied the debit, yet says it replayed an earlier call's result")
	assert.False(t, entry.CreatedAt.Before(before), "the entry is dated %v, at the failed call, not when it applied (%v)", entry.CreatedAt, before)
}

// Retries of a cut claim racing each other, in one process (their writes
// combined) and in two (two services on one database): the debit applies
// once, exactly one retry is the key's first success, and every retry
// returns the entry as stored, dated by the retry that applied it.
func TestRetriesRacingAfterACutClaimApplyItOnce(t *testing.T) {
	if testenv.Real() {
		t.Skip("fail points")
	}
	e := newEnv(t)
	other := credits.NewService(e.db, e.runner, credits.WithClock(e.clock.Now), credits.WithCollectionPrefix(e.prefix))
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "alice", 100)
	require.NoError(t, err)
	cutClaim(t, e, "alice", 30, "buy-1")
	e.clock.Advance(time.Minute)
	before := e.clock.Now()

	const n = 16
	got := make([]credits.Entry, n)
	replayed := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		svc := []*credits.Service{e.svc, other}[i%2]
		wg.Go(func() {
			var err error
			got[i], err = svc.Deduct(ctx, "alice", 30, credits.IdempotencyKey("buy-1"), credits.Replayed(&replayed[i]))
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	first := 0
	for i := range n {
		assert.Equal(t, got[0], got[i], "every retry returns the entry as stored")
		if !replayed[i] {
			first++
		}
	}
	assert.Equal(t, 1, first, "retries that say they applied it")
	assert.False(t, got[0].CreatedAt.Before(before), "dated %v, at the failed call", got[0].CreatedAt)
	b, err := e.svc.Balance(ctx, "alice")
	require.NoError(t, err)
	assert.EqualValues(t, 70, b.Balance, "applied once")
	hist, _, err := e.svc.History(ctx, "alice", credits.HistoryQuery{})
	require.NoError(t, err)
	assert.Len(t, hist, 2)
	assert.Contains(t, hist, got[0], "the entry returned is the one stored")
}

// cutClaim makes a keyed Deduct whose ctx ends while its claim of key is
// held by the server (300 ms, the caller giving up after 50 ms), and
// checks that it failed with ctx's error, applied nothing, and that its
// claim was written all the same.
func cutClaim(t *testing.T, e *env, account string, amount int64, key string) {
	t.Helper()
	ctx := context.Background()
	before, err := e.svc.Balance(ctx, account)
	require.NoError(t, err)
	testenv.FailCommand(t, e.db.Client(), bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 300}}}})
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = e.svc.Deduct(cctx, account, amount, credits.IdempotencyKey(key))
	cancel()
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, credits.ErrOutcomeUnknown)
	time.Sleep(500 * time.Millisecond) // the held claim lands
	n, err := e.db.Collection(e.prefix+"idempotency").CountDocuments(ctx, bson.D{{Key: "_id", Value: key}})
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the cut claim was written")
	after, err := e.svc.Balance(ctx, account)
	require.NoError(t, err)
	require.Equal(t, before, after, "the failed call applied nothing")
}
