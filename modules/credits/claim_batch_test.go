package credits_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/modules/credits"
)

// Keyed deducts whose claims share an insert that fails as a whole (the
// connection closes on every insert of a claim, the driver retrying until
// the callers' deadline): every call fails, and a retry of each key
// applies it exactly once.
func TestKeyedDeductsWhoseClaimBatchFailsApplyOnceOnRetry(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "hot", 1000)
	require.NoError(t, err)
	testenv.FailCommand(t, e.db.Client(), bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: "alwaysOn"},
		{Key: "data", Value: bson.D{
			{Key: "failCommands", Value: bson.A{"insert"}},
			{Key: "namespace", Value: e.db.Name() + "." + e.prefix + "idempotency"},
			{Key: "blockConnection", Value: true},
			{Key: "blockTimeMS", Value: int32(50)},
			{Key: "closeConnection", Value: true},
		}},
	})
	const callers = 16
	key := func(i int) credits.OpOption { return credits.IdempotencyKey(fmt.Sprint("batch-", i)) }
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			_, err := e.svc.Deduct(cctx, "hot", 2, key(i))
			assert.Error(t, err, "call %d", i)
			assert.NotErrorIs(t, err, credits.ErrIdempotencyConflict)
		})
	}
	wg.Wait()
	sum, n := e.ledgerSum(t, "hot")
	assert.Equal(t, int64(1000), sum, "no call applied")
	assert.Equal(t, 1, n)

	off := bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "off"}}
	require.NoError(t, e.db.Client().Database("admin").RunCommand(ctx, off).Err())
	for range 2 {
		for i := range callers {
			wg.Go(func() {
				_, err := e.svc.Deduct(ctx, "hot", 2, key(i))
				assert.NoError(t, err, "retry %d", i)
			})
		}
		wg.Wait()
	}
	sum, n = e.ledgerSum(t, "hot")
	assert.Equal(t, int64(1000-2*callers), sum, "each key applied once")
	assert.Equal(t, 1+callers, n)
	assert.Equal(t, int64(1000-2*callers), e.balance(t, "hot").Available)
}
