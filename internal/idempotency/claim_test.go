package idempotency_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/internal/idempotency"
	"github.com/txkit/txkit/internal/testenv"
)

// claimEnv is a store whose client counts the inserts it sends to the
// records' collection.
type claimEnv struct {
	db      *mongo.Database
	store   *idempotency.Store
	inserts atomic.Int64
	waited  int64 // inserts seen by waitTaken
}

func newClaimEnv(t *testing.T) *claimEnv {
	e := &claimEnv{}
	mon := &event.CommandMonitor{Started: func(_ context.Context, ev *event.CommandStartedEvent) {
		if ev.CommandName == "insert" && ev.Command.Lookup("insert").StringValue() == "keys" {
			e.inserts.Add(1)
		}
	}}
	e.db = testenv.NewDB(t, testenv.Client(t, options.Client().SetMonitor(mon)))
	e.store = idempotency.NewStore(e.db.Collection("keys"), idempotency.Config{Retention: time.Hour})
	require.NoError(t, e.store.EnsureSchema(context.Background()))
	// An insert whose leader gave up must not meet the next test's fail
	// points.
	t.Cleanup(func() { idempotency.WaitClaimSends(e.store) })
	return e
}

// record returns a claim of key naming entry id.
func (e *claimEnv) record(t *testing.T, key, id string) idempotency.Record {
	rec, err := e.store.NewRecord(key, "add", "h", bson.D{{Key: "_id", Value: id}}, true)
	require.NoError(t, err)
	return rec
}

// claim claims key for entry id.
func (e *claimEnv) claim(ctx context.Context, t *testing.T, key, id string) (idempotency.Record, bool, error) {
	return e.store.Claim(ctx, e.record(t, key, id), func(old idempotency.Record) bool {
		return old.Result.Lookup("_id").StringValue() == id
	})
}

// count counts the records of the keys (all records without any).
func (e *claimEnv) count(t *testing.T, keys ...string) int64 {
	filter := bson.D{}
	if len(keys) > 0 {
		filter = bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: keys}}}}
	}
	n, err := e.store.Collection().CountDocuments(context.Background(), filter)
	require.NoError(t, err)
	return n
}

// holdInserts makes the server hold the next n inserts for d each.
func (e *claimEnv) holdInserts(t *testing.T, n int, d time.Duration) {
	testenv.FailCommand(t, e.db.Client(), bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: bson.D{{Key: "times", Value: n}}},
		{Key: "data", Value: bson.D{
			{Key: "failCommands", Value: bson.A{"insert"}},
			{Key: "blockConnection", Value: true},
			{Key: "blockTimeMS", Value: int32(d.Milliseconds())},
		}},
	})
}

// Claims made while another claim is on the wire share the next insert:
// with 32 callers the server receives a few inserts, not 32, and every
// claim is written, once.
func TestConcurrentClaimsShareInserts(t *testing.T) {
	e := newClaimEnv(t)
	ctx := context.Background()
	e.holdInserts(t, 1, 300*time.Millisecond)
	const callers = 32
	var wg sync.WaitGroup
	mine := make([]bool, callers)
	for i := range callers {
		wg.Go(func() {
			var err error
			_, mine[i], err = e.claim(ctx, t, fmt.Sprint("k", i), fmt.Sprint("entry-", i))
			assert.NoError(t, err)
		})
		if i == 0 {
			time.Sleep(50 * time.Millisecond) // the first claim is on the wire, held
		}
	}
	wg.Wait()
	for i, m := range mine {
		assert.True(t, m, "claim %d is its caller's", i)
	}
	assert.Equal(t, int64(callers), e.count(t))
	assert.LessOrEqual(t, e.inserts.Load(), int64(3), "the claims queued behind the held one are sent together")
}

// claimResult is the outcome of a claim made in the background.
type claimResult struct {
	got  idempotency.Record
	mine bool
	err  error
	at   time.Time // when it returned
}

// claimAsync claims key for entry id in the background.
func (e *claimEnv) claimAsync(ctx context.Context, t *testing.T, wg *sync.WaitGroup, key, id string) chan claimResult {
	rec := e.record(t, key, id)
	ch := make(chan claimResult, 1)
	wg.Go(func() {
		got, mine, err := e.store.Claim(ctx, rec, func(old idempotency.Record) bool { return old.Result.Lookup("_id").StringValue() == id })
		ch <- claimResult{got, mine, err, time.Now()}
	})
	return ch
}

// waitTaken waits until a leader sends and no claim is queued: the claims
// made so far are taken into a batch (a queue merely still empty would
// not tell).
func (e *claimEnv) waitTaken(t *testing.T) {
	require.Eventually(t, func() bool {
		return idempotency.ClaimsSending(e.store) && idempotency.QueuedClaims(e.store) == 0 && e.inserts.Load() > e.waited
	}, 5*time.Second, time.Millisecond, "a batch's insert is on the wire")
	e.waited = e.inserts.Load()
}

// waitQueued waits until n claims are queued (and not yet sent).
func (e *claimEnv) waitQueued(t *testing.T, n int) {
	require.Eventually(t, func() bool { return idempotency.QueuedClaims(e.store) == n }, 5*time.Second, time.Millisecond)
}

// The first claim is held on the wire; the claims queued meanwhile are
// one batch.
func TestClaimBatch(t *testing.T) {
	ctx := context.Background()

	t.Run("the second claim of a key in one batch gets the first's record", func(t *testing.T) {
		e := newClaimEnv(t)
		e.holdInserts(t, 1, 200*time.Millisecond)
		var wg sync.WaitGroup
		defer wg.Wait()
		lead := e.claimAsync(ctx, t, &wg, "lead", "entry-0")
		e.waitTaken(t) // taken, held
		first := e.claimAsync(ctx, t, &wg, "k", "entry-1")
		e.waitQueued(t, 1)
		second := e.claimAsync(ctx, t, &wg, "k", "entry-2")
		e.waitQueued(t, 2)
		inserts := e.inserts.Load()

		require.NoError(t, (<-lead).err)
		r1, r2 := <-first, <-second
		require.NoError(t, r1.err)
		require.NoError(t, r2.err)
		assert.True(t, r1.mine)
		assert.False(t, r2.mine)
		assert.Equal(t, "entry-1", r2.got.Result.Lookup("_id").StringValue(), "the second reads the first's claim")
		assert.Equal(t, inserts+1, e.inserts.Load(), "both in one insert")
		assert.Equal(t, int64(1), e.count(t, "k"))
	})

	t.Run("a claim whose ctx ends while it is queued is not written", func(t *testing.T) {
		e := newClaimEnv(t)
		e.holdInserts(t, 1, 300*time.Millisecond)
		var wg sync.WaitGroup
		defer wg.Wait()
		lead := e.claimAsync(ctx, t, &wg, "lead", "entry-0")
		e.waitTaken(t)
		cctx, cancel := context.WithCancel(ctx)
		cut := e.claimAsync(cctx, t, &wg, "cut", "entry-1")
		e.waitQueued(t, 1)
		after := e.claimAsync(ctx, t, &wg, "after", "entry-2")
		e.waitQueued(t, 2)
		cancel()
		rc := <-cut
		require.ErrorIs(t, rc.err, context.Canceled)
		r0, ra := <-lead, <-after
		require.NoError(t, r0.err)
		require.NoError(t, ra.err)
		assert.True(t, rc.at.Before(r0.at), "it leaves at once, before the held insert returns")
		assert.True(t, ra.mine)
		assert.Zero(t, e.count(t, "cut"), "nothing of it was sent")
		assert.Equal(t, int64(1), e.count(t, "after"))
	})

	t.Run("a claim whose ctx ends once it is sent returns at once and may be written", func(t *testing.T) {
		e := newClaimEnv(t)
		e.holdInserts(t, 2, 300*time.Millisecond)
		var wg sync.WaitGroup
		defer wg.Wait()
		lead := e.claimAsync(ctx, t, &wg, "lead", "entry-0")
		e.waitTaken(t)
		next := e.claimAsync(ctx, t, &wg, "next", "entry-1") // leads the second batch
		e.waitQueued(t, 1)
		cctx, cancel := context.WithCancel(ctx)
		cut := e.claimAsync(cctx, t, &wg, "cut", "entry-2")
		e.waitQueued(t, 2)
		require.NoError(t, (<-lead).err)
		e.waitTaken(t) // the second batch is on the wire, held
		time.Sleep(20 * time.Millisecond)
		cancel()
		rc := <-cut
		require.ErrorIs(t, rc.err, context.Canceled)
		rn := <-next
		require.NoError(t, rn.err)
		assert.True(t, rn.mine, "one caller's cancel does not cut the others' claims")
		assert.True(t, rc.at.Before(rn.at), "it returns before the insert it is in")
		assert.Equal(t, int64(1), e.count(t, "cut"), "its claim was written after it gave up")

		_, mine, err := e.claim(ctx, t, "cut", "entry-2")
		require.NoError(t, err)
		assert.True(t, mine, "a retry of the same claim finds it its own")
	})

	t.Run("a leader whose ctx ends once its batch is sent returns at once too", func(t *testing.T) {
		// A request's deadline bounds its claim, even when later requests'
		// claims share its insert (issue 13: a request never outlives its
		// timeout by more than a small margin).
		e := newClaimEnv(t)
		e.holdInserts(t, 2, 400*time.Millisecond)
		var wg sync.WaitGroup
		defer wg.Wait()
		lead := e.claimAsync(ctx, t, &wg, "lead", "entry-0")
		e.waitTaken(t)
		cctx, cancel := context.WithCancel(ctx)
		cut := e.claimAsync(cctx, t, &wg, "cut", "entry-1") // leads the second batch
		e.waitQueued(t, 1)
		after := e.claimAsync(ctx, t, &wg, "after", "entry-2")
		e.waitQueued(t, 2)
		require.NoError(t, (<-lead).err)
		e.waitTaken(t) // the second batch is on the wire, held
		time.Sleep(20 * time.Millisecond)
		cancel()
		cancelled := time.Now()
		rc := <-cut
		require.ErrorIs(t, rc.err, context.Canceled)
		ra := <-after
		require.NoError(t, ra.err)
		assert.True(t, ra.mine, "the leader's cancel does not cut the others' claims")
		assert.Less(t, rc.at.Sub(cancelled), 250*time.Millisecond, "the leader returns at its cancel, not when the insert it sent (held 400 ms) does")
		assert.Equal(t, int64(1), e.count(t, "cut"), "its claim was written after it gave up")
		assert.Equal(t, int64(1), e.count(t, "after"))

		// The lead went on: a next claim is sent.
		_, mine, err := e.claim(ctx, t, "later", "entry-3")
		require.NoError(t, err)
		assert.True(t, mine)
	})

	t.Run("an error of the whole insert is every caller's, and a retry applies once", func(t *testing.T) {
		e := newClaimEnv(t)
		// Every insert (and the driver's retries): held, then the
		// connection closed.
		testenv.FailCommand(t, e.db.Client(), bson.D{
			{Key: "configureFailPoint", Value: "failCommand"},
			{Key: "mode", Value: "alwaysOn"},
			{Key: "data", Value: bson.D{
				{Key: "failCommands", Value: bson.A{"insert"}},
				{Key: "blockConnection", Value: true},
				{Key: "blockTimeMS", Value: int32(150)},
				{Key: "closeConnection", Value: true},
			}},
		})
		// The driver retries a network error until the deadline: the
		// callers have one, the leader's shorter, so that the others are
		// sent as one batch after its insert failed.
		var wg sync.WaitGroup
		defer wg.Wait()
		lctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		keys := []string{"lead"}
		results := []chan claimResult{e.claimAsync(lctx, t, &wg, "lead", "entry-lead")}
		e.waitTaken(t)
		bctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		const callers = 8
		for i := range callers {
			key := fmt.Sprint("k", i)
			keys = append(keys, key)
			results = append(results, e.claimAsync(bctx, t, &wg, key, "entry-"+key))
		}
		e.waitQueued(t, callers)
		for i, ch := range results {
			r := <-ch
			require.Error(t, r.err, "caller %d", i)
			require.NotErrorIs(t, r.err, idempotency.ErrConflict)
		}
		assert.Zero(t, e.count(t), "the connection closed before the insert ran")
		off := bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "off"}}
		require.NoError(t, e.db.Client().Database("admin").RunCommand(ctx, off).Err())

		var retries sync.WaitGroup
		for _, key := range keys {
			retries.Go(func() {
				_, mine, err := e.claim(ctx, t, key, "entry-"+key)
				assert.NoError(t, err)
				assert.True(t, mine)
			})
		}
		retries.Wait()
		assert.Equal(t, int64(len(keys)), e.count(t, keys...), "each key once")
	})
	t.Run("a write concern error is every caller's, shaped as InsertOne's", func(t *testing.T) {
		e := newClaimEnv(t)
		testenv.FailCommand(t, e.db.Client(), bson.D{
			{Key: "configureFailPoint", Value: "failCommand"},
			{Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
			{Key: "data", Value: bson.D{
				{Key: "failCommands", Value: bson.A{"insert"}},
				{Key: "writeConcernError", Value: bson.D{{Key: "code", Value: int32(100)}, {Key: "codeName", Value: "UnsatisfiableWriteConcern"}, {Key: "errmsg", Value: "injected"}}},
			}},
		})
		_, _, err := e.claim(ctx, t, "k", "entry-1")
		we, ok := errors.AsType[mongo.WriteException](err)
		require.True(t, ok, "%v", err)
		assert.NotNil(t, we.WriteConcernError)
	})
	t.Run("an insert applied but unanswered is resent, and every claim in it is its caller's", func(t *testing.T) {
		e := newClaimEnv(t)
		e.holdInserts(t, 1, 200*time.Millisecond)
		var wg sync.WaitGroup
		defer wg.Wait()
		results := []chan claimResult{e.claimAsync(ctx, t, &wg, "lead", "entry-lead")}
		e.waitTaken(t)
		// The next insert (the batch) is applied, then its connection
		// closes without a reply: the driver resends it.
		testenv.FailCommand(t, e.db.Client(), bson.D{
			{Key: "configureFailPoint", Value: "onPrimaryTransactionalWrite"},
			{Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
			{Key: "data", Value: bson.D{{Key: "closeConnection", Value: true}}},
		})
		const callers = 6
		keys := []string{"lead"}
		for i := range callers {
			key := fmt.Sprint("k", i)
			keys = append(keys, key)
			results = append(results, e.claimAsync(ctx, t, &wg, key, "entry-"+key))
		}
		e.waitQueued(t, callers)
		for i, ch := range results {
			r := <-ch
			require.NoError(t, r.err, "caller %d", i)
			assert.True(t, r.mine, "caller %d", i)
		}
		assert.Equal(t, int64(3), e.inserts.Load(), "the leader's insert, the batch's, one resend")
		assert.Equal(t, int64(len(keys)), e.count(t, keys...))
	})
}
