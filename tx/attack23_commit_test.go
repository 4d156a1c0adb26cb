package tx_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
)

// codeShutdownInProgress is a write concern error code the driver retries
// by itself (a retryable write error).
const codeShutdownInProgress = 91

// The driver resends a commit by itself once when its reply carries a
// retryable write concern error (ShutdownInProgress: the primary applied
// the commit and is going away). When the driver's own resend is answered
// with an error that says nothing about the transaction (Interrupted from
// a kill of the session, say), the runner sees only that answer: it must
// not take it for the answer to the only send and report "nothing was
// applied" while the commit is on the server (attack23, finding
// tx-commit-driver-resend-hides-applied-send).
func TestAttack23ADriverResentCommitAnsweredInterruptedIsNotReportedAsNothingApplied(t *testing.T) {
	uri := testenv.URI(t)
	var admin atomic.Pointer[func()]
	var armed atomic.Bool
	mon := &event.CommandMonitor{
		Succeeded: func(_ context.Context, ev *event.CommandSucceededEvent) {
			if ev.CommandName != "commitTransaction" || armed.Load() {
				return
			}
			if _, err := ev.Reply.LookupErr("writeConcernError"); err != nil {
				return
			}
			armed.Store(true)
			(*admin.Load())()
		},
	}
	client := testenv.Connect(t, uri, options.Client().SetMonitor(mon))
	db := testenv.NewDB(t, client)
	coll := db.Collection("docs")
	require.NoError(t, db.CreateCollection(context.Background(), "docs"))
	runner := tx.NewRunner(client, fastBackoff)
	t.Cleanup(func() { _ = runner.Close(context.Background()) })
	fail := func(times int, data bson.D) {
		testenv.FailCommand(t, client, bson.D{
			{Key: "configureFailPoint", Value: "failCommand"},
			{Key: "mode", Value: bson.D{{Key: "times", Value: times}}},
			{Key: "data", Value: data},
		})
	}
	// The driver's resend is interrupted: a kill came.
	arm := func() { fail(1, failData("commitTransaction", codeInterrupted)) }
	admin.Store(&arm)
	// The first send applies; its reply's write concern error is one the
	// driver retries.
	fail(1, bson.D{
		{Key: "failCommands", Value: bson.A{"commitTransaction"}},
		{Key: "writeConcernError", Value: wce(codeShutdownInProgress)},
		{Key: "errorLabels", Value: bson.A{"RetryableWriteError"}},
	})
	var outcome tx.Outcome
	err := runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		tx.AfterCompletion(ctx, func(_ context.Context, o tx.Outcome) { outcome = o })
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "paid"}})
		return err
	}, tx.WithMaxAttempts(3))
	require.True(t, armed.Load(), "the first send's reply carried the write concern error")
	n, cerr := coll.CountDocuments(context.Background(), bson.D{{Key: "_id", Value: "paid"}})
	require.NoError(t, cerr)
	require.EqualValues(t, 1, n, "the first send committed")
	if err != nil {
		assert.ErrorIs(t, err, tx.ErrCommitUnknown, "applied: never a plain failure (got %v)", err)
		assert.Equal(t, tx.Unknown, outcome, "the outcome the hooks were told")
	} else {
		assert.Equal(t, tx.Committed, outcome)
	}
}
