package credits_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/modules/credits"
)

// The ledger's exactly-once rests on _id alone (a key's record, an entry,
// a hold), never on an index created at start: with the database dropped
// under the running service, repeats with one key still apply once.
func TestKeysHoldAfterTheDatabaseIsDropped(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	require.NoError(t, e.db.Drop(ctx))

	for range 2 {
		_, err := e.svc.Add(ctx, "alice", 100, credits.IdempotencyKey("drop-add"))
		require.NoError(t, err)
		_, err = e.svc.Transfer(ctx, "alice", "bob", 30, credits.IdempotencyKey("drop-transfer"))
		require.NoError(t, err)
		_, err = e.svc.Reserve(ctx, "alice", 10, time.Minute, credits.IdempotencyKey("drop-reserve"))
		require.NoError(t, err)
	}
	require.NoError(t, e.svc.Flush(ctx))
	n, err := e.db.Collection("credit_entries").CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.Equal(t, int64(3), n, "one credit, two transfer sides")
	n, err = e.db.Collection("credit_holds").CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	assert.Equal(t, credits.Balance{Account: "alice", Balance: 70, Held: 10, Available: 60}, e.balance(t, "alice"))
}
