package idempotency_test

import (
	"context"
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
