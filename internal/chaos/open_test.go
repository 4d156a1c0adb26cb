package chaos

import (
	"context"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/internal/testenv"
)

// openTxn starts a transaction on client that writes one document of db
// and leaves it open; it returns the session's id and the abort.
func openTxn(t *testing.T, client *mongo.Client, db string) (id string, abort func()) {
	t.Helper()
	ctx := context.Background()
	sess, err := client.StartSession()
	require.NoError(t, err)
	require.NoError(t, sess.StartTransaction())
	_, err = client.Database(db).Collection("held").InsertOne(mongo.NewSessionContext(ctx, sess), bson.D{{Key: "x", Value: 1}})
	require.NoError(t, err)
	var lsid struct {
		ID bson.Binary `bson:"id"`
	}
	require.NoError(t, bson.Unmarshal(sess.ID(), &lsid))
	return hex.EncodeToString(lsid.ID.Data), func() {
		_ = sess.AbortTransaction(ctx)
		sess.EndSession(ctx)
	}
}

// watch returns an OpenWatch over uri whose reports are collected.
func watch(t *testing.T, uri string, maxOpen time.Duration) (*OpenWatch, func() []Violation) {
	checker := testenv.Connect(t, uri, options.Client().SetAppName("open-watch-checker"))
	var mu sync.Mutex
	var got []Violation
	w := &OpenWatch{Admin: checker.Database("admin"), MaxOpen: maxOpen, App: "open-watch-workload",
		Report: func(v Violation) { mu.Lock(); got = append(got, v); mu.Unlock() }}
	return w, func() []Violation { mu.Lock(); defer mu.Unlock(); return append([]Violation(nil), got...) }
}

// TestOpenWatchReportsATransactionLeftOpen: a transaction that stays open
// past MaxOpen is reported once, by its session, whether it is idle or
// its statement is held on the server; one that commits in time is not.
func TestOpenWatchReportsATransactionLeftOpen(t *testing.T) {
	uri := testenv.URI(t)
	client := testenv.Connect(t, uri, options.Client().SetAppName("open-watch-workload"))
	db := testenv.NewDB(t, client).Name()
	w, got := watch(t, uri, 300*time.Millisecond)
	ctx := context.Background()

	_, abortQuick := openTxn(t, client, db)
	require.NoError(t, w.Check(ctx)) // open, but not for long: not reported
	abortQuick()
	left, abortLeft := openTxn(t, client, db)
	defer abortLeft()
	time.Sleep(400 * time.Millisecond)
	require.NoError(t, w.Check(ctx))
	require.NoError(t, w.Check(ctx)) // reported once
	vs := got()
	require.Len(t, vs, 1, "%v", vs)
	assert.Equal(t, InvNotLeftOpen, vs[0].Invariant)
	assert.Contains(t, vs[0].Detail, "session "+left)
	assert.Contains(t, vs[0].Detail, `app "open-watch-workload"`)
	assert.Contains(t, vs[0].Detail, "idle")
	assert.Positive(t, w.Reads())

	// Once aborted it is gone: a later transaction on another session is
	// the only new report.
	abortLeft()
	next, abortNext := openTxn(t, client, db)
	defer abortNext()
	time.Sleep(400 * time.Millisecond)
	require.NoError(t, w.Check(ctx))
	vs = got()
	require.Len(t, vs, 2, "%v", vs)
	assert.Contains(t, vs[1].Detail, "session "+next)
}

// TestOpenWatchLeavesOutTheCheckersTransactions: the checker's own
// transactions (Reconcile's snapshot reads) are not the workload's.
func TestOpenWatchLeavesOutTheCheckersTransactions(t *testing.T) {
	uri := testenv.URI(t)
	w, got := watch(t, uri, 100*time.Millisecond)
	checker := testenv.Connect(t, uri, options.Client().SetAppName("open-watch-checker"))
	_, abort := openTxn(t, checker, testenv.NewDB(t, checker).Name())
	defer abort()
	time.Sleep(200 * time.Millisecond)
	require.NoError(t, w.Check(context.Background()))
	assert.Empty(t, got())
}

// TestOpenWatchRunReportsWithoutBeingAsked: Run polls on its own, and an
// open transaction is found within a few periods.
func TestOpenWatchRunReportsWithoutBeingAsked(t *testing.T) {
	uri := testenv.URI(t)
	client := testenv.Connect(t, uri, options.Client().SetAppName("open-watch-workload"))
	w, got := watch(t, uri, 200*time.Millisecond)
	w.Every = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	id, abort := openTxn(t, client, testenv.NewDB(t, client).Name())
	defer abort()
	require.Eventually(t, func() bool { return len(got()) == 1 }, 5*time.Second, 20*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	assert.Contains(t, got()[0].Detail, "session "+id)
}

// TestLifetimeLimitIsTheServers reads what the server says.
func TestLifetimeLimitIsTheServers(t *testing.T) {
	c := testenv.Connect(t, testenv.URI(t))
	limit, err := LifetimeLimit(context.Background(), c.Database("admin"))
	require.NoError(t, err)
	if !testenv.Real() {
		assert.Equal(t, 60*time.Second, limit, fmt.Sprint(limit))
	}
	assert.Equal(t, 45*time.Second, DefaultMaxOpen(60*time.Second))
}
