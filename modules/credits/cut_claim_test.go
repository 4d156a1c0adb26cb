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
	// The claim (an insert into the key records) is held 300 ms; the
	// caller gives up after 50 ms. The server still writes the claim.
	testenv.FailCommand(t, e.db.Client(), bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 300}}}})
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = e.svc.Deduct(cctx, "alice", 30, credits.IdempotencyKey("buy-1"))
	cancel()
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, credits.ErrOutcomeUnknown)
	time.Sleep(500 * time.Millisecond) // the held claim lands
	b, err := e.svc.Balance(ctx, "alice")
	require.NoError(t, err)
	require.EqualValues(t, 100, b.Balance, "the failed call applied nothing")

	e.clock.Advance(time.Minute)
	before := e.clock.Now()
	var replayed bool
	entry, err := e.svc.Deduct(ctx, "alice", 30, credits.IdempotencyKey("buy-1"), credits.Replayed(&replayed))
	require.NoError(t, err)
	b, err = e.svc.Balance(ctx, "alice")
	require.NoError(t, err)
	assert.EqualValues(t, 70, b.Balance)
	assert.False(t, replayed, "the retry applied the debit, yet says it replayed an earlier call's result")
	assert.False(t, entry.CreatedAt.Before(before), "the entry is dated %v, at the failed call, not when it applied (%v)", entry.CreatedAt, before)
}
