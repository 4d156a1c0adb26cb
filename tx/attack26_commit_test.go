package tx_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
)

// The driver resends a commit by itself once after a retryable error (a
// ShutdownInProgress write concern error: the primary applied the commit
// and is going away) and returns only the resend's answer. When that
// resend is refused before it ran with TransientTransactionError, the
// runner's first send of the commit looks refused, though a wire send
// before it applied: the runner must not run the transaction again
// (finding tx-attack26-driver-resend-transient).
func TestACommitWhoseDriverResendIsRefusedAsTransientIsNotRunAgain(t *testing.T) {
	tests := []struct {
		name string
		give bson.D // the fail point the driver's own resend meets
	}{
		{name: "a write conflict", give: failData("commitTransaction", codeWriteConflict, "TransientTransactionError")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, fastBackoff)
			e.commitFaults.Store(true)
			var client2Armed bool
			var arm func()
			mon := &event.CommandMonitor{
				Succeeded: func(_ context.Context, ev *event.CommandSucceededEvent) {
					if ev.CommandName == "commitTransaction" && !client2Armed && arm != nil {
						client2Armed = true
						arm() // between the driver's first send and its own resend
					}
				},
			}
			client := testenv.Connect(t, e.uri, options.Client().SetMonitor(mon))
			fail := func(data bson.D) {
				testenv.FailCommand(t, client, bson.D{
					{Key: "configureFailPoint", Value: "failCommand"},
					{Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
					{Key: "data", Value: data},
				})
			}
			arm = func() { fail(tt.give) }
			runner := tx.NewRunner(client, fastBackoff)
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				assert.NoError(t, runner.Close(ctx))
			})
			coll := client.Database(e.db.Name()).Collection("docs")
			// The first send applies; its reply has a retryable write
			// concern error, so the driver sends the commit again itself.
			fail(bson.D{
				{Key: "failCommands", Value: bson.A{"commitTransaction"}},
				{Key: "writeConcernError", Value: wce(91)},
			})
			var outcome tx.Outcome
			runs := 0
			err := runner.Run(ctxTimeout(t), func(ctx context.Context) error {
				runs++
				tx.AfterCompletion(ctx, func(_ context.Context, o tx.Outcome) { outcome = o })
				_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: "acct"}},
					bson.D{{Key: "$inc", Value: bson.D{{Key: "balance", Value: 10}}}}, options.UpdateOne().SetUpsert(true))
				return err
			}, tx.WithMaxAttempts(3))
			require.True(t, client2Armed, "the driver's first send was answered")
			assert.Equal(t, int64(1), e.count(t, bson.D{{Key: "_id", Value: "acct"}, {Key: "balance", Value: 10}}), "applied once: the first send committed")
			assert.Equal(t, 1, runs, "the transaction is not run again")
			if err == nil {
				assert.Equal(t, tx.Committed, outcome)
			} else {
				assert.ErrorIs(t, err, tx.ErrCommitUnknown)
				assert.Equal(t, tx.Unknown, outcome, "the outcome the hooks were told")
			}
		})
	}
}
