package tx_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
)

// The runner's next transactions run on the sessions its reaper killed
// (spares), which a network error made dirty: the driver discards such a
// session when it ends instead of pooling it. docs/transactions.md says
// that a quick abort the server refused is not reaped because "the next
// transaction on that pooled session supersedes it"; on a spare there is
// no such next transaction, and what the refused abort left open held its
// documents until the server's lifetime limit (finding
// tx-attack24-spare-abort-refused).
func TestAnAbortRefusedOnAKeptSessionLeavesNothingOpen(t *testing.T) {
	e := newEnv(t, tx.WithCleanupTimeout(reapCleanup))
	e.commitFaults.Store(true) // this test checks the server itself
	admin := testenv.Connect(t, e.uri)
	seedDoc(t, e)
	// A commit whose outcome is unknown: its session is killed, fenced
	// and kept for the next transaction.
	e.failCommand(t, 2, bson.D{{Key: "failCommands", Value: bson.A{"commitTransaction"}}, {Key: "closeConnection", Value: true}}) // the driver resends it once
	err := e.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		_, err := e.coll.InsertOne(ctx, bson.D{{Key: "k", Value: "unknown"}})
		return err
	}, tx.WithMaxAttempts(1))
	require.ErrorIs(t, err, tx.ErrCommitUnknown)
	requireNothingLeftOpen(t, e, admin, 2*time.Second)

	// An abort the server refuses at once.
	e.failCommand(t, 1, bson.D{{Key: "failCommands", Value: bson.A{"abortTransaction"}}, {Key: "errorCode", Value: int32(1)}})
	err = e.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		if _, err := e.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "abandoned"}}}}); err != nil {
			return err
		}
		return errBusiness
	})
	require.ErrorIs(t, err, errBusiness)

	// The next transaction.
	require.NoError(t, e.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		_, err := e.coll.InsertOne(ctx, bson.D{{Key: "k", Value: "next"}})
		return err
	}))
	t.Logf("commands: %s", e.mon.dump("update", "insert", "commitTransaction", "abortTransaction", "killSessions", "find"))
	requireNothingLeftOpen(t, e, admin, 2*time.Second)
}
