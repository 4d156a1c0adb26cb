package idempotency_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.uber.org/goleak"

	"github.com/txkit/txkit/internal/idempotency"
	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type env struct {
	db     *mongo.Database
	runner *tx.Runner
	store  *idempotency.Store
	now    atomic.Pointer[time.Time]
}

func newEnv(t *testing.T) *env {
	db := testenv.DB(t)
	e := &env{db: db, runner: tx.NewRunner(db.Client())}
	start := time.Now()
	e.now.Store(&start)
	e.store = idempotency.NewStore(db.Collection("keys"), idempotency.Config{Retention: time.Hour, Now: func() time.Time { return *e.now.Load() }})
	require.NoError(t, e.store.EnsureSchema(context.Background()))
	return e
}

func (e *env) effects(t *testing.T, key string) int64 {
	n, err := e.db.Collection("effects").CountDocuments(context.Background(), bson.D{{Key: "key", Value: key}})
	require.NoError(t, err)
	return n
}

// result is a stand-in operation's result (a result is a document).
type result struct {
	ID string `bson:"id"`
}

// do runs a stand-in effect (one document per run) under key and returns
// its document's id.
func (e *env) do(ctx context.Context, key, op, hash string) (string, bool, error) {
	var replayed bool
	res, err := tx.Do(ctx, e.runner, func(ctx context.Context) (result, error) {
		res, again, err := idempotency.Do(ctx, e.store, key, op, hash, func(ctx context.Context) (result, error) {
			id := bson.NewObjectID().Hex()
			_, err := e.db.Collection("effects").InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "key", Value: key}})
			return result{ID: id}, err
		})
		replayed = again
		return res, err
	})
	return res.ID, replayed, err
}

func TestDoAppliesOncePerKey(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	hash := idempotency.Hash("alice", int64(10))

	first, replayed, err := e.do(ctx, "k1", "op", hash)
	require.NoError(t, err)
	assert.False(t, replayed)
	again, replayed, err := e.do(ctx, "k1", "op", hash)
	require.NoError(t, err)
	assert.True(t, replayed)
	assert.Equal(t, first, again, "a repeat returns the first result")
	assert.Equal(t, int64(1), e.effects(t, "k1"))

	t.Run("another request under the key is a conflict that applies nothing", func(t *testing.T) {
		_, _, err := e.do(ctx, "k1", "op", idempotency.Hash("alice", int64(11)))
		require.ErrorIs(t, err, idempotency.ErrConflict)
		_, _, err = e.do(ctx, "k1", "other-op", hash)
		require.ErrorIs(t, err, idempotency.ErrConflict)
		assert.Equal(t, int64(1), e.effects(t, "k1"))
	})

	t.Run("a key past its retention names a new operation", func(t *testing.T) {
		later := e.now.Load().Add(2 * time.Hour)
		e.now.Store(&later)
		fresh, replayed, err := e.do(ctx, "k1", "op", idempotency.Hash("alice", int64(11)))
		require.NoError(t, err)
		assert.False(t, replayed)
		assert.NotEqual(t, first, fresh)
		assert.Equal(t, int64(2), e.effects(t, "k1"))
	})
}

func TestDoRecordsNothingOnError(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	boom := errors.New("boom")
	_, err := tx.Do(ctx, e.runner, func(ctx context.Context) (result, error) {
		res, _, err := idempotency.Do(ctx, e.store, "k", "op", "h", func(context.Context) (result, error) { return result{}, boom })
		return res, err
	})
	require.ErrorIs(t, err, boom)
	n, err := e.store.Collection().CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.Zero(t, n, "the key stays free for a retry")
}

// Many goroutines with one key, some commits failing: one effect, and
// every caller that succeeded got it; a repeat afterwards replays it.
func TestConcurrentRepeatsApplyOnce(t *testing.T) {
	for _, fault := range []string{"none", "closeConnection", "writeConcernError"} {
		t.Run(fault, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			if fault != "none" && !testenv.Real() {
				data := bson.D{{Key: "failCommands", Value: bson.A{"commitTransaction"}}}
				if fault == "closeConnection" {
					data = append(data, bson.E{Key: "closeConnection", Value: true})
				} else {
					data = append(data, bson.E{Key: "writeConcernError", Value: bson.D{{Key: "code", Value: int32(64)}, {Key: "errmsg", Value: "injected"}}})
				}
				testenv.FailCommand(t, e.db.Client(), bson.D{
					{Key: "configureFailPoint", Value: "failCommand"},
					{Key: "mode", Value: bson.D{{Key: "times", Value: 3}}},
					{Key: "data", Value: data},
				})
			}
			const workers = 16
			results := make([]string, workers)
			var wg sync.WaitGroup
			for i := range results {
				wg.Go(func() {
					res, _, err := e.do(ctx, "same", "op", "h")
					if err == nil {
						results[i] = res
					} else {
						// The fault: an unknown commit, or a connection
						// taken from a cleared pool. Never a conflict.
						assert.NotErrorIs(t, err, idempotency.ErrConflict)
					}
				})
			}
			wg.Wait()
			last, replayed, err := e.do(ctx, "same", "op", "h")
			require.NoError(t, err)
			assert.True(t, replayed)
			for _, r := range results {
				if r != "" {
					assert.Equal(t, last, r)
				}
			}
			assert.Equal(t, int64(1), e.effects(t, "same"))
		})
	}
}

func TestClaim(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rec, err := e.store.NewRecord("c1", "add", "h", bson.D{{Key: "_id", Value: "entry-1"}}, true)
	require.NoError(t, err)
	resent := func(old idempotency.Record) bool { return old.Result.Lookup("_id").StringValue() == "entry-1" }

	got, mine, err := e.store.Claim(ctx, rec, resent)
	require.NoError(t, err)
	assert.True(t, mine)
	_, mine, err = e.store.Claim(ctx, rec, resent)
	require.NoError(t, err)
	assert.True(t, mine, "the same claim resent is still this call's")

	other, err := e.store.NewRecord("c1", "add", "h", bson.D{{Key: "_id", Value: "entry-2"}}, true)
	require.NoError(t, err)
	got, mine, err = e.store.Claim(ctx, other, func(old idempotency.Record) bool { return old.Result.Lookup("_id").StringValue() == "entry-2" })
	require.NoError(t, err)
	assert.False(t, mine)
	assert.Equal(t, "entry-1", got.Result.Lookup("_id").StringValue(), "another call's claim is returned")

	conflicting, err := e.store.NewRecord("c1", "deduct", "h", bson.D{{Key: "_id", Value: "entry-3"}}, true)
	require.NoError(t, err)
	_, _, err = e.store.Claim(ctx, conflicting, func(idempotency.Record) bool { return true })
	require.ErrorIs(t, err, idempotency.ErrConflict)

	n, err := e.store.Collection().CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
}

// The records' uniqueness rests on _id alone: with the database dropped,
// a key still applies once.
func TestDoAfterTheDatabaseIsDropped(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	require.NoError(t, e.db.Drop(ctx))
	for range 3 {
		_, _, err := e.do(ctx, "k", "op", "h")
		require.NoError(t, err)
	}
	assert.Equal(t, int64(1), e.effects(t, "k"))
}

func TestHashIsUnambiguous(t *testing.T) {
	assert.NotEqual(t, idempotency.Hash("ab", "c"), idempotency.Hash("a", "bc"))
	assert.NotEqual(t, idempotency.Hash(int64(1)), idempotency.Hash(time.Duration(1)+0, "x"))
	assert.Equal(t, idempotency.Hash("a", int64(1)), idempotency.Hash("a", int64(1)))
}
