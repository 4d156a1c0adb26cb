package tx_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/tx"
)

// attack29: Close of a runner with orphan reaping while a registry write
// (the lease's renewal, a session's record) is held by the database. A
// write cut on the client still runs on the server once the hold ends:
// if that is after Close removed the process's documents, it creates one
// again. Close must then say so; a later Close removes it.

// holdUpdates makes the database hold the next update for hold, then
// run it.
func holdUpdates(t *testing.T, e *env, hold time.Duration) {
	t.Helper()
	e.failCommand(t, 1, bson.D{
		{Key: "failCommands", Value: bson.A{"update"}},
		{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: hold.Milliseconds()},
	})
}

// registryDocs counts the documents of the registry sessions.
func registryDocs(t *testing.T, e *env) int64 {
	t.Helper()
	n, err := e.db.Collection("sessions").CountDocuments(context.Background(), bson.D{})
	require.NoError(t, err)
	return n
}

// The goroutine's renewal of the lease is held by the database for longer
// than Close's ctx: Close cuts it when its ctx ends, and the renewal runs
// on the server after that, creating the lease. A Close that reported nil
// would have left the lease behind.
func TestAttack29CloseWhoseCtxEndsDuringARenewalSaysTheLeaseMayStay(t *testing.T) {
	e := newEnv(t)
	holdUpdates(t, e, 3*time.Second)
	held := time.Now()
	runner := tx.NewRunner(e.client, tx.WithOrphanReaping(tx.OrphanReaping{Collection: e.db.Collection("sessions"), Instance: "pod-0"}))
	require.Eventually(t, func() bool { return len(e.mon.started("update")) > 0 }, 10*time.Second, time.Millisecond, "the renewal is sent")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	err := runner.Close(ctx)
	took := time.Since(start)
	t.Logf("Close (ctx 1s) took %v: %v", took, err)
	assert.Less(t, took, 2500*time.Millisecond, "Close outlived its ctx")
	time.Sleep(time.Until(held.Add(4 * time.Second))) // past the hold
	if n := registryDocs(t, e); n > 0 {
		assert.Error(t, err, "Close reported nil, and the registry holds %d document(s) of the process", n)
	}
	require.NoError(t, runner.Close(ctxTimeout(t)), "a later Close, once the database answers")
	assert.Zero(t, registryDocs(t, e), "the registry's documents after the later Close")
}

// A session's record is held by the database and cut by its Run's ctx:
// the transaction does not start, nothing runs at Close, and Close
// removes the lease. The record then runs on the server and creates the
// session's document, which no sweep removes (sweeps go by lease). A
// Close that reported nil would have left it behind.
func TestAttack29CloseAfterARecordCutByItsCallerSaysTheRecordMayStay(t *testing.T) {
	e := newEnv(t)
	runner := tx.NewRunner(e.client, tx.WithOrphanReaping(tx.OrphanReaping{Collection: e.db.Collection("sessions"), Instance: "pod-0", Lease: time.Minute}))
	require.Eventually(t, func() bool { return registryDocs(t, e) == 1 }, 10*time.Second, 10*time.Millisecond, "the lease is written")
	holdUpdates(t, e, 2*time.Second)
	held := time.Now()
	// Cancelled, not a deadline: the driver sends a deadline as
	// maxTimeMS, which the server would check after the hold (a request's
	// ctx cancelled when its client goes away has none).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(300*time.Millisecond, cancel)
	require.Error(t, runner.Run(ctx, func(ctx context.Context) error {
		_, err := e.coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
		return err
	}), "the record is cut")
	err := runner.Close(ctxTimeout(t))
	t.Logf("Close: %v", err)
	time.Sleep(time.Until(held.Add(3 * time.Second))) // past the hold
	if n := registryDocs(t, e); n > 0 {
		assert.Error(t, err, "Close reported nil, and the registry holds %d document(s) of the process", n)
	}
	require.NoError(t, runner.Close(ctxTimeout(t)), "a later Close, once the database answers")
	assert.Zero(t, registryDocs(t, e), "the registry's documents after the later Close")
	assert.Zero(t, e.count(t, nil), "the cut transaction wrote nothing")
}

// Two concurrent Closes while the database holds the lease's renewal,
// which then runs, breaks or fails: each Close returns within its ctx;
// after the hold, the registry holds no document of the process unless a
// Close said so, a later Close leaves none, and no goroutine of the
// registry is left.
func TestAttack29ConcurrentClosesDuringAHeldRenewal(t *testing.T) {
	tests := []struct {
		name      string
		give      bson.D // added to the hold
		hold, ctx time.Duration
	}{
		{name: "the renewal then runs", hold: 700 * time.Millisecond, ctx: 3 * time.Second},
		{name: "its connection then breaks", give: bson.D{{Key: "closeConnection", Value: true}}, hold: 700 * time.Millisecond, ctx: 3 * time.Second},
		{name: "it then fails with a code and no label", give: bson.D{{Key: "errorCode", Value: 2}}, hold: 700 * time.Millisecond, ctx: 3 * time.Second},
		{name: "it then fails with a retryable label", give: bson.D{{Key: "errorCode", Value: 91}, {Key: "errorLabels", Value: bson.A{"RetryableWriteError"}}}, hold: 700 * time.Millisecond, ctx: 3 * time.Second},
		{name: "it then gets a write concern error", give: bson.D{{Key: "writeConcernError", Value: bson.D{{Key: "code", Value: 64}, {Key: "errmsg", Value: "held"}}}}, hold: 700 * time.Millisecond, ctx: 3 * time.Second},
		{name: "it is held past the Closes' ctx", hold: 2500 * time.Millisecond, ctx: 800 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := registryGoroutines()
			e := newEnv(t)
			data := bson.D{
				{Key: "failCommands", Value: bson.A{"update"}},
				{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: tt.hold.Milliseconds()},
			}
			e.failCommand(t, 1, append(data, tt.give...))
			held := time.Now()
			runner := tx.NewRunner(e.client, tx.WithOrphanReaping(tx.OrphanReaping{Collection: e.db.Collection("sessions"), Instance: "pod-0"}))
			require.Eventually(t, func() bool { return len(e.mon.started("update")) > 0 }, 10*time.Second, time.Millisecond, "the renewal is sent")
			errs := make(chan error, 2)
			for range 2 {
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), tt.ctx)
					defer cancel()
					start := time.Now()
					err := runner.Close(ctx)
					assert.Less(t, time.Since(start), tt.ctx+1500*time.Millisecond, "Close outlived its ctx")
					t.Logf("Close: %v", err)
					errs <- err
				}()
			}
			err1, err2 := <-errs, <-errs
			said := err1 != nil || err2 != nil
			time.Sleep(time.Until(held.Add(tt.hold + time.Second))) // past the hold
			if n := registryDocs(t, e); n > 0 {
				assert.True(t, said, "both Closes reported nil, and the registry holds %d document(s) of the process", n)
			}
			require.NoError(t, runner.Close(ctxTimeout(t)), "a later Close")
			assert.Zero(t, registryDocs(t, e), "the registry's documents after the later Close")
			assert.LessOrEqual(t, registryGoroutines(), before, "a goroutine of the registry is left after Close:\n%s", goroutines())
		})
	}
}
