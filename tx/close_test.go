package tx_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
)

// Close removes the process's registry documents only when nothing is
// left open (tx.WithOrphanReaping's doc: "when the runner left no
// transaction open, removes the process's documents"). A transaction
// still running when Close is called (a request the drain could not wait
// for, an abort stuck on a stalled database) is open on the server: if
// the process then exits, the next process of its instance must still
// find and kill it.
func TestATransactionRunningAtCloseIsStillReapedAfterTheProcessDies(t *testing.T) {
	uri, client := orphanServer(t)
	db := testenv.NewDB(t, client)
	docs := db.Collection("docs")
	_, err := docs.InsertOne(context.Background(), bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "seed"}})
	require.NoError(t, err)

	dying := testenv.Connect(t, uri)
	runnerA := tx.NewRunner(dying, tx.WithOrphanReaping(tx.OrphanReaping{Collection: dying.Database(db.Name()).Collection("sessions"), Instance: "pod-0", Lease: time.Hour}))
	ready, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- runnerA.Run(context.Background(), func(ctx context.Context) error {
			if _, err := dying.Database(db.Name()).Collection("docs").UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "dying"}}}}); err != nil {
				return err
			}
			close(ready)
			<-release // the process exits before this transaction ends
			return errors.New("never committed")
		})
	}()
	t.Cleanup(func() { close(release); <-done })
	<-ready
	require.NoError(t, runnerA.Close(ctxTimeout(t)))
	// The process dies here (its goroutine stays blocked: the server still
	// holds its transaction, as it would after an exit).

	runnerB := reapingRunner(t, client, db, "pod-0", time.Second)
	require.NoError(t, writeDoc1(runnerB, docs, 5*time.Second), "the closed process's transaction still holds the document: its session was no longer recorded")
}

// After Close, the registry is no longer kept: a transaction started then
// could not be found by another process if this one died, so it does
// not start (as a transaction whose session cannot be recorded), and
// nothing is written to the registry.
func TestATransactionStartedAfterCloseWithOrphanReapingDoesNotStart(t *testing.T) {
	e := newEnv(t)
	sessions := e.db.Collection("sessions")
	runner := tx.NewRunner(e.client, tx.WithOrphanReaping(tx.OrphanReaping{Collection: sessions, Instance: "pod-0"}))
	require.NoError(t, runner.Close(ctxTimeout(t)))

	err := runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		_, err := e.coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
		return err
	})
	require.ErrorIs(t, err, tx.ErrClosed)
	require.Zero(t, e.count(t, nil), "the transaction ran")
	n, err := sessions.CountDocuments(context.Background(), bson.D{})
	require.NoError(t, err)
	require.Zero(t, n, "registry documents written after Close")
}
