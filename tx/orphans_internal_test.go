package tx

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/internal/testenv"
)

// The registry forgets the sessions idle for longer than the server keeps
// them, and only those: a session used again after it was forgotten is
// recorded anew, and a prune of its old record leaves the new one.
func TestTheRegistryForgetsIdleSessionsOnly(t *testing.T) {
	db := testenv.DB(t)
	coll := db.Collection("sessions")
	r := newRegistry(OrphanReaping{Collection: coll, Instance: "pod-0"})
	ctx := context.Background()
	sessions := func() int64 {
		n, err := coll.CountDocuments(ctx, bson.D{{Key: "kind", Value: kindSession}})
		require.NoError(t, err)
		return n
	}
	idle, err := db.Client().StartSession()
	require.NoError(t, err)
	defer idle.EndSession(ctx)
	busy, err := db.Client().StartSession()
	require.NoError(t, err)
	defer busy.EndSession(ctx)

	require.NoError(t, r.record(ctx, idle, true))
	require.NoError(t, r.record(ctx, busy, true))
	require.Equal(t, int64(2), sessions())

	// The idle session's last transaction began longer ago than r.idle.
	id, err := lsidOf(idle)
	require.NoError(t, err)
	r.mu.Lock()
	rec := r.recorded[id]
	rec.used = time.Now().Add(-r.idle - time.Minute)
	r.recorded[id] = rec
	r.mu.Unlock()
	require.NoError(t, r.prune(ctx))
	assert.Equal(t, int64(1), sessions(), "only the idle session is forgotten")

	// Used again: recorded anew.
	r.mu.Lock()
	_, known := r.recorded[id]
	r.mu.Unlock()
	require.False(t, known)
	require.NoError(t, r.record(ctx, idle, true))
	assert.Equal(t, int64(2), sessions())

	// A prune that took the old record (an older seq) before the session
	// was used again leaves the new record.
	r.mu.Lock()
	r.recorded = map[[16]byte]recorded{id: {seq: r.recorded[id].seq - 2, used: time.Now().Add(-time.Hour)}}
	r.mu.Unlock()
	require.NoError(t, r.prune(ctx))
	assert.Equal(t, int64(2), sessions(), "a prune of the old record removed the new one")
}
